package shim

import (
	"errors"
	"os/exec"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// reaper collects the exit status of every child of the shim, one loop for
// all: the container's init, its exec processes (reparented to the shim, a
// child subreaper, when `runc exec --detach` exits) and the runc commands
// the shim runs once the container is up (exec, pause, resume, update).
// Whoever waits for a PID claims it; an exit nobody has claimed yet (a
// process that ended before its PID was known) is kept a while for a late
// claim.
type reaper struct {
	// subreaper: this process is a child subreaper (the berth-shim
	// binary), so it reaps every child with one loop. Otherwise (a shim
	// served in a test's process, whose other children are not ours)
	// each claim waits for its own PID.
	subreaper bool
	once      sync.Once
	mu        sync.Mutex
	waiting   map[int]chan unix.WaitStatus
	unclaimed map[int]unclaimedExit
	kick      chan struct{} // a child was started: ECHILD no longer holds
}

type unclaimedExit struct {
	ws unix.WaitStatus
	at time.Time
}

// unclaimedTTL is how long an exit nobody claimed is kept: a claim comes
// right after runc has told the PID (it has exited by then).
const unclaimedTTL = time.Minute

func newReaper() *reaper {
	r := &reaper{waiting: map[int]chan unix.WaitStatus{}, unclaimed: map[int]unclaimedExit{}, kick: make(chan struct{}, 1)}
	var flag int32
	r.subreaper = getSubreaper(&flag) == nil && flag != 0
	return r
}

// getSubreaper reads PR_GET_CHILD_SUBREAPER (it writes to a pointer).
func getSubreaper(flag *int32) error {
	return unix.Prctl(unix.PR_GET_CHILD_SUBREAPER, uintptr(unsafe.Pointer(flag)), 0, 0, 0)
}

// run starts the loop (once). Before it runs, children are waited for by
// whoever started them (the start's `runc run`).
func (r *reaper) run() {
	if r.subreaper {
		r.once.Do(func() { go r.loop() })
	}
}

// waitOne waits for one PID without the loop: a child's exit by wait4, a
// process that is not our child by polling until it is gone (lost).
func (r *reaper) waitOne(pid int, child bool, ch chan unix.WaitStatus) {
	go func() {
		for child {
			var ws unix.WaitStatus
			_, err := unix.Wait4(pid, &ws, 0, nil)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err == nil {
				ch <- ws
				return
			}
			break
		}
		for unix.Kill(pid, 0) != unix.ESRCH {
			time.Sleep(50 * time.Millisecond)
		}
		ch <- lostStatus
	}()
}

func (r *reaper) loop() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		switch {
		case err == nil:
			r.deliver(pid, ws)
		case errors.Is(err, unix.EINTR):
		case errors.Is(err, unix.ECHILD):
			// Nothing to reap. A claimed PID that is gone was never our
			// child (a shim that is no subreaper, as in tests): lost.
			select {
			case <-r.kick:
			case <-time.After(100 * time.Millisecond):
				r.dropLost()
			}
		default:
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func (r *reaper) deliver(pid int, ws unix.WaitStatus) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ch, ok := r.waiting[pid]; ok {
		delete(r.waiting, pid)
		ch <- ws
		return
	}
	now := time.Now()
	for p, u := range r.unclaimed {
		if now.Sub(u.at) > unclaimedTTL {
			delete(r.unclaimed, p)
		}
	}
	r.unclaimed[pid] = unclaimedExit{ws: ws, at: now}
}

// lostStatus is the wait status of a process that ended out of our
// sight: exit code 255.
const lostStatus = unix.WaitStatus(255 << 8)

// dropLost answers the claims of PIDs that no longer exist.
func (r *reaper) dropLost() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for pid, ch := range r.waiting {
		if unix.Kill(pid, 0) == unix.ESRCH {
			delete(r.waiting, pid)
			ch <- lostStatus
		}
	}
}

// claim returns a channel that yields pid's exit status (at once if it
// has already been reaped).
func (r *reaper) claim(pid int) <-chan unix.WaitStatus {
	ch := make(chan unix.WaitStatus, 1)
	if !r.subreaper {
		r.waitOne(pid, false, ch)
		return ch
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if u, ok := r.unclaimed[pid]; ok {
		delete(r.unclaimed, pid)
		ch <- u.ws
		return ch
	}
	r.waiting[pid] = ch
	r.wake()
	return ch
}

// start starts cmd and claims its exit, so the loop cannot take it first.
// cmd's stdio must be nil or *os.File (nothing for cmd.Wait to finish):
// cmd.Wait is never called.
func (r *reaper) start(cmd *exec.Cmd) (<-chan unix.WaitStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ch := make(chan unix.WaitStatus, 1)
	if !r.subreaper {
		r.waitOne(cmd.Process.Pid, true, ch)
		return ch, nil
	}
	r.waiting[cmd.Process.Pid] = ch
	r.wake()
	return ch, nil
}

func (r *reaper) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// exitCode is the shell's exit code for a wait status.
func exitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
