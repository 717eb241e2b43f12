package e2e

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestExecSurvivesDaemonRestart (issue 8 item 5): exec processes run under
// the container's shim, so a kill -9 of berthd during an exec (attached
// without a TTY, attached with one as `exec -it` is, detached) leaves them
// running: each writes to its stdout after berthd is gone (no SIGPIPE, no
// hangup) and goes on to its end; the restarted berthd knows the exec IDs,
// shows them running, then their own exit codes.
func TestExecSurvivesDaemonRestart(t *testing.T) {
	requireEnv(t)
	onlyBerth(t, "dockerd forgets execs when it restarts (its exec store is in memory); berth's execs live in the shim (issue 8 item 5)")
	b := startTestDaemon(t, "berth", daemonOpts{mirror: true})
	a := b.api()
	ensureImage(t, a, "busybox:latest")
	c := cliFor(t, "docker", b)
	gate := t.TempDir()
	id := strings.TrimSpace(c.ok("run", "-d", "-v", gate+":/gate", "busybox", "sleep", "300").Stdout)
	waitRunning(t, a, id)

	create := func(body string) string {
		t.Helper()
		var out struct{ Id string }
		a.call(t, "POST", "/containers/"+id+"/exec", []byte(body), nil).wantStatus(t, 201).decode(t, &out)
		return out.Id
	}
	script := func(name string, code int) string {
		// Prints, waits for the gate, prints again (to a stdout nobody
		// reads any more), then leaves a file and exits with code.
		return `"sh","-c","echo started-` + name + `; while [ ! -e /gate/go ]; do sleep 0.05; done; echo after-` + name + `; echo done > /gate/` + name + `; exit ` + string(rune('0'+code)) + `"`
	}
	plain := create(`{"AttachStdout":true,"AttachStderr":true,"Cmd":[` + script("plain", 5) + `]}`)
	tty := create(`{"AttachStdin":true,"AttachStdout":true,"Tty":true,"Cmd":[` + script("tty", 6) + `]}`)
	detached := create(`{"Cmd":[` + script("detached", 7) + `]}`)

	hp := a.hijack(t, "POST", "/exec/"+plain+"/start", []byte(`{"Detach":false,"Tty":false}`))
	ht := a.hijack(t, "POST", "/exec/"+tty+"/start", []byte(`{"Detach":false,"Tty":true}`))
	a.call(t, "POST", "/exec/"+detached+"/start", []byte(`{"Detach":true}`), nil).wantStatus(t, 200)
	for name, h := range map[string]*hijacked{"plain": hp, "tty": ht} {
		h.SetReadDeadline(time.Now().Add(20 * time.Second))
		var got strings.Builder
		r := bufio.NewReader(h)
		for !strings.Contains(got.String(), "started-"+name) {
			b, err := r.ReadByte()
			if err != nil {
				t.Fatalf("exec %s: %v before its first line (got %q)", name, err, got.String())
			}
			got.WriteByte(b)
		}
	}

	t.Logf("kill -9 berthd (pid %d) during 3 execs", b.pid())
	b.kill9()
	b2 := b.restartT(t, daemonOpts{mirror: true})
	a = b2.api()
	type execState struct {
		Running     bool
		ExitCode    *int
		Pid         int
		ContainerID string
	}
	inspect := func(eid string) execState {
		t.Helper()
		var e execState
		a.call(t, "GET", "/exec/"+eid+"/json", nil, nil).wantStatus(t, 200).decode(t, &e)
		return e
	}
	want := map[string]int{plain: 5, tty: 6, detached: 7}
	for eid := range want {
		if e := inspect(eid); !e.Running || e.Pid == 0 || e.ContainerID != id || e.ExitCode != nil {
			t.Errorf("exec %s after the restart: %+v, want running, with its pid", eid[:12], e)
		}
	}
	writeFile(t, gate, "go", nil)
	for eid, code := range want {
		var e execState
		if !poll(20*time.Second, func() bool { e = inspect(eid); return !e.Running && e.ExitCode != nil }) {
			t.Fatalf("exec %s never ended after the restart: %+v", eid[:12], e)
		}
		if *e.ExitCode != code {
			t.Errorf("exec %s: exit code %d, want its own %d", eid[:12], *e.ExitCode, code)
		}
	}
	for _, name := range []string{"plain", "tty", "detached"} {
		if b, err := os.ReadFile(filepath.Join(gate, name)); err != nil || string(b) != "done\n" {
			t.Errorf("exec %s did not run to its end past its output: %q %v", name, b, err)
		}
	}
	c = cliFor(t, "docker", b2)
	c.ok("rm", "-f", id)
}
