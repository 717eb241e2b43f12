package container

import (
	"errors"
	"os"
	"path"
	"path/filepath"
	"strconv"

	"github.com/berth/berth/internal/mountutil"
	rtspec "github.com/berth/berth/runtime/spec"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// A container whose IPC namespace is shareable has its /dev/shm on the
// host, a tmpfs in its state directory, bound into it: a container that
// joins its IPC namespace (--ipc container:X) binds the same one, as
// dockerd's ShmPath (setupIpcDirs). The donor's own /dev/shm tmpfs lives
// in its mount namespace, which no bind mount can reach. The tmpfs is
// unmounted at exit with the root filesystem (a joiner's bind keeps its
// content alive while the joiner runs) and by every clearing of the state
// directory.

// shmPath is where a shareable container's /dev/shm is mounted.
func (s *Service) shmPath(id string) string { return filepath.Join(s.stateDir(id), "shm") }

// hasMountForLocked reports whether the user gave c a mount at dst (a bind,
// volume or tmpfs), which then replaces berth's own. Call with c.mu held.
func hasMountForLocked(c *Container, dst string) bool {
	for _, m := range c.Mounts {
		if path.Clean(m.Destination) == dst {
			return true
		}
	}
	for d := range c.HostConfig.Tmpfs {
		if path.Clean(d) == dst {
			return true
		}
	}
	for _, m := range c.HostConfig.Mounts {
		if path.Clean(m.Target) == dst {
			return true
		}
	}
	return false
}

// mountShm mounts the host tmpfs of a shareable container (an empty
// IpcMode is shareable too: a container of an older API) and returns its
// path, or "" for a container that has none (another IPC mode, or a
// /dev/shm of the user's).
func (s *Service) mountShm(c *Container) (string, error) {
	c.mu.Lock()
	mode := c.HostConfig.IpcMode
	size := c.HostConfig.ShmSize
	own := hasMountForLocked(c, "/dev/shm")
	c.mu.Unlock()
	if !(mode == "" || mode.IsShareable()) || own {
		return "", nil
	}
	if size <= 0 {
		size = rtspec.DefaultShmSize
	}
	dir := s.shmPath(c.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if err := unix.Mount("shm", dir, "tmpfs", unix.MS_NOEXEC|unix.MS_NOSUID|unix.MS_NODEV, "mode=1777,size="+strconv.FormatInt(size, 10)); err != nil {
		return "", errors.New("mounting shm tmpfs: " + err.Error())
	}
	return dir, nil
}

// donorShm is the /dev/shm a container joining donor's IPC namespace
// binds: donor's host tmpfs when it has one mounted, else "" (a tmpfs of
// the joiner's own, as dockerd when the donor's /dev/shm is the user's).
func (s *Service) donorShm(donorID string) string {
	dir := s.shmPath(donorID)
	if ok, err := mountinfo.Mounted(dir); err == nil && ok {
		return dir
	}
	return ""
}

// unmountRunMounts unmounts what berth mounted in a container's state
// directory for a run: the root filesystem (and anything below it) and
// the shareable /dev/shm.
func (s *Service) unmountRunMounts(id string) error {
	return errors.Join(s.unmountRootfs(id), mountutil.Unmount(s.shmPath(id), true))
}
