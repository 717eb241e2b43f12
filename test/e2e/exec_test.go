package e2e

import (
	"io"
	"regexp"
	"strings"
	"testing"
	"time"
)

// exec, attach and terminals (issue 3, item 8).

var promptRE = regexp.MustCompile(`(?m)^/\S* # ?$`)

// TestExec: -e, -u, -w, exit codes, stdout/stderr, -i, -d; exec into a
// stopped container is a 409.
func TestExec(t *testing.T) {
	busybox(t)
	a := env.d.api()
	eachCLI(t, func(t *testing.T, c *CLI) {
		name := ctrName(t, "exec")
		c.ok("run", "-d", "-e", "BASE=from-run", "--name", name, "busybox", "sleep", "300")
		waitRunning(t, a, name)

		r := c.ok("exec", "-e", "X=from-exec", "-u", "nobody", "-w", "/tmp", name, "sh", "-c", `echo "$BASE $X"; id -un; pwd`)
		r.wantOut(t, c.name, "from-run from-exec\nnobody\n/tmp")
		r = c.ok("exec", name, "sh", "-c", "id -u; pwd")
		r.wantOut(t, c.name, "0\n/")

		c.run("exec", name, "sh", "-c", "exit 3").wantCode(t, c.name, 3)
		r = c.run("exec", name, "sh", "-c", "echo to-out; echo to-err >&2")
		r.wantCode(t, c.name, 0)
		if r.Stdout != "to-out\n" || r.Stderr != "to-err\n" {
			t.Errorf("%s exec: stdout %q stderr %q, want to-out and to-err apart", c.name, r.Stdout, r.Stderr)
		}
		// dockerd 20.10: OCI runtime exec failed: exec failed: unable to start container process:
		// exec: "nosuchcmd": executable file not found in $PATH: unknown (exit 126)
		// (the docker CLI prints it on stdout: dockerd writes it into the stream).
		r = c.run("exec", name, "nosuchcmd")
		r.wantCode(t, c.name, 126)
		if !strings.Contains(r.Stdout+r.Stderr, "executable file not found") {
			t.Errorf("%s exec nosuchcmd: output %q %q lacks \"executable file not found\"", c.name, r.Stdout, r.Stderr)
		}

		r = c.runStdin([]byte("line1\nline2\n"), "exec", "-i", name, "sh", "-c", "cat; exit 2")
		r.wantCode(t, c.name, 2)
		r.wantOut(t, c.name, "line1\nline2")

		c.ok("exec", "-d", name, "sh", "-c", "sleep 0.2; touch /tmp/detached")
		if !poll(10*time.Second, func() bool { return c.run("exec", name, "test", "-e", "/tmp/detached").Code == 0 }) {
			t.Errorf("%s exec -d: the detached command never ran", c.name)
		}

		id := inspectCtr(t, a, name).ID
		c.ok("stop", "-t", "0", name)
		// Docker: 409 Container <id> is not running
		c.fail([]string{"exec", name, "true"}, "Error response from daemon: Container ", " is not running")
		a.call(t, "POST", "/containers/"+name+"/exec", []byte(`{"Cmd":["true"]}`), nil).wantError(t, 409, "Container "+id+" is not running")
		missing := "e2e-missing-" + uniq()
		c.fail([]string{"exec", missing, "true"}, "No such container: "+missing)
	})
}

// execInspect is GET /exec/{id}/json.
type execInspect struct {
	ID            string `json:"ID"`
	Running       bool   `json:"Running"`
	ExitCode      *int   `json:"ExitCode"`
	ContainerID   string `json:"ContainerID"`
	Pid           int    `json:"Pid"`
	ProcessConfig struct {
		Entrypoint string   `json:"entrypoint"`
		Arguments  []string `json:"arguments"`
		Tty        bool     `json:"tty"`
	} `json:"ProcessConfig"`
}

// TestExecAPI: exec create/start/inspect on the wire.
func TestExecAPI(t *testing.T) {
	busybox(t)
	a := env.d.api()
	_, id := runDetached(t, a, "execapi", nil, "sleep", "300")
	waitRunning(t, a, id)

	create := func(body string) string {
		t.Helper()
		var out struct{ Id string }
		a.call(t, "POST", "/containers/"+id+"/exec", []byte(body), nil).wantStatus(t, 201).decode(t, &out)
		if !hexIDRE.MatchString(out.Id) {
			t.Fatalf("exec create: Id %q", out.Id)
		}
		return out.Id
	}
	inspect := func(eid string) execInspect {
		t.Helper()
		var e execInspect
		a.call(t, "GET", "/exec/"+eid+"/json", nil, nil).wantStatus(t, 200).decode(t, &e)
		return e
	}

	eid := create(`{"AttachStdout":true,"AttachStderr":true,"Cmd":["sh","-c","echo out; echo err >&2; exit 3"]}`)
	e := inspect(eid)
	if e.ID != eid || e.Running || e.ExitCode != nil || e.ContainerID != id || e.ProcessConfig.Entrypoint != "sh" || strings.Join(e.ProcessConfig.Arguments, "|") != "-c|echo out; echo err >&2; exit 3" {
		t.Errorf("exec inspect before start: %+v, want not running, ExitCode null, entrypoint sh", e)
	}
	h := a.hijack(t, "POST", "/exec/"+eid+"/start", []byte(`{"Detach":false,"Tty":false}`))
	h.SetReadDeadline(time.Now().Add(30 * time.Second))
	body, err := io.ReadAll(h)
	if err != nil {
		t.Fatalf("exec start: reading the stream: %v (got %q)", err, body)
	}
	o, er, err := demux(body)
	if err != nil || o != "out\n" || er != "err\n" {
		t.Errorf("exec start stream: stdout %q stderr %q (%v), want stdcopy frames out/err", o, er, err)
	}
	e = inspect(eid)
	if e.Running || e.ExitCode == nil || *e.ExitCode != 3 {
		t.Errorf("exec inspect after the stream closed: Running %v ExitCode %v, want false 3", e.Running, e.ExitCode)
	}

	// Detached start answers at once; the exit code shows up later.
	eid = create(`{"Cmd":["sh","-c","sleep 0.3; exit 5"]}`)
	a.call(t, "POST", "/exec/"+eid+"/start", []byte(`{"Detach":true}`), nil).wantStatus(t, 200)
	if !poll(10*time.Second, func() bool { e := inspect(eid); return !e.Running && e.ExitCode != nil && *e.ExitCode == 5 }) {
		t.Errorf("detached exec: inspect never showed ExitCode 5: %+v", inspect(eid))
	}

	// dockerd: 400 No exec command specified
	a.call(t, "POST", "/containers/"+id+"/exec", []byte(`{}`), nil).wantError(t, 400, "No exec command specified")
	// dockerd: 404 No such exec instance: <id>
	a.call(t, "GET", "/exec/nosuch"+uniq()+"/json", nil, nil).wantError(t, 404, "No such exec instance: nosuch")
	a.call(t, "POST", "/exec/nosuch"+uniq()+"/start", []byte(`{}`), nil).wantError(t, 404, "No such exec instance: nosuch")
	var raw map[string]any
	a.call(t, "GET", "/exec/"+eid+"/json", nil, nil).decode(t, &raw)
	for _, k := range []string{"ID", "Running", "ExitCode", "ProcessConfig", "OpenStdin", "OpenStderr", "OpenStdout", "CanRemove", "ContainerID", "DetachKeys", "Pid"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("exec inspect has no %q: %v", k, raw)
		}
	}
}

// TestExecTTY: `exec -it` in a real terminal: a prompt, the typed
// command's output, the shell's exit code as the CLI's.
func TestExecTTY(t *testing.T) {
	busybox(t)
	a := env.d.api()
	eachCLI(t, func(t *testing.T, c *CLI) {
		name := ctrName(t, "exectty")
		c.ok("run", "-d", "--name", name, "busybox", "sleep", "300")
		waitRunning(t, a, name)
		tm := newTerm(t, c, "exec", "-it", name, "sh")
		if !tm.waitScreen(promptRE, 20*time.Second) {
			t.Fatalf("%s exec -it: no shell prompt within 20s", c.name)
		}
		tm.typeLine("echo hi-$((40+2)); tty")
		// What is typed next is echoed as it arrives: first the answer.
		tm.waitScreen(regexp.MustCompile(`\n/dev/pts/\d+`), 10*time.Second)
		tm.wantSize(c.name+" exec -it", 50, 200)
		// SIGWINCH: POST /exec/{id}/resize.
		tm.resize(120, 40)
		tm.wantSize(c.name+" exec -it after a resize", 40, 120)
		tm.typeLine("exit 4")
		if code := tm.exitCode(20 * time.Second); code != 4 {
			t.Errorf("%s exec -it: exit %d, want 4 (the shell's)", c.name, code)
		}
		scr := tm.screen()
		if !strings.Contains(scr, "\nhi-42") || !regexp.MustCompile(`\n/dev/pts/\d+`).MatchString(scr) {
			t.Errorf("%s exec -it: the screen lacks hi-42 or a /dev/pts tty:\n%s", c.name, scr)
		}
		if !inspectCtr(t, a, name).State.Running {
			t.Errorf("the container stopped when the exec shell exited")
		}
	})
}

// TestRunTTY: `run -it --rm busybox sh` in a real terminal.
func TestRunTTY(t *testing.T) {
	busybox(t)
	a := env.d.api()
	eachCLI(t, func(t *testing.T, c *CLI) {
		name := ctrName(t, "runtty")
		tm := newTerm(t, c, "run", "-it", "--rm", "--name", name, "busybox", "sh")
		if !tm.waitScreen(promptRE, 30*time.Second) {
			t.Fatalf("%s run -it: no shell prompt within 30s", c.name)
		}
		tm.wantSize(c.name+" run -it", 50, 200)
		// SIGWINCH: POST /containers/{id}/resize.
		tm.resize(100, 30)
		tm.wantSize(c.name+" run -it after a resize", 30, 100)
		tm.typeLine("echo tty-$((2+3)); tty; exit 5")
		if code := tm.exitCode(20 * time.Second); code != 5 {
			t.Errorf("%s run -it: exit %d, want 5", c.name, code)
		}
		scr := tm.screen()
		if !strings.Contains(scr, "\ntty-5") || !strings.Contains(scr, "\n/dev/pts/0") {
			t.Errorf("%s run -it: the screen lacks tty-5 and /dev/pts/0:\n%s", c.name, scr)
		}
		if ctrExists(t, a, name) {
			t.Errorf("%s run -it --rm: the container still exists", c.name)
		}
	})
}

// TestDetachKeys: ctrl-p ctrl-q detaches the CLI and leaves the container
// running; attach gets back in.
func TestDetachKeys(t *testing.T) {
	busybox(t)
	a := env.d.api()
	eachCLI(t, func(t *testing.T, c *CLI) {
		name := ctrName(t, "detach")
		tm := newTerm(t, c, "run", "-it", "--name", name, "busybox", "sh")
		if !tm.waitScreen(promptRE, 30*time.Second) {
			t.Fatalf("%s run -it: no shell prompt within 30s", c.name)
		}
		tm.send(false, "C-p", "C-q")
		if code := tm.exitCode(20 * time.Second); code != 0 {
			t.Errorf("%s run -it, then ctrl-p ctrl-q: exit %d, want 0", c.name, code)
		}
		if ci := inspectCtr(t, a, name); !ci.State.Running {
			t.Fatalf("after ctrl-p ctrl-q the container is not running: %+v", ci.State)
		}
		// attach again, type, exit: the container exits with the code.
		tm2 := newTerm(t, c, "attach", name)
		// Enter until the shell answers with a prompt: then attach is in.
		if !poll(20*time.Second, func() bool {
			tm2.send(false, "Enter")
			return tm2.waitScreen(promptRE, 500*time.Millisecond)
		}) {
			t.Fatalf("%s attach: no prompt after pressing Enter for 20s", c.name)
		}
		tm2.typeLine("echo back-$((6*7)); exit 6")
		if code := tm2.exitCode(20 * time.Second); code != 6 {
			t.Errorf("%s attach, then exit 6: exit %d, want 6", c.name, code)
		}
		if !strings.Contains(tm2.screen(), "back-42") {
			t.Errorf("%s attach: the screen lacks back-42:\n%s", c.name, tm2.screen())
		}
		if ci := waitExited(t, a, name, 10*time.Second); ci.State.ExitCode != 6 {
			t.Errorf("after exit 6 through attach: ExitCode %d", ci.State.ExitCode)
		}
	})
}

// TestAttach: attach to a running container shows its new output, and
// ends with the container's exit code.
func TestAttach(t *testing.T) {
	busybox(t)
	a := env.d.api()
	eachCLI(t, func(t *testing.T, c *CLI) {
		name := ctrName(t, "attach")
		gate := t.TempDir()
		c.ok("run", "-d", "--name", name, "-v", gate+":/gate", "busybox", "sh", "-c",
			`echo before; sleep 0.5; while [ ! -e /gate/go ]; do echo tick; sleep 0.1; done; echo after-out; echo after-err >&2; exit 6`)
		waitLog(t, a, name, "tick")
		at := c.start("attach", name)
		// The ticks show that attach is connected; then let the container go on.
		if !at.waitOutput("tick", 20*time.Second) {
			t.Fatalf("%s attach: no output from the running container within 20s: %q", c.name, at.output())
		}
		writeFile(t, gate, "go", nil)
		if !at.exited(30 * time.Second) {
			t.Fatalf("%s attach did not return when the container exited: %q", c.name, at.output())
		}
		out := at.output()
		if !strings.Contains(out, "after-out\n") || !strings.Contains(out, "after-err\n") {
			t.Errorf("%s attach: output %q, want after-out and after-err", c.name, out)
		}
		if strings.Contains(out, "before") {
			t.Errorf("%s attach replayed old output: %q", c.name, out)
		}
		if at.exitCode() != 6 {
			t.Errorf("%s attach: exit %d, want the container's 6", c.name, at.exitCode())
		}
	})
}
