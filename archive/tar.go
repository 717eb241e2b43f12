package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	goarchive "github.com/moby/go-archive"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/osutil"
)

// Docker's whiteout conventions in a layer tar (go-archive's names).
const (
	WhiteoutPrefix     = goarchive.WhiteoutPrefix     // ".wh.NAME": NAME was deleted
	WhiteoutMetaPrefix = goarchive.WhiteoutMetaPrefix // ".wh..wh.": bookkeeping, not a deletion
	WhiteoutOpaqueDir  = goarchive.WhiteoutOpaqueDir  // ".wh..wh..opq": the directory hides the layers below

	// OpaqueXattr marks an opaque directory in an overlayfs upper dir.
	OpaqueXattr = "trusted.overlay.opaque"
	// overlayXattrPrefix is overlayfs' private metadata (redirects,
	// metacopy, origin ...): never archived, never set from a tar.
	overlayXattrPrefix = "trusted.overlay."
	paxXattrPrefix     = "SCHILY.xattr."
)

type inode struct{ dev, ino uint64 }

// Headers makes the tar header of each file met while walking a tree with
// *at calls, as dockerd writes it: owner, permission bits, mtime in whole
// seconds, PAX format, then what the type needs (a directory's name ends
// in "/", a regular file has its size, a symlink its target, a device its
// numbers). A regular file with more than one link becomes a hard-link
// entry to the first name it was given under. The zero value is ready for
// one tar; set Names to fill in user and group names.
type Headers struct {
	// Names gives Uname and Gname from the archived tree's own passwd and
	// group files, as dockerd's `docker cp` does (it archives from inside
	// the container's root). Nil: numeric owners only.
	Names *Names

	links map[inode]string // first name of each multiply-linked file
}

// Header returns the header of base in the directory dfd, whose lstat is
// st, named name in the tar; a symlink's target is read with readlinkat,
// never followed. A socket, which cannot be archived (dockerd skips them
// too), has no header: nil, nil. The caller adds xattrs (PAX records) and,
// for a regular file, the contents; a hard-link entry has neither.
func (h *Headers) Header(dfd int, base, name string, st *unix.Stat_t) (*tar.Header, error) {
	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, 0),
		Format:  tar.FormatPAX,
	}
	if h.Names != nil {
		hdr.Uname, hdr.Gname = h.Names.user(hdr.Uid), h.Names.group(hdr.Gid)
	}
	switch kind := st.Mode & unix.S_IFMT; kind {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		if !strings.HasSuffix(hdr.Name, "/") {
			hdr.Name += "/"
		}
	case unix.S_IFREG:
		if st.Nlink > 1 {
			key := inode{dev: st.Dev, ino: st.Ino}
			if first, ok := h.links[key]; ok {
				hdr.Typeflag = tar.TypeLink
				hdr.Linkname = first
				return hdr, nil
			}
			if h.links == nil {
				h.links = make(map[inode]string)
			}
			h.links[key] = name
		}
		hdr.Typeflag = tar.TypeReg
		hdr.Size = st.Size
	case unix.S_IFLNK:
		target, err := osutil.Readlinkat(dfd, base)
		if err != nil {
			return nil, err
		}
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = target
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if kind == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor = int64(unix.Major(st.Rdev))
		hdr.Devminor = int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	case unix.S_IFSOCK:
		return nil, nil
	default:
		return nil, fmt.Errorf("unsupported file type %o", kind)
	}
	return hdr, nil
}

// WriterOptions say what kind of tar a Writer makes.
type WriterOptions struct {
	// Layer makes a layer diff from an overlayfs upper (or diff)
	// directory: whiteouts (0/0 character devices) become ".wh.NAME"
	// entries, opaque directories get a ".wh..wh..opq" entry, and every
	// extended attribute but overlayfs' own is kept. Without it (docker
	// cp, export) only security.capability is kept, as dockerd does.
	Layer bool
	// AllXattrs keeps every extended attribute but overlayfs' own, as
	// Layer does, without the whiteout conversion (volume copy-up).
	AllXattrs bool
	// OneFileSystem stops at mount points: a directory on another mount
	// is archived, its contents are not (export).
	OneFileSystem bool
	// Names fills in Uname and Gname (see Headers.Names).
	Names *Names
	// Exclude leaves out the entries with these paths ("/etc/hosts":
	// rooted, cleaned, relative to the archived directory), a directory
	// with everything under it (commit: the placeholders of mounts).
	Exclude map[string]bool
}

// Writer writes directory trees into a tar, working only with *at calls on
// directory fds, so no symlink is ever followed and a tree that changes
// meanwhile (a running container) can change what is archived, never
// make it read outside the tree: a file that disappears is left out, one
// that shrinks is padded with zeros to the size its header announced.
type Writer struct {
	ctx     context.Context
	tw      *tar.Writer
	buf     []byte
	opts    WriterOptions
	headers Headers
	rootMnt uint64
}

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// Stream runs write in a goroutine feeding the returned reader a tar; done
// (if not nil) runs once the writing is over: finished, failed or the
// reader closed. Close waits for the goroutine.
func Stream(ctx context.Context, opts WriterOptions, write func(*Writer) error, done func()) io.ReadCloser {
	pr, pw := io.Pipe()
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		if done != nil {
			defer done()
		}
		bufp := copyBufPool.Get().(*[]byte)
		defer copyBufPool.Put(bufp)
		tw := tar.NewWriter(pw)
		w := &Writer{ctx: ctx, tw: tw, buf: *bufp, opts: opts, headers: Headers{Names: opts.Names}}
		err := write(w)
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	return &stream{PipeReader: pr, finished: finished}
}

type stream struct {
	*io.PipeReader
	finished chan struct{}
}

func (s *stream) Close() error {
	s.PipeReader.CloseWithError(errors.New("archive reader closed"))
	<-s.finished
	return nil
}

// TarDir streams the contents of dir (not dir itself) as a tar, entries
// named relative to it ("etc/", "etc/passwd") and sorted by name within
// each directory, so the same tree always gives the same bytes. With
// opts.Layer it is a layer diff that UnpackLayer(TarDir(x)) recreates.
// Close the reader to stop early.
func TarDir(ctx context.Context, dir string, opts WriterOptions) (io.ReadCloser, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	return Stream(ctx, opts, func(w *Writer) error {
		return w.AddChildren(int(f.Fd()), "")
	}, func() { f.Close() }), nil
}

// AddChildren writes the entries of the directory dir (an fd, O_PATH will
// do), their names prefixed with prefix ("" or ending in "/"), sorted.
func (w *Writer) AddChildren(dir int, prefix string) error {
	fd, err := unix.Openat(dir, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	d := os.NewFile(uintptr(fd), prefix)
	defer d.Close()
	if w.opts.OneFileSystem && w.rootMnt == 0 {
		w.rootMnt = mntID(fd, "")
	}
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, n := range names {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		if len(w.opts.Exclude) > 0 && w.opts.Exclude[path.Clean("/"+prefix+n)] {
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if err == unix.ENOENT {
				continue // deleted meanwhile
			}
			return err
		}
		if err := w.Add(fd, n, prefix+n, &st); err != nil {
			return err
		}
	}
	return nil
}

func mntID(dfd int, base string) uint64 {
	var st unix.Statx_t
	flags := unix.AT_SYMLINK_NOFOLLOW
	if base == "" {
		flags |= unix.AT_EMPTY_PATH
	}
	if err := unix.Statx(dfd, base, flags, unix.STATX_MNT_ID, &st); err != nil {
		return 0
	}
	return st.Mnt_id
}

// Add writes the entry base of the directory dir (its lstat is st) under
// name and, for a directory, everything under it.
func (w *Writer) Add(dir int, base, name string, st *unix.Stat_t) error {
	if err := w.add(dir, base, name, st); err != nil {
		return fmt.Errorf("tar %s: %w", name, err)
	}
	return nil
}

func (w *Writer) add(dir int, base, name string, st *unix.Stat_t) error {
	hdr, err := w.headers.Header(dir, base, name, st)
	if err != nil || hdr == nil {
		return err // nil: a socket, not archivable, skipped as dockerd does
	}
	if w.opts.Layer && hdr.Typeflag == tar.TypeChar && st.Rdev == 0 {
		// Overlayfs whiteout → Docker whiteout file.
		hdr.Name = path.Join(path.Dir(name), WhiteoutPrefix+base)
		hdr.Typeflag = tar.TypeReg
		hdr.Mode = 0o600
		hdr.Devmajor, hdr.Devminor = 0, 0
		return w.tw.WriteHeader(hdr)
	}
	opaque := false
	if hdr.Typeflag != tar.TypeLink { // a link's xattrs belong to the inode, already written
		var xattrs map[string]string
		if xattrs, opaque, err = w.xattrs(dir, base, hdr.Typeflag); err != nil {
			return err
		}
		if len(xattrs) > 0 {
			hdr.PAXRecords = make(map[string]string, len(xattrs))
			for k, v := range xattrs {
				hdr.PAXRecords[paxXattrPrefix+k] = v
			}
		}
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := w.tw.WriteHeader(hdr); err != nil {
			return err
		}
		if opaque {
			if err := w.tw.WriteHeader(&tar.Header{
				Typeflag: tar.TypeReg,
				Name:     path.Join(name, WhiteoutOpaqueDir),
				Mode:     0o600,
				Uid:      hdr.Uid,
				Gid:      hdr.Gid,
				ModTime:  hdr.ModTime,
				Format:   tar.FormatPAX,
			}); err != nil {
				return err
			}
		}
		fd, err := unix.Openat(dir, base, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			if err == unix.ENOENT {
				return nil
			}
			return err
		}
		defer unix.Close(fd)
		if w.opts.OneFileSystem && w.rootMnt != 0 && mntID(fd, "") != w.rootMnt {
			return nil // a mount point: export shows the directory only
		}
		prefix := name
		if prefix == "." {
			prefix = "./"
		}
		return w.AddChildren(fd, strings.TrimSuffix(prefix, "/")+"/")
	case tar.TypeReg:
		fd, err := unix.Openat(dir, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			if err == unix.ENOENT {
				return nil
			}
			return err
		}
		f := os.NewFile(uintptr(fd), name)
		defer f.Close()
		var fst unix.Stat_t
		if err := unix.Fstat(fd, &fst); err != nil || fst.Mode&unix.S_IFMT != unix.S_IFREG {
			return nil // replaced meanwhile
		}
		hdr.Size = fst.Size
		if err := w.tw.WriteHeader(hdr); err != nil {
			return err
		}
		// Exactly Size bytes, whatever the file does meanwhile.
		n, err := io.CopyBuffer(w.tw, io.LimitReader(f, hdr.Size), w.buf)
		if err != nil {
			return err
		}
		if n < hdr.Size {
			clear(w.buf)
			for n < hdr.Size {
				m, err := w.tw.Write(w.buf[:min(int64(len(w.buf)), hdr.Size-n)])
				if err != nil {
					return err
				}
				n += int64(m)
			}
		}
		return nil
	}
	return w.tw.WriteHeader(hdr)
}

// xattrs returns the extended attributes of base in dir (never following
// a symlink) that the tar keeps, and whether the overlay opaque marker is
// set. A layer keeps every attribute but overlayfs' own; docker cp and
// export keep security.capability alone, as dockerd's archives do.
func (w *Writer) xattrs(dir int, base string, typ byte) (attrs map[string]string, opaque bool, err error) {
	p := procPath(dir, base)
	if !w.opts.Layer && !w.opts.AllXattrs {
		if typ == tar.TypeSymlink {
			return nil, false, nil
		}
		v, err := xattrCall(func(b []byte) (int, error) { return unix.Lgetxattr(p, "security.capability", b) })
		if err != nil || len(v) == 0 {
			return nil, false, nil // ENODATA, ENOTSUP ...: none
		}
		return map[string]string{"security.capability": string(v)}, false, nil
	}
	names, err := xattrCall(func(b []byte) (int, error) { return unix.Llistxattr(p, b) })
	if errors.Is(err, unix.ENOTSUP) {
		return nil, false, nil
	}
	if err != nil || len(names) == 0 {
		return nil, false, err
	}
	for _, name := range strings.Split(strings.TrimRight(string(names), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		v, err := xattrCall(func(b []byte) (int, error) { return unix.Lgetxattr(p, name, b) })
		if errors.Is(err, unix.ENODATA) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, false, fmt.Errorf("get xattr %s: %w", name, err)
		}
		if name == OpaqueXattr {
			opaque = string(v) == "y"
			continue
		}
		if strings.HasPrefix(name, overlayXattrPrefix) {
			continue
		}
		if attrs == nil {
			attrs = make(map[string]string)
		}
		attrs[name] = string(v)
	}
	return attrs, opaque, nil
}

// xattrCall runs a list/get xattr call, growing the buffer on ERANGE.
func xattrCall(call func([]byte) (int, error)) ([]byte, error) {
	size := 256
	for {
		b := make([]byte, size)
		n, err := call(b)
		if err == unix.ERANGE {
			size *= 4
			if size > 1<<20 {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		return b[:n], nil
	}
}

// procPath names base in the directory fd dir through /proc, for the few
// calls that have no *at form in x/sys; the l* calls that use it never
// follow the last component.
func procPath(dir int, base string) string {
	return fmt.Sprintf("/proc/self/fd/%d/%s", dir, base)
}
