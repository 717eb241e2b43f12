package e2e

import (
	"strings"
	"testing"
)

// TestVolumesFrom (issue 14 item 2): --volumes-from mounts every bind and
// volume of another container (running or exited) at the same place;
// ":ro" makes them read-only and ":rw" cannot make a read-only one
// writable; -v for the same destination takes its place; the new container
// holds the volumes, so they outlive the source; rm -v of the new container
// keeps a named volume and removes an anonymous one nobody else holds; a
// missing container (400) or a bad mode is refused and nothing is created.
func TestVolumesFrom(t *testing.T) {
	busybox(t)
	a := env.d.api()
	eachCLI(t, func(t *testing.T, c *CLI) {
		dir := t.TempDir()
		writeFile(t, dir, "bound", []byte("from the host\n"))
		named := volName(t, "vf")
		src := ctrName(t, "vfsrc")
		c.ok("run", "--name", src, "-v", "/anon", "-v", named+":/named", "-v", dir+":/bind:ro", "busybox",
			"sh", "-c", "echo anon > /anon/f; echo named > /named/f")
		var anon string
		for _, m := range inspectCtr(t, a, src).Mounts {
			if m.Destination == "/anon" {
				anon = m.Name
			}
		}
		if anon == "" {
			t.Fatalf("%s has no volume at /anon", src)
		}

		// From an exited container: all three, the bind still read-only.
		if got, want := c.ok("run", "--rm", "--volumes-from", src, "busybox", "cat", "/anon/f", "/named/f", "/bind/bound").Stdout, "anon\nnamed\nfrom the host\n"; got != want {
			t.Errorf("--volumes-from %s: read %q, want %q", src, got, want)
		}
		c.ok("run", "--rm", "--volumes-from", src, "busybox", "sh", "-c", "echo more >> /anon/f && echo more >> /named/f")
		for _, spec := range []string{src, src + ":rw"} {
			r := c.run("run", "--rm", "--volumes-from", spec, "busybox", "touch", "/bind/x")
			if r.Code == 0 || !strings.Contains(r.Stderr, "Read-only file system") {
				t.Errorf("--volumes-from %s: touch in a read-only bind: exit %d, stderr %q; want Read-only file system", spec, r.Code, r.Stderr)
			}
		}
		r := c.run("run", "--rm", "--volumes-from", src+":ro", "busybox", "touch", "/named/x")
		if r.Code == 0 || !strings.Contains(r.Stderr, "Read-only file system") {
			t.Errorf("--volumes-from %s:ro: touch in the named volume: exit %d, stderr %q; want Read-only file system", src, r.Code, r.Stderr)
		}

		// -v for the same destination wins.
		other := t.TempDir()
		writeFile(t, other, "f", []byte("other\n"))
		if got := c.ok("run", "--rm", "--volumes-from", src, "-v", other+":/anon", "busybox", "cat", "/anon/f").Stdout; got != "other\n" {
			t.Errorf("--volumes-from with -v on the same path: read %q, want the -v's \"other\"", got)
		}

		// The volumes outlive the source; rm -v of the taker keeps the
		// named one and removes the anonymous one.
		taker := ctrName(t, "vftaker")
		c.ok("create", "--name", taker, "--volumes-from", src, "busybox", "cat", "/anon/f", "/named/f")
		c.ok("rm", "-v", src)
		if !volumeExists(t, a, anon) || !volumeExists(t, a, named) {
			t.Fatalf("after rm -v of the source: anonymous volume kept %v, named kept %v; want both (%s holds them)", volumeExists(t, a, anon), volumeExists(t, a, named), taker)
		}
		if got, want := c.ok("start", "-a", taker).Stdout, "anon\nmore\nnamed\nmore\n"; got != want {
			t.Errorf("%s after the source was removed: read %q, want %q", taker, got, want)
		}
		c.ok("rm", "-v", taker)
		if volumeExists(t, a, anon) {
			t.Errorf("anonymous volume %s kept after rm -v of its last holder", anon)
		}
		if !volumeExists(t, a, named) {
			t.Errorf("named volume %s removed by rm -v of a container that took it with --volumes-from", named)
		}

		// Refused, nothing created: a missing container (a removed one
		// too), a mode other than ro/rw (propagation included).
		holder := ctrName(t, "vfholder")
		c.ok("create", "--name", holder, "-v", "/data", "busybox", "true")
		label := "e2e-vf=" + uniq()
		for _, bad := range []struct{ spec, msg string }{
			{"e2e-no-such-container", "No such container: e2e-no-such-container"},
			{taker, "No such container: " + taker},
			{holder + ":bar", "invalid mode: bar"},
			{holder + ":ro,shared", "invalid mode: ro,shared"},
		} {
			r := c.run("create", "--label", label, "--volumes-from", bad.spec, "busybox", "true")
			if r.Code != 1 || !strings.Contains(r.Stderr, bad.msg) {
				t.Errorf("create --volumes-from %s: exit %d, stderr %q; want 1 and %q", bad.spec, r.Code, r.Stderr, bad.msg)
			}
		}
		// dockerd answers 400 for a missing container (not 404: the CLI
		// would pull the image and try again).
		a.call(t, "POST", "/containers/create", []byte(`{"Image":"busybox","Labels":{"`+strings.Replace(label, "=", `":"`, 1)+`"},"HostConfig":{"VolumesFrom":["e2e-no-such-container"]}}`), nil).
			wantError(t, 400, "No such container: e2e-no-such-container")
		if left := c.ok("ps", "-aq", "--filter", "label="+label).Stdout; left != "" {
			t.Errorf("refused creates left containers: %q", left)
		}
	})
}
