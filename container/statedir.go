package container

import (
	"context"
	"os"
	"path/filepath"

	"github.com/berth/berth/internal/mountutil"
)

// clearStateDir removes a container's state directory (<exec-root>/c/<id>:
// bundle, shim socket and files, the root filesystem's mount point) once
// no shim runs there. Whatever is mounted in it (the root filesystem a
// crash left mounted) is unmounted first, detached if busy; the removal
// itself never reaches through a mount (issue 13 item 1: it deleted the
// writable layer through the overlay), and fails rather than try.
func (s *Service) clearStateDir(id string) error {
	dir := s.stateDir(id)
	if err := mountutil.Unmount(dir, true); err != nil {
		return err
	}
	return mountutil.RemoveAll(dir)
}

// unmountRootfs unmounts a container's root filesystem if it is mounted,
// and anything mounted below it.
func (s *Service) unmountRootfs(id string) error {
	return mountutil.Unmount(s.rootfs(id), true)
}

// removeStrayStateDirs removes the state directories (<exec-root>/c/<id>)
// that no container's record owns, where no shim lives: a removal's
// clearing raced with a late writer (a crash loop finding: a file an exec
// of the container wrote as it was killed made the removal's
// 'directory not empty'), or a crash came between a removal's record and
// its state directory. Called by New once restore's removals are done,
// before anything is served.
func (s *Service) removeStrayStateDirs(ctx context.Context) {
	root := filepath.Join(s.cfg.ExecRoot, "c")
	ents, err := os.ReadDir(root)
	if err != nil {
		return
	}
	owned := map[string]bool{}
	s.mu.RLock()
	for id := range s.byID {
		owned[id[:min(16, len(id))]] = true
	}
	for id := range s.corrupt {
		owned[id[:min(16, len(id))]] = true
	}
	s.mu.RUnlock()
	for _, e := range ents {
		if !e.IsDir() || owned[e.Name()] {
			continue
		}
		dir := filepath.Join(root, e.Name())
		if _, err := s.rt.Load(ctx, e.Name(), dir); err == nil {
			s.log.Warn("restore: a shim lives in the state directory of no container; left alone", "dir", dir)
			continue
		}
		s.log.Info("restore: removing the state directory of a removed container", "dir", dir)
		if err := mountutil.Unmount(dir, true); err != nil {
			s.log.Warn("restore: unmount a stray state directory", "dir", dir, "err", err)
			continue
		}
		if err := mountutil.RemoveAll(dir); err != nil {
			s.log.Warn("restore: remove a stray state directory", "dir", dir, "err", err)
		}
	}
}
