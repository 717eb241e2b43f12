package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd/v2/core/snapshots"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// LinkLayer makes the layer with diff ID diffID on top of parent (a chain
// ID, "" for a base layer) out of the files of src, a committed snapshot
// of this store that stands on srcParent ("" for none) and whose own
// files are that layer's diff in overlayfs form: a build step's snapshot,
// whose layer blob was computed from it. Its files are not copied: the
// new layer's directories are made anew (owner, mode, times, extended
// attributes, the opaque mark) and every other entry (files, symlinks,
// whiteouts, devices) is a hard link to src's, so the layer's data is on
// disk once, shared by both snapshots until either is removed. Layers are
// immutable, and a container's change to a file in a lower layer is a
// copy-up, so neither snapshot sees the other change.
//
// The caller vouches that src's files are the diff diffID names (the
// tar was made from them); LinkLayer checks that src is committed and
// stands on srcParent. If the layer exists already it is returned as it
// is. On any error nothing is left behind.
func (s *Store) LinkLayer(ctx context.Context, src, srcParent string, parent, diffID digest.Digest) (Layer, error) {
	if err := validDigest(diffID, "diff ID"); err != nil {
		return Layer{}, err
	}
	if parent != "" {
		if err := validDigest(parent, "parent chain ID"); err != nil {
			return Layer{}, err
		}
	}
	chainID := ChainID(parent, diffID)
	unlock, err := s.locks.lock(ctx, chainID.String())
	if err != nil {
		return Layer{}, err
	}
	defer unlock()
	if l, err := s.Get(ctx, chainID); err == nil {
		return l, nil
	} else if !cerrdefs.IsNotFound(err) {
		return Layer{}, err
	}
	info, err := s.sn.Stat(ctx, src)
	if err != nil {
		return Layer{}, fmt.Errorf("link layer %s from %s: %w", diffID, src, err)
	}
	if info.Kind != snapshots.KindCommitted || info.Parent != srcParent {
		return Layer{}, fmt.Errorf("link layer %s: snapshot %s (%s, on %q) is not a committed snapshot on %q: %w",
			diffID, src, info.Kind, info.Parent, srcParent, cerrdefs.ErrFailedPrecondition)
	}
	srcDir, err := s.dir(ctx, src)
	if err != nil {
		return Layer{}, err
	}

	dir, err := os.MkdirTemp(s.tmpDir(), applyPrefix)
	if err != nil {
		return Layer{}, err
	}
	committed := false
	defer func() {
		if !committed {
			_ = os.RemoveAll(dir)
		}
	}()
	diffDir := filepath.Join(dir, "fs")
	size, err := linkTree(ctx, srcDir, diffDir)
	if err != nil {
		return Layer{}, fmt.Errorf("link layer %s from %s: %w", diffID, src, err)
	}
	// As Apply: the new directory entries are flushed once (syncfs)
	// before the snapshot is recorded.
	if err := s.commitLayerDir(ctx, "link", dir, chainID, parent, diffID, size); err != nil {
		return Layer{}, err
	}
	committed = true
	s.notifyCommitted()
	return s.Get(ctx, chainID)
}

// linkTree makes dst a copy of the directory tree src whose directories
// are new and whose other entries are hard links to src's. It returns the
// bytes of regular file content (each inode once), as Apply counts a
// layer's size.
func linkTree(ctx context.Context, src, dst string) (int64, error) {
	type dirMeta struct {
		src, dst string
		st       unix.Stat_t
	}
	var dirs []dirMeta
	var size int64
	seen := map[uint64]bool{}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if err := os.Mkdir(target, 0o700); err != nil {
				return err
			}
			dirs = append(dirs, dirMeta{src: p, dst: target, st: st})
		default:
			if err := unix.Linkat(unix.AT_FDCWD, p, unix.AT_FDCWD, target, 0); err != nil {
				return &os.LinkError{Op: "link", Old: p, New: target, Err: err}
			}
			if st.Mode&unix.S_IFMT == unix.S_IFREG && !seen[st.Ino] {
				seen[st.Ino] = true
				size += st.Size
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	// Directories' metadata last, deepest first: making their entries
	// changed their times.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := copyDirMeta(dirs[i].src, dirs[i].dst, &dirs[i].st); err != nil {
			return 0, err
		}
	}
	return size, nil
}

// copyDirMeta gives directory dst src's owner, mode (with setgid and
// sticky bits), extended attributes (overlayfs's own other than the
// opaque mark left out: they describe src's copy-ups) and times.
func copyDirMeta(src, dst string, st *unix.Stat_t) error {
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return &os.PathError{Op: "lchown", Path: dst, Err: err}
	}
	if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
		return &os.PathError{Op: "chmod", Path: dst, Err: err}
	}
	if err := copyXattrs(src, dst); err != nil {
		return err
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimes", Path: dst, Err: err}
	}
	return nil
}

func copyXattrs(src, dst string) error {
	names, err := listXattrs(src)
	if err != nil {
		return err
	}
	for _, n := range names {
		if strings.HasPrefix(n, "trusted.overlay.") && n != "trusted.overlay.opaque" {
			continue
		}
		v, err := lgetxattr(src, n)
		if errors.Is(err, unix.ENODATA) {
			continue
		}
		if err != nil {
			return err
		}
		if err := unix.Lsetxattr(dst, n, v, 0); err != nil {
			return &os.PathError{Op: "setxattr " + n, Path: dst, Err: err}
		}
	}
	return nil
}

func listXattrs(p string) ([]string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Llistxattr(p, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, 2*len(buf))
			continue
		}
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, &os.PathError{Op: "listxattr", Path: p, Err: err}
		}
		var out []string
		for _, s := range strings.Split(string(buf[:n]), "\x00") {
			if s != "" {
				out = append(out, s)
			}
		}
		return out, nil
	}
}

func lgetxattr(p, name string) ([]byte, error) {
	buf := make([]byte, 128)
	for {
		n, err := unix.Lgetxattr(p, name, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, 2*len(buf))
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}
