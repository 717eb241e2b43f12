package e2e

import (
	"strings"
	"testing"
)

// TestBuildFromCommittedImage (issue 9 item 4): an image made here by
// `commit` (berth stores its layer without a compressed blob) is a FROM
// image like any other, through buildx and through the classic path:
// the build uses it from the store (it is in no registry), and the child
// image runs with the committed file and the build's own.
func TestBuildFromCommittedImage(t *testing.T) {
	c := cli(t, "docker")
	withBuildx(t, c)
	base := "e2e-committed-base:1"
	ctr := "e2e-committed-ctr"
	t.Cleanup(func() {
		c.run("rm", "-f", ctr)
		c.run("rmi", "-f", base, "e2e-committed-child:buildx", "e2e-committed-child:classic")
	})
	c.ok("pull", "alpine:3.18")
	c.ok("run", "--name", ctr, "alpine:3.18", "sh", "-c", "echo committed > /c; mkdir -p /d; echo deep > /d/e")
	c.ok("commit", ctr, base)
	dockerfile := "FROM " + base + "\nRUN cat /c /d/e > /copy\n"
	for _, v := range []struct{ name, tag string }{
		{"buildx", "e2e-committed-child:buildx"},
		{"classic", "e2e-committed-child:classic"},
	} {
		ctx := writeContext(t, map[string]string{"Dockerfile": dockerfile})
		args := []string{"build"}
		if v.name == "buildx" {
			args = []string{"buildx", "build", "--progress=plain"}
		}
		if r := c.run(append(args, buildArgs("-t", v.tag, ctx)...)...); r.Code != 0 {
			t.Errorf("%s: build FROM the committed %s failed:\n%s%s", v.name, base, r.Stdout, r.Stderr)
			continue
		}
		if out := c.ok("run", "--rm", v.tag, "cat", "/copy", "/c").Stdout; out != "committed\ndeep\ncommitted\n" {
			t.Errorf("%s: the child image's /copy and /c hold %q", v.name, out)
		}
		h := c.ok("history", "--no-trunc", "--format", "{{.CreatedBy}}", v.tag).Stdout
		if !strings.Contains(h, "cat /c /d/e > /copy") {
			t.Errorf("%s: history lacks the RUN step:\n%s", v.name, h)
		}
	}
}

// TestBuilderGCPolicy (issue 9 item 7): daemon.json's builder.gc (the
// keys dockerd 20.10 reads) is the build cache's garbage collection
// policy, as `docker buildx inspect` shows it.
func TestBuilderGCPolicy(t *testing.T) {
	d := startTestDaemon(t, env.target, daemonOpts{mirror: true, config: `{"builder": {"gc": {"enabled": true,
		"policy": [{"keepStorage": "512MB", "filter": ["unused-for=48h"]}, {"keepStorage": "3GB", "all": true}]}}}`})
	c := cliFor(t, "docker", d)
	withBuildx(t, c)
	out := c.ok("buildx", "inspect").Stdout
	for _, want := range []string{"GC Policy rule#0", "Keep Duration:", "48h0m0s", "GC Policy rule#1", "All:", "true"} {
		if !strings.Contains(out, want) {
			t.Errorf("buildx inspect lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "GC Policy rule#2") {
		t.Errorf("buildx inspect shows more rules than the two configured:\n%s", out)
	}
}
