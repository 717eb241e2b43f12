package e2e

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The lifecycle: create, start, stop, kill, restart, pause, rename, wait,
// rm, prune (issue 3, item 1), through both CLIs and the API.

// A busybox command that ignores SIGTERM: PID 1 of a PID namespace only
// gets the signals it handles, and `sleep` handles none.
var ignoresTERM = []string{"busybox", "sleep", "300"}

// trapping returns a shell that exits with code when it gets sig.
func trapping(sig string, code int) []string {
	return []string{"busybox", "sh", "-c", fmt.Sprintf(`trap "exit %d" %s; echo ready; while :; do sleep 0.1; done`, code, sig)}
}

// TestStopSignalThenKill: stop sends the stop signal, then SIGKILL after
// the timeout; the exit code is the process's (or 137).
func TestStopSignalThenKill(t *testing.T) {
	busybox(t)
	a := env.d.api()
	eachCLI(t, func(t *testing.T, c *CLI) {
		// A process that ignores TERM is killed after -t seconds.
		name := ctrName(t, "stopkill")
		c.ok(append([]string{"run", "-d", "--name", name}, ignoresTERM...)...)
		waitRunning(t, a, name)
		r := c.ok("stop", "-t", "2", name)
		r.wantOut(t, c.name, name)
		if r.Elapsed < 1800*time.Millisecond || r.Elapsed > 8*time.Second {
			t.Errorf("%s stop -t 2 of a container ignoring SIGTERM took %s, want about 2s", c.name, r.Elapsed)
		}
		ci := inspectCtr(t, a, name)
		if ci.State.Status != "exited" || ci.State.ExitCode != 137 || ci.State.Running || ci.State.Pid != 0 {
			t.Errorf("after stop: State %+v, want exited with 137 and Pid 0", ci.State)
		}
		if ci.State.FinishedAt == "" || strings.HasPrefix(ci.State.FinishedAt, "0001-") {
			t.Errorf("after stop: FinishedAt %q", ci.State.FinishedAt)
		}

		// --stop-timeout is the default for stop.
		name = ctrName(t, "stoptimeout")
		c.ok(append([]string{"run", "-d", "--stop-timeout", "1", "--name", name}, ignoresTERM...)...)
		waitRunning(t, a, name)
		r = c.ok("stop", name)
		if r.Elapsed < 800*time.Millisecond || r.Elapsed > 6*time.Second {
			t.Errorf("%s stop of a container with --stop-timeout 1 took %s, want about 1s", c.name, r.Elapsed)
		}
		if ci := inspectCtr(t, a, name); ci.State.ExitCode != 137 {
			t.Errorf("after stop: ExitCode %d, want 137", ci.State.ExitCode)
		}

		// A process that handles TERM exits at once with its own code.
		name = ctrName(t, "stopterm")
		c.ok(append([]string{"run", "-d", "--name", name}, trapping("TERM", 42)...)...)
		waitLog(t, a, name, "ready")
		r = c.ok("stop", name)
		if r.Elapsed > 5*time.Second {
			t.Errorf("%s stop of a container that exits on SIGTERM took %s", c.name, r.Elapsed)
		}
		if ci := inspectCtr(t, a, name); ci.State.ExitCode != 42 {
			t.Errorf("after stop: ExitCode %d, want 42 (the trap's)", ci.State.ExitCode)
		}

		// --stop-signal replaces SIGTERM.
		name = ctrName(t, "stopsig")
		c.ok(append([]string{"run", "-d", "--stop-signal", "SIGUSR1", "--name", name}, trapping("USR1", 43)...)...)
		waitLog(t, a, name, "ready")
		c.ok("stop", "-t", "10", name)
		if ci := inspectCtr(t, a, name); ci.State.ExitCode != 43 {
			t.Errorf("after stop with --stop-signal SIGUSR1: ExitCode %d, want 43 (the USR1 trap's)", ci.State.ExitCode)
		}
		// Stopping a stopped container is fine.
		c.ok("stop", name)
	})
}

// waitLog polls the container's logs until they contain s.
func waitLog(t *testing.T, a *apiClient, ref, s string) {
	t.Helper()
	var last string
	if !poll(30*time.Second, func() bool {
		r := a.call(t, "GET", "/containers/"+ref+"/logs?stdout=1&stderr=1", nil, nil)
		last = string(r.Body)
		return r.Status == 200 && strings.Contains(last, s)
	}) {
		t.Fatalf("container %s: logs never showed %q; last: %q", ref, s, last)
	}
}

// TestKillRestartPause: kill (-s), restart, pause/unpause, rename, wait.
func TestKillRestartPause(t *testing.T) {
	busybox(t)
	a := env.d.api()
	eachCLI(t, func(t *testing.T, c *CLI) {
		var name string
		// rename (dockerd 20.10 with --bridge=none cannot rename a running
		// container after a restart: "sandbox … not found"; so rename first).
		name = ctrName(t, "restart")
		c.ok("run", "-d", "--name", name, "busybox", "sleep", "300")
		before := waitRunning(t, a, name)
		newName := ctrName(t, "renamed")
		c.ok("rename", name, newName)
		if ci := inspectCtr(t, a, newName); ci.ID != before.ID || ci.Name != "/"+newName {
			t.Errorf("after rename: %s is %s %s", newName, ci.ID, ci.Name)
		}
		if ctrExists(t, a, name) {
			t.Errorf("after rename: the old name %s still resolves", name)
		}
		other := ctrName(t, "other")
		c.ok("create", "--name", other, "busybox", "true")
		otherID := inspectCtr(t, a, other).ID
		// Docker: 409 Error when allocating new name: Conflict. The container name "/x" is already in use by container "<id>". ...
		c.fail([]string{"rename", newName, other}, fmt.Sprintf(`Conflict. The container name "/%s" is already in use by container "%s"`, other, otherID))
		name = newName

		// restart: a new process, RestartCount unchanged (a manual restart).
		c.ok("restart", "-t", "0", name).wantOut(t, c.name, name)
		after := waitRunning(t, a, name)
		if after.State.Pid == before.State.Pid || after.State.StartedAt == before.State.StartedAt {
			t.Errorf("restart: Pid %d→%d StartedAt %s→%s, want a new process", before.State.Pid, after.State.Pid, before.State.StartedAt, after.State.StartedAt)
		}
		if after.RestartCount != 0 {
			t.Errorf("restart: RestartCount %d, want 0 (manual restarts do not count)", after.RestartCount)
		}

		// pause/unpause.
		c.ok("pause", name).wantOut(t, c.name, name)
		ci := inspectCtr(t, a, name)
		if ci.State.Status != "paused" || !ci.State.Paused || !ci.State.Running {
			t.Errorf("after pause: Status %q Paused %v Running %v, want paused true true", ci.State.Status, ci.State.Paused, ci.State.Running)
		}
		if st := strings.TrimSpace(c.ok("ps", "--filter", "name=^"+name+"$", "--format", "{{.Status}}|{{.State}}").Stdout); !regexp.MustCompile(`^Up .+ \(Paused\)\|paused$`).MatchString(st) {
			t.Errorf("%s ps of a paused container: %q, want \"Up … (Paused)|paused\"", c.name, st)
		}
		// Docker: 409 Container <id> is already paused
		c.fail([]string{"pause", name}, "Container "+ci.ID+" is already paused")
		// Docker: 409 Container <name> is paused, unpause the container before exec
		c.fail([]string{"exec", name, "true"}, "is paused, unpause the container before exec")
		// Docker: 409 You cannot remove a paused container <id>. Unpause and then stop the container before attempting removal or force remove
		c.fail([]string{"rm", name}, "You cannot remove a paused container "+ci.ID+". Unpause and then stop the container before attempting removal or force remove")
		c.ok("unpause", name).wantOut(t, c.name, name)
		if ci := inspectCtr(t, a, name); ci.State.Status != "running" || ci.State.Paused {
			t.Errorf("after unpause: Status %q Paused %v", ci.State.Status, ci.State.Paused)
		}

		// wait prints the exit code.
		name = ctrName(t, "wait")
		c.ok("run", "-d", "--name", name, "busybox", "sh", "-c", "sleep 1; exit 7")
		r := c.ok("wait", name)
		r.wantOut(t, c.name, "7")
		if r.Elapsed < 500*time.Millisecond {
			t.Errorf("%s wait returned after %s, before the container exited", c.name, r.Elapsed)
		}
		c.ok("wait", name).wantOut(t, c.name, "7") // an exited container answers at once

		// kill -s: the given signal; kill: SIGKILL by default.
		name = ctrName(t, "kills")
		c.ok(append([]string{"run", "-d", "--name", name}, trapping("USR1", 44)...)...)
		waitLog(t, a, name, "ready")
		c.ok("kill", "-s", "USR1", name)
		if ci := waitExited(t, a, name, 10*time.Second); ci.State.ExitCode != 44 {
			t.Errorf("after kill -s USR1: ExitCode %d, want 44", ci.State.ExitCode)
		}
		name = ctrName(t, "kill")
		c.ok(append([]string{"run", "-d", "--name", name}, ignoresTERM...)...)
		waitRunning(t, a, name)
		c.ok("kill", name).wantOut(t, c.name, name)
		ci = waitExited(t, a, name, 10*time.Second)
		if ci.State.ExitCode != 137 {
			t.Errorf("after kill: ExitCode %d, want 137", ci.State.ExitCode)
		}
		// Docker: 409 Cannot kill container: <name>: Container <id> is not running
		c.fail([]string{"kill", name}, "Cannot kill container: "+name+": Container "+ci.ID+" is not running")
	})
}

// TestRmAndPrune: rm of a running container needs -f (409 with Docker's
// wording), rm -f kills it; container prune removes only stopped ones.
func TestRmAndPrune(t *testing.T) {
	busybox(t)
	a := env.d.api()
	eachCLI(t, func(t *testing.T, c *CLI) {
		name := ctrName(t, "rm")
		id := strings.TrimSpace(c.ok("run", "-d", "--name", name, "busybox", "sleep", "300").Stdout)
		waitRunning(t, a, name)
		// Docker: 409 You cannot remove a running container <id>. Stop the container before attempting removal or force remove
		want := "You cannot remove a running container " + id + ". Stop the container before attempting removal or force remove"
		c.fail([]string{"rm", name}, "Error response from daemon: "+want)
		a.call(t, "DELETE", "/containers/"+name, nil, nil).wantError(t, 409, want)
		if !inspectCtr(t, a, name).State.Running {
			t.Fatalf("a refused rm stopped the container")
		}
		c.ok("rm", "-f", name).wantOut(t, c.name, name)
		if ctrExists(t, a, name) {
			t.Errorf("%s still exists after rm -f", name)
		}
		// Docker: 404 No such container: <name>
		c.fail([]string{"rm", name}, "Error response from daemon: No such container: "+name)

		// rm of several, one missing: the others go, exit 1.
		n1, n2 := ctrName(t, "rm1"), ctrName(t, "rm2")
		c.ok("create", "--name", n1, "busybox", "true")
		c.ok("create", "--name", n2, "busybox", "true")
		r := c.run("rm", n1, "e2e-missing-"+uniq(), n2)
		r.wantFailure(t, c.name, "No such container: e2e-missing-")
		if !strings.Contains(r.Stdout, n1) || !strings.Contains(r.Stdout, n2) || ctrExists(t, a, n1) || ctrExists(t, a, n2) {
			t.Errorf("%s rm a missing b: stdout %q; want both existing containers removed", c.name, r.Stdout)
		}

		// prune: stopped containers with the label go, the running one stays.
		label := "e2e.prune=" + uniq()
		exited, created, running := ctrName(t, "pexited"), ctrName(t, "pcreated"), ctrName(t, "prunning")
		c.ok("run", "-l", label, "--name", exited, "busybox", "true")
		c.ok("create", "-l", label, "--name", created, "busybox", "true")
		c.ok("run", "-d", "-l", label, "--name", running, "busybox", "sleep", "300")
		ids := map[string]string{}
		for _, n := range []string{exited, created, running} {
			ids[n] = inspectCtr(t, a, n).ID
		}
		r = c.ok("container", "prune", "-f", "--filter", "label="+label)
		// Docker: "Deleted Containers:\n<id>\n<id>\n\nTotal reclaimed space: 0B"
		if !strings.HasPrefix(r.Stdout, "Deleted Containers:\n") || !strings.Contains(r.Stdout, "Total reclaimed space:") {
			t.Errorf("%s container prune: output %q, want Docker's Deleted Containers: … Total reclaimed space:", c.name, r.Stdout)
		}
		for _, n := range []string{exited, created} {
			if !strings.Contains(r.Stdout, ids[n]) {
				t.Errorf("%s container prune: output lacks %s (%s)", c.name, ids[n], n)
			}
			if ctrExists(t, a, n) {
				t.Errorf("%s container prune: %s still exists", c.name, n)
			}
		}
		if strings.Contains(r.Stdout, ids[running]) || !ctrExists(t, a, running) {
			t.Errorf("%s container prune removed the running container", c.name)
		}
	})
}

// TestLifecycleAPI: the status codes of each lifecycle endpoint.
func TestLifecycleAPI(t *testing.T) {
	busybox(t)
	a := env.d.api()
	name := ctrName(t, "api")
	id := createCtr(t, a, name, map[string]any{"Image": "busybox:latest", "Cmd": []string{"sleep", "300"}})
	ci := inspectCtr(t, a, id)
	if ci.State.Status != "created" || ci.State.Running || ci.State.Pid != 0 {
		t.Errorf("after create: State %+v, want created", ci.State)
	}
	if ci.Name != "/"+name {
		t.Errorf("inspect Name %q, want /%s", ci.Name, name)
	}
	// By name, full ID and unique ID prefix.
	for _, ref := range []string{name, id, id[:12], id[:5]} {
		if got := inspectCtr(t, a, ref); got.ID != id {
			t.Errorf("inspect %s: Id %s, want %s", ref, got.ID, id)
		}
	}
	a.call(t, "POST", "/containers/"+name+"/start", nil, nil).wantStatus(t, 204)
	a.call(t, "POST", "/containers/"+name+"/start", nil, nil).wantStatus(t, 304) // already started
	waitRunning(t, a, id)
	a.call(t, "POST", "/containers/"+name+"/pause", nil, nil).wantStatus(t, 204)
	// dockerd: 409 Container <id> is already paused
	a.call(t, "POST", "/containers/"+name+"/pause", nil, nil).wantError(t, 409, "Container "+id+" is already paused")
	a.call(t, "POST", "/containers/"+name+"/unpause", nil, nil).wantStatus(t, 204)
	a.call(t, "POST", "/containers/"+name+"/restart?t=0", nil, nil).wantStatus(t, 204)
	waitRunning(t, a, id)
	// No signal: Docker's default is SIGKILL (what `docker kill` sends).
	a.call(t, "POST", "/containers/"+name+"/kill", nil, nil).wantStatus(t, 204)
	if !poll(10*time.Second, func() bool { return inspectCtr(t, a, id).State.Status == "exited" }) {
		t.Errorf("POST /containers/{id}/kill without a signal: the container still runs 10s later (Docker's default signal is SIGKILL)")
		a.call(t, "POST", "/containers/"+name+"/kill?signal=SIGKILL", nil, nil).wantStatus(t, 204)
	}
	var w struct {
		StatusCode int
		Error      *struct{ Message string }
	}
	a.call(t, "POST", "/containers/"+name+"/wait", nil, nil).wantStatus(t, 200).decode(t, &w)
	if w.StatusCode != 137 || w.Error != nil {
		t.Errorf("wait after SIGKILL: %+v, want StatusCode 137 and Error null", w)
	}
	a.call(t, "POST", "/containers/"+name+"/stop", nil, nil).wantStatus(t, 304) // already stopped
	// dockerd: 409 Cannot kill container: <name>: Container <id> is not running
	a.call(t, "POST", "/containers/"+name+"/kill", nil, nil).wantError(t, 409, "Container "+id+" is not running")
	// dockerd: 409 Container <id> is not running
	a.call(t, "POST", "/containers/"+name+"/pause", nil, nil).wantError(t, 409, "Container "+id+" is not running")
	a.call(t, "POST", "/containers/"+name+"/start", nil, nil).wantStatus(t, 204) // restart an exited one
	waitRunning(t, a, id)
	a.call(t, "POST", "/containers/"+name+"/stop?t=0", nil, nil).wantStatus(t, 204)
	if ci := inspectCtr(t, a, id); ci.State.Status != "exited" || ci.State.ExitCode != 137 {
		t.Errorf("after stop?t=0: State %+v, want exited 137", ci.State)
	}
	// wait?condition=next-exit on a stopped container waits for the next run.
	ctx, cancel := contextTimeout(20 * time.Second)
	defer cancel()
	done := make(chan *apiResp, 1)
	go func() {
		r, err := a.do(ctx, "POST", "/containers/"+id+"/wait?condition=next-exit", nil, nil)
		if err != nil {
			r = &apiResp{Status: -1, Body: []byte(err.Error())}
		}
		done <- r
	}()

	select {
	case r := <-done:
		t.Fatalf("wait?condition=next-exit on a stopped container answered at once: %s", r)
	case <-time.After(500 * time.Millisecond):
	}
	startCtr(t, a, id)
	a.call(t, "POST", "/containers/"+name+"/kill?signal=SIGKILL", nil, nil).wantStatus(t, 204)
	select {
	case r := <-done:
		r.wantStatus(t, 200)
		var w struct{ StatusCode int }
		json.Unmarshal(r.Body, &w)
		if w.StatusCode != 137 {
			t.Errorf("wait?condition=next-exit: %s, want StatusCode 137", r.Body)
		}
	case <-ctx.Done():
		t.Fatalf("wait?condition=next-exit did not answer after the container was killed")
	}
	a.call(t, "DELETE", "/containers/"+name, nil, nil).wantStatus(t, 204)
	// dockerd: 404 No such container: <name>
	for _, p := range []string{"/json", "/start", "/stop", "/kill", "/restart", "/pause", "/wait", "/logs?stdout=1"} {
		m := "POST"
		if p == "/json" || strings.HasPrefix(p, "/logs") {
			m = "GET"
		}
		a.call(t, m, "/containers/"+name+p, nil, nil).wantError(t, 404, "No such container: "+name)
	}
	a.call(t, "DELETE", "/containers/"+name, nil, nil).wantError(t, 404, "No such container: "+name)
}
