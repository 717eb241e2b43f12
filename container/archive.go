package container

// docker cp (GET/HEAD/PUT /containers/{id}/archive) and docker export.
//
// A container's filesystem is reached through an fsSession: a view of its
// root as its processes see it, built on a thread that has its own, private
// mount namespace. Inside it the container's rootfs is the overlay that is
// already mounted for a running container (the namespace holds a copy of
// the host's mount) or a fresh mount of the snapshot for a stopped one, and,
// for cp, its volumes, binds and /etc files are bind-mounted on top at the
// places they occupy in the container, as Docker does. Nothing is mounted in
// the host's namespace, so nothing can leak there, and every mount goes away
// with the thread.
//
// Safety: the container owns everything under its root and may have planted
// symlinks anywhere ("/etc/evil -> /", "x -> ../../..", ...). Every lookup
// goes through the archive package's resolution in a root (filepath-
// securejoin's pathrs-lite: openat2 with RESOLVE_IN_ROOT) from the view's
// root handle, so ".." and absolute symlinks stop at the container's root
// exactly as they do inside the container; archives are written and
// extracted by the archive package with *at system calls on directory
// handles obtained that way, the last component never followed. A racing
// container can change which of its own files we touch, never make us
// touch one outside it.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/archive"
	rtspec "github.com/berth/berth/runtime/spec"
	"github.com/berth/berth/snapshot"
)

// ---- rootfs locks ---------------------------------------------------------

// rootfsLocks orders filesystem sessions (shared) against starts
// (exclusive): a stopped container's snapshot is mounted by a session, and
// the same overlay upper dir must never be mounted twice at once.
type rootfsLocks struct {
	mu sync.Mutex
	m  map[string]*rootfsLock
}

type rootfsLock struct {
	rw   sync.RWMutex
	refs int
}

func (s *Service) lockRootfs(id string, exclusive bool) (unlock func()) {
	locks := &s.rootfsLocks
	locks.mu.Lock()
	if locks.m == nil {
		locks.m = map[string]*rootfsLock{}
	}
	l := locks.m[id]
	if l == nil {
		l = &rootfsLock{}
		locks.m[id] = l
	}
	l.refs++
	locks.mu.Unlock()
	if exclusive {
		l.rw.Lock()
	} else {
		l.rw.RLock()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			if exclusive {
				l.rw.Unlock()
			} else {
				l.rw.RUnlock()
			}
			locks.mu.Lock()
			l.refs--
			if l.refs == 0 {
				delete(locks.m, id)
			}
			locks.mu.Unlock()
		})
	}
}

// HoldRootfs is the hook for start: it waits until no cp, export or commit
// uses the container's filesystem and keeps new ones out until the returned
// function is called. start calls it before mounting the rootfs and
// releases it when it returns.
func (s *Service) HoldRootfs(id string) (release func()) { return s.lockRootfs(id, true) }

// ---- filesystem sessions ---------------------------------------------------

// fsSession is a view of a container's filesystem. Close it when done.
type fsSession struct {
	root   *os.File       // O_PATH handle of the container's "/"
	mounts []sessionMount // longest dest first; the last is "/"
	close  func()
}

type sessionMount struct {
	dest   string // resolved path inside the container
	rw     bool
	rootfs bool
}

// openFS builds a view of c's filesystem; withMounts adds its volumes,
// binds and /etc files (cp), without them it is the rootfs alone (export).
func (s *Service) openFS(ctx context.Context, c *Container, withMounts bool) (*fsSession, error) {
	unlock := s.lockRootfs(c.ID, false)
	ok := false
	defer func() {
		if !ok {
			unlock()
		}
	}()
	c.mu.Lock()
	mounts := append([]container.MountPoint(nil), c.Mounts...)
	etcDir := s.etcDir(c)
	readonly := c.HostConfig.ReadonlyRootfs
	created := c.Created
	c.mu.Unlock()
	snap, err := s.cfg.Snapshots.Mounts(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(s.viewsDir(), c.ID[:12]+"-"+hex.EncodeToString(rnd[:]))
	var binds []viewBind
	standIn := ""
	if withMounts {
		binds = s.viewBinds(etcDir, mounts, func() string {
			if standIn == "" {
				standIn = emptyFile(tmp+".empty", created)
			}
			return standIn
		})
	}
	defer func() {
		if !ok && standIn != "" {
			_ = os.Remove(standIn)
		}
	}()

	type result struct {
		root   *os.File
		mounts []sessionMount
		err    error
	}
	resc := make(chan result, 1)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		// The thread is never unlocked: when this goroutine returns, the
		// runtime ends the thread, and with it the mount namespace.
		runtime.LockOSThread()
		defer close(finished)
		root, sm, mountedAt, err := buildView(s.rootfs(c.ID), tmp, snap, binds)
		if err != nil {
			resc <- result{err: err}
			return
		}
		resc <- result{root: root, mounts: sm}
		<-done
		if mountedAt != "" {
			_ = unix.Unmount(mountedAt, unix.MNT_DETACH)
		}
	}()
	res := <-resc
	if res.err != nil {
		<-finished
		_ = os.Remove(tmp)
		return nil, res.err
	}
	sm := append(res.mounts, sessionMount{dest: "/", rw: !readonly, rootfs: true})
	sort.SliceStable(sm, func(i, j int) bool { return len(sm[i].dest) > len(sm[j].dest) })
	var once sync.Once
	f := &fsSession{root: res.root, mounts: sm}
	f.close = func() {
		once.Do(func() {
			res.root.Close()
			close(done)
			<-finished
			_ = os.Remove(tmp)
			if standIn != "" {
				_ = os.Remove(standIn)
			}
			unlock()
		})
	}
	ok = true
	return f, nil
}

// viewsDir holds the views cp and export assemble of stopped containers
// (each an empty directory, mounted only in a private mount namespace,
// and the stand-in file of a never-started container's /etc files).
func (s *Service) viewsDir() string { return filepath.Join(s.cfg.ExecRoot, "fs") }

// removeViewLeftovers removes what cp and export left when a crash cut
// them short: views in viewsDir (their mounts died with the process that
// made them: empty directories and empty files, removed one by one, never
// recursively; whatever is not empty is not a leftover of ours) and the
// spool file of an upload (archive.Spool unlinks it at once; a crash in
// between leaves it).
func (s *Service) removeViewLeftovers() {
	ents, _ := os.ReadDir(s.viewsDir())
	var left []string
	for _, e := range ents {
		left = append(left, filepath.Join(s.viewsDir(), e.Name()))
	}
	spools, _ := filepath.Glob(filepath.Join(s.cfg.Root, "spool-*"))
	for _, p := range append(left, spools...) {
		if err := os.Remove(p); err != nil {
			s.log.Warn("cannot remove the leftover of a cp or export", "path", p, "err", err)
		}
	}
}

// emptyFile makes the empty, mode 0755 file at p that stands for a
// never-started container's /etc files; "" if it cannot.
func emptyFile(p string, mtime time.Time) string {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return ""
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		return ""
	}
	f.Close()
	if os.Chmod(p, 0o755) != nil || os.Chtimes(p, mtime, mtime) != nil {
		os.Remove(p)
		return ""
	}
	return p
}

// Close releases the view.
func (f *fsSession) Close() { f.close() }

// viewBind is one bind mount of the view.
type viewBind struct {
	source string
	dest   string
	rw     bool
	file   bool
}

// viewBinds lists what cp sees mounted in the container, shallowest first;
// etcDir holds its /etc files (etcDir).
// A container that never started has no /etc files of its own yet; in
// their place it shows empty ones, as dockerd's init layer does (empty,
// mode 0755, owned by root): standIn makes such a file, read-only, on
// demand ("" if it cannot).
func (s *Service) viewBinds(etcDir string, mounts []container.MountPoint, standIn func() string) []viewBind {
	var out []viewBind
	for _, f := range []struct{ name, dst string }{{"hosts", "/etc/hosts"}, {"hostname", "/etc/hostname"}, {"resolv.conf", "/etc/resolv.conf"}} {
		src := filepath.Join(etcDir, f.name)
		if st, err := os.Stat(src); err == nil && st.Mode().IsRegular() {
			out = append(out, viewBind{source: src, dest: f.dst, rw: true, file: true})
		} else if empty := standIn(); empty != "" {
			out = append(out, viewBind{source: empty, dest: f.dst, file: true})
		}
	}
	for _, mp := range mounts {
		if mp.Type != mount.TypeBind && mp.Type != mount.TypeVolume {
			continue
		}
		st, err := os.Stat(mp.Source)
		if err != nil {
			continue
		}
		out = append(out, viewBind{source: mp.Source, dest: path.Clean(mp.Destination), rw: mp.RW, file: !st.IsDir()})
	}
	sort.SliceStable(out, func(i, j int) bool {
		return strings.Count(out[i].dest, "/") < strings.Count(out[j].dest, "/")
	})
	return out
}

// buildView runs on a locked thread: it moves the thread into a private
// mount namespace and assembles the view there. It returns the root fd, the
// binds' resolved destinations and the mount to undo at the end ("" when
// the running container's mount is reused).
func buildView(rootfs, tmp string, snap snapshot.Mount, binds []viewBind) (*os.File, []sessionMount, string, error) {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return nil, nil, "", fmt.Errorf("unshare mount namespace: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return nil, nil, "", fmt.Errorf("make mounts private: %w", err)
	}
	target, mountedAt := rootfs, ""
	if !isMountPoint(rootfs) {
		if err := os.MkdirAll(tmp, 0o700); err != nil {
			return nil, nil, "", err
		}
		if err := mountSnapshot(snap, tmp); err != nil {
			return nil, nil, "", err
		}
		target, mountedAt = tmp, tmp
	}
	root, err := os.OpenFile(target, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if mountedAt != "" {
			_ = unix.Unmount(mountedAt, unix.MNT_DETACH)
		}
		return nil, nil, "", err
	}
	var sm []sessionMount
	for _, b := range binds {
		dest, err := bindInto(root, b)
		if err != nil {
			continue // as runc would fail to, the container never saw it
		}
		sm = append(sm, sessionMount{dest: dest, rw: b.rw})
	}
	return root, sm, mountedAt, nil
}

// mountSnapshot mounts m on target from this thread (whose working
// directory is its own since the unshare).
func mountSnapshot(m snapshot.Mount, target string) error {
	if m.Type == "bind" {
		return unix.Mount(m.Source, target, "", unix.MS_BIND|unix.MS_REC, "")
	}
	if m.Dir != "" {
		if err := unix.Chdir(m.Dir); err != nil {
			return err
		}
	}
	if err := unix.Mount(m.Source, target, m.Type, 0, strings.Join(m.Options, ",")); err != nil {
		return fmt.Errorf("mount %s on %s: %w", m.Type, target, err)
	}
	return nil
}

// isMountPoint reports whether p is the root of a mount.
func isMountPoint(p string) bool {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, p, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID, &st); err != nil {
		return false
	}
	if st.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 {
		return st.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0
	}
	var parent unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, filepath.Dir(p), 0, unix.STATX_MNT_ID, &parent); err != nil {
		return false
	}
	return st.Mnt_id != parent.Mnt_id
}

// bindInto mounts b.source at b.dest inside the view rooted at root,
// creating the mount point as runc would, and returns the resolved dest.
func bindInto(root *os.File, b viewBind) (string, error) {
	dest, err := archive.ResolveInRoot(root, b.dest, true)
	if err != nil {
		return "", err
	}
	mp, err := archive.OpenInRootNoFollow(root, dest)
	if errors.Is(err, unix.ENOENT) {
		if b.file {
			err = createFileInRoot(root, dest)
		} else {
			var d *os.File
			if d, err = archive.MkdirAllInRoot(root, dest, 0o755); err == nil {
				d.Close()
			}
		}
		if err != nil {
			return "", err
		}
		mp, err = archive.OpenInRootNoFollow(root, dest)
	}
	if err != nil {
		return "", err
	}
	defer mp.Close()
	fd := int(mp.Fd())
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "", err
	}
	if isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR; isDir == b.file || st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return "", fmt.Errorf("mount point %s has the wrong type", dest)
	}
	tree, err := unix.OpenTree(unix.AT_FDCWD, b.source, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return "", fmt.Errorf("open_tree %s: %w", b.source, err)
	}
	defer unix.Close(tree)
	if !b.rw {
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
		if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
			return "", err
		}
	}
	if err := unix.MoveMount(tree, "", fd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return "", fmt.Errorf("move_mount %s: %w", dest, err)
	}
	return dest, nil
}

// mountFor is the mount holding the resolved container path p.
func (f *fsSession) mountFor(p string) sessionMount {
	for _, m := range f.mounts {
		if m.dest == "/" || p == m.dest || strings.HasPrefix(p, m.dest+"/") {
			return m
		}
	}
	return f.mounts[len(f.mounts)-1]
}

// createFileInRoot creates an empty file at p (a mount point for a file).
func createFileInRoot(root *os.File, p string) error {
	dir, err := archive.MkdirAllInRoot(root, path.Dir(p), 0o755)
	if err != nil {
		return err
	}
	defer dir.Close()
	fd, err := unix.Openat(int(dir.Fd()), path.Base(p), unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// ---- GET / HEAD ----------------------------------------------------------

// notADirectory is dockerd's lstat error for a path that needs a file to
// be a directory, with the path in the container (dockerd names its host
// path); unclassed, as dockerd answers 500.
func notADirectory(abs string) error {
	return fmt.Errorf("lstat %s: not a directory", abs)
}

func fileNotFound(p, name string) error {
	return cerrdefs.ErrNotFound.WithMessage(fmt.Sprintf("Could not find the file %s in container %s", p, name))
}

// archiveTarget is a path of a GET or HEAD, resolved.
type archiveTarget struct {
	abs      string   // the asked path made absolute, trailing "/." kept
	resolved string   // resolved path of the entry itself
	parent   *os.File // O_PATH handle of its directory (or of itself when base is ".")
	base     string   // name in parent, "." for the directory itself
	st       unix.Stat_t
}

func (t *archiveTarget) close() { t.parent.Close() }

// asAbs makes the asked path absolute, keeping a trailing "/" or "/.",
// which mean "follow the last symlink" (and, for ".", "the contents").
func asAbs(p string) string {
	abs := path.Join("/", p)
	switch {
	case p == "." || strings.HasSuffix(p, "/."):
		if abs != "/" {
			abs += "/."
		} else {
			abs = "/."
		}
	case strings.HasSuffix(p, "/") && abs != "/":
		abs += "/"
	}
	return abs
}

func (f *fsSession) target(p, name string) (*archiveTarget, error) {
	abs := asAbs(p)
	follow := strings.HasSuffix(abs, "/") || strings.HasSuffix(abs, "/.") || path.Clean(abs) == "/"
	t := &archiveTarget{abs: abs}
	var err error
	if follow {
		t.resolved, err = archive.ResolveInRoot(f.root, abs, true)
		if err != nil {
			return nil, err
		}
		t.base = "."
		t.parent, err = archive.OpenInRootNoFollow(f.root, t.resolved)
	} else {
		t.resolved, err = archive.ResolveInRoot(f.root, abs, false)
		if err != nil {
			return nil, err
		}
		t.base = path.Base(t.resolved)
		t.parent, err = archive.OpenInRoot(f.root, path.Dir(t.resolved))
	}
	// A file where the path needs a directory ("x/", "x/.", "x/y" of a
	// file x) is dockerd's lstat error (500), not "Could not find the
	// file" (404, which the CLI reports as a missing container:path).
	if errors.Is(err, unix.ENOTDIR) {
		return nil, notADirectory(abs)
	}
	if errors.Is(err, unix.ENOENT) {
		return nil, fileNotFound(p, name)
	}
	if err != nil {
		return nil, err
	}
	if err := unix.Fstatat(int(t.parent.Fd()), t.base, &t.st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.parent.Close()
		switch err {
		case unix.ENOTDIR:
			return nil, notADirectory(abs)
		case unix.ENOENT:
			return nil, fileNotFound(p, name)
		}
		return nil, err
	}
	if follow && t.st.Mode&unix.S_IFMT != unix.S_IFDIR {
		t.parent.Close()
		return nil, notADirectory(abs)
	}
	return t, nil
}

// pathStat is Docker's stat of an archive target.
func (f *fsSession) pathStat(t *archiveTarget) (*container.PathStat, error) {
	st := &container.PathStat{
		Name:  path.Base(t.abs),
		Size:  t.st.Size,
		Mode:  fileMode(t.st.Mode),
		Mtime: time.Unix(t.st.Mtim.Sec, t.st.Mtim.Nsec),
	}
	if path.Clean(t.abs) == "/" {
		st.Name = "/"
	}
	if t.st.Mode&unix.S_IFMT == unix.S_IFLNK {
		target, err := archive.ResolveInRoot(f.root, t.resolved, true)
		if err != nil {
			return nil, err
		}
		st.LinkTarget = target
	}
	return st, nil
}

// fileMode converts a stat mode as os.Lstat does.
func fileMode(m uint32) os.FileMode {
	fm := os.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFBLK:
		fm |= os.ModeDevice
	case unix.S_IFCHR:
		fm |= os.ModeDevice | os.ModeCharDevice
	case unix.S_IFDIR:
		fm |= os.ModeDir
	case unix.S_IFIFO:
		fm |= os.ModeNamedPipe
	case unix.S_IFLNK:
		fm |= os.ModeSymlink
	case unix.S_IFSOCK:
		fm |= os.ModeSocket
	}
	if m&unix.S_ISGID != 0 {
		fm |= os.ModeSetgid
	}
	if m&unix.S_ISUID != 0 {
		fm |= os.ModeSetuid
	}
	if m&unix.S_ISVTX != 0 {
		fm |= os.ModeSticky
	}
	return fm
}

// EncodePathStat is the X-Docker-Container-Path-Stat header value.
func EncodePathStat(st *container.PathStat) (string, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// ArchiveStat answers HEAD /containers/{id}/archive.
func (s *Service) ArchiveStat(ctx context.Context, name, p string) (*container.PathStat, error) {
	c, err := s.Get(name)
	if err != nil {
		return nil, err
	}
	if p == "" {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage("path is required")
	}
	f, err := s.openFS(ctx, c, true)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t, err := f.target(p, name)
	if err != nil {
		return nil, err
	}
	defer t.close()
	return f.pathStat(t)
}

// ArchiveGet answers GET /containers/{id}/archive: the stat of p and a tar
// of it, its entries named after p's last element (a trailing "/." means
// the directory's contents, named "./..."). Close the reader.
func (s *Service) ArchiveGet(ctx context.Context, name, p string) (*container.PathStat, io.ReadCloser, error) {
	c, err := s.Get(name)
	if err != nil {
		return nil, nil, err
	}
	if p == "" {
		return nil, nil, cerrdefs.ErrInvalidArgument.WithMessage("path is required")
	}
	f, err := s.openFS(ctx, c, true)
	if err != nil {
		return nil, nil, err
	}
	t, err := f.target(p, name)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	st, err := f.pathStat(t)
	if err != nil {
		t.close()
		f.Close()
		return nil, nil, err
	}
	// The entries are named as dockerd names them: from the asked path's
	// last element ("x/..."), "/" for "/" ("/", "/etc/..."), "." for "/.".
	rebase := path.Base(t.abs)
	if path.Clean(t.abs) == "/" && t.abs != "/" {
		rebase = "."
	}
	// Owner names from the container's own passwd and group, as dockerd
	// archives from inside the container's root.
	names := archive.NewNames(archive.ReadFileInRoot(f.root, "/etc/passwd", 4<<20), archive.ReadFileInRoot(f.root, "/etc/group", 4<<20))
	rc := archive.Stream(ctx, archive.WriterOptions{Names: names}, func(w *archive.Writer) error {
		defer t.close()
		return w.Add(int(t.parent.Fd()), t.base, rebase, &t.st)
	}, f.Close)
	s.emit(c, "archive-path", nil)
	return st, rc, nil
}

// Export answers GET /containers/{id}/export: a tar of the container's
// root filesystem, without its volumes and binds, as Docker's. Close the
// reader.
func (s *Service) Export(ctx context.Context, name string) (io.ReadCloser, error) {
	c, err := s.Get(name)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	removing := c.removed || c.State.Status == container.StateRemoving
	dead := c.State.Dead
	c.mu.Unlock()
	if removing {
		return nil, cerrdefs.ErrConflict.WithMessage(fmt.Sprintf("You cannot export container %s which is being removed", c.ID))
	}
	if dead {
		return nil, cerrdefs.ErrConflict.WithMessage(fmt.Sprintf("You cannot export container %s which is Dead", c.ID))
	}
	f, err := s.openFS(ctx, c, false)
	if err != nil {
		return nil, err
	}
	rc := archive.Stream(ctx, archive.WriterOptions{OneFileSystem: true}, func(w *archive.Writer) error {
		return w.AddChildren(int(f.root.Fd()), "")
	}, f.Close)
	s.emit(c, "export", nil)
	return rc, nil
}

// ---- PUT -----------------------------------------------------------------

// ExtractOptions are PUT /containers/{id}/archive's parameters.
type ExtractOptions struct {
	// NoOverwriteDirNonDir refuses to replace a directory with a
	// non-directory or the reverse.
	NoOverwriteDirNonDir bool
	// CopyUIDGID makes every extracted file owned by the container's user
	// (its Config.User) instead of the owner recorded in the tar.
	CopyUIDGID bool
}

// ArchivePut answers PUT /containers/{id}/archive: it extracts the tar r,
// uncompressed or compressed with gzip, bzip2, xz or zstd (dockerd 20.10
// takes all but zstd, newer ones zstd too), into the directory p of the
// container. A body that is not a whole, valid (compressed) tar is an
// invalid argument and changes nothing.
func (s *Service) ArchivePut(ctx context.Context, name, p string, o ExtractOptions, r io.Reader) error {
	c, err := s.Get(name)
	if err != nil {
		return err
	}
	if p == "" {
		return cerrdefs.ErrInvalidArgument.WithMessage("path is required")
	}
	f, err := s.openFS(ctx, c, true)
	if err != nil {
		return err
	}
	defer f.Close()
	dest, err := archive.ResolveInRoot(f.root, path.Join("/", p), true)
	if err != nil {
		return err
	}
	dh, err := archive.OpenInRootNoFollow(f.root, dest)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return fileNotFound(p, name)
	}
	if err != nil {
		return err
	}
	var st unix.Stat_t
	err = unix.Fstat(int(dh.Fd()), &st)
	dh.Close()
	if err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return cerrdefs.ErrInvalidArgument.WithMessage("extraction point is not a directory")
	}
	m := f.mountFor(dest)
	if m.rootfs && !m.rw {
		return cerrdefs.ErrInvalidArgument.WithMessage("container rootfs is marked read-only")
	}
	if !m.rw {
		return cerrdefs.ErrInvalidArgument.WithMessage("mounted volume is marked read-only")
	}
	// Device nodes too, as dockerd: the container's device cgroup, not
	// the file, decides what it may open.
	opts := archive.ExtractOptions{NoOverwriteDirNonDir: o.NoOverwriteDirNonDir, Devices: true}
	if o.CopyUIDGID {
		c.mu.Lock()
		user := c.Config.User
		c.mu.Unlock()
		if user != "" {
			u, err := rtspec.ResolveUser(archive.ReadFileInRoot(f.root, "/etc/passwd", 4<<20), archive.ReadFileInRoot(f.root, "/etc/group", 4<<20), user, nil)
			if err != nil {
				return cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
			}
			opts.Owner = &archive.Owner{UID: int(u.UID), GID: int(u.GID)}
		}
	}
	// The whole body first: a corrupt or cut upload (any of dockerd's
	// compressions) is refused before anything is written.
	body, err := archive.Spool(ctx, r, s.cfg.Root)
	if err != nil {
		return err
	}
	defer body.Close()
	if err := archive.Extract(ctx, f.root, dest, body, opts); err != nil {
		return err
	}
	s.emit(c, "extract-to-dir", nil)
	return nil
}
