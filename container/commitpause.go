package container

import (
	"context"
)

// Pauses for commit (issue 13 item 3). Commit freezes a running container
// while it reads its writable layer. The pause is berthd's, not the
// user's: the record says so (CommitPaused) before the container is
// frozen, and until it is thawed, so that whoever finds the record after
// a crash (restore) thaws it; a pause the user asked for (State.Paused)
// is left alone. Concurrent commits share one pause: the first freezes,
// the last thaws.

// pauseForCommit freezes c for a commit, unless it is not running or
// already paused; release thaws it (once every commit sharing the pause
// is done). A pause the runtime refuses (the container is exiting) is no
// error: the commit goes on unpaused, as dockerd's.
func (s *Service) pauseForCommit(ctx context.Context, c *Container) (release func()) {
	// c.mu is held across runc, as Pause does: the count and the freezer
	// change together.
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.State.Running || c.State.Paused {
		return func() {}
	}
	if c.commitPauses == 0 {
		c.CommitPaused = true
		err := c.save(s.dir(c.ID))
		if err == nil {
			err = s.task(c).Pause(ctx)
		}
		if err != nil {
			// The container may be exiting: its record still says
			// running, but its shim or runc state is already gone
			// (issue 14 item 7). dockerd's commit ignores a failed
			// pause and reads the layer as it is; so does berth.
			c.CommitPaused = false
			_ = c.save(s.dir(c.ID))
			s.log.Info("commit without pause", "id", c.ID, "err", err)
			return func() {}
		}
	}
	c.commitPauses++
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.commitPauses--
		if c.commitPauses > 0 || !c.CommitPaused {
			return
		}
		if c.State.Running {
			if err := s.task(c).Resume(context.WithoutCancel(ctx)); err != nil {
				s.log.Warn("thaw after commit", "id", c.ID, "err", err)
				return // the mark stays: the next berthd tries again
			}
		}
		c.CommitPaused = false
		_ = c.save(s.dir(c.ID))
	}
}

// thawCommitPause undoes the pause of a commit a crash cut short; restore
// calls it for every running container whose record says so.
func (s *Service) thawCommitPause(ctx context.Context, c *Container) {
	if !c.CommitPaused {
		return
	}
	// A crash may have come before the freeze: resuming a container that
	// runs is refused, harmlessly.
	if err := s.task(c).Resume(ctx); err != nil {
		s.log.Info("restore: thaw a container a commit had paused", "id", c.ID, "err", err)
	} else {
		s.log.Info("restore: thawed a container a commit cut short had paused", "id", c.ID)
	}
	c.mu.Lock()
	c.CommitPaused = false
	_ = c.save(s.dir(c.ID))
	c.mu.Unlock()
}
