package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestDaemonThreadsStayHome: work the daemon does in other namespaces (cp
// into a stopped and a running container builds a private mount
// namespace; every container start makes network namespaces) never leaves
// one of the daemon's threads behind in them. A thread parked in a
// namespace keeps it, and its mounts, alive.
func TestDaemonThreadsStayHome(t *testing.T) {
	busybox(t)
	a := env.d.api()
	c := cli(t, "docker")
	dir := t.TempDir()
	writeFile(t, dir, "f", []byte("x\n"))
	stopped := ctrName(t, "home-stopped")
	c.ok("create", "--name", stopped, "busybox", "true")
	for i := 0; i < 4; i++ { // each cp may land on any of the daemon's threads
		c.ok("cp", filepath.Join(dir, "f"), stopped+":/f")
		c.ok("cp", stopped+":/f", filepath.Join(dir, "back"))
	}
	running := ctrName(t, "home-running")
	c.ok("run", "-d", "--name", running, "busybox", "sleep", "300")
	waitRunning(t, a, running)
	c.ok("cp", filepath.Join(dir, "f"), running+":/f")
	c.ok("cp", running+":/f", filepath.Join(dir, "back2"))
	c.ok("rm", "-f", stopped, running)

	pid := env.d.pid()
	for _, ns := range []string{"mnt", "net"} {
		want, err := os.Readlink("/proc/self/ns/" + ns)
		if err != nil {
			t.Fatal(err)
		}
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range tasks {
			got, err := os.Readlink(fmt.Sprintf("/proc/%d/task/%s/ns/%s", pid, task.Name(), ns))
			if err != nil {
				continue // the thread just ended
			}
			if got != want {
				t.Errorf("%s thread %s is in %s, not the host's %s", env.target, task.Name(), got, want)
			}
		}
	}
}
