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
// goes through openat2(2) with RESOLVE_IN_ROOT relative to the view's root
// fd, so ".." and absolute symlinks stop at the container's root exactly as
// they do inside the container, and every file is created, removed or
// changed with *at system calls on a directory fd obtained that way, with
// the last component never followed. A racing container can change which
// of its own files we touch, never make us touch one outside it.

import (
	"archive/tar"
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

	"github.com/berth/berth/internal/osutil"
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
	root   int            // O_PATH fd of the container's "/"
	mounts []sessionMount // longest dest first; the last is "/"
	close  func()
}

type sessionMount struct {
	dest   string // resolved path inside the container
	rw     bool
	rootfs bool
}

const resolveFlags = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

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
	readonly := c.HostConfig.ReadonlyRootfs
	c.mu.Unlock()
	snap, err := s.cfg.Snapshots.Mounts(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	var binds []viewBind
	if withMounts {
		binds = s.viewBinds(c.ID, mounts)
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(s.cfg.ExecRoot, "fs", c.ID[:12]+"-"+hex.EncodeToString(rnd[:]))

	type result struct {
		root   int
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
			unix.Close(res.root)
			close(done)
			<-finished
			_ = os.Remove(tmp)
			unlock()
		})
	}
	ok = true
	return f, nil
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

// viewBinds lists what cp sees mounted in the container, shallowest first.
func (s *Service) viewBinds(id string, mounts []container.MountPoint) []viewBind {
	var out []viewBind
	for _, f := range []struct{ name, dst string }{{"hosts", "/etc/hosts"}, {"hostname", "/etc/hostname"}, {"resolv.conf", "/etc/resolv.conf"}} {
		src := filepath.Join(s.dir(id), f.name)
		if st, err := os.Stat(src); err == nil && st.Mode().IsRegular() {
			out = append(out, viewBind{source: src, dest: f.dst, rw: true, file: true})
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
func buildView(rootfs, tmp string, snap snapshot.Mount, binds []viewBind) (int, []sessionMount, string, error) {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return -1, nil, "", fmt.Errorf("unshare mount namespace: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return -1, nil, "", fmt.Errorf("make mounts private: %w", err)
	}
	target, mountedAt := rootfs, ""
	if !isMountPoint(rootfs) {
		if err := os.MkdirAll(tmp, 0o700); err != nil {
			return -1, nil, "", err
		}
		if err := mountSnapshot(snap, tmp); err != nil {
			return -1, nil, "", err
		}
		target, mountedAt = tmp, tmp
	}
	root, err := unix.Open(target, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if mountedAt != "" {
			_ = unix.Unmount(mountedAt, unix.MNT_DETACH)
		}
		return -1, nil, "", err
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
func bindInto(root int, b viewBind) (string, error) {
	dest, err := resolveInRoot(root, b.dest, true)
	if err != nil {
		return "", err
	}
	fd, err := openInRoot(root, dest, unix.O_PATH|unix.O_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		if b.file {
			err = createFileInRoot(root, dest)
		} else {
			_, err = mkdirAllInRoot(root, dest, -1, -1)
		}
		if err != nil {
			return "", err
		}
		fd, err = openInRoot(root, dest, unix.O_PATH|unix.O_NOFOLLOW)
	}
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
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

// ---- confined path resolution -------------------------------------------

// relRoot turns a clean absolute container path into openat2's argument.
func relRoot(p string) string {
	p = strings.TrimPrefix(path.Clean("/"+p), "/")
	if p == "" {
		return "."
	}
	return p
}

// openInRoot opens the container path p relative to root; symlinks and
// ".." never leave root.
func openInRoot(root int, p string, flags int) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: resolveFlags}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(root, relRoot(p), &how)
		if err == unix.EAGAIN && i < 64 {
			continue // a rename raced the lookup
		}
		if err == unix.EINTR {
			continue
		}
		return fd, err
	}
}

// resolveInRoot follows every symlink of the container path p inside root,
// as the container would see them (the last one only with followFinal),
// and returns the resulting clean path. p is cleaned first (".." is
// lexical, as in Docker's FollowSymlinkInScope); every lookup is an openat2
// confined to root, so no link or ".." leads out of it. A component that
// does not exist counts as a plain directory: the rest is still walked.
func resolveInRoot(root int, p string, followFinal bool) (string, error) {
	return osutil.WalkSymlinks(path.Clean("/"+p), followFinal, func(next string) (string, bool, error) {
		fd, err := openInRoot(root, next, unix.O_PATH|unix.O_NOFOLLOW)
		if err == unix.ENOENT || err == unix.ENOTDIR {
			return "", false, nil
		}
		if err != nil {
			return "", false, err
		}
		defer unix.Close(fd)
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return "", false, err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			return "", false, nil
		}
		target, err := osutil.Readlinkat(fd, "")
		return target, err == nil, err
	})
}

// mkdirAllInRoot creates the directory p and its missing parents inside
// root (mode 0755, owned by uid:gid unless negative) and returns an
// O_PATH fd of it.
func mkdirAllInRoot(root int, p string, uid, gid int) (int, error) {
	cur, err := unix.Dup(root)
	if err != nil {
		return -1, err
	}
	unix.CloseOnExec(cur)
	curPath := "/"
	for _, comp := range strings.Split(strings.TrimPrefix(path.Clean("/"+p), "/"), "/") {
		if comp == "" {
			continue
		}
		next := path.Join(curPath, comp)
		fd, err := openInRoot(root, next, unix.O_PATH|unix.O_DIRECTORY)
		if err == unix.ENOENT {
			if err := unix.Mkdirat(cur, comp, 0o755); err != nil && err != unix.EEXIST {
				unix.Close(cur)
				return -1, err
			}
			if uid >= 0 {
				_ = unix.Fchownat(cur, comp, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
			}
			fd, err = openInRoot(root, next, unix.O_PATH|unix.O_DIRECTORY)
		}
		unix.Close(cur)
		if err != nil {
			return -1, err
		}
		cur, curPath = fd, next
	}
	return cur, nil
}

// createFileInRoot creates an empty file at p (a mount point for a file).
func createFileInRoot(root int, p string) error {
	dir, err := mkdirAllInRoot(root, path.Dir(p), -1, -1)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	fd, err := unix.Openat(dir, path.Base(p), unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// ---- GET / HEAD ----------------------------------------------------------

func fileNotFound(p, name string) error {
	return cerrdefs.ErrNotFound.WithMessage(fmt.Sprintf("Could not find the file %s in container %s", p, name))
}

// archiveTarget is a path of a GET or HEAD, resolved.
type archiveTarget struct {
	abs      string // the asked path made absolute, trailing "/." kept
	resolved string // resolved path of the entry itself
	parent   int    // O_PATH fd of its directory (or of itself when base is ".")
	base     string // name in parent, "." for the directory itself
	st       unix.Stat_t
}

func (t *archiveTarget) close() { unix.Close(t.parent) }

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
		t.resolved, err = resolveInRoot(f.root, abs, true)
		if err != nil {
			return nil, err
		}
		t.base = "."
		t.parent, err = openInRoot(f.root, t.resolved, unix.O_PATH|unix.O_NOFOLLOW)
	} else {
		t.resolved, err = resolveInRoot(f.root, abs, false)
		if err != nil {
			return nil, err
		}
		t.base = path.Base(t.resolved)
		t.parent, err = openInRoot(f.root, path.Dir(t.resolved), unix.O_PATH|unix.O_DIRECTORY)
	}
	if err == unix.ENOENT || err == unix.ENOTDIR {
		return nil, fileNotFound(p, name)
	}
	if err != nil {
		return nil, err
	}
	if err := unix.Fstatat(t.parent, t.base, &t.st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		unix.Close(t.parent)
		if err == unix.ENOENT || err == unix.ENOTDIR {
			return nil, fileNotFound(p, name)
		}
		return nil, err
	}
	if follow && t.st.Mode&unix.S_IFMT != unix.S_IFDIR {
		// "x/" or "x/." of something that is not a directory.
		unix.Close(t.parent)
		return nil, fileNotFound(p, name)
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
		target, err := resolveInRoot(f.root, t.resolved, true)
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
	rebase := path.Base(t.abs)
	if path.Clean(t.abs) == "/" {
		rebase = "."
	}
	rc := streamTar(ctx, func(tt *treeTar) error {
		defer t.close()
		return tt.add(t.parent, t.base, rebase, &t.st)
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
	rc := streamTar(ctx, func(tt *treeTar) error {
		tt.oneMount = true
		return tt.children(f.root, "")
	}, f.Close)
	s.emit(c, "export", nil)
	return rc, nil
}

// streamTar runs write in a goroutine feeding a pipe; done runs once the
// writing is over (finished, failed or the reader closed).
func streamTar(ctx context.Context, write func(*treeTar) error, done func()) io.ReadCloser {
	pr, pw := io.Pipe()
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		defer done()
		bufp := tarBufPool.Get().(*[]byte)
		defer tarBufPool.Put(bufp)
		tw := tar.NewWriter(pw)
		tt := &treeTar{ctx: ctx, tw: tw, buf: *bufp}
		err := write(tt)
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	return &tarStream{PipeReader: pr, finished: finished}
}

type tarStream struct {
	*io.PipeReader
	finished chan struct{}
}

func (t *tarStream) Close() error {
	t.PipeReader.CloseWithError(errors.New("archive reader closed"))
	<-t.finished
	return nil
}

var tarBufPool = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// treeTar writes a directory tree as a tar, working only with *at calls on
// directory fds: no symlink is ever followed.
type treeTar struct {
	ctx      context.Context
	tw       *tar.Writer
	buf      []byte
	headers  snapshot.TarHeaders
	oneMount bool // do not descend into other mounts (export)
	rootMnt  uint64
}

// children writes the entries of directory dir (an fd), their names
// prefixed with prefix ("" or ending in "/").
func (t *treeTar) children(dir int, prefix string) error {
	fd, err := unix.Openat(dir, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	d := os.NewFile(uintptr(fd), prefix)
	defer d.Close()
	if t.oneMount && t.rootMnt == 0 {
		t.rootMnt = mntID(fd, "")
	}
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, n := range names {
		if err := t.ctx.Err(); err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if err == unix.ENOENT {
				continue // deleted meanwhile
			}
			return err
		}
		if err := t.add(fd, n, prefix+n, &st); err != nil {
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

// add writes the entry base of dir (stat st) under name, and its contents.
func (t *treeTar) add(dir int, base, name string, st *unix.Stat_t) error {
	hdr, err := t.headers.Header(dir, base, name, st)
	if err != nil || hdr == nil {
		return err // nil: a socket, not archivable, skipped as Docker does
	}
	if hdr.Typeflag != tar.TypeSymlink && hdr.Typeflag != tar.TypeLink {
		if c, err := getXattr(dir, base, "security.capability"); err == nil && len(c) > 0 {
			hdr.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": string(c)}
		}
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := t.tw.WriteHeader(hdr); err != nil {
			return err
		}
		fd, err := unix.Openat(dir, base, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			if err == unix.ENOENT {
				return nil
			}
			return err
		}
		defer unix.Close(fd)
		if t.oneMount && t.rootMnt != 0 && mntID(fd, "") != t.rootMnt {
			return nil // a mount point: export shows the directory only
		}
		prefix := name
		if prefix == "." {
			prefix = "./"
		}
		return t.children(fd, strings.TrimSuffix(prefix, "/")+"/")
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
		if err := t.tw.WriteHeader(hdr); err != nil {
			return err
		}
		// Exactly Size bytes, whatever the file does meanwhile.
		n, err := io.CopyBuffer(t.tw, io.LimitReader(f, hdr.Size), t.buf)
		if err != nil {
			return err
		}
		for ; n < hdr.Size; n++ {
			if _, err := t.tw.Write([]byte{0}); err != nil {
				return err
			}
		}
		return nil
	}
	return t.tw.WriteHeader(hdr)
}

// procPath names base in the directory fd dir through /proc, for the few
// calls that have no *at form; the last component is never followed by
// the l* calls that use it.
func procPath(dir int, base string) string {
	return fmt.Sprintf("/proc/self/fd/%d/%s", dir, base)
}

func getXattr(dir int, base, attr string) ([]byte, error) {
	b := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(procPath(dir, base), attr, b)
		if err == unix.ERANGE && len(b) < 1<<16 {
			b = make([]byte, len(b)*4)
			continue
		}
		if err != nil {
			return nil, err
		}
		return b[:n], nil
	}
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

// ArchivePut answers PUT /containers/{id}/archive: it extracts the tar r
// into the directory p of the container.
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
	dest, err := resolveInRoot(f.root, path.Join("/", p), true)
	if err != nil {
		return err
	}
	fd, err := openInRoot(f.root, dest, unix.O_PATH|unix.O_NOFOLLOW)
	if err == unix.ENOENT || err == unix.ENOTDIR {
		return fileNotFound(p, name)
	}
	if err != nil {
		return err
	}
	var st unix.Stat_t
	err = unix.Fstat(fd, &st)
	unix.Close(fd)
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
	x := &extractor{ctx: ctx, root: f.root, dest: dest, noOverwrite: o.NoOverwriteDirNonDir, uid: -1, gid: -1, dirs: map[string]int{}}
	defer x.closeDirs()
	if o.CopyUIDGID {
		c.mu.Lock()
		user := c.Config.User
		c.mu.Unlock()
		if user != "" {
			u, err := rtspec.ResolveUser(readInRoot(f.root, "/etc/passwd"), readInRoot(f.root, "/etc/group"), user, nil)
			if err != nil {
				return cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
			}
			x.uid, x.gid = int(u.UID), int(u.GID)
		}
	}
	if err := x.run(r); err != nil {
		return err
	}
	s.emit(c, "extract-to-dir", nil)
	return nil
}

// readInRoot reads a small file of the container (nil if it can't).
func readInRoot(root int, p string) []byte {
	fd, err := openInRoot(root, p, unix.O_RDONLY|unix.O_NONBLOCK)
	if err != nil {
		return nil
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(f, 4<<20))
	return b
}

type extractor struct {
	ctx         context.Context
	root        int
	dest        string
	noOverwrite bool
	uid, gid    int            // forced owner (copyUIDGID), -1 if not
	dirs        map[string]int // container path → O_PATH dir fd
	dirTimes    []dirTime
}

type dirTime struct {
	path         string
	atime, mtime time.Time
}

func (x *extractor) closeDirs() {
	for _, fd := range x.dirs {
		unix.Close(fd)
	}
	x.dirs = map[string]int{}
}

// forget drops cached directory fds at or under p, which changed.
func (x *extractor) forget(p string) {
	for k, fd := range x.dirs {
		if k == p || strings.HasPrefix(k, p+"/") || p == "/" {
			unix.Close(fd)
			delete(x.dirs, k)
		}
	}
}

// dir returns an fd of the directory p, creating it and its parents.
func (x *extractor) dir(p string) (int, error) {
	if fd, ok := x.dirs[p]; ok {
		return fd, nil
	}
	if len(x.dirs) > 256 {
		x.closeDirs()
	}
	fd, err := openInRoot(x.root, p, unix.O_PATH|unix.O_DIRECTORY)
	if err == unix.ENOENT {
		fd, err = mkdirAllInRoot(x.root, p, 0, 0)
	}
	if err != nil {
		return -1, err
	}
	x.dirs[p] = fd
	return fd, nil
}

func (x *extractor) run(r io.Reader) error {
	tr := tar.NewReader(r)
	bufp := tarBufPool.Get().(*[]byte)
	defer tarBufPool.Put(bufp)
	for {
		if err := x.ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return cerrdefs.ErrInvalidArgument.WithMessage("invalid tar stream: " + err.Error())
		}
		if err := x.entry(hdr, tr, *bufp); err != nil {
			return err
		}
	}
	for i := len(x.dirTimes) - 1; i >= 0; i-- {
		d := x.dirTimes[i]
		fd, err := openInRoot(x.root, d.path, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW)
		if err != nil {
			continue
		}
		_ = unix.UtimesNanoAt(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", fd), timespecs(d.atime, d.mtime), 0)
		unix.Close(fd)
	}
	return nil
}

func timespecs(atime, mtime time.Time) []unix.Timespec {
	if atime.Before(mtime) {
		atime = mtime
	}
	return []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
}

// within reports whether the clean path p is dir or under it.
func within(p, dir string) bool {
	return dir == "/" || p == dir || strings.HasPrefix(p, dir+"/")
}

func breakout(format string, a ...any) error {
	return fmt.Errorf("invalid tar entry: %s", fmt.Sprintf(format, a...))
}

func (x *extractor) entry(hdr *tar.Header, r io.Reader, buf []byte) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader, tar.TypeXHeader, tar.TypeGNULongName, tar.TypeGNULongLink:
		return nil
	}
	// As Docker: names are taken relative to the destination ("/x" is
	// dest/x) and must not climb out of it.
	name := path.Clean(hdr.Name)
	full := path.Join(x.dest, name)
	if !within(full, x.dest) {
		return breakout("%q is outside of %q", hdr.Name, x.dest)
	}
	if full == x.dest {
		if hdr.Typeflag != tar.TypeDir {
			return breakout("%q would replace the destination", hdr.Name)
		}
		return x.meta(full, hdr)
	}
	parent, base := path.Dir(full), path.Base(full)
	dfd, err := x.dir(parent)
	if err != nil {
		return err
	}
	isDirEntry := hdr.Typeflag == tar.TypeDir
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
		if x.noOverwrite && isDir && !isDirEntry {
			return fmt.Errorf("cannot overwrite directory %q with non-directory %q", full, hdr.Name)
		}
		if x.noOverwrite && !isDir && isDirEntry {
			return fmt.Errorf("cannot overwrite non-directory %q with directory %q", full, hdr.Name)
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

	mode := uint32(hdr.Mode & 0o7777)
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := unix.Mkdirat(dfd, base, 0o700); err != nil && err != unix.EEXIST {
			return err
		}
	case tar.TypeReg, tar.TypeGNUSparse: // the reader turns legacy TypeRegA into TypeReg
		fd, err := unix.Openat(dfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), full)
		_, err = io.CopyBuffer(f, io.LimitReader(r, hdr.Size), buf)
		if err == nil {
			err = x.owner(fd, "", hdr)
		}
		if err == nil {
			err = unix.Fchmod(fd, mode)
		}
		if err == nil {
			x.xattrs(fd, hdr)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		return unix.UtimesNanoAt(dfd, base, timespecs(hdr.AccessTime, hdr.ModTime), unix.AT_SYMLINK_NOFOLLOW)
	case tar.TypeSymlink:
		// As Docker: a relative target must not point above the
		// destination (absolute ones resolve inside the container).
		if !path.IsAbs(hdr.Linkname) && !within(path.Join(parent, hdr.Linkname), x.dest) {
			return breakout("invalid symlink %q -> %q", full, hdr.Linkname)
		}
		if err := unix.Symlinkat(hdr.Linkname, dfd, base); err != nil {
			return err
		}
		x.forget(full)
		if err := x.owner(dfd, base, hdr); err != nil {
			return err
		}
		return unix.UtimesNanoAt(dfd, base, timespecs(hdr.AccessTime, hdr.ModTime), unix.AT_SYMLINK_NOFOLLOW)
	case tar.TypeLink:
		target := path.Join(x.dest, path.Clean(hdr.Linkname))
		if !within(target, x.dest) || target == x.dest {
			return breakout("invalid hardlink %q -> %q", full, hdr.Linkname)
		}
		tdir, err := x.dir(path.Dir(target))
		if err != nil {
			return err
		}
		return unix.Linkat(tdir, path.Base(target), dfd, base, 0)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		kind := uint32(unix.S_IFIFO)
		switch hdr.Typeflag {
		case tar.TypeChar:
			kind = unix.S_IFCHR
		case tar.TypeBlock:
			kind = unix.S_IFBLK
		}
		dev := int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
		if err := unix.Mknodat(dfd, base, kind|0o600, dev); err != nil {
			return err
		}
	default:
		return nil // unknown entry types are skipped
	}
	return x.meta(full, hdr)
}

// meta applies owner, mode, xattrs and (later, for directories) times to
// the entry at full, which is not a symlink.
func (x *extractor) meta(full string, hdr *tar.Header) error {
	flags := unix.O_PATH | unix.O_NOFOLLOW
	if hdr.Typeflag == tar.TypeDir {
		flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW
	}
	parent, err := x.dir(path.Dir(full))
	if err != nil {
		return err
	}
	base := path.Base(full)
	if full == x.dest {
		parent, base = x.root, relRoot(full)
	}
	fd, err := openAtNoFollow(parent, base, flags, full == x.dest)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return nil
	}
	if err := x.owner(fd, "", hdr); err != nil {
		return err
	}
	mode := uint32(hdr.Mode & 0o7777)
	if err := unix.Fchmodat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", fd), mode, 0); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeDir {
		x.xattrs(fd, hdr)
		x.dirTimes = append(x.dirTimes, dirTime{path: full, atime: hdr.AccessTime, mtime: hdr.ModTime})
		return nil
	}
	return unix.UtimesNanoAt(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", fd), timespecs(hdr.AccessTime, hdr.ModTime), 0)
}

// openAtNoFollow opens base in dir without following a last symlink; with
// inRoot, base is a path resolved inside the container's root instead.
func openAtNoFollow(dir int, base string, flags int, inRoot bool) (int, error) {
	if inRoot {
		return openInRoot(dir, base, flags)
	}
	return unix.Openat(dir, base, flags|unix.O_CLOEXEC, 0)
}

// owner sets the entry's owner: the tar's, or the forced one. With base
// "" fd is the entry itself.
func (x *extractor) owner(fd int, base string, hdr *tar.Header) error {
	uid, gid := hdr.Uid, hdr.Gid
	if x.uid >= 0 {
		uid, gid = x.uid, x.gid
	}
	if base == "" {
		return unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH)
	}
	return unix.Fchownat(fd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
}

// xattrs applies the tar's extended attributes that a container may own.
func (x *extractor) xattrs(fd int, hdr *tar.Header) {
	for k, v := range hdr.PAXRecords {
		attr, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok {
			continue
		}
		if strings.HasPrefix(attr, "user.") || attr == "security.capability" || strings.HasPrefix(attr, "system.posix_acl_") {
			_ = unix.Fsetxattr(fd, attr, []byte(v), 0)
		}
	}
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
