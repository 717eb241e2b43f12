package e2e

import (
	"crypto/sha256"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestProcSelfExeNotWritable (issue 12, "keep passing"; the CVE-2019-5736
// class): a container execs a file whose interpreter is /proc/self/exe, so
// the runtime itself runs as the container's process, while another of its
// processes tries to open every process's /proc/PID/exe for writing. No
// open succeeds and the host's runc is unchanged.
func TestProcSelfExeNotWritable(t *testing.T) {
	busybox(t)
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("no runc on PATH")
	}
	sum := func() [32]byte {
		b, err := os.ReadFile(runc)
		if err != nil {
			t.Fatal(err)
		}
		return sha256.Sum256(b)
	}
	before := sum()
	name := ctrName(t, "selfexe")
	c := cli(t, cliNames[0])
	prep := `printf '#!/proc/self/exe\n' > /evil && chmod +x /evil
while :; do
  for p in /proc/[0-9]*; do
    [ "$p" = /proc/$$ ] && continue
    if (exec 3>>"$p/exe") 2>/dev/null; then echo "OPENED $p $(readlink $p/exe)"; fi
  done
done`
	c.ok("run", "-d", "--name", name, "busybox", "sh", "-c", prep)
	for range 30 {
		c.run("exec", name, "/evil")
	}
	logs := c.ok("logs", name)
	if strings.Contains(logs.Stdout+logs.Stderr, "OPENED") {
		t.Errorf("a process's exe opened for writing inside the container:\n%s", logs.Stdout+logs.Stderr)
	}
	c.ok("rm", "-f", name)
	if sum() != before {
		t.Fatalf("%s changed while a container wrote to /proc/PID/exe", runc)
	}
}
