package container

import (
	"context"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
)

// Pause freezes every process of the container.
func (s *Service) Pause(ctx context.Context, idOrName string) error {
	c, err := s.Get(idOrName)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.State.Running {
		return cerrdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is not running", c.ID))
	}
	if c.State.Paused {
		return cerrdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is already paused", c.ID))
	}
	if err := s.task(c).Pause(ctx); err != nil {
		return err
	}
	c.State.Paused = true
	c.State.Status = container.StatePaused
	s.updateHealthLocked(c)
	_ = c.save(s.dir(c.ID))
	c.notifyLocked()
	s.emitLocked(c, "pause", nil)
	return nil
}

// Unpause thaws a paused container.
func (s *Service) Unpause(ctx context.Context, idOrName string) error {
	c, err := s.Get(idOrName)
	if err != nil {
		return err
	}
	c.mu.Lock()
	paused := c.State.Paused
	c.mu.Unlock()
	if !paused {
		return cerrdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is not paused", c.ID))
	}
	return s.resume(ctx, c)
}

func (s *Service) resume(ctx context.Context, c *Container) error {
	if err := s.task(c).Resume(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.State.Paused = false
	if c.State.Running {
		c.State.Status = container.StateRunning
	}
	s.updateHealthLocked(c)
	_ = c.save(s.dir(c.ID))
	c.notifyLocked()
	s.emitLocked(c, "unpause", nil)
	return nil
}
