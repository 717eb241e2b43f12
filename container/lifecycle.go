package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"

	"github.com/berth/berth/internal/mountutil"
	"github.com/berth/berth/runtime"
	"github.com/berth/berth/snapshot"
)

// validateHostConfig rejects what Docker rejects at create time.
func validateHostConfig(h *container.HostConfig) error {
	if h.Memory != 0 && h.Memory < 6*1024*1024 {
		return cerrdefs.ErrInvalidArgument.WithMessage("Minimum memory limit allowed is 6MB")
	}
	if h.MemorySwap > 0 && h.Memory > 0 && h.MemorySwap < h.Memory {
		return cerrdefs.ErrInvalidArgument.WithMessage("Minimum memoryswap limit should be larger than memory limit, see usage")
	}
	if h.BlkioWeight != 0 && (h.BlkioWeight < 10 || h.BlkioWeight > 1000) {
		return cerrdefs.ErrInvalidArgument.WithMessage("Range of blkio weight is from 10 to 1000")
	}
	for _, dr := range h.DeviceRequests {
		return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("could not select device driver %q with capabilities: %v", dr.Driver, dr.Capabilities))
	}
	if h.NanoCPUs < 0 {
		return cerrdefs.ErrInvalidArgument.WithMessage("Range of CPUs is from 0.01 to the number of CPUs available")
	}
	p := h.RestartPolicy
	switch p.Name {
	case "", container.RestartPolicyDisabled, container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		if p.MaximumRetryCount != 0 {
			return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("maximum retry count cannot be used with restart policy '%s'", p.Name))
		}
	case container.RestartPolicyOnFailure:
		if p.MaximumRetryCount < 0 {
			return cerrdefs.ErrInvalidArgument.WithMessage("invalid restart policy: maximum retry count cannot be negative")
		}
	default:
		return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid restart policy '%s'", p.Name))
	}
	if h.AutoRemove && p.Name != "" && p.Name != container.RestartPolicyDisabled {
		return cerrdefs.ErrInvalidArgument.WithMessage("can't create 'AutoRemove' container with restart policy")
	}
	return nil
}

// Start starts a created or stopped container.
func (s *Service) Start(ctx context.Context, idOrName string) error {
	c, err := s.Get(idOrName)
	if err != nil {
		return err
	}
	end, err := s.beginStart(ctx, c, func() error {
		if c.State.Running {
			if c.State.Paused {
				return cerrdefs.ErrConflict.WithMessage("cannot start a paused container, try unpause instead")
			}
			return cerrdefs.ErrNotModified.WithMessage("container already started")
		}
		c.ManuallyStopped = false
		return nil
	})
	if err != nil {
		return err
	}
	defer end()
	return s.start(ctx, c)
}

// errStartRemoving is the refusal of a start once a removal began.
var errStartRemoving = cerrdefs.ErrConflict.WithMessage("container is marked for removal and cannot be started")

// beginStart claims c's start: one start at a time, none once a removal
// began. It waits out a start under way, then runs check with c.mu held
// (its error refuses the start) and marks c starting; end, called once
// start has returned, clears the mark. Remove and Stop wait for it.
func (s *Service) beginStart(ctx context.Context, c *Container, check func() error) (end func(), err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.starting && !c.removing && !c.removed {
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			c.mu.Lock()
			return nil, ctx.Err()
		}
		c.mu.Lock()
	}
	if c.removing || c.removed || c.State.Status == container.StateRemoving {
		return nil, errStartRemoving
	}
	if err := check(); err != nil {
		return nil, err
	}
	c.starting = true
	return func() {
		c.mu.Lock()
		c.starting = false
		c.notifyLocked()
		c.mu.Unlock()
	}, nil
}

// waitStartLocked waits until no start of c is under way. Call with c.mu
// held; it is released while waiting.
func (c *Container) waitStartLocked() {
	for c.starting {
		ch := c.changed
		c.mu.Unlock()
		<-ch
		c.mu.Lock()
	}
}

// start does the work of Start; restarts by policy come here too.
func (s *Service) start(ctx context.Context, c *Container) (retErr error) {
	// No cp, export or commit may have the snapshot mounted meanwhile.
	release := s.HoldRootfs(c.ID)
	defer release()
	ctx = context.WithoutCancel(ctx)
	stateDir := s.stateDir(c.ID)
	rootfs := s.rootfs(c.ID)
	// A start that takes long says where its time went (crash loop: a
	// restart by policy under way for over 20 s, its shim up).
	began := time.Now()
	var phases []any
	mark := func(phase string) { phases = append(phases, phase, time.Since(began).Round(time.Millisecond)) }
	defer func() {
		if d := time.Since(began); d > 5*time.Second {
			s.log.Warn("a slow start", append([]any{"id", c.ID, "took", d.Round(time.Millisecond), "err", retErr}, phases...)...)
		}
	}()
	// A restart reuses the runc ID and state directory: the previous shim
	// must be gone (it runs `runc delete` after reporting the exit).
	if err := s.rt.WaitReleased(ctx, c.ID, stateDir); err != nil {
		return err
	}
	mark("previous shim gone")
	// The root filesystem may still be mounted there (a start or a
	// berthd cut short by a crash): it is unmounted, never removed through.
	// The record's copy goes with it; nothing writes one there meanwhile.
	c.mu.Lock()
	c.copyPath = ""
	c.mu.Unlock()
	if err := s.clearStateDir(c.ID); err != nil {
		return err
	}
	if err := os.MkdirAll(rootfs, 0o700); err != nil {
		return err
	}
	var cleanups []func()
	// Docker's exit code for a start that failed: 128, or what the
	// runtime's refusal says (127: no such executable, 126: not runnable).
	exitCode := 128
	defer func() {
		if retErr != nil {
			for i := len(cleanups) - 1; i >= 0; i-- {
				cleanups[i]()
			}
			c.mu.Lock()
			c.State.Error = retErr.Error()
			c.State.ExitCode = exitCode
			if !c.HasBeenStarted {
				c.State.Status = container.StateCreated
			} else {
				c.State.Status = container.StateExited
			}
			c.State.Running = false
			// A restart by policy that failed leaves the container
			// stopped, as dockerd's (SetStopped): no restart is to come.
			c.State.Restarting = false
			// FinishedAt stays: a start that failed is not an exit, and
			// next-exit waiters keep waiting, as with Docker.
			autoRemove := c.HostConfig.AutoRemove
			_ = c.save(s.dir(c.ID))
			c.notifyLocked()
			c.mu.Unlock()
			if autoRemove {
				s.goBG(func() { _ = s.Remove(context.Background(), c.ID, RemoveOptions{Force: true, Volumes: true}) })
			}
		}
	}()
	// The shim boots (a few ms of process start) while the rootfs is
	// mounted and the spec written: it needs neither until the start.
	c.mu.Lock()
	createOpts := runtime.CreateOptions{
		Bundle: stateDir,
		Tty:    c.Config.Tty, Stdin: c.Config.OpenStdin, StdinOnce: c.Config.StdinOnce,
		CgroupPaths: s.cgroupPaths(c.ID),
	}
	lp, err := s.logSetup(c)
	autoRemove := c.HostConfig.AutoRemove
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if lp.Path != "" {
		if err := os.MkdirAll(filepath.Dir(lp.Path), 0o700); err != nil {
			return err
		}
	}
	createOpts.LogPath, createOpts.LogMaxSize, createOpts.LogMaxFiles, createOpts.LogAttrs = lp.Path, lp.Limits.MaxSize, lp.Limits.MaxFiles, lp.Attrs
	createOpts.LogRemote, createOpts.LogCompress, createOpts.LogFormat = lp.Remote, lp.Limits.Compress, lp.Format.String()
	type created struct {
		t   runtime.Task
		err error
	}
	createDone := make(chan created, 1)
	go func() {
		t, err := s.rt.Create(ctx, c.ID, createOpts)
		createDone <- created{t, err}
	}()
	waitTask := sync.OnceValue(func() created { return <-createDone })
	startAsked := false
	cleanups = append(cleanups, func() {
		// A start that failed before the task was asked to run anything:
		// its shim would wait for a start that never comes. (Once asked,
		// the failure handling below knows what the shim does.)
		if r := waitTask(); r.err == nil && !startAsked {
			_ = r.t.Delete(context.WithoutCancel(ctx))
		}
	})
	mounts := s.cfg.Snapshots.Mounts
	if autoRemove {
		// Its layer is deleted at exit: never spend a sync on it.
		mounts = s.cfg.Snapshots.VolatileMounts
	}
	m, err := mounts(ctx, c.ID)
	if err != nil {
		return err
	}
	if err := m.Mount(rootfs); err != nil {
		return err
	}
	cleanups = append(cleanups, func() { _ = snapshot.Unmount(rootfs) })
	mark("rootfs mounted")
	shm, err := s.mountShm(c)
	if err != nil {
		return err
	}
	if shm != "" {
		cleanups = append(cleanups, func() { _ = mountutil.Unmount(shm, true) })
	}
	spec, err := s.generateSpec(ctx, c, rootfs, shm)
	mark("spec and network")
	if s.network != nil {
		cleanups = append(cleanups, func() { _ = s.network.Teardown(context.WithoutCancel(ctx), c.ID) })
	}
	if err != nil {
		return err
	}
	if err := s.writeEtcFiles(c); err != nil {
		return err
	}
	if err := writeSpec(stateDir, spec); err != nil {
		return err
	}
	tr := waitTask()
	mark("shim up")
	if tr.err != nil {
		return tr.err
	}
	t := tr.t
	// Attachers that came before the start get their streams now, so they
	// see the container's first byte.
	c.mu.Lock()
	pending := c.pending
	c.pending = nil
	c.mu.Unlock()
	for _, p := range pending {
		p.connect(ctx, t)
	}
	// berthd's own wait goes in before the start: the shim tells it of the
	// exit the moment it happens, however soon (run --rm true).
	waitCtx, stopWait := context.WithCancel(s.ctx)
	exited, _ := t.Wait(waitCtx)
	startAsked = true
	pid, err := t.Start(ctx)
	mark("runtime started it")
	if err != nil {
		stopWait()
		for _, p := range pending {
			p.fail()
		}
		// The shim cleans up after the runtime's own refusal; after any
		// other failure it would wait for a start that never comes.
		if !runtime.IsStartError(err) {
			_ = t.Delete(context.WithoutCancel(ctx))
			_ = s.rt.Delete(context.WithoutCancel(ctx), c.ID, stateDir)
		}
		exitCode = startExitCode(err)
		if b, rerr := os.ReadFile(filepath.Join(stateDir, "shim.log")); rerr == nil && len(b) > 0 {
			s.log.Warn("shim failed to start the container", "id", c.ID, "err", err, "shim.log", string(b))
		}
		return startError(err)
	}
	c.setTask(t)
	c.mu.Lock()
	c.State = State{Status: container.StateRunning, Running: true, Pid: pid, StartedAt: time.Now().UTC(), Health: c.State.Health}
	c.HasBeenStarted = true
	s.initHealthLocked(c)
	c.copyPath = filepath.Join(stateDir, runCopyName)
	err = c.save(s.dir(c.ID))
	c.notifyLocked()
	c.mu.Unlock()
	s.emit(c, "start", nil)
	s.goBG(func() {
		defer stopWait()
		s.monitor(c, t, exited)
	})
	return err
}

// startError words a failed start as Docker does; it is of class invalid
// argument (400), as dockerd's.
func startError(err error) error {
	var se *runtime.StartError
	if errors.As(err, &se) && se.Kind == runtime.StartLogging {
		// The log driver's words, as dockerd's (a 500 there).
		return errors.New(se.Msg)
	}
	msg := strings.TrimPrefix(err.Error(), "runc run failed: ")
	if startExitCode(err) == 127 {
		msg = "failed to create task for container: failed to create shim task: OCI runtime create failed: runc create failed: " + msg + ": unknown"
	} else {
		msg = "OCI runtime create failed: " + msg
	}
	return cerrdefs.ErrInvalidArgument.WithMessage(msg)
}

// startExitCode is Docker's exit code for a failed start: 127 when the
// runtime found no executable, 126 when it could not run it, else 128.
func startExitCode(err error) int {
	var se *runtime.StartError
	if errors.As(err, &se) {
		switch se.Kind {
		case runtime.StartNotFound:
			return 127
		case runtime.StartPermission:
			return 126
		}
	}
	return 128
}

// monitor waits for the container to exit and handles it. exited is a
// wait registered with the task before its start; nil (registering it
// failed, or a restarted berthd) has monitor register one now.
func (s *Service) monitor(c *Container, t runtime.Task, exited <-chan runtime.ExitStatus) {
	st, heard := s.awaitExit(t, exited)
	if s.ctx.Err() != nil {
		return
	}
	if !heard {
		// The shim died (else it would have answered, or left its exit
		// status).
		s.log.Warn("the shim of a running container died", "id", c.ID, "err", st.Error)
		st = s.endOrphan(s.ctx, c)
	}
	s.handleExit(c, st)
}

// awaitExit waits for t's exit status: from exited if set, else from a
// wait registered now. A wait that breaks while the shim still answers is
// registered again. heard is false when the shim is gone without an exit
// status (st.Error says why).
func (s *Service) awaitExit(t runtime.Task, exited <-chan runtime.ExitStatus) (st *runtime.ExitStatus, heard bool) {
	err := errors.New("no wait")
	// Whether the shim is gone is whether its process is (State's
	// ErrNotFound), never whether it answers quickly: a live shim is
	// waited for however slow it is, and a wait that breaks while it lives
	// is sent again.
	for try := 0; s.ctx.Err() == nil; try++ {
		if try > 0 {
			select {
			case <-time.After(min(time.Duration(try)*50*time.Millisecond, time.Second)):
			case <-s.ctx.Done():
				continue
			}
		}
		if exited == nil {
			if exited, err = t.Wait(s.ctx); err != nil {
				exited = nil
				if _, serr := t.State(s.ctx); cerrdefs.IsNotFound(serr) {
					break
				}
				continue
			}
		}
		got, ok := <-exited
		if !ok {
			return &runtime.ExitStatus{Error: "berthd is stopping"}, false // s.ctx ended
		}
		if got.Error == "" {
			return &got, true
		}
		err = errors.New(got.Error)
		exited = nil
		state, serr := t.State(s.ctx)
		if cerrdefs.IsNotFound(serr) {
			break
		}
		if serr == nil && state.Exit != nil {
			return state.Exit, true
		}
	}
	if st, lerr := s.rt.LastExit(s.ctx, t.ID(), s.stateDir(t.ID())); lerr == nil {
		return st, true
	}
	return &runtime.ExitStatus{Error: err.Error()}, false
}

// handleExit records an exit and applies the restart policy or --rm.
func (s *Service) handleExit(c *Container, st *runtime.ExitStatus) {
	c.mu.Lock()
	s.stopHealthLocked(c)
	c.mu.Unlock()
	if err := s.unmountRunMounts(c.ID); err != nil {
		s.log.Warn("unmount at exit", "id", c.ID, "err", err)
	}
	s.releaseExecs(c.ID)
	s.unmountVolumes(context.Background(), c)
	if s.network != nil {
		if err := s.network.Teardown(context.Background(), c.ID); err != nil {
			s.log.Warn("network teardown", "id", c.ID, "err", err)
		}
	}
	c.mu.Lock()
	c.State.Running, c.State.Paused, c.State.Restarting = false, false, false
	c.CommitPaused = false
	c.State.Pid = 0
	c.State.ExitCode = st.ExitCode
	c.State.OOMKilled = st.OOMKilled
	c.State.Error = st.Error
	c.State.FinishedAt = st.ExitedAt
	c.State.Status = container.StateExited
	c.exits++
	c.lastExitCode = st.ExitCode
	restart := s.shouldRestart(c)
	if restart {
		c.RestartCount++
		c.State.Restarting = true
		c.State.Status = container.StateRestarting
	}
	autoRemove := c.HostConfig.AutoRemove && !restart
	ran := st.ExitedAt.Sub(c.State.StartedAt)
	var delay time.Duration
	if restart {
		c.restartBackoff = nextRestartDelay(c.restartBackoff, ran)
		delay = c.restartBackoff
	}
	if !autoRemove {
		// A container about to be removed skips the write: its record
		// goes in a moment, and until then the one on disk (running, with
		// the shim's exit file beside it) is settled the same way by a
		// restart.
		_ = c.save(s.dir(c.ID))
	}
	c.notifyLocked()
	c.mu.Unlock()
	if st.OOMKilled {
		s.emit(c, "oom", nil)
	}
	s.emit(c, "die", map[string]string{"exitCode": fmt.Sprint(st.ExitCode), "execDuration": fmt.Sprint(int(ran.Seconds()))})
	if autoRemove {
		if err := s.Remove(context.Background(), c.ID, RemoveOptions{Volumes: true}); err != nil {
			s.log.Warn("auto-remove failed", "id", c.ID, "err", err)
			c.mu.Lock()
			_ = c.save(s.dir(c.ID))
			c.mu.Unlock()
		}
		return
	}
	if restart {
		// Never once Close has begun (issue 8 item 6).
		s.afterFunc(delay, func() {
			errUnwanted := errors.New("restart no longer wanted")
			end, err := s.beginStart(context.Background(), c, func() error {
				if !c.State.Restarting || c.ManuallyStopped || c.State.Running {
					return errUnwanted
				}
				return nil
			})
			if err != nil {
				s.log.Debug("restart by policy not done", "id", c.ID, "err", err)
				return
			}
			defer end()
			began := time.Now()
			s.log.Debug("restart by policy", "id", c.ID, "after", delay)
			if err := s.start(context.Background(), c); err != nil {
				// Stopped now (start's failure), with a die event, as
				// dockerd's failed restart.
				s.log.Warn("restart failed", "id", c.ID, "err", err)
				s.emit(c, "die", nil)
				return
			}
			s.log.Debug("restarted by policy", "id", c.ID, "took", time.Since(began))
		})
	}
}

// nextRestartDelay is the restart policy's delay after prev, for a run
// that lasted ran, as dockerd's restart manager: 100 ms, doubled at each
// restart up to a minute, and 100 ms again after a run of 10 s or more
// (before, the delay followed RestartCount, which only grows: after ten
// restarts, however far apart, every restart waited a minute).
func nextRestartDelay(prev, ran time.Duration) time.Duration {
	const first, most = 100 * time.Millisecond, time.Minute
	if ran >= 10*time.Second || prev <= 0 {
		return first
	}
	return min(prev*2, most)
}

// shouldRestart applies the restart policy. Call with c.mu held.
func (s *Service) shouldRestart(c *Container) bool {
	if c.ManuallyStopped || c.removed {
		return false
	}
	p := c.HostConfig.RestartPolicy
	switch p.Name {
	case container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		return true
	case container.RestartPolicyOnFailure:
		return c.State.ExitCode != 0 && (p.MaximumRetryCount == 0 || c.RestartCount < p.MaximumRetryCount)
	}
	return false
}

// Kill sends a signal to the container's init.
func (s *Service) Kill(ctx context.Context, idOrName, signal string) error {
	c, err := s.Get(idOrName)
	if err != nil {
		return err
	}
	if signal == "" {
		signal = "KILL" // docker kill's default
	}
	sig, err := signalByName(signal)
	if err != nil {
		return err
	}
	c.mu.Lock()
	running := c.State.Running
	if sig == syscall.SIGKILL || sig == syscall.SIGTERM || sig == syscall.SIGINT {
		c.ManuallyStopped = true
	}
	// A frozen container gets the signal only once thawed. As dockerd
	// (daemon/kill.go), a paused container is resumed after a SIGKILL or
	// its stop signal (after any signal when it has none set), so that
	// `kill` of a paused container ends it; another signal waits for an
	// unpause.
	unpause := c.State.Paused && (sig == syscall.SIGKILL || c.Config.StopSignal == "" || stopSignalIs(c.Config.StopSignal, sig))
	exits0 := c.exits
	c.mu.Unlock()
	if !running {
		return cerrdefs.ErrConflict.WithMessage(fmt.Sprintf("Cannot kill container: %s: Container %s is not running", idOrName, c.ID))
	}
	if err := s.task(c).Kill(ctx, sig); err != nil {
		return cerrdefs.ErrConflict.WithMessage(fmt.Sprintf("Cannot kill container: %s: Container %s is not running", idOrName, c.ID))
	}
	s.emit(c, "kill", map[string]string{"signal": fmt.Sprint(int(sig))})
	if unpause {
		if err := s.resume(ctx, c); err != nil {
			s.log.Warn("kill: cannot unpause the container", "id", c.ID, "err", err)
		}
	}
	if sig == syscall.SIGKILL {
		// As dockerd, a SIGKILL answers once the container has exited
		// (issue 13 item 6): an inspect or rm right after sees it stopped.
		s.waitExit(ctx, c, exits0, 10*time.Second)
	}
	return nil
}

// stopSignalIs reports whether the stop signal named name is sig.
func stopSignalIs(name string, sig syscall.Signal) bool {
	s, err := signalByName(name)
	return err == nil && s == sig
}

// Stop signals the container (its stop signal, then SIGKILL after the
// timeout) and waits until it has exited.
func (s *Service) Stop(ctx context.Context, idOrName string, signal string, timeout *int) error {
	c, err := s.Get(idOrName)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.ManuallyStopped = true
	// A start under way (a restart by policy) completes first: else it
	// would run the container behind the stop's back.
	c.waitStartLocked()
	if !c.State.Running {
		restarting := c.State.Restarting
		c.State.Restarting = false
		if restarting {
			c.State.Status = container.StateExited
			_ = c.save(s.dir(c.ID))
			c.notifyLocked()
		}
		c.mu.Unlock()
		if restarting {
			return nil
		}
		return cerrdefs.ErrNotModified.WithMessage("container already stopped")
	}
	if signal == "" {
		signal = c.Config.StopSignal
	}
	t := 10
	if c.Config.StopTimeout != nil {
		t = *c.Config.StopTimeout
	}
	paused := c.State.Paused
	_ = c.save(s.dir(c.ID))
	c.mu.Unlock()
	if timeout != nil {
		t = *timeout
	}
	sig, err := signalByName(signal)
	if err != nil {
		return err
	}
	task := s.task(c)
	if paused {
		_ = s.resume(ctx, c)
	}
	defer s.emit(c, "stop", nil)
	if t != 0 {
		if task.Kill(ctx, sig) == nil {
			s.emit(c, "kill", map[string]string{"signal": fmt.Sprint(int(sig))})
		}
		if t < 0 {
			return s.waitStopped(ctx, c, 0)
		}
		if err := s.waitStopped(ctx, c, time.Duration(t)*time.Second); err == nil {
			return nil
		}
	}
	if task.Kill(ctx, syscall.SIGKILL) == nil {
		s.emit(c, "kill", map[string]string{"signal": "9"})
	}
	return s.waitStopped(ctx, c, 0)
}

// waitExit waits until c has exited since its exit count was exits0, for
// up to d.
func (s *Service) waitExit(ctx context.Context, c *Container, exits0 int, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		c.mu.Lock()
		done := c.exits != exits0 || !c.State.Running || c.removed
		ch := c.changed
		c.mu.Unlock()
		if done {
			return
		}
		select {
		case <-ch:
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// waitStopped waits until c is not running (d = 0: no limit).
func (s *Service) waitStopped(ctx context.Context, c *Container, d time.Duration) error {
	var timer <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timer = t.C
	}
	for {
		c.mu.Lock()
		running := c.State.Running
		ch := c.changed
		c.mu.Unlock()
		if !running {
			return nil
		}
		select {
		case <-ch:
		case <-timer:
			return errors.New("timeout")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Restart stops then starts the container.
func (s *Service) Restart(ctx context.Context, idOrName, signal string, timeout *int) error {
	c, err := s.Get(idOrName)
	if err != nil {
		return err
	}
	// As dockerd does, a --rm container is not removed by the stop half
	// of a restart: AutoRemove is off until the stop is over. handleExit
	// reads it under c.mu together with the exit, so the exit the stop
	// waits for sees it off. HostConfig is replaced, never changed in
	// place (inspect hands the pointer out; update replaces it too).
	setAutoRemove := func(v bool) {
		h := *c.HostConfig
		h.AutoRemove = v
		c.HostConfig = &h
	}
	c.mu.Lock()
	autoRemove := c.HostConfig.AutoRemove
	wasRunning := c.State.Running
	if autoRemove {
		setAutoRemove(false)
	}
	c.mu.Unlock()
	err = s.Stop(ctx, c.ID, signal, timeout)
	c.mu.Lock()
	if autoRemove {
		setAutoRemove(true)
	}
	exited := autoRemove && wasRunning && !c.State.Running && !c.removed
	if exited {
		// The exit wrote the record without AutoRemove.
		_ = c.save(s.dir(c.ID))
	}
	c.mu.Unlock()
	if err != nil && !errors.Is(err, cerrdefs.ErrNotModified) {
		if exited {
			// The stop failed (its caller went away) after the exit:
			// remove the container as its exit would have.
			s.goBG(func() { _ = s.Remove(context.Background(), c.ID, RemoveOptions{Force: true, Volumes: true}) })
		}
		return err
	}
	end, err := s.beginStart(ctx, c, func() error {
		if c.State.Running {
			// Started meanwhile by another request.
			return cerrdefs.ErrNotModified
		}
		c.ManuallyStopped = false
		return nil
	})
	if errors.Is(err, cerrdefs.ErrNotModified) {
		s.emit(c, "restart", nil)
		return nil
	}
	if err != nil {
		return err
	}
	err = s.start(ctx, c)
	end()
	if err != nil {
		return err
	}
	s.emit(c, "restart", nil)
	return nil
}

// WaitResult is the answer of POST /containers/{id}/wait.
type WaitResult struct {
	StatusCode int64
	Error      string
}

// Wait returns a channel that yields once the condition holds:
// "not-running" (default), "next-exit" or "removed". The container is
// looked up now, so a missing one is an error the caller can report.
func (s *Service) Wait(ctx context.Context, idOrName string, condition container.WaitCondition) (<-chan WaitResult, error) {
	c, err := s.Get(idOrName)
	if err != nil {
		return nil, err
	}
	ch := make(chan WaitResult, 1)
	c.mu.Lock()
	exits0 := c.exits
	c.mu.Unlock()
	go func() {
		for {
			c.mu.Lock()
			st := c.State
			removed := c.removed
			changed := c.changed
			// An exit since the wait began ends not-running and next-exit
			// waits even when the restart policy restarts the container
			// (issue 13 item 8), with that exit's code, as dockerd.
			exited := c.exits != exits0
			code := st.ExitCode
			if exited {
				code = c.lastExitCode
			}
			c.mu.Unlock()
			// Like Docker, a failed start is no wait error: its exit code
			// (126, 127...) says it all.
			res := WaitResult{StatusCode: int64(code)}
			switch condition {
			case container.WaitConditionRemoved:
				if removed {
					ch <- res
					return
				}
			case container.WaitConditionNextExit:
				if exited || removed {
					ch <- res
					return
				}
			default:
				if (!st.Running && !st.Restarting) || exited || removed {
					ch <- res
					return
				}
			}
			select {
			case <-changed:
			case <-ctx.Done():
				close(ch)
				return
			}
		}
	}()
	return ch, nil
}

// RemoveOptions are DELETE /containers/{id}'s parameters.
type RemoveOptions struct {
	Force   bool
	Volumes bool
}

// Remove deletes a container: its writable layer, logs and record.
func (s *Service) Remove(ctx context.Context, idOrName string, o RemoveOptions) error {
	c, err := s.Get(idOrName)
	if err != nil {
		if id, ok := s.corruptID(idOrName); ok && cerrdefs.IsNotFound(err) {
			return s.removeCorrupt(ctx, id, o)
		}
		return err
	}
	c.mu.Lock()
	// One removal at a time: a second waits for the first's outcome.
	for c.removing && !c.removed {
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		c.mu.Lock()
	}
	if c.removed {
		c.mu.Unlock()
		return nil
	}
	running := c.State.Running || c.State.Restarting || c.starting
	paused := c.State.Paused
	if running && !o.Force {
		state := "running"
		switch {
		case c.State.Paused:
			state = "paused"
		case c.State.Restarting:
			state = "restarting"
		}
		c.mu.Unlock()
		if paused {
			return cerrdefs.ErrConflict.WithMessage(fmt.Sprintf("You cannot remove a paused container %s. Unpause and then stop the container before attempting removal or force remove", c.ID))
		}
		return cerrdefs.ErrConflict.WithMessage(fmt.Sprintf("You cannot remove a %s container %s. Stop the container before attempting removal or force remove", state, c.ID))
	}
	// From here no start begins (a restart by policy, a start request),
	// and one under way completes before the container is stopped: its
	// shim and mounts never outlive the record.
	c.removing = true
	c.ManuallyStopped = true
	c.waitStartLocked()
	running = c.State.Running
	c.mu.Unlock()
	if running {
		zero := 0
		if err := s.Stop(ctx, c.ID, "KILL", &zero); err != nil && !errors.Is(err, cerrdefs.ErrNotModified) {
			c.mu.Lock()
			c.removing = false
			c.notifyLocked()
			c.mu.Unlock()
			return err
		}
	}
	c.mu.Lock()
	if c.removed {
		c.mu.Unlock()
		return nil
	}
	c.State.Restarting = false
	c.State.Status = container.StateRemoving
	// The intent is saved before anything goes (issue 13 item 5): a
	// crash from here on leaves a record that a restart finishes.
	c.RemoveVolumes = c.RemoveVolumes || o.Volumes
	if err := c.save(s.dir(c.ID)); err != nil && !os.IsNotExist(err) {
		s.log.Warn("save the removal intent", "id", c.ID, "err", err)
	}
	// The state directory (and the copy, saying 'removing') goes next:
	// no later save writes into it.
	c.copyPath = ""
	removeVolumes := c.RemoveVolumes
	c.mu.Unlock()

	ctx = context.WithoutCancel(ctx)
	// A cp or export in progress finishes first.
	release := s.HoldRootfs(c.ID)
	defer release()
	// The shim may still be deleting runc's state (it does that after
	// reporting the exit, off the path of `run --rm`); it needs nothing in
	// the state directory for that, and finishes on its own. It, or an
	// exec the kill cut short (the shim's exec record, that exec's runc
	// log and PID file), may still write there as the directory goes
	// ('directory not empty': crash loop, CI): once the shim is gone
	// nothing does, and the directory is cleared again then. The shim is
	// taken hold of before the first clearing, which removes the PID file
	// naming it (a wait looked up afterwards found no shim and did not
	// wait).
	stateDir := s.stateDir(c.ID)
	shimGone := s.rt.WatchRelease(c.ID, stateDir)
	if err := s.clearStateDir(c.ID); err != nil {
		if shimGone != nil {
			if werr := shimGone(ctx); werr != nil {
				s.log.Warn("the shim of a removed container does not exit", "id", c.ID, "err", werr)
			}
			shimGone = nil
		}
		// What still fails is swept by the next start (removeStrayStateDirs).
		if err2 := s.clearStateDir(c.ID); err2 != nil {
			s.log.Warn("remove state directory", "id", c.ID, "err", err2, "first", err)
		}
	}
	if shimGone != nil {
		// Not waited for: let go of the shim (a done context).
		done, cancel := context.WithCancel(context.Background())
		cancel()
		_ = shimGone(done)
	}
	if err := s.cfg.Snapshots.RemoveContainer(ctx, c.ID); err != nil && !errors.Is(err, cerrdefs.ErrNotFound) {
		s.log.Warn("remove writable layer", "id", c.ID, "err", err)
	}
	s.releaseMounts(ctx, c, removeVolumes)
	if s.network != nil {
		if err := s.network.Release(ctx, c.ID); err != nil {
			s.log.Warn("network release", "id", c.ID, "err", err)
		}
	}
	// The record goes last: a crash before this point leaves a container
	// that a later remove finishes.
	// It is renamed aside first: a crash in the middle of deleting it
	// would leave a directory without its record (restore deletes what
	// is set aside).
	trash := filepath.Join(s.cfg.Root, trashPrefix+c.ID)
	if err := os.Rename(s.dir(c.ID), trash); err != nil && !os.IsNotExist(err) {
		c.mu.Lock()
		c.removing = false
		c.notifyLocked()
		c.mu.Unlock()
		return err
	}
	if err := mountutil.RemoveAll(trash); err != nil {
		s.log.Warn("remove the container's directory (a restart finishes it)", "id", c.ID, "err", err)
	}
	s.mu.Lock()
	delete(s.byID, c.ID)
	delete(s.byName, c.Name)
	s.mu.Unlock()
	if c.TopChain != "" {
		// Out of LayerUsage now: the layers of its image, if that was
		// removed (rmi -f), go.
		s.cfg.Images.ReleaseLayer(ctx, c.TopChain)
	}
	s.emit(c, "destroy", nil)
	c.mu.Lock()
	c.removed = true
	c.notifyLocked()
	c.mu.Unlock()
	return nil
}

// restore loads every record and reconciles it with reality: running
// containers keep running under their shims; ones that exited while
// berthd was away get their true exit status and restart policy. What is
// left to do is returned for New, once nothing else writes the service's
// maps: removals (unfinished ones, --rm containers that are not running),
// which New finishes before it returns, as dockerd does before it serves,
// and monitors of running containers, which it starts.
func (s *Service) restore(ctx context.Context) (removals, monitors []func(), err error) {
	entries, err := os.ReadDir(s.cfg.Root)
	if err != nil {
		return nil, nil, err
	}
	// Snapshots with no container directory are leftovers of a crash (a
	// create cut short, a --rm container's unsynced layer): remove them.
	// Unreadable records keep theirs.
	recorded := map[string]bool{}
	kept := entries[:0]
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if s.leftoverDir(e.Name()) {
			continue
		}
		recorded[e.Name()] = true
		kept = append(kept, e)
	}
	entries = kept
	if err := s.cfg.Snapshots.RemoveUnused(ctx, func(key string) bool { return recorded[key] }); err != nil {
		s.log.Warn("remove leftover container layers", "err", err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		c, err := loadContainer(filepath.Join(s.cfg.Root, e.Name()))
		if err != nil {
			if c = s.rebuildRecord(e.Name(), err); c == nil {
				s.noteCorrupt(e.Name(), err)
				continue
			}
		}
		if cp := filepath.Join(s.stateDir(c.ID), runCopyName); func() bool { _, err := os.Lstat(cp); return err == nil }() {
			c.copyPath = cp // saves from here on refresh it
		}
		if c.State.Status == container.StateRemoving {
			// A remove was cut short: finish it, once whatever still runs
			// of the container (a start beside the removal) has ended.
			s.endLeftovers(ctx, c)
			s.byID[c.ID] = c
			s.byName[c.Name] = c.ID
			removals = append(removals, func() {
				_ = s.Remove(context.Background(), c.ID, RemoveOptions{Force: true, Volumes: c.RemoveVolumes})
			})
			continue
		}
		s.byID[c.ID] = c
		s.byName[c.Name] = c.ID
		if !c.State.Running {
			// A start cut short by the crash may have left a shim, a
			// running container, a mounted root filesystem.
			switch s.reconcileStopped(ctx, c) {
			case adopted:
				t := s.task(c)
				monitors = append(monitors, func() { s.monitor(c, t, nil) }, func() { s.resumeHealth(c) })
				continue
			case exitRecorded:
				continue
			}
		}
		if !c.State.Running && !c.State.Restarting {
			if c.HostConfig.AutoRemove {
				// A --rm container that is not running (berthd or the host
				// went down before its removal): Docker removes these when
				// it starts.
				removals = append(removals, func() { _ = s.Remove(context.Background(), c.ID, RemoveOptions{Force: true, Volumes: true}) })
			}
			continue
		}
		if c.State.Running {
			if t, err := s.rt.Load(ctx, c.ID, s.stateDir(c.ID)); err == nil {
				c.setTask(t)
				s.thawCommitPause(ctx, c)
				s.reconcilePause(c)
				monitors = append(monitors, func() { s.monitor(c, t, nil) }, func() { s.resumeHealth(c) })
				continue
			}
		}
		st, err := s.rt.LastExit(ctx, c.ID, s.stateDir(c.ID))
		if err != nil {
			// The shim is gone and left no exit status: what it left of
			// the container is ended, as when a shim dies under berthd.
			st = s.endOrphan(ctx, c)
		}
		// Before serving anything: nobody may see the stale "running".
		s.handleExit(c, st)
	}
	return removals, monitors, nil
}

// reconcileStopped brings a record that says the container is not running
// in line with what a crash may have left (issue 13 items 1 and 2): a
// start cut short leaves a shim, perhaps a container that runs, its root
// filesystem mounted, its network set up. A container that runs is
// adopted: recorded running with its PID, for the caller to watch. A
// shim still waiting to be asked to start is ended. A
// container that ran and exited while berthd was away gets its exit
// recorded (and its restart policy applied). Whatever the outcome, a
// container that does not run keeps no mounted root filesystem. Called by
// restore, before anything is served, for every record not running.
func (s *Service) reconcileStopped(ctx context.Context, c *Container) reconciled {
	stateDir := s.stateDir(c.ID)
	if _, err := os.Stat(stateDir); err != nil {
		return asRecorded
	}
	var exit *runtime.ExitStatus
	if t, err := s.rt.Load(ctx, c.ID, stateDir); err == nil {
		st, err := s.settledState(ctx, t)
		switch {
		case cerrdefs.IsNotFound(err):
			// Gone meanwhile: what it recorded, below.
			if st, err := s.rt.LastExit(ctx, c.ID, stateDir); err == nil {
				exit = st
			}
		case err != nil:
			s.log.Warn("restore: a shim of a stopped container lives but has not answered for long; ending it", "id", c.ID, "err", err)
			_ = t.Delete(ctx)
		case st.Exit != nil:
			exit = st.Exit
		case st.Pid > 0:
			c.setTask(t)
			c.mu.Lock()
			c.State = State{Status: container.StateRunning, Running: true, Pid: st.Pid, StartedAt: time.Now().UTC(), FinishedAt: c.State.FinishedAt}
			c.HasBeenStarted = true
			c.ManuallyStopped = false
			c.copyPath = filepath.Join(stateDir, runCopyName) // as start's
			if err := c.save(s.dir(c.ID)); err != nil {
				s.log.Warn("restore: save the adopted container", "id", c.ID, "err", err)
			}
			c.mu.Unlock()
			s.log.Info("restore: adopted a container started while berthd went down", "id", c.ID, "pid", st.Pid)
			return adopted
		default:
			// Spawned, never asked to start: it would wait forever.
			_ = t.Delete(ctx)
		}
	} else if st, err := s.rt.LastExit(ctx, c.ID, stateDir); err == nil {
		exit = st
	}
	c.mu.Lock()
	ranSince := exit != nil && exit.Pid > 0 && exit.ExitedAt.After(c.State.FinishedAt) && exit.ExitedAt.After(c.State.StartedAt)
	if ranSince {
		// handleExit computes the run's length from StartedAt.
		c.State.StartedAt = exit.ExitedAt
		c.HasBeenStarted = true
	}
	c.mu.Unlock()
	if ranSince {
		s.log.Info("restore: a container started and exited while berthd was down", "id", c.ID, "exitCode", exit.ExitCode)
		s.handleExit(c, exit)
		return exitRecorded
	}
	if mps, _ := mountutil.MountsUnder(stateDir); len(mps) > 0 {
		s.log.Info("restore: unmounting the root filesystem of a start cut short", "id", c.ID)
		if err := s.unmountRunMounts(c.ID); err != nil {
			s.log.Warn("restore: unmount root filesystem", "id", c.ID, "err", err)
		}
		s.unmountVolumes(ctx, c)
	}
	return asRecorded
}

// leftoverDir removes the container directory name if a create or a
// remove cut short left it: a staging directory (Create renames it into
// place with its record), a directory Remove set aside to delete, or, from before staging, a directory with no record and
// nothing else but a temporary of one. It reports whether it was such.
func (s *Service) leftoverDir(name string) bool {
	dir := filepath.Join(s.cfg.Root, name)
	if !strings.HasPrefix(name, stagingPrefix) && !strings.HasPrefix(name, trashPrefix) {
		if _, err := os.Lstat(filepath.Join(dir, recordName)); !os.IsNotExist(err) {
			return false
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			return false
		}
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), "."+recordName+".") {
				return false
			}
		}
	}
	s.log.Info("restore: removing the directory of a create or remove cut short", "dir", dir)
	if err := mountutil.RemoveAll(dir); err != nil {
		s.log.Warn("restore: remove the directory of a create or remove cut short", "dir", dir, "err", err)
	}
	return true
}

// endLeftovers ends what may still run of a container whose removal a
// crash cut short: its shim (waiting out a start under way), the
// container's processes, runc's state, its mounts. Called by restore.
func (s *Service) endLeftovers(ctx context.Context, c *Container) {
	stateDir := s.stateDir(c.ID)
	if _, err := os.Stat(stateDir); err != nil {
		return
	}
	if t, err := s.rt.Load(ctx, c.ID, stateDir); err == nil {
		st, err := s.settledState(ctx, t)
		if err == nil && st.Exit == nil && st.Pid > 0 {
			_ = t.Kill(ctx, syscall.SIGKILL)
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if exited, err := t.Wait(wctx); err == nil {
				<-exited
			}
			cancel()
		}
		// Ends a shim that never started or does not answer; waits for
		// one whose task exited to be gone.
		if err := t.Delete(ctx); err != nil {
			s.log.Warn("restore: the shim of a removed container does not exit", "id", c.ID, "err", err)
		}
	}
	// Whatever the shim left (it may have died with the container
	// running): processes in the cgroup, runc's state.
	s.endOrphan(ctx, c)
	if err := s.unmountRunMounts(c.ID); err != nil {
		s.log.Warn("restore: unmount root filesystem", "id", c.ID, "err", err)
	}
	s.unmountVolumes(ctx, c)
}

// reconciled is what reconcileStopped made of a record.
type reconciled int

const (
	asRecorded   reconciled = iota // nothing ran: the record stands
	adopted                        // the container runs: recorded running, to be watched
	exitRecorded                   // it ran and exited: recorded (restart policy applied)
)

// settledState asks a task its state, waiting out a start under way (runc
// run) for up to a minute. A shim that lives but is slow to answer (a
// loaded machine) is waited for too, up to shimDeafAfter: past that it is
// stuck, not slow. An error wrapping errdefs.ErrNotFound: the shim is
// gone.
func (s *Service) settledState(ctx context.Context, t runtime.Task) (runtime.State, error) {
	began := time.Now()
	told := false
	for {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := t.State(qctx)
		cancel()
		switch {
		case err == nil && (!st.Starting || time.Since(began) > time.Minute):
			return st, nil
		case err != nil && (!cerrdefs.IsUnavailable(err) || time.Since(began) > shimDeafAfter || ctx.Err() != nil):
			return st, err
		case err != nil && !told:
			told = true
			s.log.Info("restore: a shim is slow to answer; waiting for it", "id", t.ID(), "err", err)
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return runtime.State{}, ctx.Err()
		}
	}
}

// shimDeafAfter is how long a shim whose process lives may leave berthd
// unanswered before it is taken for stuck rather than slow.
var shimDeafAfter = 2 * time.Minute
