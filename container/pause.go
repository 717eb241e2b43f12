package container

import (
	"context"
	"fmt"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"

	"github.com/berth/berth/filters"
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

// Rename gives a container a new name.
func (s *Service) Rename(ctx context.Context, idOrName, newName string) error {
	c, err := s.Get(idOrName)
	if err != nil {
		return err
	}
	if newName == "" {
		return cerrdefs.ErrInvalidArgument.WithMessage("Neither old nor new names may be empty")
	}
	s.mu.Lock()
	name, err := s.reserveNameLocked(newName, c.ID)
	if err != nil {
		s.mu.Unlock()
		if c.Name == "/"+strings.TrimPrefix(newName, "/") {
			return cerrdefs.ErrConflict.WithMessage("Renaming a container with the same name as its current name")
		}
		return err
	}
	c.mu.Lock()
	old := c.Name
	c.Name = name
	err = c.save(s.dir(c.ID))
	if err != nil {
		c.Name = old
	}
	c.mu.Unlock()
	if err != nil {
		delete(s.byName, name)
	} else {
		delete(s.byName, old)
	}
	s.mu.Unlock()
	if err == nil {
		s.emit(c, "rename", map[string]string{"oldName": old})
	}
	return err
}

// Resize sets the container's TTY size.
func (s *Service) Resize(ctx context.Context, idOrName string, h, w uint16) error {
	c, err := s.Get(idOrName)
	if err != nil {
		return err
	}
	c.mu.Lock()
	running, tty := c.State.Running, c.Config.Tty
	c.mu.Unlock()
	if !running {
		return cerrdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is not running", c.ID))
	}
	if !tty {
		// No terminal to size: a no-op, as dockerd answers it (200).
		return nil
	}
	return s.task(c).Resize(ctx, w, h)
}

// Prune removes every stopped container that matches the filters
// ("label", "label!", "until").
func (s *Service) Prune(ctx context.Context, args filters.Args) (*container.PruneReport, error) {
	if err := args.Validate("label", "label!", "until"); err != nil {
		return nil, err
	}
	until, err := args.Until(time.Now())
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	var ids []string
	for id, c := range s.byID {
		c.mu.Lock()
		keep := c.State.Running || c.State.Restarting ||
			!args.MatchLabels("label", c.Config.Labels) ||
			(args.Has("label!") && matchesAnyLabel(args.Get("label!"), c.Config.Labels)) ||
			(!until.IsZero() && c.Created.After(until))
		if !keep {
			ids = append(ids, id)
		}
		c.mu.Unlock()
	}
	s.mu.RUnlock()
	rep := &container.PruneReport{ContainersDeleted: []string{}}
	for _, id := range ids {
		rw, _ := s.cfg.Snapshots.Usage(ctx, id)
		if err := s.Remove(ctx, id, RemoveOptions{}); err == nil {
			rep.ContainersDeleted = append(rep.ContainersDeleted, id)
			rep.SpaceReclaimed += uint64(rw)
		}
	}
	return rep, nil
}

// matchesAnyLabel reports whether labels has any of the "k" or "k=v" given.
func matchesAnyLabel(want []string, labels map[string]string) bool {
	for _, f := range want {
		k, v, hasValue := strings.Cut(f, "=")
		if got, ok := labels[k]; ok && (!hasValue || got == v) {
			return true
		}
	}
	return false
}
