package container

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/mountutil"
)

// A restarted berthd removes what a crash leaves behind: --rm containers
// that are not running (as dockerd does) and container layers whose
// container record never got written.
func TestRestoreRemovesLeftovers(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	keep := e.create(t, "keep", []string{"true"}, nil)
	rm := e.create(t, "rmme", []string{"true"}, &container.HostConfig{AutoRemove: true})
	if _, err := e.cfg.Snapshots.Prepare(ctx, "orphan1", e.svc.byID[keep].TopChain); err != nil {
		t.Fatal(err)
	}
	snapErr := func(key string) error { _, err := e.cfg.Snapshots.Mounts(ctx, key); return err }

	e.svc.Close()
	svc2, err := New(ctx, e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc2
	if err := snapErr("orphan1"); !cerrdefs.IsNotFound(err) {
		t.Errorf("leftover layer orphan1 still there (%v)", err)
	}
	if _, err := svc2.Get(keep); err != nil {
		t.Fatalf("container without --rm lost: %v", err)
	}
	if err := snapErr(keep); err != nil {
		t.Fatalf("layer of a kept container removed: %v", err)
	}
	// Gone before the restarted service serves anything: its name is free.
	if _, err := svc2.Get(rm); !cerrdefs.IsNotFound(err) {
		t.Fatalf("stopped --rm container still there when the service is up: %v", err)
	}
	again := e.create(t, "rmme", []string{"true"}, nil)
	if again == rm {
		t.Fatal("same ID")
	}
	if err := snapErr(rm); !cerrdefs.IsNotFound(err) {
		t.Errorf("removed --rm container's layer still there (%v)", err)
	}
}

// A start that fails after the shim was spawned (here: the network of a
// container that is not running) leaves no shim waiting for a start.
func TestFailedStartLeavesNoShim(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	other := e.create(t, "other", []string{"sleep", "10"}, nil)
	id := e.create(t, "joiner", []string{"true"}, &container.HostConfig{NetworkMode: container.NetworkMode("container:" + other)})
	err := e.svc.Start(ctx, id)
	if err == nil || !strings.Contains(err.Error(), "non running container") {
		t.Fatalf("start = %v, want the non-running container error", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := shimsOf(t, id)
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("shim(s) %v of the failed start still running", pids)
		}
		time.Sleep(10 * time.Millisecond)
	}
	insp, err := e.svc.Inspect(ctx, id, false)
	if err != nil || insp.State.Status != container.StateCreated {
		t.Fatalf("after the failed start: %+v %v", insp.State, err)
	}
}

// shimsOf lists the PIDs of live berth-shim processes for container id.
func shimsOf(t *testing.T, id string) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, d := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(b), "berth-shim") || !strings.Contains(string(b), id) {
			continue
		}
		if st, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat")); err == nil {
			if f := strings.Fields(string(st)); len(f) > 2 && f[2] == "Z" {
				continue // exited, not yet reaped
			}
		}
		pids = append(pids, d.Name())
	}
	return pids
}

// A client that starts the container the moment its attach is answered
// (docker run: attach, 101, then start) sees all of the output: the attach
// is in place before the answer.
func TestAttachAnsweredThenStarted(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		id := e.create(t, "", []string{"echo", "hello"}, nil)
		client, server := net.Pipe()
		got := make(chan string, 1)
		go func() {
			var out strings.Builder
			var hdr [8]byte
			for {
				if _, err := io.ReadFull(client, hdr[:]); err != nil {
					break
				}
				buf := make([]byte, binary.BigEndian.Uint32(hdr[4:]))
				if _, err := io.ReadFull(client, buf); err != nil {
					break
				}
				out.Write(buf)
			}
			got <- out.String()
		}()
		go e.svc.Attach(ctx, id, AttachOptions{Stdout: true, Stderr: true, Stream: true}, func() (Stream, error) {
			// The client's next request, as soon as it has its answer.
			if err := e.svc.Start(ctx, id); err != nil {
				t.Error(err)
			}
			return pipeStream{server}, nil
		})
		select {
		case out := <-got:
			if out != "hello\n" {
				t.Fatalf("round %d: attach got %q, want all of the output", i, out)
			}
		case <-time.After(10 * time.Second):
			server.Close()
			t.Fatalf("round %d: the attach stream never ended (the start went by it)", i)
		}
	}
}

// A create or remove cut short by a crash leaves no directory that
// restore takes for a damaged record: Create stages the directory and
// renames it into place with its record, Remove sets it aside before
// deleting it, and restore removes staging and set-aside directories and
// (from before staging) directories holding nothing but a temporary of
// a record. A directory with other content and no record is reported.
func TestRestoreRemovesHalfMadeDirs(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	keep := e.create(t, "keep", []string{"true"}, nil)
	if ents, _ := filepath.Glob(filepath.Join(e.cfg.Root, stagingPrefix+"*")); len(ents) > 0 {
		t.Fatalf("create left staging directories %v", ents)
	}
	staged := filepath.Join(e.cfg.Root, stagingPrefix+strings.Repeat("a", 64))
	old := filepath.Join(e.cfg.Root, strings.Repeat("b", 64))
	damaged := filepath.Join(e.cfg.Root, strings.Repeat("c", 64))
	trash := filepath.Join(e.cfg.Root, trashPrefix+strings.Repeat("e", 64))
	for _, d := range []string{staged, old, damaged, trash} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{filepath.Join(staged, recordName), filepath.Join(old, "."+recordName+".123.tmp"), filepath.Join(damaged, "x-json.log"), filepath.Join(trash, "x-json.log")} {
		if err := os.WriteFile(f, []byte("{"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	e.svc.Close()
	svc2, err := New(ctx, e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc2
	for _, d := range []string{staged, old, trash} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s: the directory of a create cut short is still there (%v)", filepath.Base(d), err)
		}
	}
	if _, err := os.Stat(damaged); err != nil {
		t.Errorf("a directory with content and no record was removed: %v", err)
	}
	w := svc2.Warnings()
	if len(w) != 1 || !strings.Contains(w[0], filepath.Base(damaged)) {
		t.Errorf("warnings %q: want one, about %s", w, filepath.Base(damaged)[:12])
	}
	if _, err := svc2.Get(keep); err != nil {
		t.Errorf("container lost: %v", err)
	}
}

// A name a create under way has reserved finds no container yet: every
// call by that name is a 404, never a nil container (it was a panic of
// each request naming it, seen in the crash loop).
func TestNameReservedByCreate(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	e.svc.mu.Lock()
	_, err := e.svc.reserveNameLocked("/halfmade", strings.Repeat("d", 64))
	e.svc.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Get("halfmade"); !cerrdefs.IsNotFound(err) {
		t.Errorf("Get of a name reserved by a create: %v, want not found", err)
	}
	if err := e.svc.Stop(ctx, "halfmade", "", nil); !cerrdefs.IsNotFound(err) {
		t.Errorf("Stop: %v, want not found", err)
	}
	if _, err := e.svc.Get("/halfmade/alias"); !cerrdefs.IsNotFound(err) {
		t.Errorf("Get of a link under it: %v, want not found", err)
	}
}

// The damaged record of a running container (issue 13 item 9) is rebuilt
// from the copy its start left: the restarted service lists it, running
// with its PID, reports the damage and keeps the damaged file aside; the
// container can then be removed.
func TestRestoreRebuildsDamagedRecord(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	id := e.create(t, "victim", []string{"sleep", "1000"}, nil)
	if err := e.svc.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	c, _ := e.svc.Get(id)
	c.mu.Lock()
	pid := c.State.Pid
	c.mu.Unlock()
	e.svc.Close()
	rec := filepath.Join(e.cfg.Root, id, recordName)
	if err := os.WriteFile(rec, []byte("{\"ID\":\"x\x00\x01"), 0o600); err != nil {
		t.Fatal(err)
	}
	svc2, err := New(ctx, e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc2
	c, err = svc2.Get("victim")
	if err != nil {
		t.Fatalf("the container with the damaged record is not listed: %v", err)
	}
	c.mu.Lock()
	st := c.State
	c.mu.Unlock()
	if !st.Running || st.Pid != pid {
		t.Errorf("rebuilt: State %+v, want running as pid %d", st, pid)
	}
	if w := strings.Join(svc2.Warnings(), "\n"); !strings.Contains(w, rec) {
		t.Errorf("warnings do not name %s: %q", rec, w)
	}
	if _, err := os.Stat(rec + ".damaged"); err != nil {
		t.Errorf("the damaged record is not kept aside: %v", err)
	}
	if _, err := loadContainer(filepath.Join(e.cfg.Root, id)); err != nil {
		t.Errorf("the rebuilt record does not load: %v", err)
	}
	if err := svc2.Remove(ctx, id, RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
}

// damageAndRestart closes e's service, garbles id's record and starts a
// new service on the same directories (restore rebuilds the record from
// its copy in the state directory).
func damageAndRestart(t *testing.T, e *testEnv, id string) *Service {
	t.Helper()
	e.svc.Close()
	rec := filepath.Join(e.cfg.Root, id, recordName)
	if err := os.WriteFile(rec, []byte("{\"ID\":\"x\x00\x01"), 0o600); err != nil {
		t.Fatal(err)
	}
	svc, err := New(context.Background(), e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	if _, err := os.Stat(rec + ".damaged"); err != nil {
		t.Fatalf("the record was not rebuilt (no %s.damaged): %v", rec, err)
	}
	return svc
}

// A record damaged after its container was stopped is rebuilt as it was
// saved: exited with its exit code and FinishedAt, stopped by the user
// (its unless-stopped policy does not start it again), not the copy of
// its start that says running.
func TestRebuiltRecordOfStoppedContainer(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	id := e.create(t, "stopped", []string{"sleep", "1000"}, &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped}})
	if err := e.svc.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	zero := 0
	if err := e.svc.Stop(ctx, id, "", &zero); err != nil {
		t.Fatal(err)
	}
	c, _ := e.svc.Get(id)
	c.mu.Lock()
	before, restarts := c.State, c.RestartCount
	c.mu.Unlock()
	if before.Running || before.ExitCode == 0 || before.FinishedAt.IsZero() {
		t.Fatalf("after stop: %+v", before)
	}
	svc2 := damageAndRestart(t, e, id)
	c, err := svc2.Get(id)
	if err != nil {
		t.Fatalf("the container with the damaged record is not listed: %v", err)
	}
	c.mu.Lock()
	st, n, stopped := c.State, c.RestartCount, c.ManuallyStopped
	c.mu.Unlock()
	if st.Status != container.StateExited || st.Running || st.Restarting || st.ExitCode != before.ExitCode ||
		!st.FinishedAt.Equal(before.FinishedAt) || n != restarts || !stopped {
		t.Errorf("rebuilt: State %+v RestartCount %d ManuallyStopped %v; want as saved at the stop: %+v RestartCount %d, stopped", st, n, stopped, before, restarts)
	}
}

// A rename and an update made while the container runs survive a rebuild
// of its record.
func TestRebuiltRecordKeepsRenameAndUpdate(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	id := e.create(t, "before", []string{"sleep", "1000"}, nil)
	if err := e.svc.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Rename(ctx, id, "after"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Update(ctx, id, container.UpdateConfig{RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: 4}}); err != nil {
		t.Fatal(err)
	}
	svc2 := damageAndRestart(t, e, id)
	c, err := svc2.Get("after")
	if err != nil {
		t.Fatalf("the renamed container is not found by its new name: %v", err)
	}
	if _, err := svc2.Get("before"); err == nil {
		t.Errorf("the old name still names a container")
	}
	c.mu.Lock()
	p, running := c.HostConfig.RestartPolicy, c.State.Running
	c.mu.Unlock()
	if p.Name != container.RestartPolicyOnFailure || p.MaximumRetryCount != 4 {
		t.Errorf("rebuilt restart policy %+v, want the update's on-failure:4", p)
	}
	if !running {
		t.Errorf("rebuilt: not running")
	}
}

// A pause or unpause cut short between the runtime's change and the
// record's (crash loop finding): restore records what the freezer says,
// so the frozen container is paused (rm -f thaws it to kill it; before,
// it waited forever on a container recorded running) and the thawed one
// running.
func TestRestoreReconcilesPause(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	frozen := e.create(t, "frozen", []string{"sleep", "1000"}, nil)
	thawed := e.create(t, "thawed", []string{"sleep", "1000"}, nil)
	for _, id := range []string{frozen, thawed} {
		if err := e.svc.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	cf, _ := e.svc.Get(frozen)
	if err := e.svc.task(cf).Pause(ctx); err != nil { // the record never hears of it
		t.Fatal(err)
	}
	if err := e.svc.Pause(ctx, thawed); err != nil {
		t.Fatal(err)
	}
	ct, _ := e.svc.Get(thawed)
	if err := e.svc.task(ct).Resume(ctx); err != nil {
		t.Fatal(err)
	}
	e.svc.Close()
	svc2, err := New(ctx, e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc2
	for id, want := range map[string]bool{frozen: true, thawed: false} {
		c, err := svc2.Get(id)
		if err != nil {
			t.Fatal(err)
		}
		c.mu.Lock()
		st := c.State
		c.mu.Unlock()
		wantStatus := container.StateRunning
		if want {
			wantStatus = container.StatePaused
		}
		if st.Paused != want || st.Status != wantStatus || !st.Running {
			t.Errorf("%s after restore: Paused %v Status %s Running %v; want Paused %v Status %s, running", c.Name, st.Paused, st.Status, st.Running, want, wantStatus)
		}
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := svc2.Remove(rctx, frozen, RemoveOptions{Force: true}); err != nil {
		t.Errorf("rm -f of the frozen container: %v", err)
	}
}

// A restarted berthd decides whether a container's shim is gone by its
// process, not by how fast it answers: a shim that answers only seconds
// later (a loaded machine; here stopped for 5 s) keeps its container,
// running with its PID, whether the record says running or (a start cut
// short) created. Before, a shim silent for 2 s was taken for dead: the
// running container was killed and recorded as exited 137, the other
// left running unowned with its root filesystem unmounted under it.
func TestRestoreWaitsForSlowShim(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	running := e.create(t, "running", []string{"sleep", "1000"}, nil)
	cutShort := e.create(t, "cutshort", []string{"sleep", "1000"}, nil)
	pids := map[string]int{}
	for _, id := range []string{running, cutShort} {
		if err := e.svc.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
		c, _ := e.svc.Get(id)
		c.mu.Lock()
		pids[id] = c.State.Pid
		c.mu.Unlock()
	}
	e.svc.Close()
	// The start of cutShort as a crash cut it: its record never said
	// running.
	c, err := loadContainer(e.svc.dir(cutShort))
	if err != nil {
		t.Fatal(err)
	}
	c.State = State{Status: container.StateCreated}
	if err := c.save(e.svc.dir(cutShort)); err != nil {
		t.Fatal(err)
	}
	var shims []int
	for _, id := range []string{running, cutShort} {
		b, err := os.ReadFile(filepath.Join(e.svc.stateDir(id), "shim.pid"))
		if err != nil {
			t.Fatal(err)
		}
		var pid int
		if _, err := fmt.Sscan(string(b), &pid); err != nil || pid <= 0 {
			t.Fatalf("shim.pid %q", b)
		}
		if err := unix.Kill(pid, unix.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		shims = append(shims, pid)
	}
	resume := func() {
		for _, pid := range shims {
			_ = unix.Kill(pid, unix.SIGCONT)
		}
	}
	defer resume()
	slow := time.AfterFunc(5*time.Second, resume)
	defer slow.Stop()
	svc2, err := New(ctx, e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc2
	resume()
	for _, id := range []string{running, cutShort} {
		c, err := svc2.Get(id)
		if err != nil {
			t.Fatal(err)
		}
		c.mu.Lock()
		st := c.State
		c.mu.Unlock()
		if !st.Running || st.Pid != pids[id] || st.ExitCode != 0 {
			t.Errorf("%s after a restore with its shim slow: %+v; want running with pid %d", c.Name, st, pids[id])
		}
		if unix.Kill(pids[id], 0) != nil {
			t.Errorf("%s: its process %d is gone", c.Name, pids[id])
		}
		if mps, _ := mountutil.MountsUnder(svc2.rootfs(id)); len(mps) == 0 {
			t.Errorf("%s: its root filesystem is no longer mounted", c.Name)
		}
	}
	// Supervised as ever: a stop is heard.
	if err := svc2.Stop(ctx, running, "", nil); err != nil {
		t.Fatal(err)
	}
	if res := e.waitExit(t, running, container.WaitConditionNotRunning); res.StatusCode != 137 && res.StatusCode != 143 {
		t.Errorf("exit after stop: %+v", res)
	}
}

// A shim killed while its container is paused: berthd ends the container
// through its cgroup, and a frozen process dies only once thawed, so the
// kill thaws it too (as kill of a paused container does): the container
// is recorded exited 137 at once, its processes are gone and its cgroup
// is not left frozen. With runc's state gone as well (nothing the runtime
// can resume or delete), berthd thaws and kills by the cgroup alone.
func TestShimDiesWhilePaused(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	for _, runcState := range []bool{true, false} {
		id := e.create(t, "", []string{"sh", "-c", "trap '' TERM; sleep 1000 & wait"}, nil)
		if err := e.svc.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.Pause(ctx, id); err != nil {
			t.Fatal(err)
		}
		pids, err := e.svc.containerPids(id)
		if err != nil || len(pids) < 2 {
			t.Fatalf("processes of the container: %v %v", pids, err)
		}
		b, err := os.ReadFile(filepath.Join(e.svc.stateDir(id), "shim.pid"))
		if err != nil {
			t.Fatal(err)
		}
		var shim int
		if _, err := fmt.Sscan(string(b), &shim); err != nil || shim <= 0 {
			t.Fatalf("shim.pid %q", b)
		}
		if !runcState {
			if err := unix.Kill(shim, unix.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			if err := os.RemoveAll(filepath.Join(e.svc.runcRoot(), id)); err != nil {
				t.Fatal(err)
			}
		}
		began := time.Now()
		if err := unix.Kill(shim, unix.SIGKILL); err != nil {
			t.Fatal(err)
		}
		res := e.waitExit(t, id, container.WaitConditionNotRunning)
		if res.StatusCode != 137 {
			t.Errorf("runc state %v: exit %+v, want 137", runcState, res)
		}
		if d := time.Since(began); d > 8*time.Second {
			t.Errorf("runc state %v: the exit was recorded after %s", runcState, d)
		}
		for _, p := range pids {
			if unix.Kill(p, 0) == nil {
				t.Errorf("runc state %v: process %d of the container is alive", runcState, p)
			}
		}
		if frozen, ok := e.svc.frozen(id); ok && frozen {
			t.Errorf("runc state %v: the container's cgroup is left frozen", runcState)
		}
		c, _ := e.svc.Get(id)
		c.mu.Lock()
		st := c.State
		c.mu.Unlock()
		if st.Paused || st.Running || st.Status != container.StateExited {
			t.Errorf("runc state %v: state %+v, want exited, not paused", runcState, st)
		}
		if err := e.svc.Start(ctx, id); err != nil {
			t.Errorf("runc state %v: start again: %v", runcState, err)
		}
	}
}

// Removal is complete: a state directory a late writer filled again as a
// removal cleared it (crash loop finding: 'exec/c/<id>: directory not
// empty', a file of an exec the kill cut short) goes. Remove clears it
// again once the shim is gone; what is left of one (a crash came first)
// goes at the next start, where no record owns it and no shim lives;
// the state directories of existing containers stay.
func TestRemoveLeavesNoStateDir(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	keep := e.create(t, "keep", []string{"sleep", "1000"}, nil)
	if err := e.svc.Start(ctx, keep); err != nil {
		t.Fatal(err)
	}
	// A writer as the shim's exec handling: files in the state directory
	// for as long as the shim lives.
	for round := 0; round < 3; round++ {
		id := e.create(t, "", []string{"sleep", "1000"}, nil)
		if err := e.svc.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
		dir := e.svc.stateDir(id)
		b, err := os.ReadFile(filepath.Join(dir, "shim.pid"))
		if err != nil {
			t.Fatal(err)
		}
		var shim int
		if _, err := fmt.Sscan(string(b), &shim); err != nil || shim <= 0 {
			t.Fatalf("shim.pid %q", b)
		}
		// The writer ends with the shim's process, as the shim's own
		// writes do: a pidfd tells (a zombie shim, alive to kill(2), has
		// ended).
		pidfd, err := unix.PidfdOpen(shim, 0)
		if err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer unix.Close(pidfd)
			fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if n, _ := unix.Poll(fds, 0); n > 0 {
					return
				}
				_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("exec-%d.json", i%8)), []byte("{}"), 0o600)
			}
		}()
		err = e.svc.Remove(ctx, id, RemoveOptions{Force: true})
		close(stop)
		<-done
		if err != nil {
			t.Fatal(err)
		}
		if ents, err := os.ReadDir(dir); !os.IsNotExist(err) {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Fatalf("round %d: the removed container's state directory is left: %v %v", round, names, err)
		}
	}
	// What a crash left: a removed container's state directory with a
	// file in it, no record, no shim.
	stray := filepath.Join(e.cfg.ExecRoot, "c", "0123456789abcdef")
	if err := os.MkdirAll(stray, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stray, "exec-1.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.svc.Close()
	svc2, err := New(ctx, e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc2
	if _, err := os.Stat(stray); !os.IsNotExist(err) {
		t.Errorf("a stray state directory is left after a restart: %v", err)
	}
	if _, err := os.Stat(filepath.Join(svc2.stateDir(keep), "shim.pid")); err != nil {
		t.Errorf("the state directory of a running container was touched: %v", err)
	}
	if c, err := svc2.Get(keep); err != nil || !c.State.Running {
		t.Errorf("running container after the restart: %v", err)
	}
}
