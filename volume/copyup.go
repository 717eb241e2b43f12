package volume

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/berth/berth/archive"
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

	// dockerd copies with a tar and an untar (CopyWithTar); so does berth,
	// with the archive package's writer and extractor: symlinks are never
	// followed on either side, and nothing lands outside the volume.
	src, err := os.OpenFile(srcDir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
		return nil // missing, not a directory, or a symlink: nothing to copy
	}
	if err != nil {
		return fmt.Errorf("copy up %s: %w", name, err)
	}
	defer src.Close()
	if err := copyTree(ctx, src, dst); err != nil {
		clearDir(dst)
		return fmt.Errorf("copy up %s from %s: %w", name, srcDir, err)
	}
	if empty, err := isEmptyDir(dst); err != nil || empty {
		// An empty image directory lends its owner and mode but does not
		// count as populating: a later container may still bring content.
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.removed {
		return nil
	}
	return e.updateLocked(func(r *record) { r.Populated = true })
}

// copyTree copies the directory src (its owner, mode and times too) into
// dst, keeping owners, modes (setuid, sticky ...), times, symlinks, hard
// links, device nodes, FIFOs and extended attributes but overlayfs' own.
func copyTree(ctx context.Context, src *os.File, dst string) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(src.Fd()), &st); err != nil {
		return err
	}
	root, err := os.OpenFile(dst, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer root.Close()
	rc := archive.Stream(ctx, archive.WriterOptions{AllXattrs: true}, func(w *archive.Writer) error {
		return w.Add(int(src.Fd()), ".", ".", &st)
	}, nil)
	defer rc.Close()
	return archive.Extract(ctx, root, "/", rc, archive.ExtractOptions{Devices: true, AllXattrs: true})
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
