package e2e

import (
	"strings"
	"testing"
)

// TestDefaultDevices (issue 12, "keep passing"): a default container sees
// Docker's device set in /dev, may create device nodes (MKNOD, the
// cgroup's "m" rule) but cannot open one the allow-list leaves out: the
// host's first disk (b 8:0) or the kernel log (c 1:11).
func TestDefaultDevices(t *testing.T) {
	busybox(t)
	eachCLI(t, func(t *testing.T, c *CLI) {
		r := c.ok("run", "--rm", "--name", ctrName(t, "devices"), "busybox", "sh", "-c",
			`ls /dev; echo ---
mknod /tmp/disk b 8 0 && echo made-disk
head -c 512 /tmp/disk >/dev/null 2>&1 && echo READ-DISK
mknod /tmp/kmsg c 1 11 && echo made-kmsg
echo x 2>/dev/null > /tmp/kmsg && echo WROTE-KMSG
echo x > /dev/null && echo null-ok`)
		devs, probe, _ := strings.Cut(r.Stdout, "---\n")
		for _, want := range []string{"fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout", "tty", "urandom", "zero"} {
			if !strings.Contains("\n"+devs, "\n"+want+"\n") {
				t.Errorf("%s: /dev lacks %s:\n%s", c.name, want, devs)
			}
		}
		for _, bad := range []string{"sda", "kmsg", "mem", "loop0"} {
			if strings.Contains("\n"+devs, "\n"+bad+"\n") {
				t.Errorf("%s: /dev has %s", c.name, bad)
			}
		}
		for _, want := range []string{"made-disk", "made-kmsg", "null-ok"} {
			if !strings.Contains(probe, want) {
				t.Errorf("%s: probe lacks %q:\n%s", c.name, want, probe)
			}
		}
		for _, bad := range []string{"READ-DISK", "WROTE-KMSG"} {
			if strings.Contains(probe, bad) {
				t.Errorf("%s: a container could %s:\n%s", c.name, bad, probe)
			}
		}
	})
}
