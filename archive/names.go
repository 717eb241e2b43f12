package archive

import (
	"bytes"

	"github.com/moby/sys/user"
)

// Names maps owner IDs to the user and group names of one tree, read from
// its own /etc/passwd and /etc/group (the first entry of an ID wins, as a
// lookup through them does). An ID without an entry has no name.
type Names struct {
	users  map[int]string
	groups map[int]string
}

// NewNames parses the contents of a passwd and a group file; either may be
// nil or unreadable, which leaves its names out.
func NewNames(passwd, group []byte) *Names {
	n := &Names{users: map[int]string{}, groups: map[int]string{}}
	if us, err := user.ParsePasswd(bytes.NewReader(passwd)); err == nil {
		for _, u := range us {
			if _, ok := n.users[u.Uid]; !ok && u.Name != "" {
				n.users[u.Uid] = u.Name
			}
		}
	}
	if gs, err := user.ParseGroup(bytes.NewReader(group)); err == nil {
		for _, g := range gs {
			if _, ok := n.groups[g.Gid]; !ok && g.Name != "" {
				n.groups[g.Gid] = g.Name
			}
		}
	}
	return n
}

func (n *Names) user(uid int) string  { return n.users[uid] }
func (n *Names) group(gid int) string { return n.groups[gid] }
