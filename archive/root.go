package archive

import (
	"errors"
	"io"
	"os"
	"path"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/osutil"
)

// Paths inside a root (a container's "/", a volume, the CLI's destination)
// are resolved with filepath-securejoin's pathrs-lite, runc's own: ".."
// and symlinks, absolute or not, stop at the root as they do for a process
// chrooted there, and a concurrent rename or symlink swap inside the root
// cannot make a lookup leave it (openat2 RESOLVE_IN_ROOT, with a checked
// fallback on kernels without it). Every handle is O_PATH.

// OpenInRoot returns an O_PATH handle of p (a path in root), following
// every symlink, the last one included, inside root.
func OpenInRoot(root *os.File, p string) (*os.File, error) {
	return pathrs.OpenatInRoot(root, relRoot(p))
}

// OpenInRootNoFollow is OpenInRoot that does not follow p's last component
// (a symlink there is what comes back).
func OpenInRootNoFollow(root *os.File, p string) (*os.File, error) {
	p = path.Clean("/" + p)
	if p == "/" {
		return OpenInRoot(root, p)
	}
	parent, err := OpenInRoot(root, path.Dir(p))
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	fd, err := unix.Openat(int(parent.Fd()), path.Base(p), unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "openat", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

// MkdirAllInRoot creates the directory p (a path in root) and its missing
// parents with mode (less the umask) and returns an O_PATH handle of it.
func MkdirAllInRoot(root *os.File, p string, mode os.FileMode) (*os.File, error) {
	return pathrs.MkdirAllHandle(root, relRoot(p), mode)
}

// Reopen turns an O_PATH handle into a real one with flags, through a
// checked /proc.
func Reopen(f *os.File, flags int) (*os.File, error) { return pathrs.Reopen(f, flags) }

// ResolveInRoot follows the symlinks of p inside root as a process there
// would see them (the last one only with followFinal) and returns the
// clean absolute path reached. ".." is lexical, as in dockerd's
// FollowSymlinkInScope; a component that does not exist counts as a plain
// directory (the rest is still walked). Every lookup is confined to root.
func ResolveInRoot(root *os.File, p string, followFinal bool) (string, error) {
	return osutil.WalkSymlinks(path.Clean("/"+p), followFinal, func(next string) (string, bool, error) {
		f, err := OpenInRootNoFollow(root, next)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return "", false, nil
		}
		if err != nil {
			return "", false, err
		}
		defer f.Close()
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err != nil {
			return "", false, err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			return "", false, nil
		}
		target, err := osutil.Readlinkat(int(f.Fd()), "")
		return target, err == nil, err
	})
}

// ReadFileInRoot reads a small regular file of root (at most max bytes);
// nil if it cannot.
func ReadFileInRoot(root *os.File, p string, max int64) []byte {
	h, err := OpenInRoot(root, p)
	if err != nil {
		return nil
	}
	defer h.Close()
	var st unix.Stat_t
	if unix.Fstat(int(h.Fd()), &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil // never open a fifo or a device
	}
	f, err := Reopen(h, unix.O_RDONLY)
	if err != nil {
		return nil
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, max))
	return b
}

// relRoot turns a container path into pathrs' argument ("/" is ".").
func relRoot(p string) string {
	p = path.Clean("/" + p)
	if p == "/" {
		return "."
	}
	return p[1:]
}
