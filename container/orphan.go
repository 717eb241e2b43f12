package container

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth/berth/runtime/shim"
)

// A shim that dies (kill -9, OOM killer) leaves its container with no
// supervisor: nobody holds its stdio, writes its log or records its exit,
// and its processes are reparented to berthd, a child subreaper (issue 13
// item 4). As dockerd does when containerd-shim dies, berthd ends the
// container: it kills every process in the container's cgroup, reaps the
// ones that became its children, deletes runc's state, and records exit
// code 137 (SIGKILL).

// endOrphan kills and reaps what is left of c after its shim died, and
// returns the exit to record.
func (s *Service) endOrphan(ctx context.Context, c *Container) *shim.ExitStatus {
	ctx = context.WithoutCancel(ctx)
	c.mu.Lock()
	frozen := c.State.Paused || c.CommitPaused
	c.mu.Unlock()
	if frozen {
		// A frozen process dies only once thawed.
		_ = s.runcDirect(ctx, "resume", c.ID)
	}
	killed := map[int]bool{}
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids, _ := s.containerPids(c.ID)
		if len(pids) == 0 {
			break
		}
		for _, p := range pids {
			if !killed[p] {
				_ = unix.Kill(p, unix.SIGKILL)
				killed[p] = true
			}
		}
		if time.Now().After(deadline) {
			s.log.Warn("processes of a container whose shim died do not exit", "id", c.ID, "pids", pids)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Those that were berthd's children now (reparented) are reaped;
	// for the others Wait4 answers ECHILD at once.
	for p := range killed {
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(p, &ws, unix.WNOHANG, nil)
			if !errors.Is(err, unix.EINTR) {
				break
			}
		}
	}
	// runc's state and cgroups, which the shim would have deleted.
	if err := s.runcDirect(ctx, "delete", "--force", c.ID); err != nil {
		s.log.Debug("runc delete after the shim died", "id", c.ID, "err", err)
	}
	if len(killed) > 0 {
		s.log.Warn("the shim of a container died: its processes were killed", "id", c.ID, "pids", len(killed))
	}
	return &shim.ExitStatus{ExitCode: 137, ExitedAt: time.Now().UTC()}
}

// runcDirect runs the OCI runtime itself: with the shim dead there is no
// task to ask.
func (s *Service) runcDirect(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, s.cfg.Runtime, append([]string{"--root", s.runcRoot()}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %s", strings.Join(args, " "), strings.TrimSpace(string(out)))
	}
	return nil
}
