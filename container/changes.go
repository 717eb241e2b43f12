package container

// docker diff: the changes in a container's writable layer.
//
// The overlay upper dir holds exactly what the container changed: new and
// modified files, whiteouts (0/0 character devices) for deleted ones, and
// opaque directories. Docker's overlay2 reading of it is reproduced here,
// quirks included: a directory is reported modified when something was
// added to or deleted from it or its own size, mode or mtime differ from
// the layer below; an opaque directory that exists below is reported
// deleted (its contents then show as added).
//
// Docker keeps the mount points it creates (/etc/hosts, /etc/hostname,
// /etc/resolv.conf, /proc, /sys, /dev ...) in an "init" layer below the
// container's, so they never show up in diff or commit. berth has no init
// layer: runc creates them in the upper dir when the image lacks them, and
// they are left out here (and of commit) when they are still the empty
// placeholders runc made.

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/archive"
	"github.com/berth/berth/snapshot"
)

// layerDirs returns the container's upper dir and the lower layer dirs
// below it, top first.
func (s *Service) layerDirs(ctx context.Context, id string) (upper string, lowers []string, err error) {
	m, err := s.cfg.Snapshots.Mounts(ctx, id)
	if err != nil {
		return "", nil, err
	}
	return mountDirs(m)
}

func mountDirs(m snapshot.Mount) (upper string, lowers []string, err error) {
	if m.Type == "bind" {
		return m.Source, nil, nil
	}
	abs := func(p string) string {
		if !filepath.IsAbs(p) && m.Dir != "" {
			return filepath.Join(m.Dir, p)
		}
		return p
	}
	for _, o := range m.Options {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "upperdir":
			upper = abs(v)
		case "lowerdir":
			for _, l := range strings.Split(v, ":") {
				lowers = append(lowers, abs(l))
			}
		}
	}
	return upper, lowers, nil
}

// placeholders are the mount points runc makes; value: is a directory.
func placeholders(init bool) map[string]bool {
	p := map[string]bool{
		"/etc/hosts": false, "/etc/hostname": false, "/etc/resolv.conf": false,
		"/proc": true, "/sys": true, "/dev": true,
	}
	if init {
		p["/sbin/docker-init"] = false
	}
	return p
}

// upperScan reads an upper dir against its lower layers.
type upperScan struct {
	upper  int   // O_PATH fd of the upper dir
	lowers []int // O_PATH fds of the lower dirs, top first
	holes  map[string]bool
	// drop: left out of diff and commit. touched: directories that held a
	// dropped entry (their mtime and size say nothing about the user).
	drop    map[string]bool
	touched map[string]bool
}

func newUpperScan(upper string, lowers []string, holes map[string]bool) (*upperScan, error) {
	u := &upperScan{holes: holes, drop: map[string]bool{}, touched: map[string]bool{}}
	fd, err := unix.Open(upper, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	u.upper = fd
	for _, l := range lowers {
		fd, err := unix.Open(l, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			u.close()
			return nil, err
		}
		u.lowers = append(u.lowers, fd)
	}
	return u, nil
}

func (u *upperScan) close() {
	unix.Close(u.upper)
	for _, fd := range u.lowers {
		unix.Close(fd)
	}
}

// lowerStat finds p in the lower layers (never following a symlink).
func (u *upperScan) lowerStat(p string) (*unix.Stat_t, bool) {
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}
	for _, l := range u.lowers {
		fd, err := unix.Openat2(l, strings.TrimPrefix(p, "/"), &how)
		if err != nil {
			continue
		}
		var st unix.Stat_t
		err = unix.Fstat(fd, &st)
		unix.Close(fd)
		if err == nil {
			return &st, true
		}
	}
	return nil, false
}

type upperEntry struct {
	name string
	st   unix.Stat_t
}

// list reads a directory of the upper dir, sorted by name.
func list(dfd int) ([]upperEntry, error) {
	fd, err := unix.Openat(dfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "")
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := make([]upperEntry, 0, len(names))
	for _, n := range names {
		e := upperEntry{name: n}
		if err := unix.Fstatat(fd, n, &e.st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

func isDirMode(m uint32) bool { return m&unix.S_IFMT == unix.S_IFDIR }

func isWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

func isOpaque(dfd int, name string) bool {
	b := make([]byte, 8)
	n, err := unix.Lgetxattr(fmt.Sprintf("/proc/self/fd/%d/%s", dfd, name), archive.OpaqueXattr, b)
	return err == nil && string(b[:n]) == "y"
}

func openSub(dfd int, name string) (int, error) {
	return unix.Openat(dfd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

// markDrops walks dir (fd dfd) and records the entries to leave out: the
// placeholders, and directories that only exist to hold them. It returns
// whether every entry of dir was dropped, and whether it had any.
func (u *upperScan) markDrops(dfd int, dir string) (all, any bool) {
	ents, err := list(dfd)
	if err != nil {
		return false, true
	}
	all = true
	for _, e := range ents {
		p := path.Join(dir, e.name)
		isDir := isDirMode(e.st.Mode)
		if wantDir, ok := u.holes[p]; ok && wantDir == isDir {
			empty := !isDir && e.st.Mode&unix.S_IFMT == unix.S_IFREG && e.st.Size == 0
			if isDir {
				if sub, err := openSub(dfd, e.name); err == nil {
					subEnts, _ := list(sub)
					unix.Close(sub)
					empty = len(subEnts) == 0
				}
			}
			if empty {
				u.drop[p] = true
				u.touched[dir] = true
				continue
			}
		}
		if isDir && !isOpaque(dfd, e.name) {
			if sub, err := openSub(dfd, e.name); err == nil {
				subAll, subAny := u.markDrops(sub, p)
				unix.Close(sub)
				if subAll && subAny {
					if lst, ok := u.lowerStat(p); !ok || (isDirMode(lst.Mode) && lst.Mode == e.st.Mode && lst.Uid == e.st.Uid && lst.Gid == e.st.Gid) {
						u.drop[p] = true
						u.touched[dir] = true
						continue
					}
				}
			}
		}
		all = false
	}
	return all, len(ents) > 0
}

// changes walks dir in Docker's order and appends what it finds.
func (u *upperScan) changes(dfd int, dir string, changed map[string]bool, out *[]container.FilesystemChange) {
	ents, err := list(dfd)
	if err != nil {
		return
	}
	for _, e := range ents {
		p := path.Join(dir, e.name)
		if u.drop[p] {
			continue
		}
		isDir := isDirMode(e.st.Mode)
		ch := container.FilesystemChange{Path: p, Kind: container.ChangeAdd}
		record := true
		switch {
		case isWhiteout(&e.st):
			ch.Kind = container.ChangeDelete
		case isDir && isOpaque(dfd, e.name) && u.existsBelow(p):
			ch.Kind = container.ChangeDelete
		default:
			if lst, ok := u.lowerStat(p); ok {
				ch.Kind = container.ChangeModify
				if isDir && isDirMode(lst.Mode) && lst.Mode == e.st.Mode &&
					(u.touched[p] || (lst.Size == e.st.Size && sameFsTime(lst.Mtim, e.st.Mtim))) {
					record = false
				}
			}
		}
		if record {
			if isDir {
				changed[p] = true
			}
			if ch.Kind != container.ChangeModify {
				if parent := dir; parent != "/" && !changed[parent] {
					*out = append(*out, container.FilesystemChange{Path: parent, Kind: container.ChangeModify})
					changed[parent] = true
				}
			}
			*out = append(*out, ch)
		}
		if isDir {
			if sub, err := openSub(dfd, e.name); err == nil {
				u.changes(sub, p, changed, out)
				unix.Close(sub)
			}
		}
	}
}

func (u *upperScan) existsBelow(p string) bool {
	_, ok := u.lowerStat(p)
	return ok
}

// sameFsTime is Docker's: equal, or equal seconds when one side has no
// sub-second part (some filesystems keep none).
func sameFsTime(a, b unix.Timespec) bool {
	return a == b || (a.Sec == b.Sec && (a.Nsec == 0 || b.Nsec == 0))
}

// scanUpper opens the container's upper dir and marks its placeholders.
func (s *Service) scanUpper(ctx context.Context, c *Container) (*upperScan, error) {
	upper, lowers, err := s.layerDirs(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	init := c.HostConfig.Init != nil && *c.HostConfig.Init
	c.mu.Unlock()
	u, err := newUpperScan(upper, lowers, placeholders(init))
	if err != nil {
		return nil, err
	}
	u.markDrops(u.upper, "/")
	return u, nil
}

// Changes answers GET /containers/{id}/changes.
func (s *Service) Changes(ctx context.Context, name string) ([]container.FilesystemChange, error) {
	c, err := s.Get(name)
	if err != nil {
		return nil, err
	}
	u, err := s.scanUpper(ctx, c)
	if err != nil {
		return nil, err
	}
	defer u.close()
	out := []container.FilesystemChange{}
	u.changes(u.upper, "/", map[string]bool{}, &out)
	return out, nil
}
