package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// UserResolver resolves a Docker user spec — "", "uid", "uid:gid", "name",
// "name:group" (any mix of names and numbers) — and the --group-add list
// against the container's own /etc/passwd and /etc/group. The result's
// AdditionalGids start with the primary group, then the groups that list the
// user as a member, then groupAdd, without duplicates (as Docker).
type UserResolver func(user string, groupAdd []string) (specs.User, error)

// maxID is the largest uid or gid Docker accepts.
const maxID = 1<<31 - 1

// maxUserFile bounds how much of /etc/passwd or /etc/group is read.
const maxUserFile = 16 << 20

// RootfsUsers returns a UserResolver that reads etc/passwd and etc/group
// under rootfs. The files are opened through os.OpenRoot, so a symlink
// planted in the image (say /etc/passwd -> /../../host/file) cannot make the
// daemon read a file outside the rootfs. A missing file counts as empty:
// numeric users still work, names fail as Docker's do.
func RootfsUsers(rootfs string) UserResolver {
	return func(user string, groupAdd []string) (specs.User, error) {
		root, err := os.OpenRoot(rootfs)
		if err != nil {
			return specs.User{}, fmt.Errorf("open container rootfs: %w", err)
		}
		defer root.Close()
		v := newView(rootfs, nil)
		passwd, err := readRootFile(root, v, "/etc/passwd")
		if err != nil {
			return specs.User{}, err
		}
		group, err := readRootFile(root, v, "/etc/group")
		if err != nil {
			return specs.User{}, err
		}
		return ResolveUser(passwd, group, user, groupAdd)
	}
}

// readRootFile reads name inside the container's rootfs. Symlinks are
// followed as inside the container (an absolute target starts at the rootfs),
// then the file is opened through root, so a symlink swapped in meanwhile
// still cannot lead out. A missing or unreadable-as-a-file name is nil.
func readRootFile(root *os.Root, v *view, name string) ([]byte, error) {
	// Most images have plain files: open directly. os.Root refuses what
	// would leave it, including absolute symlinks, which inside the
	// container are fine: resolve those the container's way and retry.
	f, err := root.Open(strings.TrimPrefix(name, "/"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		p, rerr := v.resolve(name)
		if rerr != nil {
			return nil, nil
		}
		f, err = root.Open(strings.TrimPrefix(p, "/"))
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, nil
		}
		return nil, fmt.Errorf("read container %s: %w", name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(f, maxUserFile))
	if err != nil {
		return nil, fmt.Errorf("read container %s: %w", name, err)
	}
	return b, nil
}

type passwdEntry struct {
	name     string
	uid, gid int64
}

type groupEntry struct {
	name    string
	gid     int64
	members []string
}

// lines calls fn with the colon-separated fields of every non-empty,
// non-comment line of b, until fn returns false.
func lines(b []byte, fn func(fields []string) bool) {
	var fields [8]string
	for len(b) > 0 {
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		f := fields[:0]
		for len(f) < len(fields)-1 {
			i := bytes.IndexByte(line, ':')
			if i < 0 {
				break
			}
			f = append(f, string(line[:i]))
			line = line[i+1:]
		}
		f = append(f, string(line))
		if !fn(f) {
			return
		}
	}
}

// findUser returns the first passwd entry matching: by uid when the argument
// is numeric, by name otherwise.
func findUser(passwd []byte, arg string, uid int64, numeric bool) (passwdEntry, bool) {
	var found passwdEntry
	ok := false
	lines(passwd, func(f []string) bool {
		if len(f) < 4 {
			return true
		}
		u, err1 := strconv.ParseInt(f[2], 10, 64)
		g, err2 := strconv.ParseInt(f[3], 10, 64)
		if err1 != nil || err2 != nil {
			return true
		}
		if (numeric && u == uid) || (!numeric && f[0] == arg) {
			found, ok = passwdEntry{name: f[0], uid: u, gid: g}, true
			return false
		}
		return true
	})
	return found, ok
}

func parseGroups(group []byte, fn func(g groupEntry) bool) {
	lines(group, func(f []string) bool {
		if len(f) < 3 {
			return true
		}
		gid, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return true
		}
		g := groupEntry{name: f[0], gid: gid}
		if len(f) > 3 && f[3] != "" {
			g.members = strings.Split(f[3], ",")
		}
		return fn(g)
	})
}

// findGroup returns the gid of the first group matching arg: by gid when arg
// is numeric, by name otherwise.
func findGroup(group []byte, arg string) (int64, bool) {
	id, numErr := strconv.ParseInt(arg, 10, 64)
	var gid int64
	ok := false
	parseGroups(group, func(g groupEntry) bool {
		if (numErr == nil && g.gid == id) || (numErr != nil && g.name == arg) {
			gid, ok = g.gid, true
			return false
		}
		return true
	})
	return gid, ok
}

func rangeErr() error {
	return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("uids and gids must be in range 0-%d", maxID))
}

// ResolveUser resolves user and groupAdd (see UserResolver) against the
// contents of a passwd and a group file; nil contents mean the file is
// missing. It follows Docker: an empty user is uid 0; a numeric user need
// not exist in passwd; a name must. Without an explicit group the primary
// gid is passwd's and the supplementary groups are those listing the user;
// with one, there are no implicit supplementary groups.
func ResolveUser(passwd, group []byte, user string, groupAdd []string) (specs.User, error) {
	userArg, groupArg, _ := strings.Cut(user, ":")
	var uid, gid int64
	var name string

	uidArg, err := strconv.ParseInt(userArg, 10, 64)
	numeric := err == nil
	if userArg == "" {
		uidArg, numeric = 0, true
	}
	if e, ok := findUser(passwd, userArg, uidArg, numeric); ok {
		uid, gid, name = e.uid, e.gid, e.name
	} else if !numeric {
		return specs.User{}, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("unable to find user %s: no matching entries in passwd file", userArg))
	} else {
		uid = uidArg
	}
	if uid < 0 || uid > maxID {
		return specs.User{}, rangeErr()
	}

	var sgids []int64
	if groupArg != "" {
		g, ok := findGroup(group, groupArg)
		if !ok {
			n, err := strconv.ParseInt(groupArg, 10, 64)
			if err != nil {
				return specs.User{}, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("unable to find group %s: no matching entries in group file", groupArg))
			}
			g = n
		}
		gid = g
	} else if name != "" {
		parseGroups(group, func(g groupEntry) bool {
			for _, m := range g.members {
				if m == name {
					sgids = append(sgids, g.gid)
					break
				}
			}
			return true
		})
	}
	if gid < 0 || gid > maxID {
		return specs.User{}, rangeErr()
	}

	for _, ga := range groupAdd {
		g, ok := findGroup(group, ga)
		if !ok {
			n, err := strconv.ParseInt(ga, 10, 64)
			if err != nil {
				return specs.User{}, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Unable to find group %s: no matching entries in group file", ga))
			}
			g = n
		}
		if g < 0 || g > maxID {
			return specs.User{}, rangeErr()
		}
		sgids = append(sgids, g)
	}

	u := specs.User{UID: uint32(uid), GID: uint32(gid), AdditionalGids: []uint32{uint32(gid)}}
	for _, g := range sgids {
		if !containsU32(u.AdditionalGids, uint32(g)) {
			u.AdditionalGids = append(u.AdditionalGids, uint32(g))
		}
	}
	return u, nil
}

func containsU32(list []uint32, v uint32) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
