package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// Owner is a user and group ID.
type Owner struct{ UID, GID int }

// ExtractOptions say how Extract treats what a tar asks for.
type ExtractOptions struct {
	// NoOverwriteDirNonDir refuses to replace a directory with a
	// non-directory or the reverse (dockerd's noOverwriteDirNonDir).
	NoOverwriteDirNonDir bool
	// Owner, if set, owns every entry instead of the owner in the tar
	// (PUT archive's copyUIDGID).
	Owner *Owner
	// NoLchown leaves every entry owned by the extracting process, as the
	// docker CLI's cp does on the host.
	NoLchown bool
	// Devices allows character and block device nodes; without it they
	// are left out.
	Devices bool
	// AllXattrs applies every extended attribute but overlayfs' own
	// (volume copy-up); without it only those a container may own:
	// user.*, security.capability and POSIX ACLs.
	AllXattrs bool
}

// Extract writes the entries of the tar r into the directory dest inside
// root, as PUT /containers/{id}/archive, the CLI's cp and volume copy-up
// do. dest is a clean absolute path in root ("/" for root itself) whose
// symlinks the caller has resolved, as the container would see them.
//
// Names are taken relative to dest ("/x" is dest/x) and must not climb
// out of it; a relative symlink target must not point above dest; a hard
// link's target must be inside dest. Those are dockerd's rules, and break
// them and the whole extraction fails with an error of class
// cerrdefs.ErrInvalidArgument ("invalid tar entry: ..."). Beyond those
// rules nothing in the tar can make Extract touch anything outside root:
// every directory is reached through filepath-securejoin's OpenatInRoot
// (openat2 with RESOLVE_IN_ROOT), so ".." and symlinks, absolute or not,
// planted by the tar or by the container, stop at root exactly as they do
// inside the container, and every entry is created, replaced or changed
// with *at system calls on such a directory handle, its last component
// never followed. A racing process inside root can change which of its
// own files are touched, never make Extract touch one outside it.
//
// Owners are the tar's (or opts.Owner, or the caller's with NoLchown);
// the setuid and setgid bits are kept only on a file that gets the owner
// the tar gives it, so a tar cannot make a setuid binary owned by
// whoever extracts it. Device nodes need opts.Devices.
func Extract(ctx context.Context, root *os.File, dest string, r io.Reader, opts ExtractOptions) error {
	x := &extractor{ctx: ctx, root: root, dest: path.Clean("/" + dest), opts: opts, dirs: map[string]*os.File{}}
	defer x.closeDirs()
	tr := tar.NewReader(r)
	bufp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bufp)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return InvalidTar(err)
		}
		if err := x.entry(hdr, tr, *bufp); err != nil {
			return err
		}
	}
	// Directories' times last: filling them changed them.
	for i := len(x.dirTimes) - 1; i >= 0; i-- {
		d := x.dirTimes[i]
		f, err := x.open(d.path)
		if err != nil {
			continue
		}
		_ = unix.UtimesNanoAt(unix.AT_FDCWD, procFd(f), timespecs(d.atime, d.mtime), 0)
		f.Close()
	}
	return nil
}

type extractor struct {
	ctx      context.Context
	root     *os.File
	dest     string
	opts     ExtractOptions
	dirs     map[string]*os.File // path in root → O_PATH handle of that directory
	dirTimes []dirTime
}

type dirTime struct {
	path         string
	atime, mtime time.Time
}

func (x *extractor) closeDirs() {
	for _, f := range x.dirs {
		f.Close()
	}
	clear(x.dirs)
}

// forget drops cached directory handles at or under p, which changed.
func (x *extractor) forget(p string) {
	for k, f := range x.dirs {
		if within(k, p) {
			f.Close()
			delete(x.dirs, k)
		}
	}
}

// open returns an O_PATH handle of p (a path in root), resolved in root.
func (x *extractor) open(p string) (*os.File, error) {
	return OpenInRoot(x.root, p)
}

// dir returns a handle of the directory p (a path in root), creating it
// and its missing parents (0755, owned as the tar's root would be).
func (x *extractor) dir(p string) (*os.File, error) {
	if f, ok := x.dirs[p]; ok {
		return f, nil
	}
	if len(x.dirs) > 256 {
		x.closeDirs()
	}
	f, err := x.open(p)
	if errors.Is(err, unix.ENOENT) {
		f, err = MkdirAllInRoot(x.root, p, 0o755)
	}
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		f.Close()
		if err == nil {
			err = unix.ENOTDIR
		}
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	x.dirs[p] = f
	return f, nil
}

// within reports whether the clean path p is dir or under it.
func within(p, dir string) bool {
	return dir == "/" || p == dir || strings.HasPrefix(p, dir+"/")
}

// climbs reports whether rel, taken from the directory dir, leads out of
// dest (dir is dest or under it). ".." is lexical and, unlike path.Join,
// not stopped at "/": a name that climbs above the root climbs out of
// dest whatever dest is.
func climbs(dir, rel, dest string) bool {
	const anchor = "/.anchor"
	return !within(path.Join(anchor+dir, rel), path.Clean(anchor+dest))
}

func breakout(format string, a ...any) error {
	return cerrdefs.ErrInvalidArgument.WithMessage("invalid tar entry: " + fmt.Sprintf(format, a...))
}

func (x *extractor) entry(hdr *tar.Header, r io.Reader, buf []byte) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader, tar.TypeXHeader, tar.TypeGNULongName, tar.TypeGNULongLink:
		return nil
	}
	// As dockerd: names are taken relative to the destination ("/x" is
	// dest/x) and must not climb out of it.
	name := path.Clean(hdr.Name)
	full := path.Join(x.dest, name)
	if climbs(x.dest, name, x.dest) {
		return breakout("%q is outside of %q", hdr.Name, x.dest)
	}
	if full == x.dest {
		if hdr.Typeflag != tar.TypeDir {
			return breakout("%q would replace the destination", hdr.Name)
		}
		return x.meta(full, hdr)
	}
	parent, base := path.Dir(full), path.Base(full)
	d, err := x.dir(parent)
	if err != nil {
		return err
	}
	dfd := int(d.Fd())
	isDirEntry := hdr.Typeflag == tar.TypeDir
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
		if x.opts.NoOverwriteDirNonDir && isDir && !isDirEntry {
			return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("cannot overwrite directory %q with non-directory %q", full, hdr.Name))
		}
		if x.opts.NoOverwriteDirNonDir && !isDir && isDirEntry {
			return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("cannot overwrite non-directory %q with directory %q", full, hdr.Name))
		}
		if !(isDir && isDirEntry) {
			if err := removeAllAt(dfd, base); err != nil {
				return err
			}
			x.forget(full)
		}
	} else if err != unix.ENOENT {
		return err
	}

	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := unix.Mkdirat(dfd, base, 0o700); err != nil && err != unix.EEXIST {
			return err
		}
	case tar.TypeReg, tar.TypeGNUSparse:
		fd, err := unix.Openat(dfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), full)
		_, err = io.CopyBuffer(f, io.LimitReader(r, hdr.Size), buf)
		if err != nil {
			err = InvalidTar(err)
		}
		if err == nil {
			err = x.fdMeta(fd, hdr)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		return unix.UtimesNanoAt(dfd, base, timespecs(hdr.AccessTime, hdr.ModTime), unix.AT_SYMLINK_NOFOLLOW)
	case tar.TypeSymlink:
		// As dockerd: a relative target must not point above the
		// destination (absolute ones resolve inside root).
		if !path.IsAbs(hdr.Linkname) && climbs(parent, hdr.Linkname, x.dest) {
			return breakout("invalid symlink %q -> %q", full, hdr.Linkname)
		}
		if err := unix.Symlinkat(hdr.Linkname, dfd, base); err != nil {
			return err
		}
		x.forget(full)
		uid, gid := x.owner(hdr)
		if uid >= 0 {
			if err := unix.Fchownat(dfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return err
			}
		}
		return unix.UtimesNanoAt(dfd, base, timespecs(hdr.AccessTime, hdr.ModTime), unix.AT_SYMLINK_NOFOLLOW)
	case tar.TypeLink:
		target := path.Join(x.dest, path.Clean(hdr.Linkname))
		if climbs(x.dest, hdr.Linkname, x.dest) || target == x.dest {
			return breakout("invalid hardlink %q -> %q", full, hdr.Linkname)
		}
		td, err := x.dir(path.Dir(target))
		if err != nil {
			return err
		}
		// Flags 0: a link to a symlink links the symlink itself.
		return unix.Linkat(int(td.Fd()), path.Base(target), dfd, base, 0)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		kind := uint32(unix.S_IFIFO)
		switch hdr.Typeflag {
		case tar.TypeChar:
			kind = unix.S_IFCHR
		case tar.TypeBlock:
			kind = unix.S_IFBLK
		}
		if kind != unix.S_IFIFO && !x.opts.Devices {
			return nil
		}
		dev := int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
		if err := unix.Mknodat(dfd, base, kind|0o600, dev); err != nil {
			return err
		}
	default:
		return nil // unknown entry types are skipped, as dockerd's cp does
	}
	return x.meta(full, hdr)
}

// meta applies owner, mode, xattrs and (at the end, for directories)
// times to the entry at full, which was just made and is no symlink.
func (x *extractor) meta(full string, hdr *tar.Header) error {
	var (
		f   *os.File
		err error
	)
	if full == x.dest {
		f, err = x.open(full)
	} else {
		var d *os.File
		if d, err = x.dir(path.Dir(full)); err == nil {
			var fd int
			fd, err = unix.Openat(int(d.Fd()), path.Base(full), unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err == nil {
				f = os.NewFile(uintptr(fd), full)
			}
		}
	}
	if err != nil {
		return err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return nil
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	if isDir {
		// xattrs need a real fd; a directory opens without side effects.
		rf, err := Reopen(f, unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return err
		}
		defer rf.Close()
		if err := x.fdMeta(int(rf.Fd()), hdr); err != nil {
			return err
		}
		x.dirTimes = append(x.dirTimes, dirTime{path: full, atime: hdr.AccessTime, mtime: hdr.ModTime})
		return nil
	}
	// A device or fifo: never opened, only changed through its handle.
	uid, gid := x.owner(hdr)
	if uid >= 0 {
		if err := unix.Fchownat(int(f.Fd()), "", uid, gid, unix.AT_EMPTY_PATH); err != nil {
			return err
		}
	}
	if err := unix.Fchmodat(unix.AT_FDCWD, procFd(f), x.mode(hdr, uid, gid), 0); err != nil {
		return err
	}
	return unix.UtimesNanoAt(unix.AT_FDCWD, procFd(f), timespecs(hdr.AccessTime, hdr.ModTime), 0)
}

// fdMeta sets owner, then mode (chown clears setuid), then xattrs on an
// open regular file or directory.
func (x *extractor) fdMeta(fd int, hdr *tar.Header) error {
	uid, gid := x.owner(hdr)
	if uid >= 0 {
		if err := unix.Fchown(fd, uid, gid); err != nil {
			return err
		}
	}
	if err := unix.Fchmod(fd, x.mode(hdr, uid, gid)); err != nil {
		return err
	}
	x.xattrs(fd, hdr)
	return nil
}

// owner is the owner an entry gets, -1 to leave the extracting process's.
func (x *extractor) owner(hdr *tar.Header) (int, int) {
	switch {
	case x.opts.Owner != nil:
		return x.opts.Owner.UID, x.opts.Owner.GID
	case x.opts.NoLchown:
		return -1, -1
	}
	return hdr.Uid, hdr.Gid
}

// mode is the tar's permission bits, less setuid (setgid) when the entry
// does not get the tar's user (group); a directory keeps setgid, which
// only makes its new entries inherit its group.
func (x *extractor) mode(hdr *tar.Header, uid, gid int) uint32 {
	m := uint32(hdr.Mode & 0o7777)
	if uid < 0 {
		uid, gid = os.Geteuid(), os.Getegid()
	}
	if uid != hdr.Uid {
		m &^= unix.S_ISUID
	}
	if gid != hdr.Gid && hdr.Typeflag != tar.TypeDir {
		m &^= unix.S_ISGID
	}
	return m
}

// xattrs applies the tar's extended attributes that the options allow;
// ones the filesystem refuses are skipped, as dockerd's cp does.
func (x *extractor) xattrs(fd int, hdr *tar.Header) {
	for k, v := range hdr.PAXRecords {
		attr, ok := strings.CutPrefix(k, paxXattrPrefix)
		if !ok || strings.HasPrefix(attr, overlayXattrPrefix) {
			continue
		}
		if x.opts.AllXattrs || strings.HasPrefix(attr, "user.") || attr == "security.capability" || strings.HasPrefix(attr, "system.posix_acl_") {
			_ = unix.Fsetxattr(fd, attr, []byte(v), 0)
		}
	}
}

func procFd(f *os.File) string { return fmt.Sprintf("/proc/self/fd/%d", f.Fd()) }

func timespecs(atime, mtime time.Time) []unix.Timespec {
	if atime.Before(mtime) {
		atime = mtime
	}
	return []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
}

// removeAllAt removes base in dir and, if it is a directory, everything
// under it, never following a symlink.
func removeAllAt(dir int, base string) error {
	err := unix.Unlinkat(dir, base, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR && err != unix.EPERM {
		return err
	}
	for attempt := 0; ; attempt++ {
		fd, err := unix.Openat(dir, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		d := os.NewFile(uintptr(fd), base)
		names, err := d.Readdirnames(-1)
		for _, n := range names {
			if err == nil {
				err = removeAllAt(fd, n)
			}
		}
		d.Close()
		if err != nil {
			return err
		}
		err = unix.Unlinkat(dir, base, unix.AT_REMOVEDIR)
		if err == nil || err == unix.ENOENT {
			return nil
		}
		if err != unix.ENOTEMPTY || attempt > 8 {
			return err
		}
		// Something was created meanwhile: go again.
	}
}
