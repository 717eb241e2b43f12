package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

func newTestStore(t testing.TB) *Store {
	t.Helper()
	requireRoot(t)
	s, err := NewStore(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// upperOf returns the writable directory of container snapshot key.
func upperOf(t testing.TB, s *Store, key string) string {
	t.Helper()
	m, err := s.Mounts(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return m.upper()
}

// ent is one tar entry for building test layers.
type ent struct {
	hdr  tar.Header
	body string
}

var testTime = time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)

func dirEnt(name string, mode int64) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, ModTime: testTime}}
}

func fileEnt(name, body string, mode int64) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(body)), ModTime: testTime}, body: body}
}

func symlinkEnt(name, target string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: testTime}}
}

func linkEnt(name, target string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, ModTime: testTime}}
}

// makeTar builds a tar stream and returns it with its digest.
func makeTar(t testing.TB, ents ...ent) ([]byte, digest.Digest) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := e.hdr
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), digest.FromBytes(buf.Bytes())
}

func applyTar(t testing.TB, s *Store, parent digest.Digest, ents ...ent) Layer {
	t.Helper()
	b, d := makeTar(t, ents...)
	l, err := s.Apply(context.Background(), parent, d, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func lstat(t testing.TB, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func getXattr(p, name string) (string, error) {
	b := make([]byte, 4096)
	n, err := unix.Lgetxattr(p, name, b)
	if err != nil {
		return "", err
	}
	return string(b[:n]), nil
}

func tmpEmpty(t testing.TB, s *Store) {
	t.Helper()
	// No Apply's snapshot left, and no directory no snapshot owns.
	ids := map[string]bool{}
	err := s.walk(context.Background(), func(ctx context.Context, info snapshots.Info) error {
		if strings.HasPrefix(info.Name, applyPrefix) {
			t.Errorf("apply snapshot left: %s", info.Name)
		}
		d, err := s.dir(ctx, info.Name)
		if err != nil {
			return err
		}
		ids[filepath.Base(filepath.Dir(d))] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(s.snapshotsDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !ids[e.Name()] {
			t.Errorf("snapshots/%s belongs to no snapshot", e.Name())
		}
	}
	// No unpack in progress left under unpack/.
	if entries, err := os.ReadDir(s.tmpDir()); err != nil {
		t.Fatal(err)
	} else {
		for _, e := range entries {
			t.Errorf("unpack/%s left behind", e.Name())
		}
	}
}

// describeTree renders every entry of dir with type, mode, owner, size,
// mtime, device, xattrs, link target or content digest, and hardlink
// groups, for comparing two trees.
func describeTree(t testing.TB, dir string) string {
	t.Helper()
	var lines []string
	inodes := map[uint64]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		st := lstat(t, p)
		line := fmt.Sprintf("%s mode=%o uid=%d gid=%d mtime=%d", rel, st.Mode, st.Uid, st.Gid, st.Mtim.Sec)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" size=%d sum=%s", st.Size, digest.FromBytes(b).Encoded()[:12])
			if st.Nlink > 1 {
				if first, ok := inodes[st.Ino]; ok {
					line += " linkto=" + first
				} else {
					inodes[st.Ino] = rel
				}
			}
		case unix.S_IFLNK:
			target, _ := os.Readlink(p)
			line += " -> " + target
		case unix.S_IFCHR, unix.S_IFBLK:
			line += fmt.Sprintf(" dev=%d,%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
		names := make([]byte, 4096)
		n, _ := unix.Llistxattr(p, names)
		var xs []string
		for _, x := range strings.Split(string(names[:n]), "\x00") {
			if x == "" {
				continue
			}
			v, _ := getXattr(p, x)
			xs = append(xs, x+"="+v)
		}
		sort.Strings(xs)
		if len(xs) > 0 {
			line += " xattrs=" + strings.Join(xs, ";")
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

func digestOf(b []byte) digest.Digest { return digest.FromBytes(b) }
