package snapshot

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
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/osutil"
)

// Tar streams the layer's diff directory as a tar in Docker's layer format:
// overlayfs whiteouts (0/0 character devices) become ".wh.NAME" entries and
// opaque directories get a ".wh..wh..opq" entry. Entries are sorted by name
// within each directory and carry owner, mode, mtime (whole seconds, as
// Docker writes them), xattrs and hardlinks, so the same layer always yields
// the same bytes and Apply(Tar(x)) recreates x. The layer root itself is not
// an entry. Close the reader to stop early.
func (s *Store) Tar(ctx context.Context, chainID digest.Digest) (io.ReadCloser, error) {
	l, err := s.Get(ctx, chainID)
	if err != nil {
		return nil, err
	}
	return TarDir(ctx, l.Dir)
}

// TarDir streams dir (an overlayfs upper or diff directory) as a layer tar,
// exactly as Tar does for a layer. The directory must not change meanwhile.
func TarDir(ctx context.Context, dir string) (io.ReadCloser, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() {
		defer f.Close()
		bufp := copyBufPool.Get().(*[]byte)
		defer copyBufPool.Put(bufp)
		tw := tar.NewWriter(pw)
		t := &tarrer{ctx: ctx, tw: tw, buf: *bufp}
		err := t.walk(f, "")
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr, nil
}

type inode struct{ dev, ino uint64 }

// TarHeaders makes the tar header of each file met while walking a tree
// with *at calls, as Docker writes it: owner, permission bits, mtime in
// whole seconds and PAX format, then what the type needs (a directory's
// name ends in "/", a regular file has its size, a symlink its target, a
// device its numbers). A regular file with more than one link becomes a
// hard-link entry to the first name it was given under. Layer tars (TarDir)
// and a container's archives (docker cp, export) both use it. The zero
// value is ready for one tar.
type TarHeaders struct {
	links map[inode]string // first name of each multiply-linked file
}

// Header returns the header of base in the directory dfd, whose lstat is
// st, named name in the tar; a symlink's target is read with readlinkat,
// never followed. A socket, which cannot be archived (Docker skips them
// too), has no header: nil, nil. The caller adds xattrs (PAX records) and,
// for a regular file, the contents; a hard-link entry has neither.
func (h *TarHeaders) Header(dfd int, base, name string, st *unix.Stat_t) (*tar.Header, error) {
	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, 0),
		Format:  tar.FormatPAX,
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

type tarrer struct {
	ctx     context.Context
	tw      *tar.Writer
	buf     []byte
	headers TarHeaders
}

// walk writes the entries of the directory d (named rel in the tar),
// working only with *at calls on d's fd so that no symlink is followed.
func (t *tarrer) walk(d *os.File, rel string) error {
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	sort.Strings(names)
	dfd := int(d.Fd())
	for _, n := range names {
		if err := t.ctx.Err(); err != nil {
			return err
		}
		if err := t.entry(dfd, n, path.Join(rel, n)); err != nil {
			return fmt.Errorf("tar %s: %w", path.Join(rel, n), err)
		}
	}
	return nil
}

func (t *tarrer) entry(dfd int, base, name string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	hdr, err := t.headers.Header(dfd, base, name, &st)
	if err != nil || hdr == nil {
		return err
	}
	if hdr.Typeflag == tar.TypeChar && st.Rdev == 0 {
		// Overlayfs whiteout → Docker whiteout file.
		hdr.Name = path.Join(path.Dir(name), whiteoutPrefix+base)
		hdr.Typeflag = tar.TypeReg
		hdr.Mode = 0o600
		hdr.Devmajor, hdr.Devminor = 0, 0
		return t.tw.WriteHeader(hdr)
	}
	var opaque bool
	if hdr.Typeflag != tar.TypeLink { // a link's xattrs belong to the inode, already written
		var xattrs map[string]string
		if xattrs, opaque, err = listXattrs(dfd, base); err != nil {
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
		if err := t.tw.WriteHeader(hdr); err != nil {
			return err
		}
		if opaque {
			if err := t.tw.WriteHeader(&tar.Header{
				Typeflag: tar.TypeReg,
				Name:     path.Join(name, whiteoutOpaqueDir),
				Mode:     0o600,
				Uid:      hdr.Uid,
				Gid:      hdr.Gid,
				ModTime:  hdr.ModTime,
				Format:   tar.FormatPAX,
			}); err != nil {
				return err
			}
		}
		fd, err := unix.Openat(dfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		sub := os.NewFile(uintptr(fd), name)
		defer sub.Close()
		return t.walk(sub, name)
	case tar.TypeReg:
		fd, err := unix.Openat(dfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), name)
		defer f.Close()
		if err := t.tw.WriteHeader(hdr); err != nil {
			return err
		}
		n, err := io.CopyBuffer(t.tw, struct{ io.Reader }{f}, t.buf)
		if err == nil && n != st.Size {
			err = fmt.Errorf("file changed size while archiving")
		}
		return err
	}
	return t.tw.WriteHeader(hdr)
}

// listXattrs returns the extended attributes of base in dfd (not following
// a symlink), leaving out overlayfs' private ones; opaque reports whether
// the overlay opaque marker is set.
func listXattrs(dfd int, base string) (attrs map[string]string, opaque bool, err error) {
	p := procPath(dfd, base)
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
		if name == opaqueXattr {
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
