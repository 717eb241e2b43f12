package container

import (
	"context"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/berth/berth/filters"
)

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
