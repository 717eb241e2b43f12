package container_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"

	"github.com/berth/berth/api/server"
	containerrouter "github.com/berth/berth/api/server/router/container"
	ctr "github.com/berth/berth/container"
)

var _ containerrouter.Backend = (*ctr.Service)(nil)

// fake serves the extra routes; the core Backend methods are not used.
type fake struct {
	containerrouter.Backend
	put     ctr.ExtractOptions
	putBody string
	commit  ctr.CommitOptions
	stats   ctr.StatsOptions
	update  container.UpdateConfig
}

var stat = &container.PathStat{Name: "f", Size: 3, Mode: 0o644, Mtime: time.Unix(1600000000, 0).UTC()}

func (f *fake) ArchiveStat(ctx context.Context, name, p string) (*container.PathStat, error) {
	if p == "/missing" {
		return nil, cerrdefs.ErrNotFound.WithMessage("Could not find the file /missing in container " + name)
	}
	return stat, nil
}

func (f *fake) ArchiveGet(ctx context.Context, name, p string) (*container.PathStat, io.ReadCloser, error) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: "f", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg})
	tw.Write([]byte("abc"))
	tw.Close()
	return stat, io.NopCloser(&b), nil
}

func (f *fake) ArchivePut(ctx context.Context, name, p string, o ctr.ExtractOptions, r io.Reader) error {
	f.put = o
	b, _ := io.ReadAll(r)
	f.putBody = string(b)
	return nil
}

func (f *fake) Export(ctx context.Context, name string) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader("TAR")), nil
}

func (f *fake) Changes(ctx context.Context, name string) ([]container.FilesystemChange, error) {
	return []container.FilesystemChange{{Path: "/x", Kind: container.ChangeAdd}}, nil
}

func (f *fake) Commit(ctx context.Context, name string, o ctr.CommitOptions) (string, error) {
	if name == "" {
		return "", cerrdefs.ErrNotFound.WithMessage("No such container: ")
	}
	f.commit = o
	return "sha256:abc", nil
}

func (f *fake) Top(ctx context.Context, name, psArgs string) (*container.TopResponse, error) {
	return &container.TopResponse{Titles: []string{"PID", psArgs}}, nil
}

func (f *fake) Stats(ctx context.Context, name string, o ctr.StatsOptions, send func(*container.StatsResponse) error) error {
	f.stats = o
	n := 1
	if o.Stream {
		n = 3
	}
	for i := 0; i < n; i++ {
		if err := send(&container.StatsResponse{ID: name, Name: "/" + name}); err != nil {
			return err
		}
	}
	return nil
}

func (f *fake) Update(ctx context.Context, name string, u container.UpdateConfig) ([]string, error) {
	f.update = u
	return nil, nil
}

func serve(t *testing.T, f *fake, method, target, body string) *httptest.ResponseRecorder {
	t.Helper()
	srv := server.New(server.Config{Version: "test"}, containerrouter.New(f))
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if strings.HasPrefix(body, "{") {
		req.Header.Set("Content-Type", "application/json") // as every client sends it
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	return rec
}

func TestArchiveRoutes(t *testing.T) {
	f := &fake{}
	rec := serve(t, f, http.MethodHead, "/v1.50/containers/c1/archive?path=/f", "")
	if rec.Code != 200 || rec.Body.Len() != 0 {
		t.Fatalf("HEAD: %d %q", rec.Code, rec.Body)
	}
	raw, err := base64.StdEncoding.DecodeString(rec.Header().Get("X-Docker-Container-Path-Stat"))
	if err != nil {
		t.Fatal(err)
	}
	var got container.PathStat
	if err := json.Unmarshal(raw, &got); err != nil || got.Name != "f" || got.Size != 3 || !got.Mtime.Equal(stat.Mtime) {
		t.Fatalf("stat header %s: %+v %v", raw, got, err)
	}
	if !strings.Contains(string(raw), `"linkTarget":""`) || !strings.Contains(string(raw), `"mode":420`) {
		t.Fatalf("stat JSON %s", raw)
	}
	rec = serve(t, f, http.MethodHead, "/containers/c1/archive?path=/missing", "")
	if rec.Code != 404 {
		t.Fatalf("HEAD missing: %d", rec.Code)
	}
	rec = serve(t, f, http.MethodGet, "/containers/c1/archive?path=/f", "")
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/x-tar" || rec.Header().Get("X-Docker-Container-Path-Stat") == "" {
		t.Fatalf("GET: %d %v", rec.Code, rec.Header())
	}
	tr := tar.NewReader(rec.Body)
	if h, err := tr.Next(); err != nil || h.Name != "f" {
		t.Fatalf("GET tar: %v %v", h, err)
	}
	rec = serve(t, f, http.MethodGet, "/containers/c1/archive", "")
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "path is required") {
		t.Fatalf("no path: %d %s", rec.Code, rec.Body)
	}
	rec = serve(t, f, http.MethodPut, "/containers/c1/archive?path=/d&noOverwriteDirNonDir=1&copyUIDGID=true", "TARBODY")
	if rec.Code != 200 || !f.put.NoOverwriteDirNonDir || !f.put.CopyUIDGID || f.putBody != "TARBODY" {
		t.Fatalf("PUT: %d %+v %q", rec.Code, f.put, f.putBody)
	}
	rec = serve(t, f, http.MethodGet, "/containers/c1/export", "")
	if rec.Code != 200 || rec.Body.String() != "TAR" || rec.Header().Get("Content-Type") != "application/x-tar" {
		t.Fatalf("export: %d %q", rec.Code, rec.Body)
	}
}

func TestOtherExtraRoutes(t *testing.T) {
	f := &fake{}
	rec := serve(t, f, http.MethodGet, "/containers/c1/changes", "")
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `[{"Kind":1,"Path":"/x"}]` {
		t.Fatalf("changes: %d %s", rec.Code, rec.Body)
	}
	rec = serve(t, f, http.MethodGet, "/containers/c1/top?ps_args=aux", "")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"Titles":["PID","aux"]`) {
		t.Fatalf("top: %d %s", rec.Code, rec.Body)
	}

	// stats: streams by default, one JSON document per line.
	rec = serve(t, f, http.MethodGet, "/containers/c1/stats", "")
	if rec.Code != 200 || !f.stats.Stream || strings.Count(rec.Body.String(), "\n") != 3 {
		t.Fatalf("stats stream: %d %+v %q", rec.Code, f.stats, rec.Body)
	}
	rec = serve(t, f, http.MethodGet, "/containers/c1/stats?stream=false&one-shot=true", "")
	if rec.Code != 200 || f.stats.Stream || !f.stats.OneShot || strings.Count(rec.Body.String(), "\n") != 1 {
		t.Fatalf("stats one-shot: %d %+v", rec.Code, f.stats)
	}
	rec = serve(t, f, http.MethodGet, "/containers/c1/stats?stream=1&one-shot=1", "")
	if rec.Code != 400 {
		t.Fatalf("stream and one-shot: %d", rec.Code)
	}

	rec = serve(t, f, http.MethodPost, "/containers/c1/update", `{"Memory":67108864,"RestartPolicy":{"Name":"always"}}`)
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"Warnings":[]}` || f.update.Memory != 64<<20 || f.update.RestartPolicy.Name != "always" {
		t.Fatalf("update: %d %s %+v", rec.Code, rec.Body, f.update)
	}

	rec = serve(t, f, http.MethodPost, "/commit?container=c1&repo=app&tag=v1&comment=c&author=a&changes=CMD+x&changes=ENV+A%3D1", "")
	if rec.Code != 201 || strings.TrimSpace(rec.Body.String()) != `{"Id":"sha256:abc"}` {
		t.Fatalf("commit: %d %s", rec.Code, rec.Body)
	}
	o := f.commit
	if o.Repo != "app" || o.Tag != "v1" || o.Comment != "c" || o.Author != "a" || !o.Pause || len(o.Changes) != 2 || o.Changes[1] != "ENV A=1" || o.Config != nil {
		t.Fatalf("commit options: %+v", o)
	}
	rec = serve(t, f, http.MethodPost, "/commit?container=c1&pause=0", `{"Cmd":["y"]}`)
	if rec.Code != 201 || f.commit.Pause || f.commit.Config == nil || f.commit.Config.Cmd[0] != "y" {
		t.Fatalf("commit with body: %d %+v", rec.Code, f.commit)
	}
	rec = serve(t, f, http.MethodPost, "/commit", "")
	if rec.Code != 404 {
		t.Fatalf("commit without container: %d", rec.Code)
	}
}
