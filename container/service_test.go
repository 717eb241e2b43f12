package container

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/content"
	"github.com/berth/berth/image"
	"github.com/berth/berth/internal/testutil"
	"github.com/berth/berth/progress"
	"github.com/berth/berth/snapshot"
)

type testEnv struct {
	svc  *Service
	cfg  Config
	root string
}

// newTestEnv builds a container service on real runc, overlayfs and a
// busybox image loaded from a docker-archive.
func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("runc is not installed")
	}
	archive := testutil.BusyboxArchive(t, "busybox:latest", []string{"sh"})
	root, err := os.MkdirTemp("", "ctrtest")
	if err != nil {
		t.Fatal(err)
	}
	shimBin := filepath.Join(root, "berth-shim")
	if out, err := exec.Command("go", "build", "-o", shimBin, "../cmd/berth-shim").CombinedOutput(); err != nil {
		t.Fatalf("build shim: %v\n%s", err, out)
	}
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	cs, err := content.NewStore(filepath.Join(root, "content"), false)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := snapshot.NewStore(filepath.Join(root, "snapshots"), nil)
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := image.New(image.Config{Root: filepath.Join(root, "image"), Content: cs, Snapshots: ss})
	if err != nil {
		t.Fatal(err)
	}
	if err := imgs.Load(context.Background(), bytes.NewReader(archive), progress.Discard, true); err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Root: filepath.Join(root, "containers"), ExecRoot: filepath.Join(root, "run"),
		Runtime: runc, ShimPath: shimBin, Images: imgs, Snapshots: ss,
	}
	svc, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{svc: svc, cfg: cfg, root: root}
	t.Cleanup(func() {
		for _, id := range e.ids() {
			_ = e.svc.Remove(context.Background(), id, RemoveOptions{Force: true})
		}
		e.svc.Close() // and its spare shim
		imgs.Close()
		if b, _ := os.ReadFile("/proc/self/mountinfo"); bytes.Contains(b, []byte(root)) {
			t.Errorf("mounts left under %s", root)
		}
		if os.Getenv("KEEP") == "" {
			os.RemoveAll(root)
		}
	})
	return e
}

func (e *testEnv) ids() []string {
	e.svc.mu.RLock()
	defer e.svc.mu.RUnlock()
	var ids []string
	for id := range e.svc.byID {
		ids = append(ids, id)
	}
	return ids
}

func (e *testEnv) create(t *testing.T, name string, cmd []string, hc *container.HostConfig) string {
	t.Helper()
	id, _, err := e.svc.Create(context.Background(), CreateRequest{Name: name, Config: &container.Config{Image: "busybox", Cmd: cmd}, HostConfig: hc})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (e *testEnv) waitExit(t *testing.T, id string, cond container.WaitCondition) WaitResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch, err := e.svc.Wait(ctx, id, cond)
	if err != nil {
		t.Fatal(err)
	}
	res, ok := <-ch
	if !ok {
		t.Fatal("wait timed out")
	}
	return res
}

// pipeStream is one end of an in-memory client connection.
type pipeStream struct{ net.Conn }

func TestRunExitCodeLogsAndAttach(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	id := e.create(t, "first", []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, nil)
	client, server := net.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- e.svc.Attach(ctx, id, AttachOptions{Stdout: true, Stderr: true, Stream: true}, func() (Stream, error) { return pipeStream{server}, nil })
	}()
	// The attach registers before the start, so no output is lost.
	got := make(chan map[byte]string, 1)
	go func() {
		out := map[byte]string{}
		var hdr [8]byte
		for {
			if _, err := io.ReadFull(client, hdr[:]); err != nil {
				break
			}
			buf := make([]byte, binary.BigEndian.Uint32(hdr[4:]))
			if _, err := io.ReadFull(client, buf); err != nil {
				break
			}
			out[hdr[0]] += string(buf)
		}
		got <- out
	}()
	waitCh, _ := e.svc.Wait(ctx, id, container.WaitConditionNextExit)
	for {
		e.svc.mu.RLock()
		c := e.svc.byID[id]
		e.svc.mu.RUnlock()
		c.mu.Lock()
		n := len(c.pending)
		c.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := e.svc.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	res := <-waitCh
	if res.StatusCode != 3 {
		t.Fatalf("exit code %d", res.StatusCode)
	}
	out := <-got
	if out[1] != "out\n" || out[2] != "err\n" {
		t.Fatalf("attach saw %q", out)
	}
	<-done
	var logs bytes.Buffer
	if err := e.svc.Logs(ctx, id, LogsOptions{Stdout: true, Stderr: true, Tail: -1}, func(bool) {}, &logs, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(logs.Bytes(), []byte("out\n")) || !bytes.Contains(logs.Bytes(), []byte("err\n")) {
		t.Fatalf("logs = %q", logs.String())
	}
	insp, err := e.svc.Inspect(ctx, "first", false)
	if err != nil || insp.State.Status != container.StateExited || insp.State.ExitCode != 3 {
		t.Fatalf("inspect = %+v %v", insp.State, err)
	}
}

func TestStopKillsAfterTimeoutAndRemoveCleansUp(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	// sh as PID 1 ignores SIGTERM: stop must fall back to SIGKILL.
	id := e.create(t, "sleeper", []string{"sh", "-c", "sleep 100"}, nil)
	if err := e.svc.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Remove(ctx, id, RemoveOptions{}); !cerrdefs.IsConflict(err) || !strings.Contains(err.Error(), "You cannot remove a running container") {
		t.Fatalf("rm running: %v", err)
	}
	one := 1
	start := time.Now()
	if err := e.svc.Stop(ctx, id, "", &one); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second || d > 10*time.Second {
		t.Fatalf("stop took %v", d)
	}
	insp, _ := e.svc.Inspect(ctx, id, false)
	if insp.State.ExitCode != 137 || insp.State.Running {
		t.Fatalf("after stop: %+v", insp.State)
	}
	if err := e.svc.Remove(ctx, id, RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Get(id); !cerrdefs.IsNotFound(err) {
		t.Fatalf("still there: %v", err)
	}
	if _, err := os.Stat(e.svc.stateDir(id)); !os.IsNotExist(err) {
		t.Fatalf("state dir left: %v", err)
	}
	// The shim deletes runc's state right after the exit, off the
	// critical path: it must be gone soon after.
	deadline := time.Now().Add(10 * time.Second)
	for {
		entries, _ := os.ReadDir(e.svc.runcRoot())
		if len(entries) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("runc state left: %v", entries)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCreateBadInput(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	e.create(t, "taken", []string{"true"}, nil)
	cases := []struct {
		name string
		cfg  *container.Config
		hc   *container.HostConfig
		want func(error) bool
		msg  string
	}{
		{"taken", &container.Config{Image: "busybox"}, nil, cerrdefs.IsConflict, `The container name "/taken" is already in use`},
		{"bad name!", &container.Config{Image: "busybox"}, nil, cerrdefs.IsInvalidArgument, "Invalid container name"},
		{"", &container.Config{Image: "nosuchimage"}, nil, cerrdefs.IsNotFound, "No such image: nosuchimage:latest"},
		{"", &container.Config{Image: "busybox"}, &container.HostConfig{Resources: container.Resources{Memory: 1 << 20}}, cerrdefs.IsInvalidArgument, "Minimum memory limit allowed is 6MB"},
		{"", &container.Config{Image: "busybox"}, &container.HostConfig{CapAdd: []string{"FOO"}}, cerrdefs.IsInvalidArgument, "CAP_FOO"},
		{"", &container.Config{Image: "busybox"}, &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: "bogus"}}, cerrdefs.IsInvalidArgument, "invalid restart policy"},
		{"", &container.Config{Image: "busybox"}, &container.HostConfig{Binds: []string{":/x"}}, cerrdefs.IsInvalidArgument, "invalid volume specification"},
		{"", &container.Config{Image: "busybox", WorkingDir: "/proc/self/fd/5"}, nil, cerrdefs.IsInvalidArgument, "/proc/self/fd/5"},
	}
	before := len(e.ids())
	for _, c := range cases {
		_, _, err := e.svc.Create(ctx, CreateRequest{Name: c.name, Config: c.cfg, HostConfig: c.hc})
		if err == nil || !c.want(err) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("create %q %+v: %v, want %q", c.name, c.hc, err, c.msg)
		}
	}
	if after := len(e.ids()); after != before {
		t.Fatalf("failed creates left %d containers", after-before)
	}
	if _, err := e.svc.ExecCreate(ctx, "taken", container.ExecCreateRequest{Cmd: []string{"true"}}); !cerrdefs.IsConflict(err) {
		t.Fatalf("exec in stopped container: %v", err)
	}
	if err := e.svc.Start(ctx, "nosuch"); !cerrdefs.IsNotFound(err) {
		t.Fatalf("start missing: %v", err)
	}
}

func TestRestartPolicyAndAutoRemove(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	id := e.create(t, "", []string{"sh", "-c", "exit 1"}, &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: 2}})
	if err := e.svc.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		insp, _ := e.svc.Inspect(ctx, id, false)
		if insp.RestartCount == 2 && !insp.State.Running && !insp.State.Restarting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restart count %d state %+v", insp.RestartCount, insp.State)
		}
		e.waitExit(t, id, container.WaitConditionNotRunning)
		time.Sleep(20 * time.Millisecond)
	}
	rm := e.create(t, "", []string{"true"}, &container.HostConfig{AutoRemove: true})
	ch, _ := e.svc.Wait(ctx, rm, container.WaitConditionRemoved)
	if err := e.svc.Start(ctx, rm); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatal("auto-remove did not happen")
	}
	if _, err := e.svc.Get(rm); !cerrdefs.IsNotFound(err) {
		t.Fatalf("auto-removed container still there: %v", err)
	}
}

func TestExecAndDaemonRestart(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	id := e.create(t, "long", []string{"sleep", "100"}, nil)
	if err := e.svc.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	execID, err := e.svc.ExecCreate(ctx, id, container.ExecCreateRequest{Cmd: []string{"sh", "-c", "echo hi; exit 5"}, AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	client, server := net.Pipe()
	go io.Copy(io.Discard, client)
	if err := e.svc.ExecStart(ctx, execID, ExecStartOptions{Conn: pipeStream{server}}); err != nil {
		t.Fatal(err)
	}
	ei, _ := e.svc.ExecInspect(ctx, execID)
	if ei.ExitCode == nil || *ei.ExitCode != 5 {
		t.Fatalf("exec exit = %v", ei.ExitCode)
	}
	pid := e.svc.byID[id].State.Pid

	// A second service on the same state is a restarted berthd: the
	// container is still running, with the same PID, and can be stopped.
	e.svc.Close()
	svc2, err := New(ctx, e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc2
	insp, err := svc2.Inspect(ctx, id, false)
	if err != nil || !insp.State.Running || insp.State.Pid != pid {
		t.Fatalf("after restart: %+v %v", insp.State, err)
	}
	zero := 0
	if err := svc2.Stop(ctx, id, "", &zero); err != nil {
		t.Fatal(err)
	}
	if err := svc2.Remove(ctx, id, RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestFailedRestartStops: a restart by policy whose start fails leaves the
// container stopped, as dockerd's (SetStopped): not 'restarting' for ever
// (listed by ps as Restarting, not-running waits never answered, rm
// without force refused) with no restart to come.
func TestFailedRestartStops(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	// Its restart cannot start: the command is gone.
	id := e.create(t, "", []string{"/bin/sh", "-c", "rm /bin/sh; exit 3"}, &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyAlways}})
	if err := e.svc.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		insp, err := e.svc.Inspect(ctx, id, false)
		if err != nil {
			t.Fatal(err)
		}
		if insp.RestartCount == 1 && insp.State.Status == container.StateExited && !insp.State.Restarting && !insp.State.Running {
			if insp.State.ExitCode != 127 {
				t.Errorf("after the failed restart: ExitCode %d, want 127", insp.State.ExitCode)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the failed restart: RestartCount %d, State %+v; want exited, not restarting", insp.RestartCount, insp.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ch, err := e.svc.Wait(wctx, id, container.WaitConditionNotRunning)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := <-ch; !ok {
		t.Error("a not-running wait of the stopped container does not answer")
	}
	if err := e.svc.Remove(ctx, id, RemoveOptions{}); err != nil {
		t.Errorf("rm (no force) of the stopped container: %v", err)
	}
}
