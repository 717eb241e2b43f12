package volume

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// CopyUp fills an empty volume with the content srcDir has in the image,
// as Docker does when a volume is first mounted over a directory that holds
// files. It copies only if the volume was never populated and its data
// directory is empty; otherwise it does nothing. The copy keeps owners,
// modes (setuid, sticky ...), times, symlinks, hard links, device nodes,
// FIFOs and extended attributes (file capabilities included; overlayfs'
// own trusted.overlay.* are skipped); sockets are skipped. The volume's
// root takes srcDir's owner and mode, so a volume over an image directory
// owned by a service user stays writable by it.
//
// srcDir is the directory in the container's root filesystem at the mount
// destination, already resolved inside that root by the caller (symlinks
// in its parents must not lead out of the rootfs). If srcDir itself is a
// symlink, missing or not a directory, there is nothing to copy. Symlinks
// inside it are copied as symlinks, never followed.
//
// A volume with mount options must be mounted (acquired) first, otherwise
// the copy would land under the mount. On failure the partial copy is
// deleted, leaving the volume empty as it was.
func (s *Service) CopyUp(ctx context.Context, name, srcDir string) error {
	e, err := s.lookup("get", name)
	if err != nil {
		return err
	}
	e.copyMu.Lock()
	defer e.copyMu.Unlock()

	e.mu.Lock()
	if e.removed {
		e.mu.Unlock()
		return noSuchVolume("get", name)
	}
	if e.rec.Populated {
		e.mu.Unlock()
		return nil
	}
	if needsMount(e.rec.Options) && !e.mounted {
		e.mu.Unlock()
		return fmt.Errorf("copy up %s: volume is not mounted; acquire it first", name)
	}
	dst := e.dataPath()
	empty, err := isEmptyDir(dst)
	if err != nil {
		e.mu.Unlock()
		return fmt.Errorf("copy up %s: %w", name, err)
	}
	if !empty {
		err := e.updateLocked(func(r *record) { r.Populated = true })
		e.mu.Unlock()
		return err
	}
	e.mu.Unlock()

	fi, err := os.Lstat(srcDir)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && !fi.IsDir()) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("copy up %s: %w", name, err)
	}
	c := &copier{ctx: ctx, links: map[devIno]string{}}
	if err := c.copyDirContents(srcDir, dst); err != nil {
		clearDir(dst)
		return fmt.Errorf("copy up %s from %s: %w", name, srcDir, err)
	}
	if err := copyMeta(srcDir, dst, fi); err != nil {
		clearDir(dst)
		return fmt.Errorf("copy up %s from %s: %w", name, srcDir, err)
	}
	if c.n == 0 {
		// An empty image directory lends its owner and mode but does not
		// count as populating: a later container may still bring content.
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.removed {
		return nil
	}
	return e.updateLocked(func(r *record) { r.Populated = true })
}

func isEmptyDir(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return len(names) == 0, err
}

// clearDir deletes what a failed copy left in dir (never through a mount).
func clearDir(dir string) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, de := range des {
		_ = deleteTree(filepath.Join(dir, de.Name()))
	}
}

type copier struct {
	ctx   context.Context
	links map[devIno]string // first copy of each multiply-linked file
	n     int               // entries copied
}

func (c *copier) copyDirContents(src, dst string) error {
	des, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, de := range des {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		if err := c.copyEntry(filepath.Join(src, de.Name()), filepath.Join(dst, de.Name())); err != nil {
			return err
		}
	}
	return nil
}

func (c *copier) copyEntry(src, dst string) error {
	fi, err := os.Lstat(src)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // vanished since the directory was read
		}
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: no stat data", src)
	}
	mode := fi.Mode()
	switch {
	case mode.IsDir():
		if err := os.Mkdir(dst, 0o700); err != nil {
			return err
		}
		c.n++
		if err := c.copyDirContents(src, dst); err != nil {
			return err
		}
		// After the children, so the times stick and a read-only
		// directory was writable while it was filled.
		return copyMeta(src, dst, fi)
	case mode.IsRegular():
		if st.Nlink > 1 {
			key := devIno{uint64(st.Dev), st.Ino}
			if first, ok := c.links[key]; ok {
				c.n++
				return os.Link(first, dst)
			}
			c.links[key] = dst
		}
		if err := copyFile(src, dst); err != nil {
			return err
		}
	case mode&fs.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
	case mode&fs.ModeNamedPipe != 0:
		if err := unix.Mkfifo(dst, 0o600); err != nil {
			return err
		}
	case mode&fs.ModeDevice != 0:
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			return err
		}
	default:
		return nil // sockets and the like: meaningless in a copy
	}
	c.n++
	return copyMeta(src, dst, fi)
}

func copyFile(src, dst string) error {
	in, err := os.OpenFile(src, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

// copyMeta gives dst src's owner, extended attributes, mode and times, in
// that order: chown clears setuid bits and file capabilities, so mode and
// xattrs come after it.
func copyMeta(src, dst string, fi fs.FileInfo) error {
	st := fi.Sys().(*syscall.Stat_t)
	if err := os.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		if !errors.Is(err, fs.ErrPermission) || os.Geteuid() == 0 {
			return err
		}
	}
	if err := copyXattrs(src, dst); err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink == 0 {
		if err := os.Chmod(dst, fi.Mode()); err != nil {
			return err
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(st.Atim.Nano()), unix.NsecToTimespec(st.Mtim.Nano())}
	return unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW)
}

func copyXattrs(src, dst string) error {
	names, err := listXattrs(src)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil
		}
		return err
	}
	for _, name := range names {
		if strings.HasPrefix(name, "trusted.overlay.") {
			continue
		}
		val, err := getXattr(src, name)
		if err != nil {
			if errors.Is(err, unix.ENODATA) {
				continue
			}
			return err
		}
		if err := unix.Lsetxattr(dst, name, val, 0); err != nil {
			// Not every filesystem takes every namespace (user.* on a
			// symlink, security.selinux without SELinux ...).
			if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) {
				continue
			}
			return fmt.Errorf("set xattr %s on %s: %w", name, dst, err)
		}
	}
	return nil
}

func listXattrs(path string) ([]string, error) {
	for range 4 {
		n, err := unix.Llistxattr(path, nil)
		if err != nil || n == 0 {
			return nil, err
		}
		buf := make([]byte, n)
		n, err = unix.Llistxattr(path, buf)
		if errors.Is(err, unix.ERANGE) {
			continue // grew in between
		}
		if err != nil {
			return nil, err
		}
		var out []string
		for _, name := range strings.Split(string(buf[:n]), "\x00") {
			if name != "" {
				out = append(out, name)
			}
		}
		return out, nil
	}
	return nil, unix.ERANGE
}

func getXattr(path, name string) ([]byte, error) {
	for range 4 {
		n, err := unix.Lgetxattr(path, name, nil)
		if err != nil {
			return nil, err
		}
		buf := make([]byte, n)
		n, err = unix.Lgetxattr(path, name, buf)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
	return nil, unix.ERANGE
}
