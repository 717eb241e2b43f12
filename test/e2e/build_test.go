package e2e

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// buildxPlugin is where hack/deps.sh installs buildx ($BERTH_BUILDX
// overrides it). Tests choose per CLI whether the docker CLI sees it, so
// builds run both through buildx and through the classic path.
func buildxPlugin(t *testing.T) string {
	t.Helper()
	p := os.Getenv("BERTH_BUILDX")
	if p == "" {
		p = "/usr/local/lib/berth/cli-plugins/docker-buildx"
	}
	if _, err := os.Stat(p); err != nil {
		t.Skipf("buildx is not installed at %s: run hack/deps.sh", p)
	}
	return p
}

// withBuildx makes buildx a plugin of c's docker CLI (in its own config
// directory).
func withBuildx(t *testing.T, c *CLI) {
	t.Helper()
	dir := filepath.Join(c.cfgDir, "cli-plugins")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(buildxPlugin(t), filepath.Join(dir, "docker-buildx")); err != nil {
		t.Fatal(err)
	}
}

// writeContext writes files (name → content) into a new build context.
func writeContext(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// buildArgs are the build flags every build in these tests passes. The
// suite's dockerd runs with --bridge=none (it must not touch the host's
// networking), where its builder's RUN fails with "network bridge not
// found"; RUN steps there use the host's network.
func buildArgs(args ...string) []string {
	if env.target == "docker" {
		args = append([]string{"--network=host"}, args...)
	}
	return args
}

// The walk-through's first Dockerfile.
const mytestDockerfile = `FROM alpine:3.18
RUN echo "Hello from Docker!" > /hello.txt
CMD ["cat", "/hello.txt"]
`

// checkMytest checks an image built from mytestDockerfile as the
// walk-through does: it runs and prints its line, and its history has the
// RUN layer and the CMD as a 0B entry on top.
func checkMytest(t *testing.T, c *CLI, tag string) {
	t.Helper()
	if out := c.ok("run", "--rm", tag).Stdout; out != "Hello from Docker!\n" {
		t.Errorf("run %s printed %q, want the Hello line", tag, out)
	}
	h := c.ok("history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Size}}", tag).Stdout
	lines := strings.Split(strings.TrimSpace(h), "\n")
	if len(lines) < 3 {
		t.Fatalf("history of %s has %d entries, want at least 3 (base, RUN, CMD):\n%s", tag, len(lines), h)
	}
	if !regexp.MustCompile(`CMD \["cat" "/hello.txt"\]\|0B$`).MatchString(lines[0]) {
		t.Errorf("history of %s: top entry %q, want the CMD at 0B", tag, lines[0])
	}
	// BuildKit writes "RUN /bin/sh -c ...", the classic builder "/bin/sh -c ...".
	if !strings.Contains(lines[1], `/bin/sh -c echo "Hello from Docker!" > /hello.txt`) || strings.HasSuffix(lines[1], "|0B") {
		t.Errorf("history of %s: second entry %q, want the RUN layer with its size", tag, lines[1])
	}
}

// TestBuildxDockerDriver: with buildx installed, the docker CLI finds
// BuildKit behind the daemon (/grpc, /session) as the docker driver, and
// `docker buildx build` loads the image into the daemon's store, where it
// is an image like any other (run, history, inspect, tag, rmi).
func TestBuildxDockerDriver(t *testing.T) {
	c := cli(t, "docker")
	withBuildx(t, c)
	ls := c.ok("buildx", "ls").Stdout
	if !regexp.MustCompile(`(?m)^default\*?\s+docker\b`).MatchString(ls) || !strings.Contains(ls, "running") {
		t.Fatalf("buildx ls does not show the daemon as a running docker driver:\n%s", ls)
	}
	ctx := writeContext(t, map[string]string{"Dockerfile": mytestDockerfile})
	tag := "e2e-buildx-mytest:1.0"
	t.Cleanup(func() { c.run("rmi", "-f", tag, "e2e-buildx-mytest:copy") })
	b := c.ok(append([]string{"buildx", "build"}, buildArgs("--progress=plain", "-t", tag, ctx)...)...)
	if !strings.Contains(b.Stderr, "naming to docker.io/library/"+tag) {
		t.Errorf("buildx build output does not name the image:\n%s", b.Stderr)
	}
	checkMytest(t, c, tag)
	id := strings.TrimSpace(c.ok("image", "inspect", "--format", "{{.Id}}", tag).Stdout)
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("image inspect %s: Id %q", tag, id)
	}
	// A cached rebuild gives the same image.
	b = c.ok(append([]string{"buildx", "build"}, buildArgs("--progress=plain", "-t", tag, ctx)...)...)
	if !strings.Contains(b.Stderr, "CACHED") {
		t.Errorf("rebuild used no cache:\n%s", b.Stderr)
	}
	if again := strings.TrimSpace(c.ok("image", "inspect", "--format", "{{.Id}}", tag).Stdout); again != id {
		t.Errorf("cached rebuild gave image %s, want %s", again, id)
	}
	c.ok("tag", tag, "e2e-buildx-mytest:copy")
	c.ok("rmi", "e2e-buildx-mytest:copy")
	c.ok("rmi", tag)
	c.fail([]string{"image", "inspect", tag}, "No such image")
}

// TestBuildxBuildFailure: a failing RUN fails the build with its exit
// code in the message and tags nothing.
func TestBuildxBuildFailure(t *testing.T) {
	c := cli(t, "docker")
	withBuildx(t, c)
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM alpine:3.18\nRUN exit 3\n"})
	tag := "e2e-buildx-fail:1.0"
	r := c.run(append([]string{"buildx", "build"}, buildArgs("--progress=plain", "-t", tag, ctx)...)...)
	if r.Code == 0 {
		t.Fatalf("a failing RUN built")
	}
	if !strings.Contains(r.Stderr, "exit code: 3") {
		t.Errorf("build failure does not give the exit code:\n%s", r.Stderr)
	}
	c.fail([]string{"image", "inspect", tag}, "No such image")
}

// TestBuildFromLocalImage (issue 9 item 4): a FROM image the daemon holds
// is used from its store, as dockerd's builder does ("default == prefer
// local"): a local image tagged with a name that the registry holds with
// other content wins over the registry's, and once the registry is gone
// builds FROM it (and FROM an image built here) still work, uncached.
func TestBuildFromLocalImage(t *testing.T) {
	c := cli(t, "docker")
	withBuildx(t, c)
	reg := startRegistry(t, registryOpts{})
	base := reg.Host + "/e2e-from-local:1"
	child := "e2e-from-local-child:1"
	t.Cleanup(func() { c.run("rmi", "-f", base, child, "e2e-from-local-grandchild:1") })
	c.ok("pull", "alpine:3.18")
	c.ok("tag", "alpine:3.18", base)
	c.ok("push", base)
	// The local image of that name has /marker; the registry's has not.
	build := func(tag, dockerfile string, extra ...string) result {
		t.Helper()
		ctx := writeContext(t, map[string]string{"Dockerfile": dockerfile})
		args := append([]string{"buildx", "build"}, buildArgs(append(extra, "--progress=plain", "-t", tag, ctx)...)...)
		return c.run(args...)
	}
	if r := build(base, "FROM alpine:3.18\nRUN echo local > /marker\n"); r.Code != 0 {
		t.Fatalf("build of the local base failed:\n%s", r.Stderr)
	}
	if r := build(child, "FROM "+base+"\nRUN cat /marker\n"); r.Code != 0 {
		t.Fatalf("FROM %s did not use the local image (it has /marker, the registry's has not):\n%s", base, r.Stderr)
	}
	reg.stop()
	if r := build(child, "FROM "+base+"\nRUN cat /marker > /copy\n", "--no-cache"); r.Code != 0 {
		t.Fatalf("FROM %s with its registry gone failed:\n%s", base, r.Stderr)
	}
	if r := build("e2e-from-local-grandchild:1", "FROM "+child+"\nRUN test -f /copy\n"); r.Code != 0 {
		t.Fatalf("FROM %s (built here, in no registry) failed:\n%s", child, r.Stderr)
	}
	if out := c.ok("run", "--rm", child, "cat", "/copy").Stdout; out != "local\n" {
		t.Errorf("the child image's /copy holds %q, want the local base's marker", out)
	}
}

// TestBuildRunIsolation (issue 9 item 6): a RUN step is contained as a
// container is: Docker's 14 default capabilities, the seccomp filter on,
// root in the step.
func TestBuildRunIsolation(t *testing.T) {
	c := cli(t, "docker")
	withBuildx(t, c)
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM alpine:3.18\n" +
		`RUN grep -E "^(CapEff|CapBnd|Seccomp):" /proc/self/status | tr -d '\t' | sed 's/^/STATUS /'` + "\n"})
	b := c.ok(append([]string{"buildx", "build"}, buildArgs("--no-cache", "--progress=plain", ctx)...)...)
	for _, want := range []string{"STATUS CapEff:00000000a80425fb", "STATUS CapBnd:00000000a80425fb", "STATUS Seccomp:2"} {
		if !strings.Contains(b.Stderr, want) {
			t.Errorf("RUN step's /proc/self/status lacks %q:\n%s", want, b.Stderr)
		}
	}
}

// TestBuildRunNetwork (issue 9 item 6): RUN steps run on the daemon's
// default bridge (an address of its subnet, the route through its
// gateway, so they reach the host there), --network=none gives loopback
// only and --network=host the host's network; each step's namespace is
// gone once the build ends.
func TestBuildRunNetwork(t *testing.T) {
	onlyBerth(t, "the suite's dockerd runs with --bridge=none: its RUN steps have no default bridge to run on")
	d := requireEnv(t)
	c := cli(t, "docker")
	withBuildx(t, c)
	gw := strings.TrimSpace(c.ok("network", "inspect", "bridge", "--format", "{{(index .IPAM.Config 0).Gateway}}").Stdout)
	ln, err := net.Listen("tcp", net.JoinHostPort(gw, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "hello-from-the-host\n")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM alpine:3.18\n" +
		"RUN echo IFACES $(ls /sys/class/net); ip -4 route show default; (wget -q -O- http://" + ln.Addr().String() + "/ || true)\n"})
	build := func(args ...string) string {
		t.Helper()
		return c.ok(append(append([]string{"buildx", "build", "--no-cache", "--progress=plain"}, args...), ctx)...).Stderr
	}
	out := build()
	for _, want := range []string{"IFACES eth0 lo", "default via " + gw + " dev eth0", "hello-from-the-host"} {
		if !strings.Contains(out, want) {
			t.Errorf("RUN on the default bridge: output lacks %q:\n%s", want, out)
		}
	}
	if out := build("--network=none"); !strings.Contains(out, "IFACES lo\n") || strings.Contains(out, "hello-from-the-host") {
		t.Errorf("RUN with --network=none: want loopback only and no way out:\n%s", out)
	}
	if out := build("--network=host"); strings.Contains(out, "IFACES eth0 lo\n") || !strings.Contains(out, "hello-from-the-host") {
		t.Errorf("RUN with --network=host: want the host's interfaces:\n%s", out)
	}
	var left []string
	if !poll(10*time.Second, func() bool {
		left = nil
		ents, _ := os.ReadDir(filepath.Join(d.execRoot, "netns"))
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "buildkit-") {
				left = append(left, e.Name())
			}
		}
		return len(left) == 0
	}) {
		t.Errorf("RUN steps' network namespaces left behind: %v", left)
	}
}
