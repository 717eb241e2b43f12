package e2e

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// nobody is the unprivileged local user of the host-access tests.
const nobody = "65534"

// asNobody runs a command as uid/gid 65534 with no supplementary groups
// and no capabilities: any local user of the host. setpriv keeps its
// permitted capabilities across the uid change until it execs, so the
// command's own path would be resolved with root's powers: a shell without
// any resolves and execs it.
func asNobody(stdin []byte, args ...string) (string, error) {
	cmd := exec.Command("setpriv", append([]string{"--reuid=" + nobody, "--regid=" + nobody, "--clear-groups", "--", "/bin/sh", "-c", `exec "$@"`, "sh"}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// buildHostProbe builds testdata/hostprobe (static) into a directory every
// user may read, and returns its path.
func buildHostProbe(t *testing.T) string {
	t.Helper()
	// Not t.TempDir(): its parent is 0700.
	dir, err := os.MkdirTemp("", "berth-e2e-hostprobe-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "hostprobe")
	// go test puts its own GOROOT/bin first on the test's PATH.
	cmd := exec.Command("go", "build", "-o", p, "./testdata/hostprobe")
	cmd.Dir = filepath.Join(env.repoRoot, "test", "e2e")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build testdata/hostprobe: %v\n%s", err, out)
	}
	return p
}

// TestHostUserReachesNothing (issue 12, item 1; the CVE-2021-41091 class):
// a local user who is not root reaches nothing of a daemon's state: not a
// running container's filesystem (its setuid-root binaries, its device
// nodes), not an image layer, not the content of an image. Inside the
// container, setuid binaries and device nodes still work, as under Docker.
func TestHostUserReachesNothing(t *testing.T) {
	requireEnv(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatalf("setpriv (util-linux) is needed: %v", err)
	}
	d := startTestDaemon(t, env.target, daemonOpts{mirror: true})
	// The daemon's directory is a 0700 temp dir; open it as /var/lib and
	// /run are open, so that only the daemon's own modes stand between a
	// user and its state.
	if err := os.Chmod(d.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	probe := buildHostProbe(t)
	a := d.api()
	restarted := false // then the restarted daemon's clean-up removes them
	ensureImage(t, a, "busybox:latest")
	c := cliFor(t, "docker", d)

	// An image whose layer holds a setuid-root binary, a device node and a
	// private file, made by root in a container and committed.
	mk, img := "e2e-hostmk-"+uniq(), "e2e-hostprobe:"+uniq()
	c.ok("run", "--name", mk, "-v", probe+":/hostprobe:ro", "busybox", "sh", "-c",
		"cp /hostprobe /suid && chmod 4755 /suid && mknod /null-lower c 1 3 && chmod 666 /null-lower && echo private > /secret && chmod 644 /secret")
	c.ok("commit", mk, img)
	c.ok("rm", mk)
	t.Cleanup(func() {
		if !restarted {
			removeImage(t, a, img)
		}
	})
	imgID := strings.TrimPrefix(inspectImage(t, a, img).ID, "sha256:")

	// A running container from it, which adds the same to its own layer.
	v := "e2e-hostvictim-" + uniq()
	t.Cleanup(func() {
		if !restarted {
			rmCtr(t, a, v)
		}
	})
	c.ok("run", "-d", "--name", v, img, "sh", "-c",
		"cp /suid /suid-upper && chmod 4755 /suid-upper && mknod /null-upper c 1 3 && chmod 666 /null-upper && touch /ready && exec sleep 1000")
	if !poll(cliTimeout, func() bool { return c.run("exec", v, "test", "-e", "/ready").Code == 0 }) {
		t.Fatalf("container %s never got ready", v)
	}

	// Inside: the setuid binaries give euid 0 and the device nodes open,
	// from the image's layer and from the container's own.
	for _, bin := range []string{"/suid", "/suid-upper"} {
		r := c.ok("exec", "-u", nobody, v, bin, "euid")
		if !strings.Contains(r.Stdout, "euid=0 uid="+nobody) {
			t.Errorf("inside the container, setuid-root %s run by uid %s printed %q, want euid=0: setuid binaries must work inside containers as under Docker", bin, nobody, r.Stdout)
		}
	}
	c.ok("exec", "-u", nobody, v, "sh", "-c", "echo x > /null-lower && echo x > /null-upper")

	// On the host: what the container's filesystem is made of.
	var gd struct {
		GraphDriver struct{ Data map[string]string }
	}
	a.call(t, "GET", "/containers/"+v+"/json", nil, nil).wantStatus(t, 200).decode(t, &gd)
	merged, upper := gd.GraphDriver.Data["MergedDir"], gd.GraphDriver.Data["UpperDir"]
	if merged == "" || upper == "" {
		t.Fatalf("inspect has no GraphDriver MergedDir/UpperDir: %v", gd.GraphDriver.Data)
	}
	targets := []string{
		filepath.Join(merged, "suid"), filepath.Join(merged, "suid-upper"),
		filepath.Join(merged, "null-lower"), filepath.Join(merged, "null-upper"), filepath.Join(merged, "secret"),
		filepath.Join(upper, "suid-upper"), filepath.Join(upper, "null-upper"),
	}
	for _, l := range strings.Split(gd.GraphDriver.Data["LowerDir"], ":") {
		for _, n := range []string{"suid", "null-lower", "secret"} {
			if _, err := os.Lstat(filepath.Join(l, n)); err == nil {
				targets = append(targets, filepath.Join(l, n))
			}
		}
	}
	roots := []string{d.dataRoot, d.execRoot}
	// The image's config, wherever the daemon keeps it (berth's content
	// store, dockerd's imagedb), and the directory listing the running
	// containers (berth's <exec-root>/c, dockerd's <data-root>/containers).
	for _, r := range roots {
		filepath.WalkDir(r, func(p string, e fs.DirEntry, err error) error {
			if err == nil && strings.Contains(e.Name(), imgID) {
				targets = append(targets, p)
			}
			return nil
		})
	}
	for _, p := range targets {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("as root, %s: %v (the test's own paths are wrong)", p, err)
		}
	}
	t.Logf("probed as uid %s: %s", nobody, strings.Join(targets, "\n  "))

	probeAsNobody(t, probe, roots, targets)

	// State an older berthd left open (its modes were 0711 and 0755) is
	// closed at the next start; the container keeps running meanwhile.
	onlyBerth(t, "dockerd 20.10.9 tightens its own at start too; restarting it with its containerd is not done here")
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{d.dataRoot, d.execRoot, filepath.Join(d.dataRoot, "content"), filepath.Join(d.dataRoot, "volumes"),
		filepath.Join(d.execRoot, "c"), filepath.Dir(merged), filepath.Join(d.execRoot, "runc"), filepath.Join(d.execRoot, "netns")} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	d2 := d.restartT(t, daemonOpts{mirror: true})
	restarted = true
	t.Cleanup(func() {
		rmCtr(t, d2.api(), v)
		removeImage(t, d2.api(), img)
	})
	if ci := inspectCtr(t, d2.api(), v); !ci.State.Running {
		t.Fatalf("%s is not running after the restart: %+v", v, ci.State)
	}
	probeAsNobody(t, probe, roots, targets)
}

// probeAsNobody fails the test if uid 65534 can run one of the setuid-root
// binaries among targets (the first two) or reach anything under roots
// beyond the names of their entries.
func probeAsNobody(t *testing.T, probe string, roots, targets []string) {
	t.Helper()
	for _, p := range targets[:2] {
		out, err := asNobody(nil, p, "euid")
		if err == nil || strings.Contains(out, "euid=0") {
			t.Errorf("uid %s ran %s from the host: %v %q; want permission denied", nobody, p, err, out)
		}
	}
	// Everything under the daemon's roots, as root sees it, then what uid
	// 65534 can do with each path.
	var all []string
	depth := map[string]int{}
	for _, r := range roots {
		filepath.WalkDir(r, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			all = append(all, p)
			rel, _ := filepath.Rel(r, p)
			if rel == "." {
				depth[p] = 0
			} else {
				depth[p] = strings.Count(rel, "/") + 1
			}
			return nil
		})
	}
	all = append(all, targets...)
	out, err := asNobody([]byte(strings.Join(all, "\n")+"\n"), probe, "reach")
	if err != nil {
		t.Fatalf("hostprobe reach as uid %s: %v\n%s", nobody, err, out)
	}
	var found []string
	for _, l := range lines(out) {
		what, p, _ := strings.Cut(l, " ")
		// The roots may be searchable (dockerd's /var/lib/docker is 0711):
		// the names of their entries are no secret, anything else is.
		if what == "stat" && depth[p] <= 1 && !contains(targets, p) {
			continue
		}
		found = append(found, l)
	}
	if len(found) > 0 {
		t.Errorf("uid %s reaches %d paths of the daemon's state:\n  %s", nobody, len(found), strings.Join(found, "\n  "))
	}
	// What the modes are, for the record.
	var modes strings.Builder
	for _, p := range all {
		if depth[p] <= 2 {
			if st, err := os.Lstat(p); err == nil && st.IsDir() {
				fmt.Fprintf(&modes, "%04o %s\n", st.Mode().Perm(), p)
			}
		}
	}
	t.Logf("directory modes (depth <= 2):\n%s", modes.String())
}
