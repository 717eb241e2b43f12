package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth/berth/internal/osutil"
)

// A view answers "what is at this path inside the container?" from the host,
// before (or, through /proc/PID/root, while) the container runs. It knows the
// rootfs and the bind mounts, so symlinks in the image or in a volume are
// followed with the container's own semantics (absolute targets start at the
// container's root, ".." stops there). Other mounts are fresh filesystems
// (tmpfs, mqueue ...) and have nothing to see, except /dev, where runc
// creates a few symlinks of its own.
type view struct {
	mounts []viewMount // longest destination first
	// inContainer is set for a /proc/PID/root view: host paths then
	// legitimately start with /proc.
	inContainer bool
}

type viewKind int

const (
	kindHost   viewKind = iota // a host directory (the rootfs or a bind source)
	kindOpaque                 // a fresh filesystem: nothing in it yet
	kindDev                    // runc's /dev: opaque except its symlinks
	kindProc                   // a procfs
)

type viewMount struct {
	dest   string
	source string
	kind   viewKind
	// evaluated is set once source's own symlinks have been followed on
	// the host, as runc does when it mounts it.
	evaluated bool
}

// runcDevLinks are the symlinks runc creates in a container's /dev.
var runcDevLinks = map[string]string{
	"fd":     "/proc/self/fd",
	"stdin":  "/proc/self/fd/0",
	"stdout": "/proc/self/fd/1",
	"stderr": "/proc/self/fd/2",
	"ptmx":   "pts/ptmx",
	"core":   "/proc/kcore",
}

// newView builds the view of a container from its rootfs and mounts.
func newView(rootfs string, mounts []specs.Mount) *view {
	v := &view{mounts: []viewMount{{dest: "/", source: rootfs, kind: kindHost}}}
	for _, m := range mounts {
		vm := viewMount{dest: path.Clean(m.Destination), source: m.Source, kind: kindOpaque}
		switch {
		case m.Type == "proc":
			vm.kind = kindProc
		case isBind(m):
			vm.kind = kindHost
		case vm.dest == "/dev" && m.Type == "tmpfs":
			vm.kind = kindDev
		}
		v.mounts = append(v.mounts, vm)
	}
	// Longest destination first; for equal destinations the later mount
	// (mounted on top) first.
	slices.SortStableFunc(v.mounts, func(a, b viewMount) int { return len(b.dest) - len(a.dest) })
	return v
}

// pidView is the view of a running container through /proc/PID/root: it
// sees the container's own mounts, including anything the container has
// planted in its tmpfs.
func pidView(pid int) *view {
	return &view{
		mounts:      []viewMount{{dest: "/", source: fmt.Sprintf("/proc/%d/root", pid), kind: kindHost}},
		inContainer: true,
	}
}

func isBind(m specs.Mount) bool {
	if m.Type == "bind" || m.Type == "rbind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

func (v *view) mountFor(p string) *viewMount {
	for i := range v.mounts {
		if under(p, v.mounts[i].dest) {
			return &v.mounts[i]
		}
	}
	return &v.mounts[len(v.mounts)-1]
}

// under reports whether p is dir or inside it (both clean and absolute).
func under(p, dir string) bool {
	if dir == "/" {
		return true
	}
	return p == dir || (strings.HasPrefix(p, dir) && p[len(dir)] == '/')
}

var (
	errIntoProc = errors.New("leads into /proc")
	errLoop     = syscall.ELOOP // "too many levels of symbolic links"
)

// resolve follows p inside the container and returns the path it reaches,
// free of symlinks as far as the host can see. It fails with errIntoProc if
// the path (or any symlink on the way) enters a procfs — the container's
// /proc, a bind of the host's /proc, or /proc of a host / bound in — and with
// errLoop after 40 symlinks. A component the host cannot see (it does not
// exist yet, or it is in a fresh tmpfs) counts as a plain directory, which
// is what runc creates for a missing working directory; the walk goes on,
// so a later ".." and what follows are still checked.
func (v *view) resolve(p string) (string, error) {
	return osutil.WalkSymlinks(p, true, v.lookup)
}

// lookup says whether next (clean, its parent resolved) is a symlink in the
// container and where it points, for resolve.
func (v *view) lookup(next string) (string, bool, error) {
	if under(next, "/proc") {
		return "", false, errIntoProc
	}
	m := v.mountFor(next)
	rel := strings.TrimPrefix(strings.TrimPrefix(next, m.dest), "/")
	if rel == "" && m.kind != kindHost {
		// The mount point itself: a directory.
		return "", false, nil
	}
	switch m.kind {
	case kindProc:
		return "", false, errIntoProc
	case kindDev:
		t, ok := runcDevLinks[rel]
		return t, ok, nil
	case kindHost:
		if !m.evaluated && !v.inContainer {
			// A bind source is a host path: its symlinks lead
			// somewhere on the host, not in the container.
			if src, err := filepath.EvalSymlinks(m.source); err == nil {
				m.source = src
			}
			m.evaluated = true
		}
		hp := path.Join(m.source, rel)
		if !v.inContainer && under(path.Clean(hp), "/proc") {
			return "", false, errIntoProc
		}
		fi, err := os.Lstat(hp)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				return "", false, nil
			}
			return "", false, err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return "", false, nil
		}
		t, err := os.Readlink(hp)
		if err != nil {
			return "", false, err
		}
		return t, true, nil
	}
	return "", false, nil // kindOpaque: a fresh filesystem, nothing in it yet
}

// checkCwd rejects a working directory that is not absolute or that reaches
// /proc inside the container. runc before 1.1.12 leaks a host directory fd
// into the container's init (CVE-2024-21626, "Leaky Vessels"): a cwd of
// /proc/self/fd/N — named directly or through a symlink — would start the
// process outside the container's root. Nothing legitimate needs a cwd in
// /proc, so the whole of it is refused, whatever runc is installed.
func checkCwd(v *view, cwd string) error {
	if !path.IsAbs(cwd) {
		return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("the working directory '%s' is invalid, it needs to be an absolute path", cwd))
	}
	if v == nil {
		v = &view{mounts: []viewMount{{dest: "/", kind: kindOpaque}}}
	}
	if _, err := v.resolve(cwd); err != nil {
		switch {
		case errors.Is(err, errIntoProc):
			return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("the working directory '%s' is invalid, it leads into /proc", cwd))
		case errors.Is(err, errLoop):
			return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("the working directory '%s' is invalid: %v", cwd, err))
		default:
			return fmt.Errorf("check working directory %q: %w", cwd, err)
		}
	}
	return nil
}
