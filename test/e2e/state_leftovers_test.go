package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// mountedAt reports whether something is mounted at dir.
func mountedAt(t *testing.T, dir string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && unescapeMountPath(f[4]) == dir {
			return true
		}
	}
	return false
}

// TestStoppedDaemonReleasesNetns (issue 12, item 11): a daemon that ran a
// container, removed it and stopped leaves nothing mounted at
// <exec-root>/netns.
func TestStoppedDaemonReleasesNetns(t *testing.T) {
	requireEnv(t)
	d := startTestDaemon(t, env.target, daemonOpts{mirror: true})
	ensureImage(t, d.api(), "busybox:latest")
	c := cliFor(t, "docker", d)
	c.ok("run", "--rm", "busybox", "true")
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	if dir := filepath.Join(d.execRoot, "netns"); mountedAt(t, dir) {
		t.Errorf("%s is still mounted after the daemon stopped with no container", dir)
	}
}

// TestCorruptContainerRecord (issue 12, item 11): a container whose record
// (config.v2.json) is unreadable, with no copy to rebuild it from, is reported, in the daemon's log and in
// info's Warnings, and `rm` removes it: a stopped one at once, a running
// one only with -f, which kills its process. dockerd logs it once and never
// shows or removes it.
func TestCorruptContainerRecord(t *testing.T) {
	requireEnv(t)
	onlyBerth(t, "dockerd 20.10 skips an unreadable container record with a log line; rm says No such container")
	d := startTestDaemon(t, "berth", daemonOpts{mirror: true})
	a := d.api()
	ensureImage(t, a, "busybox:latest")
	c := cliFor(t, "docker", d)
	runID := strings.TrimSpace(c.ok("run", "-d", "busybox", "sleep", "300").Stdout)
	exID := strings.TrimSpace(c.ok("run", "-d", "busybox", "true").Stdout)
	waitExited(t, a, exID, time.Minute)
	pid := inspectCtr(t, a, runID).State.Pid
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{runID, exID} {
		if err := os.WriteFile(filepath.Join(d.dataRoot, "containers", id, "config.v2.json"), []byte(`{"ID": "trunc`), 0o600); err != nil {
			t.Fatal(err)
		}
		// Without the copy of the record that start leaves in the state
		// directory, there is nothing to rebuild it from (the rebuilt
		// case is TestDamagedContainerRecord's).
		if err := os.Remove(filepath.Join(d.execRoot, "c", id[:16], "config.v2.json")); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	d2 := d.restartT(t, daemonOpts{mirror: true})
	t.Cleanup(func() {
		c2 := cliFor(t, "docker", d2)
		c2.run("rm", "-f", runID)
	})
	c = cliFor(t, "docker", d2)
	if ps := c.ok("ps", "-a", "-q", "--no-trunc").Stdout; strings.Contains(ps, runID) || strings.Contains(ps, exID) {
		t.Errorf("ps -a lists a container whose record is unreadable:\n%s", ps)
	}
	warnings := c.ok("info", "--format", "{{json .Warnings}}").Stdout
	log := d2.logTail(300)
	for _, id := range []string{runID, exID} {
		if !strings.Contains(warnings, "container "+id+" has an unreadable record") {
			t.Errorf("info Warnings do not name %s: %s", id[:12], warnings)
		}
		if !strings.Contains(log, id) || !strings.Contains(log, "unreadable") {
			t.Errorf("the daemon's log does not name %s as unreadable", id[:12])
		}
	}

	// The stopped one: rm removes its record and its writable layer.
	// (berth's snapshotter keeps each snapshot in snapshots/snapshots/<n>.)
	snaps := func() int {
		e, _ := os.ReadDir(filepath.Join(d2.dataRoot, "snapshots", "snapshots"))
		return len(e)
	}
	before := snaps()
	c.ok("rm", exID[:12])
	if _, err := os.Stat(filepath.Join(d2.dataRoot, "containers", exID)); !os.IsNotExist(err) {
		t.Errorf("after rm, the record's directory: %v, want it gone", err)
	}
	if after := snaps(); after != before-1 {
		t.Errorf("after rm, %d snapshot directories, want %d (its writable layer gone)", after, before-1)
	}
	// The running one: not without -f; with -f its process goes too.
	c.fail([]string{"rm", runID}, "unreadable")
	if !procAlive(pid) {
		t.Fatalf("the container's process %d died on a refused rm", pid)
	}
	c.ok("rm", "-f", runID)
	if !poll(30*time.Second, func() bool { return !procAlive(pid) }) {
		t.Errorf("rm -f left the container's process %d running", pid)
	}
	if _, err := os.Stat(filepath.Join(d2.dataRoot, "containers", runID)); !os.IsNotExist(err) {
		t.Errorf("after rm -f, the record's directory: %v, want it gone", err)
	}
	if mountedAt(t, filepath.Join(d2.execRoot, "c", runID[:16], "rootfs")) {
		t.Errorf("after rm -f, the container's root filesystem is still mounted")
	}
	if w := c.ok("info", "--format", "{{json .Warnings}}").Stdout; strings.Contains(w, "unreadable record") {
		t.Errorf("info still warns after both were removed: %s", w)
	}
	c.fail([]string{"rm", runID}, "No such container")
}

// TestProcInterruptsMasked (issue 12, item 11): /proc/interrupts reads
// empty in a container, as current Docker masks it (GHSA-6fw5-f8r9-fgfm);
// --privileged sees the host's.
func TestProcInterruptsMasked(t *testing.T) {
	requireEnv(t)
	onlyBerth(t, "dockerd 20.10 predates the advisory; current Docker masks it as berth does")
	busybox(t)
	eachCLI(t, func(t *testing.T, c *CLI) {
		r := c.ok("run", "--rm", "busybox", "sh", "-c", "wc -c < /proc/interrupts")
		if strings.TrimSpace(r.Stdout) != "0" {
			t.Errorf("/proc/interrupts in a container: %s bytes, want 0", strings.TrimSpace(r.Stdout))
		}
		r = c.ok("run", "--rm", "--privileged", "busybox", "sh", "-c", "wc -c < /proc/interrupts")
		if strings.TrimSpace(r.Stdout) == "0" {
			t.Errorf("/proc/interrupts in a privileged container is empty: masking must not apply there")
		}
	})
}
