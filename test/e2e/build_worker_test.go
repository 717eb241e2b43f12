package e2e

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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
	requireEnv(t)
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

// countFiles counts the regular files called name under root.
func countFiles(t *testing.T, root, name string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if de.Type().IsRegular() && de.Name() == name {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// countInodes counts the distinct files (inodes) named name under root:
// hard links of one file count once.
func countInodes(t *testing.T, root, name string) int {
	t.Helper()
	inodes := map[uint64]bool{}
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if de.Type().IsRegular() && de.Name() == name {
			var st syscall.Stat_t
			if err := syscall.Lstat(p, &st); err != nil {
				return err
			}
			inodes[st.Ino] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return len(inodes)
}

// TestBuildOnBerthStores (issue 9 item 3): BuildKit's worker runs on
// berth's content store and snapshotter: a build's files and blobs are in
// berth's stores only (none under the builder's own directory), the built
// image runs and has its history, rmi collects the image's layers, a
// prune of the build cache collects the cache's, and the cache survives a
// daemon restart.
func TestBuildOnBerthStores(t *testing.T) {
	onlyBerth(t, "it looks into berthd's data root")
	d := startTestDaemon(t, "berth", daemonOpts{mirror: true})
	c := cliFor(t, "docker", d)
	withBuildx(t, c)
	c.ok("pull", "alpine:3.18")
	blobsDir := filepath.Join(d.dataRoot, "content", "blobs", "sha256")
	countBlobs := func() int {
		es, err := os.ReadDir(blobsDir)
		if err != nil {
			t.Fatal(err)
		}
		return len(es)
	}
	baseBlobs := countBlobs()
	snapshots := filepath.Join(d.dataRoot, "snapshots")
	buildkit := filepath.Join(d.dataRoot, "buildkit")
	baseReleases := countFiles(t, snapshots, "alpine-release")

	const marker = "e2e-berth-stores-marker"
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM alpine:3.18\nRUN echo built > /" + marker + "\nCMD [\"cat\", \"/" + marker + "\"]\n"})
	tag := "e2e-berth-stores:1"
	build := func(c *CLI) string {
		t.Helper()
		return c.ok("buildx", "build", "--progress=plain", "-t", tag, ctx).Stderr
	}
	build(c)
	if out := c.ok("run", "--rm", tag).Stdout; out != "built\n" {
		t.Errorf("run %s printed %q", tag, out)
	}
	h := c.ok("history", "--format", "{{.CreatedBy}}|{{.Size}}", tag).Stdout
	if lines := strings.Split(strings.TrimSpace(h), "\n"); len(lines) < 3 || !strings.HasPrefix(lines[0], "CMD") ||
		!strings.Contains(lines[1], "echo built") || strings.HasSuffix(lines[1], "|0B") {
		t.Errorf("history of %s:\n%s", tag, h)
	}
	// The RUN step's file: in berth's snapshots (the build cache's and the
	// image's layer), nowhere under the builder's directory.
	if n := countFiles(t, buildkit, marker); n != 0 {
		t.Errorf("%d copies of the RUN step's file under %s, want none", n, buildkit)
	}
	if n := countFiles(t, snapshots, marker); n != 2 {
		t.Errorf("%d names of the RUN step's file in berth's snapshots, want 2 (build cache, image layer)", n)
	}
	// Exporting the image did not copy the step's data: the image's
	// layer holds the build cache's file, not a second copy.
	if n := countInodes(t, snapshots, marker); n != 1 {
		t.Errorf("%d copies of the RUN step's file's data in berth's snapshots, want 1 (the image's layer shares the build cache's)", n)
	}
	if n := countFiles(t, buildkit, "alpine-release"); n != 0 {
		t.Errorf("the base image's files are under %s", buildkit)
	}
	// The FROM image in berth's store is built on as it is: its layer is
	// not unpacked a second time for BuildKit.
	if n := countFiles(t, snapshots, "alpine-release"); n != baseReleases {
		t.Errorf("%d copies of the base layer in berth's snapshots after the build, want the pulled image's %d", n, baseReleases)
	}

	// The cache survives a restart: the rebuild is cached, same image.
	id := strings.TrimSpace(c.ok("image", "inspect", "--format", "{{.Id}}", tag).Stdout)
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	d = d.restartT(t, daemonOpts{mirror: true})
	c = cliFor(t, "docker", d)
	withBuildx(t, c)
	if out := build(c); !strings.Contains(out, "CACHED") {
		t.Errorf("rebuild after a restart used no cache:\n%s", out)
	}
	if again := strings.TrimSpace(c.ok("image", "inspect", "--format", "{{.Id}}", tag).Stdout); again != id {
		t.Errorf("rebuild after a restart gave %s, want %s", again, id)
	}

	// rmi collects the image's layer; the cache keeps its own.
	c.ok("rmi", tag)
	if n := countFiles(t, snapshots, marker); n != 1 {
		t.Errorf("after rmi: %d copies of the RUN step's file, want the build cache's only", n)
	}
	// Pruning the cache and the build history (which holds the build's
	// provenance and trace) collects the rest: back to the pulled base.
	c.ok("builder", "prune", "-af")
	c.ok("buildx", "history", "rm", "--all")
	if n := countFiles(t, snapshots, marker); n != 0 {
		t.Errorf("after builder prune: %d copies of the RUN step's file left", n)
	}
	if n := countFiles(t, snapshots, "alpine-release"); n != baseReleases {
		t.Errorf("after builder prune: %d copies of the base layer, want %d (the pulled image's)", n, baseReleases)
	}
	if n := countBlobs(); n != baseBlobs {
		t.Errorf("after rmi and builder prune: %d blobs, want the %d of the pulled base", n, baseBlobs)
	}
}

// TestBuildDaemonKilled (issue 9 bad input): berthd killed (-9) while a
// RUN step runs; after a restart the step's processes and mounts are
// gone, the next build succeeds, and what the cut step wrote is build
// cache a prune collects.
func TestBuildDaemonKilled(t *testing.T) {
	onlyBerth(t, "it looks into berthd's data root and kills berthd")
	d := startTestDaemon(t, "berth", daemonOpts{mirror: true})
	c := cliFor(t, "docker", d)
	withBuildx(t, c)
	c.ok("pull", "alpine:3.18")
	const marker = "e2e-killed-build-marker"
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM alpine:3.18\nRUN echo x > /" + marker + " && sleep 313\n"})
	cmd := exec.Command(c.bin, "buildx", "build", "--progress=plain", ctx)
	cmd.Env = c.env
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	snapshots := filepath.Join(d.dataRoot, "snapshots")
	deadline := time.Now().Add(60 * time.Second)
	for countFiles(t, snapshots, marker) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the RUN step did not start within 60 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	d.kill9()
	sleeping := func() int {
		n := 0
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			if b, err := os.ReadFile(p); err == nil && string(b) == "sleep\x00313\x00" {
				n++
			}
		}
		return n
	}
	buildkitMounts := func() []string {
		b, err := os.ReadFile("/proc/self/mounts")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) > 1 && strings.HasPrefix(f[1], filepath.Join(d.dataRoot, "buildkit")+"/") {
				out = append(out, f[1])
			}
		}
		return out
	}
	d = d.restartT(t, daemonOpts{mirror: true})
	if n := sleeping(); n != 0 {
		t.Errorf("%d processes of the cut RUN step still run after the restart", n)
	}
	if m := buildkitMounts(); len(m) != 0 {
		t.Errorf("mounts of the cut RUN step left after the restart: %v", m)
	}
	c = cliFor(t, "docker", d)
	withBuildx(t, c)
	tag := "e2e-after-kill:1"
	c.ok("buildx", "build", "--progress=plain", "-t", tag, writeContext(t, map[string]string{"Dockerfile": mytestDockerfile}))
	checkMytest(t, c, tag)
	// The cut step's writable layer is build cache like any other
	// (reclaimable, as under dockerd): a prune collects it.
	c.ok("builder", "prune", "-af")
	if n := countFiles(t, snapshots, marker); n != 0 {
		t.Errorf("%d copies of the cut RUN step's file left after a builder prune", n)
	}
}

// TestBuilderPruneKeepsImageLayers (issue 9 item 7): a build cache record
// whose layer an image uses is shared: `builder prune` without --all
// keeps it (the rebuild is cached), --all removes it.
func TestBuilderPruneKeepsImageLayers(t *testing.T) {
	c := cli(t, "docker")
	withBuildx(t, c)
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM alpine:3.18\nRUN echo kept-by-image > /kept\n"})
	tag := "e2e-prune-shared:1"
	t.Cleanup(func() { c.run("rmi", "-f", tag) })
	build := func() string {
		t.Helper()
		return c.ok(append([]string{"buildx", "build"}, buildArgs("--progress=plain", "-t", tag, ctx)...)...).Stderr
	}
	build()
	c.ok("builder", "prune", "-f")
	if out := build(); !strings.Contains(out, "CACHED") {
		t.Errorf("builder prune (no --all) removed the cache of a step whose layer %s uses:\n%s", tag, out)
	}
}
