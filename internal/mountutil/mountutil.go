// Package mountutil removes directory trees that may have something
// mounted in them, without ever reaching through a mount (issue 13 item
// 1): a container's root filesystem left mounted by a crash lies inside
// its state directory, and a recursive removal that walks into it deletes
// the container's writable layer, file by file, through the overlay.
package mountutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// MountsUnder lists the mount points at or below dir, deepest first (the
// order to unmount them in).
func MountsUnder(dir string) ([]string, error) {
	dir = filepath.Clean(dir)
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range infos {
		out = append(out, m.Mountpoint)
	}
	// A deeper path is longer. Mountinfo lists mounts in the order they
	// were made: of the same path mounted twice, the top one comes last,
	// and a stable sort keeps it first once reversed.
	slices.Reverse(out)
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, nil
}

// Unmount unmounts every mount at or below dir, deepest first. A mount
// that is busy is detached (MNT_DETACH) when detach is set; otherwise it
// stays and Unmount reports it.
func Unmount(dir string, detach bool) error {
	mps, err := MountsUnder(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, mp := range mps {
		err := unix.Unmount(mp, unix.UMOUNT_NOFOLLOW)
		if err != nil && detach {
			err = unix.Unmount(mp, unix.UMOUNT_NOFOLLOW|unix.MNT_DETACH)
		}
		if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
		}
	}
	return errors.Join(errs...)
}

// RemoveAll removes dir and everything in it, as os.RemoveAll does, but
// never across a mount: when anything is mounted at or below dir it
// removes nothing and returns an error of class failed precondition that
// names the mount. A missing dir is no error.
func RemoveAll(dir string) error {
	mps, err := MountsUnder(dir)
	if err != nil {
		return err
	}
	if len(mps) > 0 {
		return fmt.Errorf("refusing to remove %s: %s is mounted in it: %w", dir, strings.Join(mps, ", "), cerrdefs.ErrFailedPrecondition)
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return nil
}
