package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	cerrdefs "github.com/containerd/errdefs"
)

// Unreadable records (issue 12, item 11). A container directory whose
// record cannot be read (a corrupt or missing config.v2.json) is no
// container the API can show, but it still holds a writable layer, a log,
// perhaps a running process under its shim. berthd keeps its ID and the
// reason (Service.corrupt), says so at start and in /info's Warnings, and
// lets `rm <id>` remove what it holds. dockerd only logs it, and then
// never speaks of it again.

// runCopyName is the copy of a container's record that start leaves in
// its state directory and every save refreshes (Container.copyPath) until
// the directory goes (the next start, rm): a record damaged at rest is
// rebuilt from it (issue 13 item 9), so that the container stays listed
// and keeps its resources, with its exit, a stop, a rename or an update
// made since its start.
const runCopyName = recordName

// rebuildRecord rebuilds the unreadable record of container id (why: the
// error) from the copy in its state directory, if there is one: the damaged
// record is kept aside, the rebuilt one written, and the damage reported.
// nil: nothing to rebuild from. Called by restore.
func (s *Service) rebuildRecord(id string, why error) *Container {
	if !hexID(id) {
		return nil
	}
	c, err := loadContainer(s.stateDir(id))
	if err != nil || c.ID != id {
		return nil
	}
	path := filepath.Join(s.dir(id), recordName)
	kept := path + ".damaged"
	if err := os.Rename(path, kept); err != nil && !os.IsNotExist(err) {
		s.log.Warn("restore: keep a damaged record aside", "path", path, "err", err)
		return nil
	}
	if err := c.save(s.dir(id)); err != nil {
		s.log.Warn("restore: write a rebuilt record", "path", path, "err", err)
		return nil
	}
	msg := fmt.Sprintf("container %s: its record %s was damaged (%v): rebuilt from the copy kept in its state directory; the damaged record is kept as %s", id, path, why, kept)
	s.log.Warn(msg)
	s.mu.Lock()
	s.rebuilt = append(s.rebuilt, msg)
	s.mu.Unlock()
	return c
}

func hexID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, r := range s {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}

// noteCorrupt records an unreadable record found by restore.
func (s *Service) noteCorrupt(id string, err error) {
	s.log.Warn("container record unreadable: the container is not shown; `rm` with its ID removes it", "id", id, "err", err)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.corrupt == nil {
		s.corrupt = map[string]error{}
	}
	s.corrupt[id] = err
}

// Warnings are /info's words on unreadable container records.
func (s *Service) Warnings() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for id, err := range s.corrupt {
		out = append(out, fmt.Sprintf("WARNING: container %s has an unreadable record (%v): it is not listed; `docker rm %s` removes it", id, err, id))
	}
	for _, m := range s.rebuilt {
		out = append(out, "WARNING: "+m)
	}
	sort.Strings(out)
	return out
}

// corruptID finds ref (a full ID or a unique prefix) among the unreadable
// records.
func (s *Service) corruptID(ref string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, ok := s.corrupt[ref]; ok {
		return ref, true
	}
	found := ""
	for id := range s.corrupt {
		if ref != "" && strings.HasPrefix(id, ref) {
			if found != "" {
				return "", false
			}
			found = id
		}
	}
	return found, found != ""
}

// removeCorrupt removes what an unreadable record's container holds: its
// process (with force, through its shim), mount, state, writable layer,
// network sandbox and directory. Its volumes' holds were dropped at start
// (volume reconcile knows no such container).
func (s *Service) removeCorrupt(ctx context.Context, id string, o RemoveOptions) error {
	stateDir := s.stateDir(id)
	if t, err := s.rt.Load(ctx, id, stateDir); err == nil {
		if !o.Force {
			return cerrdefs.ErrConflict.WithMessage(fmt.Sprintf("You cannot remove container %s: its record is unreadable and its process may still run. Force remove (-f) to kill it", id))
		}
		if err := t.Kill(ctx, syscall.SIGKILL); err != nil {
			s.log.Warn("kill the container of an unreadable record", "id", id, "err", err)
		}
		if err := s.rt.WaitReleased(ctx, id, stateDir); err != nil {
			return err
		}
	}
	ctx = context.WithoutCancel(ctx)
	release := s.HoldRootfs(id)
	defer release()
	if err := s.clearStateDir(id); err != nil {
		s.log.Warn("remove state directory", "id", id, "err", err)
	}
	if err := s.cfg.Snapshots.RemoveContainer(ctx, id); err != nil && !errors.Is(err, cerrdefs.ErrNotFound) {
		s.log.Warn("remove writable layer", "id", id, "err", err)
	}
	if s.network != nil {
		if err := s.network.Release(ctx, id); err != nil {
			s.log.Warn("network release", "id", id, "err", err)
		}
	}
	if err := os.RemoveAll(s.dir(id)); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.corrupt, id)
	s.mu.Unlock()
	if p := s.publisher(); p != nil {
		p.Publish("container", "destroy", id, map[string]string{})
	}
	return nil
}
