package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLogLinesDroppedOnFullDiskAreReported (issue 13 item 10): when the
// disk holding a container's log fills up, the lines that cannot be
// written are counted, and once there is room again `docker logs` shows
// how many were lost (the shim's own log says when it started and
// stopped dropping). dockerd drops them silently.
func TestLogLinesDroppedOnFullDiskAreReported(t *testing.T) {
	requireEnv(t)
	onlyBerth(t, "dockerd's json-file logger drops lines on a full disk without a word in the container's log")
	root := t.TempDir()
	if err := syscall.Mount("tmpfs", root, "tmpfs", 0, "size=48m,mode=0710"); err != nil {
		t.Skipf("mount a tmpfs for the data root: %v", err)
	}
	t.Cleanup(func() { _ = unmountUnder(root); _ = syscall.Unmount(root, syscall.MNT_DETACH) })
	var b *daemon
	// After the daemon stopped (cleanups run last first): what a failed
	// run left alive.
	t.Cleanup(func() {
		if b != nil {
			reapContainers(t, b)
		}
	})
	b = startTestDaemon(t, "berth", daemonOpts{mirror: true, dataRoot: filepath.Join(root, "data")})
	a := b.api()
	ensureImage(t, a, "busybox:latest")
	c := cliFor(t, "docker", b)
	c.ok("run", "-d", "--name", "chatty", "busybox", "sh", "-c", "i=0; while :; do echo line-$i; i=$((i+1)); sleep 0.01; done")
	id := inspectCtr(t, a, "chatty").ID
	waitLog(t, a, "chatty", "line-10\n")

	// Fill the disk: the log can take no more.
	filler := filepath.Join(root, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	for {
		if _, err := f.Write(chunk[:512]); err != nil {
			break
		}
	}
	f.Close()
	shimLog := filepath.Join(b.execRoot, "c", id[:16], "shim.log")
	if !poll(30*time.Second, func() bool {
		s, _ := os.ReadFile(shimLog)
		return strings.Contains(string(s), "dropping entries")
	}) {
		t.Fatalf("the shim never said it drops log entries on the full disk")
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitLog(t, a, "chatty", "log lines dropped: no space left on device")
	r := c.ok("logs", "chatty")
	if !strings.Contains(r.Stderr, "log lines dropped: no space left on device") {
		t.Errorf("docker logs: the notice is not on stderr:\n%s", clip(r.Stderr))
	}
	// After the notice the log goes on.
	ls := lines(r.Stdout)
	var last int
	fmt.Sscanf(ls[len(ls)-1], "line-%d", &last)
	waitLog(t, a, "chatty", fmt.Sprintf("line-%d\n", last+10))
	if s, _ := os.ReadFile(shimLog); !strings.Contains(string(s), "writing again after") {
		t.Errorf("shim.log does not say when the log could be written again:\n%s", s)
	}
	c.ok("rm", "-f", "chatty")
}
