package container

import (
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
