package shim

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth/berth/runtime"
)

// readAll collects a stream's frames until it ends.
func readAll(t *testing.T, s runtime.Stream) map[byte]string {
	t.Helper()
	got := map[byte]string{}
	for {
		stream, data, err := s.ReadFrame(nil)
		if err != nil {
			return got
		}
		got[stream] += string(data)
	}
}

func execSpec(tty bool, args ...string) *specs.Process {
	return &specs.Process{Terminal: tty, Args: args, Cwd: "/", Env: []string{"PATH=/bin"}}
}

func waitExit(t *testing.T, ch <-chan runtime.ExitStatus) runtime.ExitStatus {
	t.Helper()
	select {
	case st := <-ch:
		return st
	case <-time.After(30 * time.Second):
		t.Fatal("no exit status")
	}
	return runtime.ExitStatus{}
}

// TestShimExec: exec processes run under the shim: output by stream, exit
// codes, stdin, a TTY of the asked size, a refused start (126, by kind),
// and an exec whose client went away is still listed with its exit code.
func TestShimExec(t *testing.T) {
	dir := bundle(t, []string{"sleep", "100"}, false)
	c := spawn(t, dir, false, false)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	task := c.Task("shimtest", 0)
	if _, err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = task.Kill(ctx, 9)
		_, _ = c.Wait(ctx)
	}()

	p, err := task.Exec(ctx, "out", runtime.ExecOptions{Spec: execSpec(false, "sh", "-c", "echo out; echo err >&2; exit 5"), Meta: []byte("m1")})
	if err != nil {
		t.Fatal(err)
	}
	a, err := p.Attach(ctx, runtime.AttachOptions{Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	w, err := p.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if pid, err := p.Start(ctx); err != nil || pid <= 0 {
		t.Fatalf("exec start: %d %v", pid, err)
	}
	if got := readAll(t, a); got[runtime.Stdout] != "out\n" || got[runtime.Stderr] != "err\n" {
		t.Fatalf("exec output %q", got)
	}
	if st := waitExit(t, w); st.ExitCode != 5 {
		t.Fatalf("exec exit %+v, want 5", st)
	}

	// stdin: cat echoes until its input ends.
	p, err = task.Exec(ctx, "cat", runtime.ExecOptions{Spec: execSpec(false, "cat"), Stdin: true})
	if err != nil {
		t.Fatal(err)
	}
	a, err = p.Attach(ctx, runtime.AttachOptions{Stdin: true, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	w, _ = p.Wait(ctx)
	if _, err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	a.Write([]byte("ping\n"))
	a.CloseWrite()
	if got := readAll(t, a); got[runtime.Stdout] != "ping\n" {
		t.Fatalf("cat output %q", got)
	}
	if st := waitExit(t, w); st.ExitCode != 0 {
		t.Fatalf("cat exit %+v", st)
	}

	// A TTY of the asked size.
	p, err = task.Exec(ctx, "tty", runtime.ExecOptions{Spec: execSpec(true, "sh", "-c", "stty size; exit 7"), ConsoleSize: &[2]uint{30, 100}})
	if err != nil {
		t.Fatal(err)
	}
	a, _ = p.Attach(ctx, runtime.AttachOptions{Stdout: true})
	w, _ = p.Wait(ctx)
	if _, err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, a); strings.TrimSpace(got[runtime.Stdout]) != "30 100" {
		t.Fatalf("tty output %q", got)
	}
	if st := waitExit(t, w); st.ExitCode != 7 {
		t.Fatalf("tty exit %+v", st)
	}

	// Refused by runc: a StartError of its kind; the exit status is 126.
	p, err = task.Exec(ctx, "missing", runtime.ExecOptions{Spec: execSpec(false, "/no/such/program")})
	if err != nil {
		t.Fatal(err)
	}
	w, _ = p.Wait(ctx)
	_, err = p.Start(ctx)
	var se *runtime.StartError
	if !errors.As(err, &se) || se.Kind != runtime.StartNotFound {
		t.Fatalf("exec of a missing program: %#v", err)
	}
	if st := waitExit(t, w); st.ExitCode != 126 {
		t.Fatalf("refused exec exit %+v, want 126", st)
	}

	// Nobody listening (berthd gone): it runs to its end and the shim
	// keeps its exit code, with berthd's meta.
	p, err = task.Exec(ctx, "alone", runtime.ExecOptions{Spec: execSpec(false, "sh", "-c", "echo lost; sleep 0.3; exit 9"), Meta: []byte("m2")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		infos, err := task.Execs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var alone *runtime.ProcessInfo
		for i := range infos {
			if infos[i].ID == "alone" {
				alone = &infos[i]
			}
		}
		if alone == nil || string(alone.Meta) != "m2" || !alone.Started {
			t.Fatalf("execs: %+v", infos)
		}
		if alone.Exit != nil {
			if alone.Exit.ExitCode != 9 {
				t.Fatalf("alone exit %+v", alone.Exit)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("exec never ended")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestShimPauseResumeUpdate: pause, resume and update go through the shim
// (runc is run by it), and the answers say when the task is not running.
func TestShimPauseResumeUpdate(t *testing.T) {
	dir := bundle(t, []string{"sleep", "100"}, false)
	c := spawn(t, dir, false, false)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	id := "shimtest-" + filepath.Base(dir)
	task := c.Task(id, 0)
	if err := task.Pause(ctx); err == nil {
		t.Fatal("pause before start succeeded")
	}
	if _, err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
	state := func() string {
		out, _ := exec.Command("runc", "--root", filepath.Join(dir, "runc"), "state", id).Output()
		return string(out)
	}
	if err := task.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if s := state(); !strings.Contains(s, `"status": "paused"`) {
		t.Fatalf("after pause: %s", s)
	}
	if err := task.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if s := state(); !strings.Contains(s, `"status": "running"`) {
		t.Fatalf("after resume: %s", s)
	}
	limit := int64(50)
	if err := task.Update(ctx, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &limit}}); err != nil {
		t.Fatal(err)
	}
	if err := task.Update(ctx, &specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "999"}}); err == nil {
		t.Fatal("update with an impossible cpuset succeeded")
	}
	if pids, err := task.Pids(ctx); err != nil || len(pids) == 0 {
		t.Fatalf("pids: %v %v", pids, err)
	}
	_ = task.Kill(ctx, 9)
	if _, err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}
