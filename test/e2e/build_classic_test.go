package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// contextTar makes a build context tar of files (name → content),
// gzip-compressed if gz.
func contextTar(t *testing.T, files map[string]string, gz bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w = &buf
	var zw *gzip.Writer
	tw := tar.NewWriter(w)
	if gz {
		zw = gzip.NewWriter(w)
		tw = tar.NewWriter(zw)
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[n])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// buildMsg is one message of POST /build's JSON stream.
type buildMsg struct {
	Stream      string          `json:"stream"`
	ID          string          `json:"id"`
	Aux         json.RawMessage `json:"aux"`
	Error       string          `json:"error"`
	ErrorDetail struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"errorDetail"`
}

func decodeBuildStream(t *testing.T, body []byte) []buildMsg {
	t.Helper()
	var msgs []buildMsg
	dec := json.NewDecoder(bytes.NewReader(body))
	for dec.More() {
		var m buildMsg
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("build stream: %v\n%s", err, body)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// TestBuildClassicCLI: the docker CLI without buildx (the classic path,
// POST /build version=1) builds the walk-through's mytest and renders the
// classic builder's output; a rebuild uses the cache and gives the same
// image.
func TestBuildClassicCLI(t *testing.T) {
	c := cli(t, "docker")
	ctx := writeContext(t, map[string]string{"Dockerfile": mytestDockerfile})
	tag := "e2e-classic-mytest:1.0"
	t.Cleanup(func() { c.run("rmi", "-f", tag) })
	b := c.ok(append([]string{"build"}, buildArgs("-t", tag, ctx)...)...)
	for _, want := range []string{
		"Step 1/3 : FROM alpine:3.18\n",
		"Step 2/3 : RUN echo \"Hello from Docker!\" > /hello.txt\n",
		"Step 3/3 : CMD [\"cat\", \"/hello.txt\"]\n",
		"Successfully tagged " + tag + "\n",
	} {
		if !strings.Contains(b.Stdout, want) {
			t.Errorf("docker build output lacks %q:\n%s", want, b.Stdout)
		}
	}
	m := regexp.MustCompile(`Successfully built ([0-9a-f]{12})\n`).FindStringSubmatch(b.Stdout)
	if m == nil {
		t.Fatalf("docker build output lacks 'Successfully built <id>':\n%s", b.Stdout)
	}
	id := strings.TrimSpace(c.ok("image", "inspect", "--format", "{{.Id}}", tag).Stdout)
	if !strings.HasPrefix(id, "sha256:"+m[1]) {
		t.Errorf("built %s, but %s is %s", m[1], tag, id)
	}
	checkMytest(t, c, tag)

	b = c.ok(append([]string{"build"}, buildArgs("-t", tag, ctx)...)...)
	if !strings.Contains(b.Stdout, " ---> Using cache\n") {
		t.Errorf("rebuild used no cache:\n%s", b.Stdout)
	}
	if again := strings.TrimSpace(c.ok("image", "inspect", "--format", "{{.Id}}", tag).Stdout); again != id {
		t.Errorf("cached rebuild gave image %s, want %s", again, id)
	}
	// -q prints only the image ID.
	q := c.ok(append([]string{"build"}, buildArgs("-q", "-t", tag, ctx)...)...)
	if strings.TrimSpace(q.Stdout) != id {
		t.Errorf("build -q printed %q, want %s", q.Stdout, id)
	}
}

// TestBuildClassicFailure: a failing RUN on the classic path shows its
// output and "The command '...' returned a non-zero code: N", the CLI
// exits with N, and nothing is tagged. (--force-rm: dockerd's classic
// builder otherwise keeps the failed step's container.)
func TestBuildClassicFailure(t *testing.T) {
	c := cli(t, "docker")
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM alpine:3.18\nRUN echo about to fail && exit 3\n"})
	tag := "e2e-classic-fail:1"
	r := c.run(append([]string{"build"}, buildArgs("--force-rm", "-t", tag, ctx)...)...)
	if r.Code != 3 {
		t.Errorf("docker build of a RUN exiting 3: exit %d, want 3\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	if !strings.Contains(r.Stdout, "about to fail\n") {
		t.Errorf("the RUN's output is not shown:\n%s", r.Stdout)
	}
	if want := "The command '/bin/sh -c echo about to fail && exit 3' returned a non-zero code: 3"; !strings.Contains(r.Stderr, want) {
		t.Errorf("docker build error lacks %q:\n%s", want, r.Stderr)
	}
	c.fail([]string{"image", "inspect", tag}, "No such image")
}

// TestBuildClassicOptions: the query parameters the docker CLI sends on the
// classic path take effect: -f outside the context's root, --build-arg,
// --label, --target of a multi-stage Dockerfile, several -t.
func TestBuildClassicOptions(t *testing.T) {
	c := cli(t, "docker")
	ctx := writeContext(t, map[string]string{
		"sub/My.Dockerfile": `ARG BASE=alpine:3.18
FROM ${BASE} AS base
ARG GREETING=unset
RUN echo "$GREETING" > /greeting
FROM base AS final
COPY data.txt /data.txt
CMD ["cat", "/greeting", "/data.txt"]
FROM final AS unused
RUN exit 1
`,
		"data.txt": "from the context\n",
	})
	t1, t2 := "e2e-classic-opts:a", "e2e-classic-opts:b"
	t.Cleanup(func() { c.run("rmi", "-f", t1, t2) })
	b := c.ok(append([]string{"build"}, buildArgs("-f", ctx+"/sub/My.Dockerfile", "--build-arg", "GREETING=hi there",
		"--label", "e2e.label=yes", "--target", "final", "-t", t1, "-t", t2, ctx)...)...)
	for _, tag := range []string{t1, t2} {
		if !strings.Contains(b.Stdout, "Successfully tagged "+tag+"\n") {
			t.Errorf("build output does not tag %s:\n%s", tag, b.Stdout)
		}
	}
	if out := c.ok("run", "--rm", t2).Stdout; out != "hi there\nfrom the context\n" {
		t.Errorf("run %s printed %q", t2, out)
	}
	if l := strings.TrimSpace(c.ok("image", "inspect", "--format", `{{index .Config.Labels "e2e.label"}}`, t1).Stdout); l != "yes" {
		t.Errorf("label e2e.label = %q, want yes", l)
	}
}

// TestBuildAPIVersions: POST /build through the raw API. version=1 (a
// gzip context) streams the classic messages with the aux image ID;
// version=2 streams BuildKit's status as aux moby.buildkit.trace messages
// and ends with moby.image.id; an unknown version is refused.
func TestBuildAPIVersions(t *testing.T) {
	d := requireEnv(t)
	a := d.api()
	c := cli(t, "docker")
	files := map[string]string{"Dockerfile": "FROM alpine:3.18\nRUN echo api > /api.txt\n"}
	hdr := http.Header{"Content-Type": {"application/x-tar"}}
	tag := "e2e-build-api:v1"
	t.Cleanup(func() { c.run("rmi", "-f", tag, "e2e-build-api:v2") })
	q := url.Values{"t": {tag}, "version": {"1"}}
	if env.target == "docker" {
		q.Set("networkmode", "host")
	}
	r := a.call(t, "POST", "/build?"+q.Encode(), contextTar(t, files, true), hdr)
	if r.Status != http.StatusOK {
		t.Fatalf("POST /build version=1: %s", r)
	}
	var auxID string
	for _, m := range decodeBuildStream(t, r.Body) {
		if m.Error != "" {
			t.Fatalf("version=1 build failed: %s", m.Error)
		}
		var res struct{ ID string }
		if len(m.Aux) > 0 && json.Unmarshal(m.Aux, &res) == nil && res.ID != "" {
			auxID = res.ID
		}
	}
	id := strings.TrimSpace(c.ok("image", "inspect", "--format", "{{.Id}}", tag).Stdout)
	if auxID != id {
		t.Errorf("version=1 aux ID %q, image %s", auxID, id)
	}

	q = url.Values{"t": {"e2e-build-api:v2"}, "version": {"2"}}
	if env.target == "docker" {
		q.Set("networkmode", "host")
	}
	r = a.call(t, "POST", "/build?"+q.Encode(), contextTar(t, files, false), hdr)
	if r.Status != http.StatusOK {
		t.Fatalf("POST /build version=2: %s", r)
	}
	traces, imageID := 0, ""
	for _, m := range decodeBuildStream(t, r.Body) {
		if m.Error != "" {
			t.Fatalf("version=2 build failed: %s", m.Error)
		}
		switch m.ID {
		case "moby.buildkit.trace":
			var b64 string
			if err := json.Unmarshal(m.Aux, &b64); err != nil || b64 == "" {
				t.Errorf("trace aux is not base64 data: %s", m.Aux)
			}
			traces++
		case "moby.image.id":
			var res struct{ ID string }
			_ = json.Unmarshal(m.Aux, &res)
			imageID = res.ID
		}
	}
	if traces == 0 {
		t.Errorf("version=2 sent no moby.buildkit.trace")
	}
	if v2 := strings.TrimSpace(c.ok("image", "inspect", "--format", "{{.Id}}", "e2e-build-api:v2").Stdout); imageID != v2 {
		t.Errorf("version=2 moby.image.id %q, image %s", imageID, v2)
	}

	// dockerd 20.10 answers 500 (unclassed), later ones 400.
	r = a.call(t, "POST", "/build?version=3", contextTar(t, files, false), hdr)
	if (r.Status != http.StatusBadRequest && (env.target != "docker" || r.Status != http.StatusInternalServerError)) ||
		!strings.Contains(string(r.Body), `invalid version \"3\"`) {
		t.Errorf("version=3: %s", r)
	}
}

// TestBuildCachePrune: a BuildKit build leaves build cache that `docker
// system df` counts; `docker builder prune` (POST /build/prune without
// buildx, BuildKit's Prune over /grpc with it) with --filter until= keeps
// what was used since; -af removes it all and says how much it reclaimed.
func TestBuildCachePrune(t *testing.T) {
	c := cli(t, "docker") // docker builder prune: POST /build/prune
	bx := cli(t, "docker")
	withBuildx(t, bx) // docker builder prune: buildx prune
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM alpine:3.18\nRUN head -c 100000 /dev/urandom > /rand\n"})
	tag := "e2e-cache-prune:1"
	t.Cleanup(func() { c.run("rmi", "-f", tag) })
	build := func() {
		bx.ok(append([]string{"buildx", "build"}, buildArgs("--progress=plain", "--no-cache", "-t", tag, ctx)...)...)
		// The second build's image replaces the first: remove both.
		id := strings.TrimSpace(c.ok("image", "inspect", "--format", "{{.Id}}", tag).Stdout)
		t.Cleanup(func() { c.run("rmi", "-f", id) })
	}
	count := func() string {
		out := c.ok("system", "df", "--format", "{{.Type}}={{.TotalCount}}").Stdout
		m := regexp.MustCompile(`(?m)^Build Cache=(\d+)$`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("system df shows no build cache line:\n%s", out)
		}
		return m[1]
	}
	build()
	if n := count(); n == "0" {
		t.Fatalf("system df counts no build cache after a build")
	}
	kept := c.ok("builder", "prune", "-af", "--filter", "until=1h")
	if n := count(); n == "0" {
		t.Errorf("prune --filter until=1h removed cache used a moment ago:\n%s", kept.Stdout)
	}
	p := c.ok("builder", "prune", "-af")
	if !strings.Contains(p.Stdout, "Total reclaimed space:") || strings.Contains(p.Stdout, "Total reclaimed space: 0B") {
		t.Errorf("builder prune -af reclaimed nothing:\n%s", p.Stdout)
	}
	if n := count(); n != "0" {
		t.Errorf("build cache left after builder prune -af: %s records", n)
	}
	build()
	p = bx.ok("builder", "prune", "-af")
	if !regexp.MustCompile(`(?m)^Total:\s+[1-9]`).MatchString(p.Stdout) {
		t.Errorf("buildx prune -af reclaimed nothing:\n%s", p.Stdout)
	}
	if n := count(); n != "0" {
		t.Errorf("build cache left after buildx prune -af: %s records", n)
	}
}
