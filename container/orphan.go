package container

import (
	"context"
	"errors"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth/berth/runtime"
)

// A shim that dies (kill -9, OOM killer) leaves its container with no
// supervisor: nobody holds its stdio, writes its log or records its exit,
// and its processes are reparented to berthd, a child subreaper (issue 13
// item 4). As dockerd does when containerd-shim dies, berthd ends the
// container: the runtime (berth-shim delete) thaws and kills it and deletes
// runc's state, berthd kills what is left in the container's cgroup
// (thawing it: a paused container's processes die only once thawed), reaps
// the processes that became its children, and records exit code 137
// (SIGKILL).

// endOrphan kills and reaps what is left of c after its shim died, and
// returns the exit to record.
func (s *Service) endOrphan(ctx context.Context, c *Container) *runtime.ExitStatus {
	ctx = context.WithoutCancel(ctx)
	// Its processes now, to reap those that were reparented to berthd.
	pids, _ := s.containerPids(c.ID)
	// The runtime thaws a frozen task (a frozen process dies only once
	// thawed), kills it and removes its state and cgroups, as the shim
	// would have.
	if err := s.rt.Delete(ctx, c.ID, s.stateDir(c.ID)); err != nil {
		s.log.Debug("delete the task after the shim died", "id", c.ID, "err", err)
	}
	killed := map[int]bool{}
	for _, p := range pids {
		killed[p] = true
	}
	// What the runtime could not end (its cgroup kept), ended here.
	deadline := time.Now().Add(10 * time.Second)
	for {
		left, _ := s.containerPids(c.ID)
		if len(left) == 0 {
			break
		}
		for _, p := range left {
			_ = unix.Kill(p, unix.SIGKILL)
			killed[p] = true
		}
		// A paused container's processes die only once thawed (the
		// runtime thaws what it knows of; not a task whose state it
		// lost), as kill of a paused container thaws it.
		s.thaw(c.ID)
		if time.Now().After(deadline) {
			s.log.Warn("processes of a container whose shim died do not exit", "id", c.ID, "pids", left)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Those that were berthd's children now (reparented) are reaped once
	// they are dead; for the others Wait4 answers ECHILD at once.
	for p := range killed {
		for {
			var ws unix.WaitStatus
			wpid, err := unix.Wait4(p, &ws, unix.WNOHANG, nil)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil || wpid != 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond) // ours, not dead yet
		}
	}
	if len(killed) > 0 {
		s.log.Warn("the shim of a container died: its processes were killed", "id", c.ID, "pids", len(killed))
	}
	return &runtime.ExitStatus{ExitCode: 137, ExitedAt: time.Now().UTC()}
}
