package osutil

import (
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// MaxSymlinks is how many symlinks WalkSymlinks follows before it gives up
// with ELOOP, as the kernel does.
const MaxSymlinks = 40

// WalkSymlinks resolves the symlinks of the path p as a process whose root
// is "/" sees them, and returns the clean absolute path it reaches. It only
// does the walking: components are taken one at a time, ".." goes up
// lexically and stops at "/", an absolute link target starts again at "/",
// a relative one from the link's directory, and after MaxSymlinks links the
// walk fails with unix.ELOOP. The last component of p (give it clean) is
// followed only with followFinal.
//
// lookup says what is at each path the walk reaches (clean, absolute, its
// parent already resolved): a symlink's target with isLink, or isLink false
// for anything else, including a path that does not exist, which counts as a
// plain directory so the rest of p is still walked (as Docker's
// FollowSymlinkInScope does). An error from lookup ends the walk. Where the
// walk must stay inside a root, lookup alone confines it: the walker never
// touches a file.
func WalkSymlinks(p string, followFinal bool, lookup func(p string) (target string, isLink bool, err error)) (string, error) {
	pending := strings.Split(p, "/")
	cur := "/"
	links := 0
	for len(pending) > 0 {
		comp := pending[0]
		pending = pending[1:]
		switch comp {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, comp)
		if !followFinal && len(pending) == 0 {
			cur = next
			continue
		}
		target, isLink, err := lookup(next)
		if err != nil {
			return "", err
		}
		if !isLink {
			cur = next
			continue
		}
		if links++; links > MaxSymlinks {
			return "", unix.ELOOP
		}
		if strings.HasPrefix(target, "/") {
			cur = "/"
		}
		pending = append(strings.Split(target, "/"), pending...)
	}
	return cur, nil
}
