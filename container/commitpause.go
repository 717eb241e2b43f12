package container

import (
	"context"
	"fmt"
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
// is done).
func (s *Service) pauseForCommit(ctx context.Context, c *Container) (release func(), err error) {
	// c.mu is held across runc, as Pause does: the count and the freezer
	// change together.
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.State.Running || c.State.Paused {
		return func() {}, nil
	}
	if c.commitPauses == 0 {
		c.CommitPaused = true
		err := c.save(s.dir(c.ID))
		if err == nil {
			err = s.task(c).Pause(ctx)
		}
		if err != nil {
			c.CommitPaused = false
			_ = c.save(s.dir(c.ID))
			return nil, fmt.Errorf("pause container %s for commit: %w", c.ID, err)
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
	}, nil
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
