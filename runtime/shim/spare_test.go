package shim

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// waitSpare waits until l has a spare booted and returns its PID.
func waitSpare(t *testing.T, l *Launcher) int {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		l.mu.Lock()
		sp, filled := l.spare, l.filled
		l.mu.Unlock()
		if sp != nil {
			return sp.cmd.Process.Pid
		}
		select {
		case <-filled:
		case <-deadline:
			t.Fatal("no spare shim booted")
		}
	}
}

// gone waits until pid has exited (or is a zombie).
func gone(t *testing.T, pid int, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := procStartTime(pid); err != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s (pid %d) still running", what, pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A container's shim is the spare booted ahead of it, and runs it like a
// freshly spawned one; another spare replaces it; closing the launcher
// ends the spare.
func TestLauncherAdoptsSpare(t *testing.T) {
	shimBin := buildShim(t)
	l := NewLauncher(shimBin)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for round := 0; round < 2; round++ {
		sparePid := waitSpare(t, l)
		dir := bundle(t, []string{"sh", "-c", "echo out; exit 4"}, false)
		id := "sparetest-" + filepath.Base(dir)
		c, err := l.Spawn(ctx, Options{
			ID: id, Bundle: dir, StateDir: filepath.Join(dir, "state"), Runtime: "runc",
			RuntimeRoot: filepath.Join(dir, "runc"), LogPath: filepath.Join(dir, "ctr-json.log"), LogMaxFiles: 1,
		})
		if err != nil {
			t.Fatal(err)
		}
		if pid := liveShim(c.StateDir, id); pid != sparePid {
			t.Fatalf("round %d: container's shim is pid %d, not the spare %d", round, pid, sparePid)
		}
		if cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(sparePid) + "/cmdline"); !strings.Contains(string(cmdline), " --id "+id+" --state-dir "+c.StateDir) {
			t.Errorf("adopted shim's command line %q does not name its container", cmdline)
		}
		if cwd, _ := os.Readlink("/proc/" + strconv.Itoa(sparePid) + "/cwd"); cwd != c.StateDir {
			t.Errorf("adopted shim's working directory %q, want the state dir %q", cwd, c.StateDir)
		}
		a, err := c.Attach(ctx, false, true, true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		var out string
		for {
			_, data, err := a.ReadFrame(nil)
			if err != nil {
				break
			}
			out += string(data)
		}
		st, err := c.Wait(ctx)
		if err != nil || st.ExitCode != 4 || out != "out\n" {
			t.Fatalf("round %d: wait %+v %v, output %q", round, st, err, out)
		}
		l.Refill()
		if err := WaitGone(c.StateDir, id, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		gone(t, sparePid, "the container's shim after its exit")
	}
	last := waitSpare(t, l)
	l.Close()
	gone(t, last, "the spare after Close")
	// After Close, shims are spawned afresh.
	dir := bundle(t, []string{"true"}, false)
	c, err := l.Spawn(ctx, Options{ID: "sparetest-closed", Bundle: dir, StateDir: filepath.Join(dir, "state"), Runtime: "runc", RuntimeRoot: filepath.Join(dir, "runc"), LogMaxFiles: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := c.Wait(ctx); err != nil || st.ExitCode != 0 {
		t.Fatalf("fresh shim after Close: %+v %v", st, err)
	}
}

// A spare whose berthd is gone (its stdin closes) exits without a trace.
func TestSpareExitsWithoutBerthd(t *testing.T) {
	sp, err := startSpare(buildShim(t))
	if err != nil {
		t.Fatal(err)
	}
	sp.in.Close()
	gone(t, sp.cmd.Process.Pid, "the orphaned spare")
}

// The PID file names the shim by PID and start time: a dead shim, or its
// PID reused by another process, is not taken for the shim.
func TestLiveShimIdentity(t *testing.T) {
	dir := t.TempDir()
	if err := writeShimPid(dir, os.Getpid()); err != nil {
		t.Fatal(err)
	}
	if got := liveShim(dir, "x"); got != os.Getpid() {
		t.Fatalf("liveShim = %d, want this process %d", got, os.Getpid())
	}
	// Same PID, another start time: a reused PID.
	st, _ := procStartTime(os.Getpid())
	os.WriteFile(filepath.Join(dir, ShimPidName), []byte(strconv.Itoa(os.Getpid())+" "+strconv.FormatUint(st+1, 10)), 0o600)
	if got := liveShim(dir, "x"); got != 0 {
		t.Fatalf("liveShim = %d for a reused PID, want 0", got)
	}
	// A PID file from before start times: only a berth-shim naming the
	// container counts (this test binary is neither).
	os.WriteFile(filepath.Join(dir, ShimPidName), []byte(strconv.Itoa(os.Getpid())), 0o600)
	if got := liveShim(dir, "x"); got != 0 {
		t.Fatalf("liveShim = %d for a bare PID that is not a shim, want 0", got)
	}
}
