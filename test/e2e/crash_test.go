package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Crash consistency (issue 13): kill -9 of berthd or of a shim, at a
// chosen moment, loses nothing and leaves every container in a state that
// ps reports truthfully and every command can act on.

// netAddrs are a container's addresses per network (inspect).
type netAddrs map[string]struct{ IP, MAC string }

func ctrAddrs(t *testing.T, a *apiClient, ref string) netAddrs {
	t.Helper()
	var c struct {
		NetworkSettings struct {
			Networks map[string]struct {
				IPAddress  string
				MacAddress string
			}
		}
	}
	a.call(t, "GET", "/containers/"+ref+"/json", nil, nil).wantStatus(t, 200).decode(t, &c)
	out := netAddrs{}
	for n, ep := range c.NetworkSettings.Networks {
		out[n] = struct{ IP, MAC string }{ep.IPAddress, ep.MacAddress}
	}
	return out
}

// TestCrashDuringStartKeepsWritableLayer (issue 13 item 1): a start cut
// short by a crash, after the root filesystem was mounted and before the
// container ran, must not cost the container its writable layer: the next
// start runs it with its files.
func TestCrashDuringStartKeepsWritableLayer(t *testing.T) {
	requireEnv(t)
	onlyBerth(t, "kill -9 of the daemon in the middle of a start, with berth's runtime gate; dockerd without live-restore kills containers at restart")
	g := newRuncGate(t)
	b := startTestDaemon(t, "berth", daemonOpts{mirror: true, args: g.runtimeArgs()})
	a := b.api()
	ensureImage(t, a, "busybox:latest")
	c := cliFor(t, "docker", b)
	const script = `if [ -e /important ]; then cat /important; exit 0; fi; echo precious > /important; mkdir -p /data; echo more > /data/f`
	c.ok("run", "--name", "dl", "busybox", "sh", "-c", script)
	id := inspectCtr(t, a, "dl").ID

	g.hold(t, "before", "run")
	started := apiBackground(a, "POST", "/containers/dl/start", nil)
	g.waitHeld(t, "before", "run", 30*time.Second)
	t.Logf("kill -9 berthd while the start waits for runc run (rootfs mounted)")
	b.kill9()
	// The shim goes on without berthd: the container runs (it cats the
	// file) and exits while the daemon is down.
	g.release("before", "run")
	<-started

	b2 := restartAfterCrash(t, b, daemonOpts{mirror: true, args: g.runtimeArgs()})
	a, c = b2.api(), cliFor(t, "docker", b2)
	// The run the crash cut short went on without berthd: the restarted
	// one finds it running (and adopts it) or exited; either way it ends.
	if ci := waitCtr(t, a, "dl", "exited", 30*time.Second, func(c ctrJSON) bool { return !c.State.Running }); ci.State.Status != "exited" || ci.State.ExitCode != 0 {
		t.Errorf("after the restart: State %+v, want exited 0", ci.State)
	}
	c.ok("start", "-a", "dl").wantOut(t, "docker", "precious")
	c.ok("start", "-a", "dl").wantOut(t, "docker", "precious")
	r := a.call(t, "GET", "/containers/dl/archive?path=/data/f", nil, nil)
	if r.Status != 200 || !strings.Contains(string(r.Body), "more\n") {
		t.Errorf("GET archive /data/f after the crash: %s", r)
	}
	c.ok("rm", "dl")
	var left []string
	poll(10*time.Second, func() bool {
		left = append(containerLeftovers(b, map[string]bool{id: true}), containerLeftovers(b2, map[string]bool{id: true})...)
		return len(left) == 0
	})
	for _, l := range left {
		t.Errorf("left after rm: %s", l)
	}
}

// TestCrashDuringStartAdoptsRunningContainer (issue 13 item 2): berthd
// killed after runc started the container and before the shim's answer
// came back: the container runs. The restarted berthd adopts it (ps says
// Up, its process is the one running, exec and stop work), keeps its
// address, and never hands its IP or MAC to another container.
func TestCrashDuringStartAdoptsRunningContainer(t *testing.T) {
	requireEnv(t)
	onlyBerth(t, "kill -9 of the daemon in the middle of a start, with berth's runtime gate")
	g := newRuncGate(t)
	b := startTestDaemon(t, "berth", daemonOpts{mirror: true, args: g.runtimeArgs()})
	a := b.api()
	ensureImage(t, a, "busybox:latest")
	c := cliFor(t, "docker", b)
	c.ok("create", "--name", "adopt", "busybox", "sh", "-c", "echo written-before > /before; exec sleep 1000")
	id := inspectCtr(t, a, "adopt").ID

	g.hold(t, "after", "run")
	started := apiBackground(a, "POST", "/containers/adopt/start", nil)
	g.waitHeld(t, "after", "run", 30*time.Second)
	t.Logf("kill -9 berthd after runc run returned, before the start was recorded")
	b.kill9()
	g.release("after", "run")
	<-started

	b2 := restartAfterCrash(t, b, daemonOpts{mirror: true, args: g.runtimeArgs()})
	a, c = b2.api(), cliFor(t, "docker", b2)
	ci := inspectCtr(t, a, "adopt")
	if !ci.State.Running || ci.State.Pid == 0 || !procAlive(ci.State.Pid) {
		t.Fatalf("after the restart: State %+v, want running with a live process", ci.State)
	}
	if ps := c.ok("ps", "--filter", "name=adopt", "--format", "{{.Status}}").Stdout; !strings.HasPrefix(ps, "Up ") {
		t.Errorf("ps says %q, want Up", ps)
	}
	c.ok("exec", "adopt", "cat", "/before").wantOut(t, "docker", "written-before")
	mine := ctrAddrs(t, a, "adopt")["bridge"]
	if mine.IP == "" || mine.MAC == "" {
		t.Errorf("the adopted container has no address on the bridge: %+v", mine)
	}
	// New containers get other addresses.
	for i := range 3 {
		name := fmt.Sprintf("other%d", i)
		c.ok("run", "-d", "--name", name, "busybox", "sleep", "1000")
		if o := ctrAddrs(t, a, name)["bridge"]; o.IP == mine.IP || o.MAC == mine.MAC {
			t.Errorf("%s got %+v, the adopted container holds %+v", name, o, mine)
		}
	}
	pid := ci.State.Pid
	stopped := time.Now()
	c.ok("stop", "-t", "1", "adopt")
	if d := time.Since(stopped); d > 15*time.Second {
		t.Errorf("stop took %s", d)
	}
	if ci := inspectCtr(t, a, "adopt"); ci.State.Running || ci.State.ExitCode != 137 {
		t.Errorf("after stop: State %+v, want exited 137", ci.State)
	}
	if procAlive(pid) {
		t.Errorf("container process %d still alive after stop", pid)
	}
	c.ok("start", "adopt")
	c.ok("rm", "-f", "adopt", "other0", "other1", "other2")
	var left []string
	poll(10*time.Second, func() bool {
		left = containerLeftovers(b2, map[string]bool{id: true})
		return len(left) == 0
	})
	for _, l := range left {
		t.Errorf("left after rm: %s", l)
	}
}

// TestCrashDuringCommitThaws (issue 13 item 3): berthd killed while commit
// has the container paused: the restarted berthd undoes the pause it
// made (the container runs, exec works, stop returns at once), and
// leaves a pause the user asked for in place.
func TestCrashDuringCommitThaws(t *testing.T) {
	requireEnv(t)
	onlyBerth(t, "kill -9 of the daemon in the middle of a commit, with berth's runtime gate")
	g := newRuncGate(t)
	b := startTestDaemon(t, "berth", daemonOpts{mirror: true, args: g.runtimeArgs()})
	a := b.api()
	ensureImage(t, a, "busybox:latest")
	c := cliFor(t, "docker", b)
	c.ok("run", "-d", "--name", "frozen", "busybox", "sleep", "1000")
	c.ok("run", "-d", "--name", "userpaused", "busybox", "sleep", "1000")
	c.ok("pause", "userpaused")
	frozen := waitRunning(t, a, "frozen")

	g.hold(t, "after", "pause")
	committed := apiBackground(a, "POST", "/commit?container=frozen&repo=crashcommit", nil)
	g.waitHeld(t, "after", "pause", 30*time.Second)
	if s := freezerState(frozen.ID); s != "" && s != "FROZEN" {
		t.Fatalf("freezer state during the commit: %s", s)
	}
	t.Logf("kill -9 berthd while commit holds the container paused")
	b.kill9()
	g.release("after", "pause")
	<-committed

	b2 := restartAfterCrash(t, b, daemonOpts{mirror: true, args: g.runtimeArgs()})
	a, c = b2.api(), cliFor(t, "docker", b2)
	ci := inspectCtr(t, a, "frozen")
	if !ci.State.Running || ci.State.Paused || ci.State.Status != "running" {
		t.Errorf("after the restart: State %+v, want running, not paused", ci.State)
	}
	if s := freezerState(frozen.ID); s != "" && s != "THAWED" {
		t.Errorf("freezer state after the restart: %s, want THAWED", s)
	}
	c.ok("exec", "frozen", "echo", "alive").wantOut(t, "docker", "alive")
	if ci := inspectCtr(t, a, "userpaused"); !ci.State.Paused {
		t.Errorf("the container the user paused: State %+v, want still paused", ci.State)
	}
	c.ok("unpause", "userpaused")
	c.ok("exec", "userpaused", "echo", "alive").wantOut(t, "docker", "alive")
	began := time.Now()
	c.ok("stop", "-t", "1", "frozen", "userpaused")
	if d := time.Since(began); d > 15*time.Second {
		t.Errorf("stop took %s", d)
	}
	c.ok("rm", "-f", "frozen", "userpaused")
	c.run("rmi", "crashcommit")
}

// TestShimKilled (issue 13 item 4): kill -9 of the process supervising a
// container (berth-shim; containerd-shim under dockerd). As dockerd, the
// daemon notices, kills the container's processes, records exit 137 and
// reaps everything; the container can be started again and removed.
func TestShimKilled(t *testing.T) {
	d := requireEnv(t)
	busybox(t)
	a := d.api()
	c := cli(t, "docker")
	name := ctrName(t, "shimkill")
	c.ok("run", "-d", "--name", name, "busybox", "sh", "-c", "trap '' TERM; sleep 1000 & wait")
	ci := waitRunning(t, a, name)
	pid := ci.State.Pid
	shimPid := ppid(pid)
	if shimPid <= 1 {
		t.Fatalf("container process %d has no parent shim (ppid %d)", pid, shimPid)
	}
	t.Logf("kill -9 the shim %d of container process %d", shimPid, pid)
	if err := killPid(shimPid); err != nil {
		t.Fatal(err)
	}
	ci = waitCtr(t, a, name, "exited", 30*time.Second, func(c ctrJSON) bool { return !c.State.Running })
	if ci.State.ExitCode != 137 || ci.State.Status != "exited" {
		t.Errorf("after the shim's death: State %+v, want exited with 137", ci.State)
	}
	if !poll(20*time.Second, func() bool { return !procAlive(pid) }) {
		t.Errorf("container process %d still alive after its shim died", pid)
	}
	c.ok("start", name)
	ci = waitRunning(t, a, name)
	if ci.State.Pid == pid {
		t.Errorf("restarted container has the old pid %d", pid)
	}
	newPid := ci.State.Pid
	began := time.Now()
	c.ok("rm", "-f", name)
	if el := time.Since(began); el > 20*time.Second {
		t.Errorf("rm -f took %s", el)
	}
	if !poll(20*time.Second, func() bool { return !procAlive(newPid) }) {
		t.Errorf("container process %d still alive after rm -f", newPid)
	}
	if procAlive(pid) {
		t.Errorf("first container process %d is left (zombie or alive)", pid)
	}
}

// TestCrashDuringRemoveFinishes (issue 13 item 5): berthd killed while it
// removes a container: the restarted berthd finishes the removal (the
// container, its writable layer and its anonymous volume are gone, nothing
// is left), instead of listing a container with no writable layer. The
// gate: an export of the container holds its filesystem, so the removal,
// its intent saved (inspect says "removing"), waits for it; berthd is
// killed there.
func TestCrashDuringRemoveFinishes(t *testing.T) {
	requireEnv(t)
	onlyBerth(t, "kill -9 of the daemon in the middle of a remove; inspect answers during berthd's removal, which waits for an export")
	b := startTestDaemon(t, "berth", daemonOpts{mirror: true})
	a := b.api()
	ensureImage(t, a, "busybox:latest")
	c := cliFor(t, "docker", b)
	snapshots := func(d *daemon) int {
		e, _ := os.ReadDir(filepath.Join(d.dataRoot, "snapshots", "snapshots"))
		return len(e)
	}
	base := snapshots(b)
	// More than the socket buffers hold: the export blocks on its
	// reader, which reads nothing.
	c.ok("run", "--name", "rmcrash", "-v", "/anon", "busybox", "sh", "-c", "head -c 4000000 /dev/urandom > /big")
	ci := inspectCtr(t, a, "rmcrash")
	id, vol := ci.ID, ""
	for _, m := range ci.Mounts {
		if m.Destination == "/anon" {
			vol = m.Name
		}
	}
	if vol == "" {
		t.Fatalf("no anonymous volume at /anon: %+v", ci.Mounts)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	export, err := a.stream(ctx, "GET", "/containers/rmcrash/export", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer export.Body.Close()
	removed := apiBackground(a, "DELETE", "/containers/rmcrash?v=1", nil)
	waitCtr(t, a, "rmcrash", "being removed", 30*time.Second, func(c ctrJSON) bool { return c.State.Status == "removing" })
	select {
	case r := <-removed:
		t.Fatalf("the removal ended while an export held the container: %v", r)
	default:
	}
	b.kill9()
	<-removed
	b2 := restartAfterCrash(t, b, daemonOpts{mirror: true})
	a, c = b2.api(), cliFor(t, "docker", b2)
	if volumeExists(t, a, vol) {
		t.Errorf("its anonymous volume %s is still there", vol)
		defer c.run("volume", "rm", vol)
	}
	if ctrExists(t, a, id) {
		t.Errorf("container %s still listed after the restart: %+v", id[:12], inspectCtr(t, a, id).State)
		c.run("rm", "-f", "-v", id)
	}
	if n := snapshots(b2); n != base {
		t.Errorf("%d snapshot directories after the restart, %d before the container: its writable layer is left", n, base)
	}
	var left []string
	poll(10*time.Second, func() bool {
		left = containerLeftovers(b2, map[string]bool{id: true})
		return len(left) == 0
	})
	for _, l := range left {
		t.Errorf("left after the removal was finished: %s", l)
	}
}

// TestCrashDuringCpLeavesNoTempDir (issue 13 item 10): berthd killed while
// a cp into a stopped container is under way (its view of the container
// is assembled in a directory of the exec root): the restarted berthd
// leaves no such directory behind, and the container works.
func TestCrashDuringCpLeavesNoTempDir(t *testing.T) {
	requireEnv(t)
	onlyBerth(t, "kill -9 of the daemon in the middle of a cp; berth's exec root")
	b := startTestDaemon(t, "berth", daemonOpts{mirror: true})
	a := b.api()
	ensureImage(t, a, "busybox:latest")
	c := cliFor(t, "docker", b)
	c.ok("create", "--name", "cpdst", "busybox", "cat", "/etc/hostname-copy")
	c.ok("run", "--name", "cpdst2", "busybox", "true")
	views := filepath.Join(b.execRoot, "fs")
	for i, name := range []string{"cpdst", "cpdst2"} {
		// The upload never ends: the daemon holds the view meanwhile.
		pr, pw := io.Pipe()
		defer pw.Close()
		go func() {
			req, _ := http.NewRequest("PUT", "http://api.moby.localhost/containers/"+name+"/archive?path=/", pr)
			req.Header.Set("Content-Type", "application/x-tar")
			if resp, err := a.hc.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
		if _, err := pw.Write(tarOf(t, "first", "1")[:512]); err != nil {
			t.Fatal(err)
		}
		if !poll(20*time.Second, func() bool {
			ents, _ := os.ReadDir(views)
			n := 0
			for _, e := range ents {
				if e.IsDir() {
					n++
				}
			}
			return n > i
		}) {
			t.Fatalf("cp into %s: no view under %s", name, views)
		}
	}
	ents, _ := os.ReadDir(views)
	t.Logf("kill -9 berthd with views %v", dirNames(ents))
	b.kill9()
	b2 := restartAfterCrash(t, b, daemonOpts{mirror: true})
	c = cliFor(t, "docker", b2)
	if ents, _ := os.ReadDir(views); len(ents) > 0 {
		t.Errorf("left in %s after the restart: %v", views, dirNames(ents))
	}
	c.ok("cp", "-", "cpdst:/etc/")
	c.ok("start", "cpdst2")
	c.ok("rm", "-f", "cpdst", "cpdst2")
}

func dirNames(ents []os.DirEntry) []string {
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}
