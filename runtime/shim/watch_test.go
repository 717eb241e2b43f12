package shim

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// A removal takes hold of the shim before it clears the state directory:
// the clearing removes the PID file naming the shim, and the wait must
// still wait for the shim's exit then (the CI and crash loop finding: a
// state directory left 'not empty' because the retry's wait, looked up
// after the clearing, found no shim and returned at once).
func TestWatchReleaseOutlivesPidFile(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	if err := writeShimPid(dir, cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	r := &Runtime{}
	wait := r.WatchRelease("x", dir)
	if wait == nil {
		t.Fatal("no hold taken of a live shim")
	}
	if err := os.Remove(filepath.Join(dir, ShimPidName)); err != nil {
		t.Fatal(err)
	}
	// Looked up now, nothing is found: what the removal did before.
	if w := r.WatchRelease("x", dir); w != nil {
		t.Fatal("a hold taken with no PID file")
	}
	done := make(chan error, 1)
	go func() { done <- wait(context.Background()) }()
	select {
	case err := <-done:
		t.Fatalf("the wait returned while the shim lives: %v", err)
	case <-time.After(300 * time.Millisecond):
		// Still waiting, as it must: the process lives.
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("wait after the shim's exit: %v", err)
	}
}

// A wait given a done context lets go of the shim at once.
func TestWatchReleaseCancelled(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	if err := writeShimPid(dir, cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	wait := (&Runtime{}).WatchRelease("x", dir)
	if wait == nil {
		t.Fatal("no hold taken of a live shim")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := wait(ctx); err == nil {
		t.Fatal("a cancelled wait reported the shim gone")
	}
}
