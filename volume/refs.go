package volume

import (
	"context"
	"errors"
	"fmt"
	"slices"

	cerrdefs "github.com/containerd/errdefs"
)

// References follow a container's life, as Docker's do:
//
//	container create/start ─▶ Acquire   reference + mount user (mounts type/device/o volumes)
//	container stop         ─▶ Unmount   still a reference; no longer a mount user
//	container rm           ─▶ Release   no longer a reference
//
// A volume with references cannot be removed or pruned, whether its
// containers run or not. A volume with mount options is mounted while it
// has mount users, so a tmpfs volume's content lives as long as some
// container using it runs. Both lists are persisted before the call
// returns, so they survive a daemon restart; Reconcile then corrects them
// against the containers that really exist and run.

// Acquire records that container containerID uses the volume and needs it
// mounted, mounts a volume with mount options if it is not already, and
// returns the host path to mount into the container. Acquiring again with
// the same containerID changes nothing. A missing volume is Docker's
// "get <name>: no such volume" (not found).
func (s *Service) Acquire(ctx context.Context, name, containerID string) (string, error) {
	if containerID == "" {
		return "", cerrdefs.ErrInvalidArgument.WithMessage("acquire " + name + ": empty container ID")
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	e, err := s.lookup("get", name)
	if err != nil {
		return "", err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.removed {
		return "", noSuchVolume("get", name)
	}
	mountedNow := false
	if needsMount(e.rec.Options) && !e.mounted {
		if err := mountVolume(e.rec.Options, e.dataPath()); err != nil {
			return "", err
		}
		e.mounted, mountedNow = true, true
	}
	if !slices.Contains(e.rec.Refs, containerID) || !slices.Contains(e.rec.Users, containerID) {
		err := e.updateLocked(func(r *record) {
			if !slices.Contains(r.Refs, containerID) {
				r.Refs = append(r.Refs, containerID)
			}
			if !slices.Contains(r.Users, containerID) {
				r.Users = append(r.Users, containerID)
			}
		})
		if err != nil {
			if mountedNow && unmountAll(e.dataPath()) == nil {
				e.mounted = false
			}
			return "", fmt.Errorf("acquire %s: %w", name, err)
		}
	}
	return e.dataPath(), nil
}

// Unmount records that containerID no longer needs the volume mounted (its
// container stopped) while keeping its reference. The last mount user going
// unmounts a volume with mount options. Unknown volumes and containers are
// not an error.
func (s *Service) Unmount(ctx context.Context, name, containerID string) error {
	return s.update(name, func(e *entry) error {
		return e.dropLocked(nil, func(id string) bool { return id == containerID })
	})
}

// Release drops containerID's reference (its container was removed), and
// its mount use if any. Releasing an unknown volume or reference is not an
// error, so callers can retry.
func (s *Service) Release(ctx context.Context, name, containerID string) error {
	is := func(id string) bool { return id == containerID }
	return s.update(name, func(e *entry) error { return e.dropLocked(is, is) })
}

// Reconcile corrects references after a daemon restart: state reports
// whether a container exists and whether it runs, holders lists, per
// volume, the containers whose records name it. References of containers
// that no longer exist are dropped, and mount uses of containers that do
// not run, unmounting what nobody needs any more. References that the
// containers' records show and the volume's record lacks (a record rebuilt
// after damage) are added back, so a volume a container holds is never
// removed or pruned. state is called with a volume locked and must not
// call back into the Service.
func (s *Service) Reconcile(ctx context.Context, state func(containerID string) (exists, running bool), holders map[string][]string) error {
	gone := func(id string) bool { ok, _ := state(id); return !ok }
	stopped := func(id string) bool { _, run := state(id); return !run }
	var errs []error
	for _, sn := range s.snapshots() {
		if err := ctx.Err(); err != nil {
			return err
		}
		sn.e.mu.Lock()
		if err := sn.e.dropLocked(gone, stopped); err != nil {
			errs = append(errs, err)
		}
		if err := sn.e.addHoldersLocked(holders[sn.e.rec.Name], state); err != nil {
			errs = append(errs, err)
		}
		sn.e.mu.Unlock()
	}
	return errors.Join(errs...)
}

// addHoldersLocked adds the references (and, for running containers, the
// mount uses) of holders that the record lacks. e.mu is held.
func (e *entry) addHoldersLocked(holders []string, state func(string) (bool, bool)) error {
	if e.removed {
		return nil
	}
	var refs, users []string
	for _, id := range holders {
		exists, running := state(id)
		if !exists {
			continue
		}
		if !slices.Contains(e.rec.Refs, id) {
			refs = append(refs, id)
		}
		if running && !needsMount(e.rec.Options) && !slices.Contains(e.rec.Users, id) {
			users = append(users, id)
		}
	}
	if len(refs) == 0 && len(users) == 0 {
		return nil
	}
	if err := e.updateLocked(func(r *record) {
		r.Refs = append(r.Refs, refs...)
		r.Users = append(r.Users, users...)
	}); err != nil {
		return fmt.Errorf("restore the holders of %s: %w", e.rec.Name, err)
	}
	return nil
}

func (s *Service) update(name string, f func(*entry) error) error {
	s.mu.Lock()
	e := s.vols[name]
	s.mu.Unlock()
	if e == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return f(e)
}

// dropLocked removes the references dropRef selects and the mount users
// dropUser selects (either may be nil), then unmounts if no user is left.
// Unmounting forgets that the volume was populated: what a later mount
// shows (an empty tmpfs, say) decides whether CopyUp fills it again.
// e.mu is held.
func (e *entry) dropLocked(dropRef, dropUser func(string) bool) error {
	if e.removed {
		return nil
	}
	if dropRef == nil {
		dropRef = func(string) bool { return false }
	}
	if dropUser == nil {
		dropUser = func(string) bool { return false }
	}
	// A user is always a reference too.
	isDropped := func(id string) bool { return dropUser(id) || dropRef(id) }
	unmount := e.mounted && !slices.ContainsFunc(e.rec.Users, func(id string) bool { return !isDropped(id) })
	if slices.ContainsFunc(e.rec.Refs, dropRef) || slices.ContainsFunc(e.rec.Users, isDropped) || (unmount && e.rec.Populated) {
		err := e.updateLocked(func(r *record) {
			r.Refs = slices.DeleteFunc(r.Refs, dropRef)
			r.Users = slices.DeleteFunc(r.Users, isDropped)
			if unmount {
				r.Populated = false
			}
		})
		if err != nil {
			return fmt.Errorf("release %s: %w", e.rec.Name, err)
		}
	}
	if unmount {
		if err := unmountAll(e.dataPath()); err != nil {
			return fmt.Errorf("release %s: %w", e.rec.Name, err)
		}
		e.mounted = false
	}
	return nil
}

// Refs returns the containers that hold a reference to the volume.
func (s *Service) Refs(ctx context.Context, name string) ([]string, error) {
	e, err := s.lookup("get", name)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.removed {
		return nil, noSuchVolume("get", name)
	}
	return slices.Clone(e.rec.Refs), nil
}
