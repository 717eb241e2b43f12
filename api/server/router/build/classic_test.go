package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
	gatewaypb "github.com/moby/buildkit/frontend/gateway/pb"
	solvererrdefs "github.com/moby/buildkit/solver/errdefs"
	"github.com/moby/buildkit/solver/pb"
	"github.com/opencontainers/go-digest"

	"github.com/berth/berth/archive"
)

// render runs the classic renderer over vertex events and returns the
// stream text it wrote.
func render(t *testing.T, df string, target string, events [][]*client.Vertex, logs map[int][]*client.VertexLog) string {
	t.Helper()
	var out strings.Builder
	p := newClassicProgress([]byte(df), target, true, func(m any) error {
		b, _ := json.Marshal(m)
		var sm streamMessage
		_ = json.Unmarshal(b, &sm)
		out.WriteString(sm.Stream)
		return nil
	})
	for i, vs := range events {
		if err := p.status(&client.SolveStatus{Vertexes: vs, Logs: logs[i]}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.finish("sha256:0123456789abcdef0123", []string{"mytest:1.0", "docker.io/library/other"}); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func vtx(name string, started, done, cached bool) *client.Vertex {
	now := time.Now()
	v := &client.Vertex{Digest: digest.FromString(name), Name: name, Cached: cached}
	if started {
		v.Started = &now
	}
	if done {
		v.Completed = &now
	}
	return v
}

func TestClassicProgressSingleStage(t *testing.T) {
	df := "FROM alpine:3.18\nRUN echo hi\nENV A=b\nCMD [\"cat\", \"/x\"]\n"
	from := "[1/2] FROM docker.io/library/alpine:3.18@sha256:aa"
	run := "[2/2] RUN echo hi"
	out := render(t, df, "", [][]*client.Vertex{
		{vtx("[internal] load build definition from Dockerfile", true, true, false)},
		{vtx(from, true, false, false)},
		{vtx(from, true, true, false), vtx(run, true, false, false)},
		{vtx(run, true, true, false)},
	}, map[int][]*client.VertexLog{2: {{Vertex: digest.FromString(run), Stream: 1, Data: []byte("hi\n")}}})
	runID := shortID(digest.FromString(run).String())
	want := "Step 1/4 : FROM alpine:3.18\n" +
		" ---> " + resultID12(digest.FromString(from)) + "\n" +
		"Step 2/4 : RUN echo hi\n" +
		" ---> Running in " + runID + "\n" +
		"hi\n" +
		"Removing intermediate container " + runID + "\n" +
		" ---> " + resultID12(digest.FromString(run)) + "\n" +
		"Step 3/4 : ENV A=b\n" +
		"Step 4/4 : CMD [\"cat\", \"/x\"]\n" +
		" ---> 0123456789ab\n" +
		"Successfully built 0123456789ab\n" +
		"Successfully tagged mytest:1.0\n" +
		"Successfully tagged other:latest\n"
	if out != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
}

// Stages are found by name or stage-N; a stage FROM another has no FROM
// vertex; an unneeded stage is not shown; cached steps say so.
func TestClassicProgressMultiStage(t *testing.T) {
	df := "ARG X=1\nFROM alpine:3.18 AS base\nWORKDIR /w\nFROM busybox\nCOPY a b\nFROM base AS final\nRUN true\nCMD [\"x\"]\nFROM final AS unused\nRUN false\n"
	out := render(t, df, "final", [][]*client.Vertex{
		{vtx("[base 1/2] FROM docker.io/library/alpine:3.18", true, true, true)},
		{vtx("[base 2/2] WORKDIR /w", true, true, true)},
		{vtx("[stage-1 1/2] FROM docker.io/library/busybox", true, true, false)},
		{vtx("[final 1/1] RUN true", true, true, false)},
	}, nil)
	for _, want := range []string{
		"Step 1/10 : ARG X=1\nStep 2/10 : FROM alpine:3.18 AS base\n ---> Using cache\n",
		"Step 3/10 : WORKDIR /w\n ---> Using cache\n",
		"Step 4/10 : FROM busybox\n",
		"Step 6/10 : FROM base AS final\nStep 7/10 : RUN true\n ---> Running in ",
		"Step 8/10 : CMD [\"x\"]\n ---> 0123456789ab\nSuccessfully built",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "RUN false") || strings.Contains(out, "Step 5/10") {
		t.Errorf("output shows steps that did not run:\n%s", out)
	}
}

// Without the Dockerfile, steps are shown as BuildKit numbers them.
func TestClassicProgressNoDockerfile(t *testing.T) {
	p := newClassicProgress(nil, "", false, func(any) error { return nil })
	var out strings.Builder
	p.write = func(m any) error {
		if sm, ok := m.(streamMessage); ok {
			out.WriteString(sm.Stream)
		}
		return nil
	}
	if err := p.status(&client.SolveStatus{Vertexes: []*client.Vertex{vtx("[1/1] RUN x", true, true, false)}}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "Step 1/1 : RUN x\n") {
		t.Errorf("the step is not shown as BuildKit numbers it: %q", out.String())
	}
}

func TestClassicError(t *testing.T) {
	op := &pb.Op{Op: &pb.Op_Exec{Exec: &pb.ExecOp{Meta: &pb.Meta{Args: []string{"/bin/sh", "-c", "exit 3"}}}}}
	err := solvererrdefs.WithOp(&gatewaypb.ExitError{ExitCode: 3}, op, nil)
	m := classicError(err)
	if m.ErrorDetail.Code != 3 || m.Error != "The command '/bin/sh -c exit 3' returned a non-zero code: 3" {
		t.Errorf("classicError = %+v", m)
	}
	m = classicError(errors.New("dockerfile parse error on line 2: unknown instruction: FOO"))
	if m.ErrorDetail.Code != 0 || m.Error != "dockerfile parse error on line 2: unknown instruction: FOO" {
		t.Errorf("classicError = %+v", m)
	}
}

func tarOf(t *testing.T, gz bool, files ...string) []byte {
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	tw := tar.NewWriter(w)
	for i := 0; i < len(files); i += 2 {
		if err := tw.WriteHeader(&tar.Header{Name: files[i], Mode: 0o644, Size: int64(len(files[i+1])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(files[i+1]))
	}
	_ = tw.Close()
	if zw != nil {
		_ = zw.Close()
	}
	return buf.Bytes()
}

// The sniffer passes every byte through and finds the Dockerfile in plain
// and gzip tars, by the path the client names.
func TestDockerfileSniffer(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	for _, gz := range []bool{false, true} {
		data := tarOf(t, gz, "big", big, "./sub/Custom", "FROM scratch\n", "Dockerfile", "FROM alpine\n")
		for name, want := range map[string]string{"": "FROM alpine\n", "sub/Custom": "FROM scratch\n", "missing": ""} {
			s := sniffDockerfile(io.NopCloser(bytes.NewReader(data)), name)
			got, err := io.ReadAll(s)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("gz=%v: the context did not pass through unchanged (%v)", gz, err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if df := string(s.dockerfile(ctx)); df != want {
				t.Errorf("gz=%v name=%q: found %q, want %q", gz, name, df, want)
			}
			cancel()
			s.Close()
		}
	}
	// A zstd context (any compression archive.Decompress knows).
	var zbuf bytes.Buffer
	zw, err := archive.Compress(&zbuf, archive.Zstd)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = zw.Write(tarOf(t, false, "Dockerfile", "FROM busybox\n"))
	_ = zw.Close()
	zs := sniffDockerfile(io.NopCloser(bytes.NewReader(zbuf.Bytes())), "")
	_, _ = io.ReadAll(zs)
	zctx, zcancel := context.WithTimeout(context.Background(), 5*time.Second)
	if df := string(zs.dockerfile(zctx)); df != "FROM busybox\n" {
		t.Errorf("zstd context: found %q", df)
	}
	zcancel()
	zs.Close()
	// A context that is not a tar: nothing found, nothing blocks.
	s := sniffDockerfile(io.NopCloser(strings.NewReader("not a tar at all")), "")
	_, _ = io.ReadAll(s)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if df := s.dockerfile(ctx); df != nil || ctx.Err() != nil {
		t.Errorf("not a tar: %q, %v", df, ctx.Err())
	}
}
