package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Process supervision as dockerd does it (issue 13 items 6-8).

// TestKillReturnsAfterExit (issue 13 item 6): POST /containers/{id}/kill
// with SIGKILL answers once the container has exited, as dockerd's does:
// an inspect right after says not running, and a remove right after
// works.
func TestKillReturnsAfterExit(t *testing.T) {
	d := requireEnv(t)
	busybox(t)
	a := d.api()
	for i := range 10 {
		name, _ := runDetached(t, a, "killwait", nil, "sh", "-c", "sleep 1000 & sleep 1000 & wait")
		waitRunning(t, a, name)
		a.call(t, "POST", "/containers/"+name+"/kill?signal=KILL", nil, nil).wantStatus(t, 204)
		ci := inspectCtr(t, a, name)
		if ci.State.Running || ci.State.Status != "exited" || ci.State.ExitCode != 137 {
			t.Errorf("round %d: inspect right after kill: State %+v, want exited 137", i, ci.State)
		}
		if r := a.call(t, "DELETE", "/containers/"+name, nil, nil); r.Status != 204 {
			t.Errorf("round %d: remove right after kill: %s", i, r)
		}
	}
}

// TestRmForceAfterExecs (issue 13 item 6): rm -f of an -it container with
// a restart policy, after execs with a TTY that were resized, returns
// promptly and leaves no process.
func TestRmForceAfterExecs(t *testing.T) {
	d := requireEnv(t)
	busybox(t)
	a := d.api()
	c := cli(t, "docker")
	name := ctrName(t, "rmexecs")
	c.ok("run", "-dit", "--restart", "always", "--name", name, "busybox", "sh")
	pid := waitRunning(t, a, name).State.Pid
	for i := range 10 {
		var ex struct{ Id string }
		body := fmt.Sprintf(`{"AttachStdin":true,"AttachStdout":true,"AttachStderr":true,"Tty":true,"Cmd":["sh","-c","stty size; sleep 0.2; echo done-%d"]}`, i)
		a.call(t, "POST", "/containers/"+name+"/exec", []byte(body), nil).wantStatus(t, 201).decode(t, &ex)
		h := a.hijack(t, "POST", "/exec/"+ex.Id+"/start", []byte(`{"Detach":false,"Tty":true}`))
		a.call(t, "POST", fmt.Sprintf("/exec/%s/resize?h=%d&w=%d", ex.Id, 30+i, 100+i), nil, nil)
		out, _ := io.ReadAll(h)
		h.Close()
		if !strings.Contains(string(out), fmt.Sprintf("done-%d", i)) {
			t.Errorf("exec %d: output %q", i, out)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	began := time.Now()
	r, err := a.do(ctx, "DELETE", "/containers/"+name+"?force=1", nil, nil)
	if err != nil {
		t.Fatalf("rm -f did not return within 30s: %v", err)
	}
	if r.Status != 204 {
		t.Errorf("rm -f: %s", r)
	}
	t.Logf("rm -f took %s", time.Since(began))
	if !poll(10*time.Second, func() bool { return !procAlive(pid) }) {
		t.Errorf("container process %d still alive after rm -f", pid)
	}
}

// TestAttachSlowReaderGetsAll (issue 13 item 7): a client attached to a
// container's output gets all of it, however slowly it reads, also when
// the container has exited in the meantime.
func TestAttachSlowReaderGetsAll(t *testing.T) {
	d := requireEnv(t)
	knownDefect(t, "issue 13 item 7: the shim drops an attached client that falls behind")
	busybox(t)
	a := d.api()
	// Line by line, one write each: many small frames, 4 MB in all.
	const n = 40000
	pad := strings.Repeat("x", 90)
	name := ctrName(t, "slowattach")
	id := createCtr(t, a, name, map[string]any{
		"Image": "busybox:latest", "AttachStdout": true, "AttachStderr": true,
		"Cmd": []string{"sh", "-c", fmt.Sprintf(`i=0; while [ $i -lt %d ]; do echo "%s $i"; i=$((i+1)); done; echo end-of-output >&2`, n, pad)},
	})
	h := a.hijack(t, "POST", "/containers/"+id+"/attach?stream=1&stdout=1&stderr=1", nil)
	defer h.Close()
	startCtr(t, a, id)
	// The slow reader: nothing read until the container has exited (on a
	// daemon that pushes back on the container, until a while has
	// passed), then 32 KiB every 50 ms: seconds for all of it.
	poll(3*time.Second, func() bool { return !inspectCtr(t, a, id).State.Running })
	h.SetDeadline(time.Now().Add(60 * time.Second))
	var raw []byte
	buf := make([]byte, 32*1024)
	for {
		k, err := io.ReadFull(h, buf)
		raw = append(raw, buf[:k]...)
		if err != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	stdout, stderr, err := demux(raw)
	if err != nil {
		t.Fatalf("attach stream: %v", err)
	}
	ls := lines(stdout)
	for i, l := range ls {
		if l != fmt.Sprintf("%s %d", pad, i) {
			t.Errorf("slow attached reader: line %d is %q", i, clip(l))
			break
		}
	}
	if len(ls) != n || !strings.Contains(stderr, "end-of-output") {
		t.Errorf("slow attached reader got %d of %d lines (%d bytes) of stdout and stderr %q", len(ls), n, len(stdout), clip(stderr))
	}
	waitExited(t, a, id, 30*time.Second)
}

// TestWaitWithRestartPolicy (issue 13 item 8): wait (not-running and
// next-exit) returns at the first exit of a container that its restart
// policy restarts, as dockerd's does; so does `run` in the foreground.
func TestWaitWithRestartPolicy(t *testing.T) {
	d := requireEnv(t)
	busybox(t)
	a := d.api()
	c := cli(t, "docker")
	gate := t.TempDir()
	name := ctrName(t, "waitrestart")
	c.ok("run", "-d", "--restart", "always", "--name", name, "-v", gate+":/gate", "busybox", "sh", "-c",
		"while [ ! -e /gate/go ]; do sleep 0.05; done; exit 3")
	waitRunning(t, a, name)
	type res struct {
		what string
		code int64
		err  error
	}
	results := make(chan res, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, cond := range []string{"not-running", "next-exit", ""} {
		path := "/containers/" + name + "/wait"
		if cond != "" {
			path += "?condition=" + cond
		}
		// The headers come at once (both daemons flush them): the wait
		// is in place before the exit.
		resp, err := a.stream(ctx, "POST", path, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			defer resp.Body.Close()
			var w struct{ StatusCode int64 }
			err := json.NewDecoder(resp.Body).Decode(&w)
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
			results <- res{cond, w.StatusCode, err}
		}()
	}
	writeFile(t, gate, "go", nil)
	for range 3 {
		r := <-results
		if r.err != nil || r.code != 3 {
			t.Errorf("wait (condition %q) for a container with --restart always: code %d, err %v; want 3 at the first exit", r.what, r.code, r.err)
		}
	}

	// run in the foreground, with and without -i.
	for _, args := range [][]string{
		{"run", "--restart", "always", "busybox", "sh", "-c", "exit 2"},
		{"run", "-i", "--restart", "always", "busybox", "sh", "-c", "exit 2"},
	} {
		n := ctrName(t, "fgrestart")
		args = append(args[:1], append([]string{"--name", n}, args[1:]...)...)
		r := c.runTimeout(30*time.Second, []byte{}, args...)
		if r.Code != 2 {
			t.Errorf("%s: exit %d, want 2 (the first exit)", strings.Join(args, " "), r.Code)
		}
	}
}
