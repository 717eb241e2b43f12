package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A per-container shim keeps containers alive across a berthd crash
// (issue 3, item 6).

func procAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// A zombie is dead: "pid (comm) Z ...".
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// TestDaemonKillRestart: kill -9 berthd with running containers, let two
// of them exit while it is down, restart it on the same roots: the
// survivor runs on with the same PID and ps, logs -f, exec, stop and rm
// work; the one that exited shows its true exit code; the restart=always
// one is started again; nothing is left after rm.
func TestDaemonKillRestart(t *testing.T) {
	requireEnv(t)
	onlyBerth(t, "dockerd's equivalent (live-restore) is off by default; the shim promise is berth's (issue 3, item 6)")
	b := startTestDaemon(t, "berth", daemonOpts{mirror: true})
	a := b.api()
	ensureImage(t, a, "busybox:latest")
	c := cliFor(t, "docker", b)
	gate := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		return strings.TrimSpace(c.ok(append([]string{"run", "-d"}, args...)...).Stdout)
	}
	survivor := run("--name", "survivor", "busybox", "sh", "-c", "i=0; while :; do echo line-$i; i=$((i+1)); sleep 0.05; done")
	exiter := run("--name", "exiter", "-v", gate+":/gate", "busybox", "sh", "-c", "echo waiting; while [ ! -e /gate/go ]; do sleep 0.05; done; echo bye; exit 7")
	always := run("--name", "always", "--restart", "always", "-v", gate+":/gate", "busybox", "sh", "-c",
		"if [ -e /gate/once ]; then echo second-life; exec sleep 300; fi; while [ ! -e /gate/go ]; do sleep 0.05; done; touch /gate/once; exit 0")
	ids := []string{survivor, exiter, always}
	pids := map[string]int{}
	for _, id := range ids {
		pids[id] = waitRunning(t, a, id).State.Pid
	}
	waitLog(t, a, survivor, "line-5\n")
	waitLog(t, a, exiter, "waiting")
	t.Cleanup(func() {
		for _, id := range ids {
			if procAlive(pids[id]) {
				// Last resort when the test failed half-way: the shim
				// outlived the daemons.
				t.Errorf("container process %d (%s) still alive at the end", pids[id], id[:12])
			}
		}
	})

	t.Logf("kill -9 berthd (pid %d) with 3 running containers", b.pid())
	b.kill9()
	for _, id := range ids {
		if !procAlive(pids[id]) {
			t.Fatalf("container %s (pid %d) died with berthd", id[:12], pids[id])
		}
	}
	// The survivor keeps logging while the daemon is down (its shim
	// writes the log).
	writeFile(t, gate, "go", nil)
	for _, id := range []string{exiter, always} {
		pid := pids[id]
		if !poll(20*time.Second, func() bool { return !procAlive(pid) }) {
			t.Fatalf("container %s (pid %d) did not exit while berthd was down", id[:12], pid)
		}
	}

	b2 := b.restartT(t, daemonOpts{mirror: true})
	a, c = b2.api(), cliFor(t, "docker", b2)

	ci := inspectCtr(t, a, survivor)
	if !ci.State.Running || ci.State.Pid != pids[survivor] {
		t.Errorf("survivor after the restart: State %+v, want running with the same pid %d", ci.State, pids[survivor])
	}
	ci = inspectCtr(t, a, exiter)
	if ci.State.Status != "exited" || ci.State.ExitCode != 7 || ci.State.Running {
		t.Errorf("the container that exited while berthd was down: State %+v, want exited with its code 7", ci.State)
	}
	waitCtr(t, a, always, "restarted after berthd came back", 30*time.Second, func(c ctrJSON) bool {
		return c.State.Running && c.RestartCount >= 1 && c.State.Pid != pids[always]
	})
	waitLog(t, a, always, "second-life")

	// ps.
	st := map[string]string{}
	for _, l := range lines(c.ok("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Status}}").Stdout) {
		id, s, _ := strings.Cut(l, " ")
		st[id] = s
	}
	if !strings.HasPrefix(st[survivor], "Up ") || !strings.HasPrefix(st[always], "Up ") || !strings.HasPrefix(st[exiter], "Exited (7) ") {
		t.Errorf("ps -a after the restart: %v, want survivor and always Up, exiter Exited (7)", st)
	}

	// logs: contiguous across the downtime, and -f follows.
	all := c.ok("logs", survivor).Stdout
	ls := lines(all)
	for i, l := range ls {
		if l != fmt.Sprintf("line-%d", i) {
			t.Errorf("survivor's log is not contiguous across the restart at line %d: %q", i, l)
			break
		}
	}
	before := len(ls)
	f := c.start("logs", "-f", "--tail", "1", survivor)
	if !f.waitOutput(fmt.Sprintf("line-%d\n", before+20), 20*time.Second) {
		t.Errorf("logs -f after the restart does not follow: %q", clip(f.output()))
	}
	f.kill()

	// exec, stop, rm.
	c.ok("exec", survivor, "echo", "exec-after-restart").wantOut(t, "docker", "exec-after-restart")
	c.ok("stop", "-t", "1", survivor)
	if ci := inspectCtr(t, a, survivor); ci.State.Status != "exited" || ci.State.ExitCode != 137 {
		t.Errorf("stop after the restart: State %+v, want exited 137", ci.State)
	}
	if procAlive(pids[survivor]) {
		t.Errorf("stop after the restart: pid %d still alive", pids[survivor])
	}
	c.ok("rm", "-f", survivor, exiter, always)
	gone := map[string]bool{}
	for _, id := range ids {
		gone[id] = true
		if ctrExists(t, a, id) {
			t.Errorf("%s still exists after rm -f", id[:12])
		}
	}
	var left []string
	poll(10*time.Second, func() bool {
		left = append(containerLeftovers(b, gone), containerLeftovers(b2, gone)...)
		return len(left) == 0
	})
	for _, l := range left {
		t.Errorf("left after rm, following a kill -9 and restart: %s", l)
	}
}

// TestDaemonRestartStoppedAndCreated: containers that were created or
// stopped before a kill -9 keep their state, can be started after the
// restart, and a failed start leaves nothing behind.
func TestDaemonRestartStoppedAndCreated(t *testing.T) {
	requireEnv(t)
	onlyBerth(t, "berth's restart promise (issue 3, item 6)")
	b := startTestDaemon(t, "berth", daemonOpts{mirror: true})
	a := b.api()
	ensureImage(t, a, "busybox:latest")
	c := cliFor(t, "docker", b)
	c.ok("create", "--name", "created", "busybox", "echo", "started-later")
	c.run("run", "--name", "exited3", "busybox", "sh", "-c", "exit 3").wantCode(t, "docker", 3)
	c.run("run", "--name", "failed", "busybox", "nosuchcmd").wantCode(t, "docker", 127)
	ids := map[string]bool{}
	for _, n := range []string{"created", "exited3", "failed"} {
		ids[inspectCtr(t, a, n).ID] = true
	}
	b.kill9()
	b2 := b.restartT(t, daemonOpts{mirror: true})
	a, c = b2.api(), cliFor(t, "docker", b2)
	if ci := inspectCtr(t, a, "created"); ci.State.Status != "created" {
		t.Errorf("created container after the restart: %+v", ci.State)
	}
	if ci := inspectCtr(t, a, "exited3"); ci.State.Status != "exited" || ci.State.ExitCode != 3 {
		t.Errorf("exited container after the restart: %+v", ci.State)
	}
	c.ok("start", "-a", "created").wantOut(t, "docker", "started-later")
	c.run("start", "-a", "exited3").wantCode(t, "docker", 3)
	c.ok("rm", "-f", "created", "exited3", "failed")
	var left []string
	poll(10*time.Second, func() bool {
		left = append(containerLeftovers(b, ids), containerLeftovers(b2, ids)...)
		return len(left) == 0
	})
	for _, l := range left {
		t.Errorf("left after rm: %s", l)
	}
}
