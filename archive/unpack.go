package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	cerrdefs "github.com/containerd/errdefs"
)

// Cached parent-directory fds, so consecutive entries in one directory
// don't each walk the path from the root again.
const dirCacheSize = 64

// unpacker writes the entries of one layer tar into a directory.
//
// Safety: every path from the tar is first made relative to the layer root
// and cleaned (".." cannot climb above the root, as when Docker unpacks
// in a chroot). The entry's parent directory is then opened through os.Root,
// which refuses any symlink or ".." that would leave the layer directory,
// and the entry itself is created with *at system calls on that directory fd
// using a single path component and without following a final symlink.
// Nothing the tar contains can therefore make us write, link or change
// metadata outside the layer directory.
type unpacker struct {
	ctx   context.Context
	root  *os.Root
	buf   []byte
	size  int64
	dirs  map[string]*os.File // parent dir cache, by cleaned path
	times map[string]tarTimes // directory times, restored at the end
}

type tarTimes struct{ atime, mtime time.Time }

// UnpackLayer unpacks the layer tar stream r (uncompressed) into dir, an
// empty directory that becomes the layer's overlayfs diff directory:
// ".wh.NAME" entries become overlayfs whiteouts (0/0 character devices),
// ".wh..wh..opq" marks its directory opaque, owners, modes (setuid
// included), times, xattrs (but overlayfs' own), hard links and device
// nodes are kept. It returns the number of bytes of regular file content
// written. It stops at the end-of-archive marker; the caller drains
// whatever follows (to check the stream's digest).
//
// A tar that is not well formed gives an error of class
// cerrdefs.ErrInvalidArgument; so does an entry that would lead out of
// dir. The caller removes dir after an error.
func UnpackLayer(ctx context.Context, dir string, r io.Reader) (int64, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, err
	}
	defer root.Close()
	bufp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bufp)
	u := &unpacker{
		ctx:   ctx,
		root:  root,
		buf:   *bufp,
		dirs:  make(map[string]*os.File),
		times: make(map[string]tarTimes),
	}
	defer u.flushDirs()

	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, InvalidTar(err)
		}
		if err := u.entry(hdr, tr); err != nil {
			return 0, err
		}
	}
	// Directories' times last: creating their contents changed them.
	for name, t := range u.times {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if err := u.setDirTimes(name, t); err != nil {
			return 0, err
		}
	}
	return u.size, nil
}

// cleanName makes a tar entry name relative to the layer root: absolute
// names are taken as relative ("/etc/x" → "etc/x") and ".." cannot climb
// above the root ("../../x" → "x"). The root itself is ".".
func cleanName(name string) string {
	c := path.Clean("/" + name)
	if c == "/" {
		return "."
	}
	return c[1:]
}

func (u *unpacker) entry(hdr *tar.Header, tr io.Reader) error {
	name := cleanName(hdr.Name)
	dir, base := path.Split(name)
	dir = path.Clean(dir) // "" → "."

	if name == "." {
		if hdr.Typeflag != tar.TypeDir {
			return errInvalidEntry("tar entry %q: the layer root must be a directory", hdr.Name)
		}
		return u.rootEntry(hdr)
	}

	if strings.HasPrefix(base, WhiteoutPrefix) {
		return u.whiteout(hdr, dir, base)
	}

	dfd, err := u.dir(dir)
	if err != nil {
		return fmt.Errorf("tar entry %q: %w", hdr.Name, err)
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		err = u.mkdir(dfd, dir, base, name, hdr)
	case tar.TypeReg, tar.TypeGNUSparse, tar.TypeCont: // the reader turns legacy TypeRegA into TypeReg
		err = u.file(dfd, name, base, hdr, tr)
	case tar.TypeSymlink:
		err = u.symlink(dfd, name, base, hdr)
	case tar.TypeLink:
		err = u.hardlink(dfd, name, base, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		err = u.mknod(dfd, name, base, hdr)
	case tar.TypeXGlobalHeader:
		return nil
	default:
		return errInvalidEntry("tar entry %q: unsupported type %q", hdr.Name, hdr.Typeflag)
	}
	if err != nil {
		return fmt.Errorf("tar entry %q: %w", hdr.Name, err)
	}
	return nil
}

// dir returns an fd for the directory at the cleaned path p, creating it and
// missing parents (0755) if needed. The fd belongs to the cache and stays
// valid until the cache is flushed; keep lists fds the caller still holds.
func (u *unpacker) dir(p string, keep ...int) (int, error) { return u.openDir(p, true, keep) }

// lookupDir is dir without creating anything.
func (u *unpacker) lookupDir(p string, keep ...int) (int, error) { return u.openDir(p, false, keep) }

func (u *unpacker) openDir(p string, create bool, keep []int) (int, error) {
	if f, ok := u.dirs[p]; ok {
		return int(f.Fd()), nil
	}
	// O_DIRECTORY: never block opening a fifo planted where a dir should be.
	f, err := u.root.OpenFile(p, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if create && isNotExist(err) && p != "." {
		// A parent missing from the tar: create it 0755 whatever the
		// umask, one component at a time through its own parent's fd.
		var pfd int
		if pfd, err = u.openDir(path.Dir(p), true, keep); err != nil {
			return -1, err
		}
		keep = append(keep, pfd)
		base := path.Base(p)
		if err = unix.Mkdirat(pfd, base, 0o755); err == nil {
			err = unix.Fchmodat(pfd, base, 0o755, 0)
		} else if err == unix.EEXIST {
			err = nil
		}
		if err == nil {
			f, err = u.root.OpenFile(p, os.O_RDONLY|syscall.O_DIRECTORY, 0)
		}
	}
	if err != nil {
		return -1, err
	}
	if len(u.dirs) >= dirCacheSize {
		u.flushDirs(keep...)
	}
	u.dirs[p] = f
	return int(f.Fd()), nil
}

// flushDirs closes cached dir fds except those listed in keep (in use by
// the caller).
func (u *unpacker) flushDirs(keep ...int) {
outer:
	for p, f := range u.dirs {
		for _, k := range keep {
			if int(f.Fd()) == k {
				continue outer
			}
		}
		f.Close()
		delete(u.dirs, p)
	}
}

// removeExisting deletes whatever is at base in dfd (name is its cleaned
// path), so a later tar entry replaces an earlier one. keep lists dir fds the
// caller still uses.
func (u *unpacker) removeExisting(dfd int, name, base string, keep ...int) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if err == unix.ENOENT {
			return nil
		}
		return err
	}
	delete(u.times, name)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		// Cached fds may point into the doomed tree (directly, or through
		// a symlink resolved earlier).
		u.flushDirs(append(keep, dfd)...)
		u.size -= u.treeSize(name)
		return u.root.RemoveAll(name)
	case unix.S_IFLNK:
		// A cached path may have been resolved through this symlink.
		u.flushDirs(append(keep, dfd)...)
	case unix.S_IFREG:
		if st.Nlink == 1 {
			u.size -= st.Size
		}
	}
	return unix.Unlinkat(dfd, base, 0)
}

// treeSize sums the regular files under name that have no other links,
// as they leave the layer with it.
func (u *unpacker) treeSize(name string) int64 {
	var n int64
	fs.WalkDir(u.root.FS(), name, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink == 1 {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

func (u *unpacker) rootEntry(hdr *tar.Header) error {
	fd, err := u.dir(".")
	if err != nil {
		return err
	}
	if err := u.fdMeta(fd, hdr); err != nil {
		return fmt.Errorf("layer root: %w", err)
	}
	u.times["."] = entryTimes(hdr)
	return nil
}

func (u *unpacker) whiteout(hdr *tar.Header, dir, base string) error {
	if base == WhiteoutOpaqueDir {
		fd, err := u.dir(dir)
		if err != nil {
			return fmt.Errorf("tar entry %q: %w", hdr.Name, err)
		}
		if err := unix.Fsetxattr(fd, OpaqueXattr, []byte("y"), 0); err != nil {
			return fmt.Errorf("tar entry %q: set opaque: %w", hdr.Name, err)
		}
		return nil
	}
	if strings.HasPrefix(base, WhiteoutMetaPrefix) {
		return nil // other aufs/Docker bookkeeping entries (.wh..wh.plnk ...)
	}
	target := base[len(WhiteoutPrefix):]
	if target == "" || target == "." || target == ".." {
		return errInvalidEntry("tar entry %q: invalid whiteout", hdr.Name)
	}
	dfd, err := u.dir(dir)
	if err != nil {
		return fmt.Errorf("tar entry %q: %w", hdr.Name, err)
	}
	if err := u.removeExisting(dfd, path.Join(dir, target), target); err != nil {
		return fmt.Errorf("tar entry %q: %w", hdr.Name, err)
	}
	// Overlayfs whiteout: a character device 0/0.
	if err := unix.Mknodat(dfd, target, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("tar entry %q: whiteout: %w", hdr.Name, err)
	}
	if err := unix.Fchownat(dfd, target, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("tar entry %q: whiteout: %w", hdr.Name, err)
	}
	// The entry's time, so export and re-import give the same tree.
	if err := setTimes(dfd, target, hdr); err != nil {
		return fmt.Errorf("tar entry %q: whiteout: %w", hdr.Name, err)
	}
	return nil
}

func (u *unpacker) mkdir(dfd int, dir, base, name string, hdr *tar.Header) error {
	err := unix.Mkdirat(dfd, base, 0o700)
	if err == unix.EEXIST {
		var st unix.Stat_t
		if err = unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			err = nil // a directory over a directory merges
		} else {
			if err = u.removeExisting(dfd, name, base); err != nil {
				return err
			}
			err = unix.Mkdirat(dfd, base, 0o700)
		}
	}
	if err != nil {
		return err
	}
	fd, err := unix.Openat(dfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := u.fdMeta(fd, hdr); err != nil {
		return err
	}
	u.times[name] = entryTimes(hdr)
	return nil
}

func (u *unpacker) file(dfd int, name, base string, hdr *tar.Header, tr io.Reader) error {
	const flags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(dfd, base, flags, 0o600)
	if err == unix.EEXIST {
		if err = u.removeExisting(dfd, name, base); err != nil {
			return err
		}
		fd, err = unix.Openat(dfd, base, flags, 0o600)
	}
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			unix.Close(fd)
		}
	}()
	for {
		if err := u.ctx.Err(); err != nil {
			return err
		}
		n, rerr := tr.Read(u.buf)
		if n > 0 {
			// Raw writes: an os.File would cost an extra fcntl per file.
			if err := writeAll(fd, u.buf[:n]); err != nil {
				return err
			}
			u.size += int64(n)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return InvalidTar(rerr)
		}
	}
	if err := u.fdMeta(fd, hdr); err != nil {
		return err
	}
	if err := setTimes(dfd, base, hdr); err != nil {
		return err
	}
	closed = true
	return unix.Close(fd)
}

func writeAll(fd int, p []byte) error {
	for len(p) > 0 {
		n, err := unix.Write(fd, p)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

func (u *unpacker) symlink(dfd int, name, base string, hdr *tar.Header) error {
	// The target is stored as given: it is resolved later, inside the
	// container's root, and never followed here.
	err := unix.Symlinkat(hdr.Linkname, dfd, base)
	if err == unix.EEXIST {
		if err = u.removeExisting(dfd, name, base); err != nil {
			return err
		}
		err = unix.Symlinkat(hdr.Linkname, dfd, base)
	}
	if err != nil {
		return err
	}
	if err := unix.Fchownat(dfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if err := setXattrs(hdr, -1, dfd, base); err != nil {
		return err
	}
	return setTimes(dfd, base, hdr)
}

func (u *unpacker) hardlink(dfd int, name, base string, hdr *tar.Header) error {
	// Link targets are names in the same layer, cleaned like entry names.
	target := cleanName(hdr.Linkname)
	if target == "." {
		return errInvalidEntry("invalid hardlink target %q", hdr.Linkname)
	}
	if target == name {
		return errInvalidEntry("hardlink %q to itself", hdr.Linkname)
	}
	tdir, tbase := path.Split(target)
	tfd, err := u.lookupDir(path.Clean(tdir), dfd)
	if err != nil {
		return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
	}
	// The new entry's dir fd may have been evicted by lookupDir's flush.
	if dfd, err = u.dir(path.Dir(name), tfd); err != nil {
		return err
	}
	// Flags 0: a link to a symlink links the symlink itself, never its target.
	err = unix.Linkat(tfd, tbase, dfd, base, 0)
	if err == unix.EEXIST {
		if err = u.removeExisting(dfd, name, base, tfd); err != nil {
			return err
		}
		err = unix.Linkat(tfd, tbase, dfd, base, 0)
	}
	if err != nil {
		return fmt.Errorf("hardlink to %q: %w", hdr.Linkname, err)
	}
	return nil
}

func (u *unpacker) mknod(dfd int, name, base string, hdr *tar.Header) error {
	mode := uint32(hdr.Mode & 0o7777)
	switch hdr.Typeflag {
	case tar.TypeChar:
		mode |= unix.S_IFCHR
	case tar.TypeBlock:
		mode |= unix.S_IFBLK
	case tar.TypeFifo:
		mode |= unix.S_IFIFO
	}
	dev := int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
	err := unix.Mknodat(dfd, base, mode, dev)
	if err == unix.EEXIST {
		if err = u.removeExisting(dfd, name, base); err != nil {
			return err
		}
		err = unix.Mknodat(dfd, base, mode, dev)
	}
	if err != nil {
		return err
	}
	if err := unix.Fchownat(dfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	// Not a symlink (we just made it), so following is moot.
	if err := unix.Fchmodat(dfd, base, uint32(hdr.Mode&0o7777), 0); err != nil {
		return err
	}
	if err := setXattrs(hdr, -1, dfd, base); err != nil {
		return err
	}
	return setTimes(dfd, base, hdr)
}

// fdMeta sets owner, mode and xattrs through an open fd. Order matters:
// chown clears setuid/setgid bits and file capabilities, so it goes first.
func (u *unpacker) fdMeta(fd int, hdr *tar.Header) error {
	if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
		return err
	}
	if err := unix.Fchmod(fd, uint32(hdr.Mode&0o7777)); err != nil {
		return err
	}
	return setXattrs(hdr, fd, -1, "")
}

// setXattrs applies the tar's SCHILY.xattr.* PAX records, through fd if it
// is >= 0, else to base in dfd without following a symlink. Attributes the
// filesystem or kernel refuses (ENOTSUP, EPERM: user.* on a symlink, say)
// are skipped, as Docker does.
func setXattrs(hdr *tar.Header, fd, dfd int, base string) error {
	for k, v := range hdr.PAXRecords {
		attr, ok := strings.CutPrefix(k, paxXattrPrefix)
		if !ok || strings.HasPrefix(attr, overlayXattrPrefix) {
			continue
		}
		var err error
		if fd >= 0 {
			err = unix.Fsetxattr(fd, attr, []byte(v), 0)
		} else {
			// There is no setxattrat(2) in x/sys yet; the fd's /proc link
			// names the directory, and lsetxattr does not follow base.
			err = unix.Lsetxattr(procPath(dfd, base), attr, []byte(v), 0)
		}
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) {
			continue
		}
		if err != nil {
			return fmt.Errorf("set xattr %s: %w", attr, err)
		}
	}
	return nil
}

func entryTimes(hdr *tar.Header) tarTimes {
	at := hdr.AccessTime
	if at.IsZero() {
		at = hdr.ModTime
	}
	return tarTimes{atime: at, mtime: hdr.ModTime}
}

func timespec(t time.Time) unix.Timespec {
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

// setTimes sets atime and mtime of base in dfd, not following a symlink.
func setTimes(dfd int, base string, hdr *tar.Header) error {
	t := entryTimes(hdr)
	ts := []unix.Timespec{timespec(t.atime), timespec(t.mtime)}
	return unix.UtimesNanoAt(dfd, base, ts, unix.AT_SYMLINK_NOFOLLOW)
}

func (u *unpacker) setDirTimes(name string, t tarTimes) error {
	dir, base := path.Split(name)
	if name == "." {
		dir, base = ".", "."
	}
	dfd, err := u.lookupDir(path.Clean(dir))
	if isNotExist(err) || errors.Is(err, unix.ENOTDIR) {
		return nil // replaced by a later entry
	}
	if err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil // replaced by a later entry
	}
	ts := []unix.Timespec{timespec(t.atime), timespec(t.mtime)}
	return unix.UtimesNanoAt(dfd, base, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// errInvalidEntry classes errors caused by the tar's content.
func errInvalidEntry(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), cerrdefs.ErrInvalidArgument)
}

// InvalidTar classes an error met reading a tar stream: a stream that is
// cut short or not a tar is of class invalid argument (a decompressor's
// CorruptError already is); any other error (of the stream's own
// source, say) comes back as it is.
func InvalidTar(err error) error {
	if errors.Is(err, cerrdefs.ErrInvalidArgument) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, tar.ErrHeader) || errors.Is(err, tar.ErrFieldTooLong) || errors.Is(err, tar.ErrInsecurePath) {
		return &invalidTarError{err}
	}
	return fmt.Errorf("read tar: %w", err)
}

type invalidTarError struct{ err error }

func (e *invalidTarError) Error() string   { return "invalid tar stream: " + e.err.Error() }
func (e *invalidTarError) Unwrap() []error { return []error{cerrdefs.ErrInvalidArgument, e.err} }

// isNotExist reports ENOENT however it is wrapped.
func isNotExist(err error) bool { return errors.Is(err, os.ErrNotExist) }
