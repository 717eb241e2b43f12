package shim

import (
	"bytes"
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/berth/berth/runtime"
)

// The shim's runtime.Runtime: a task's life through the interface alone
// (Create, Attach and Wait before Start, the exit, LastExit, Delete, then
// Load finding nothing), and a task deleted before it ever started.
func TestRuntimeTaskLifecycle(t *testing.T) {
	dir := bundle(t, []string{"sh", "-c", "echo hi; exit 5"}, false)
	r := NewRuntime(buildShim(t), "runc", filepath.Join(dir, "runc"))
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id := "rttest-" + filepath.Base(dir)

	task, err := r.Create(ctx, id, runtime.CreateOptions{Bundle: dir, LogMaxFiles: 1})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := task.State(ctx); err != nil || st.Pid != 0 || st.Starting || st.Exit != nil {
		t.Fatalf("state before start = %+v, %v", st, err)
	}
	if _, err := r.Load(ctx, id, dir); err != nil {
		t.Fatalf("load of a created task: %v", err)
	}
	if err := task.Delete(ctx); err != nil {
		t.Fatalf("delete before start: %v", err)
	}
	// That Delete ended the shim that waited for a start.
	if _, err := r.Load(ctx, id, dir); !cerrdefs.IsNotFound(err) {
		t.Fatalf("load after delete = %v, want not found", err)
	}
	if err := r.WaitReleased(ctx, id, dir); err != nil {
		t.Fatal(err)
	}

	task, err = r.Create(ctx, id, runtime.CreateOptions{Bundle: dir, LogMaxFiles: 1})
	if err != nil {
		t.Fatal(err)
	}
	stream, err := task.Attach(ctx, runtime.AttachOptions{Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	exited, err := task.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := task.Start(ctx)
	if err != nil || pid <= 0 || task.Pid() != pid {
		t.Fatalf("start = %d, %v (Pid %d)", pid, err, task.Pid())
	}
	var out bytes.Buffer
	if err := runtime.Copy(ctx, stream, runtime.IO{Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	st := <-exited
	if st.ExitCode != 5 || st.Error != "" || out.String() != "hi\n" {
		t.Fatalf("exit %+v, output %q", st, out.String())
	}
	if last, err := r.LastExit(ctx, id, dir); err != nil || last.ExitCode != 5 {
		t.Fatalf("last exit = %+v, %v", last, err)
	}
	if err := task.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Load(ctx, id, dir); !cerrdefs.IsNotFound(err) {
		t.Fatalf("load after the exit = %v, want not found", err)
	}
	// A wait on a task whose shim is gone answers with the recorded exit.
	exited, err = task.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st := <-exited; st.ExitCode != 5 {
		t.Fatalf("wait after the shim went: %+v", st)
	}
	if err := r.Delete(ctx, id, dir); err != nil {
		t.Fatalf("delete of what is left (nothing): %v", err)
	}
}

// A shim that lives but is slow to answer (here: stopped, as a loaded
// machine may leave it for seconds) is there: Load returns its task and
// State says it is unavailable, not gone; once it answers, it answers as
// ever. Only a shim whose process is gone is not found (crash loop
// finding: a restarted berthd took a shim slower than 2 s for gone).
func TestLoadSlowShim(t *testing.T) {
	dir := bundle(t, []string{"sleep", "1000"}, false)
	r := NewRuntime(buildShim(t), "runc", filepath.Join(dir, "runc"))
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	id := "rtslow-" + filepath.Base(dir)
	task, err := r.Create(ctx, id, runtime.CreateOptions{Bundle: dir, LogMaxFiles: 1})
	if err != nil {
		t.Fatal(err)
	}
	pid, err := task.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Delete(context.Background(), id, dir) }()
	shimPid := liveShim(dir, id)
	if shimPid == 0 {
		t.Fatal("no live shim by its PID file")
	}
	if err := syscall.Kill(shimPid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(shimPid, syscall.SIGCONT)
	loaded, err := r.Load(ctx, id, dir)
	if err != nil {
		t.Fatalf("load of a live shim that does not answer: %v", err)
	}
	qctx, qcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = loaded.State(qctx)
	qcancel()
	if !cerrdefs.IsUnavailable(err) {
		t.Fatalf("state of a stopped live shim = %v, want unavailable", err)
	}
	if err := syscall.Kill(shimPid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if st, err := loaded.State(ctx); err != nil || st.Pid != pid || st.Exit != nil {
		t.Fatalf("state once it answers = %+v, %v; want running with pid %d", st, err, pid)
	}
	// Gone: its process killed.
	if err := syscall.Kill(shimPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := WaitGone(dir, id, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := loaded.State(ctx); !cerrdefs.IsNotFound(err) {
		t.Fatalf("state of a killed shim = %v, want not found", err)
	}
	if _, err := r.Load(ctx, id, dir); !cerrdefs.IsNotFound(err) {
		t.Fatalf("load of a killed shim = %v, want not found", err)
	}
}
