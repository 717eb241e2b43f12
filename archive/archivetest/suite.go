// Package archivetest is the one escape suite every user of the archive
// package runs against its own entry point (layer apply, container cp in
// both directions, volume copy-up, the CLI's cp), as containerd's
// snapshotter testsuite runs against every snapshotter: each case is a
// tar (and, for entry points that write into an existing tree, what the
// tree holds before), put through the entry point, and then nothing
// outside the destination may have changed, nothing from outside may
// show up in the result, and the case's own expectations must hold.
package archivetest

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Kind says what an entry point does with a tar.
type Kind int

const (
	// Layer unpacks a layer into a fresh directory: ".wh." entries are
	// overlayfs whiteouts, ".." is cleaned away (snapshot Apply).
	Layer Kind = iota
	// Extract writes a tar into an existing tree under dockerd's cp rules:
	// a name or relative symlink climbing out of the destination is an
	// error, ".wh." entries are plain files (PUT archive, CLI cp).
	Extract
	// Copy makes a tree from the tar inside a root by some trusted way,
	// then copies that tree out through the entry point (GET archive,
	// volume copy-up): whatever the tree holds, the copy must not bring
	// along anything from outside it.
	Copy
)

// Target is one entry point under test.
type Target struct {
	Name string
	Kind Kind
	// Devices: the entry point creates character and block devices.
	Devices bool
	// SameOwner: the entry point gives entries the tar's owner (else the
	// extracting process's, as the CLI does).
	SameOwner bool
	// Run puts tarball through the entry point. plant, when the case has
	// one and the target writes into an existing tree (Kind Extract), must
	// be called with the host path of the destination directory before
	// the extraction; a target that cannot plant skips such cases with
	// t.Skip. Run returns the host directory that holds the result (for
	// Copy, the copied tree) and the entry point's error.
	Run func(t *testing.T, plant func(dir string), tarball []byte) (string, error)
}

// Entry is one tar entry.
type Entry struct {
	Hdr  tar.Header
	Body string
}

// File, Dir, Symlink, Link, Char, Block and Fifo make entries (mode 0644,
// 0755 ...; owner root).
func File(name, body string) Entry {
	return Entry{Hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: testTime}, Body: body}
}

func Dir(name string) Entry {
	return Entry{Hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: testTime}}
}

func Symlink(name, target string) Entry {
	return Entry{Hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: testTime}}
}

func Link(name, target string) Entry {
	return Entry{Hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, ModTime: testTime}}
}

func Char(name string, major, minor int64) Entry {
	return Entry{Hdr: tar.Header{Typeflag: tar.TypeChar, Name: name, Mode: 0o666, Devmajor: major, Devminor: minor, ModTime: testTime}}
}

func Block(name string, major, minor int64) Entry {
	return Entry{Hdr: tar.Header{Typeflag: tar.TypeBlock, Name: name, Mode: 0o666, Devmajor: major, Devminor: minor, ModTime: testTime}}
}

// Owned gives e an owner and mode.
func Owned(e Entry, uid, gid int, mode int64) Entry {
	e.Hdr.Uid, e.Hdr.Gid, e.Hdr.Mode = uid, gid, mode
	return e
}

var testTime = time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)

// Tar makes a tar of entries.
func Tar(t testing.TB, entries ...Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.Hdr
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.Body))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.Body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Result is what a case's check looks at.
type Result struct {
	Target  Target
	Dir     string // the result directory (host path)
	Err     error
	Outside string // the directory outside the destination (absolute)
}

// Has reports whether the result holds rel (not following a last symlink).
func (r Result) Has(rel string) bool {
	_, err := os.Lstat(filepath.Join(r.Dir, rel))
	return err == nil
}

// Lstat stats rel in the result.
func (r Result) Lstat(t *testing.T, rel string) (unix.Stat_t, bool) {
	t.Helper()
	var st unix.Stat_t
	err := unix.Lstat(filepath.Join(r.Dir, rel), &st)
	return st, err == nil
}

type tcase struct {
	name string
	// entries builds the tar; out is the outside directory (absolute),
	// up a string of "../" long enough to climb from anywhere to "/".
	entries func(out, up string) []Entry
	// plant fills the destination of Extract targets before the tar.
	plant func(t *testing.T, dir, out string)
	// race runs while the entry point works (Extract targets), in the
	// destination, until stop is closed.
	race  func(dir, out string, stop <-chan struct{})
	check func(t *testing.T, r Result)
}

// wantErr says that the entry point must refuse the tar.
func wantErr(t *testing.T, r Result) {
	t.Helper()
	if r.Err == nil {
		t.Errorf("%s accepted the tar", r.Target.Name)
	}
}

// wantErrFor wants an error from targets of the given kinds; the others
// may take the tar (confined), or refuse it.
func wantErrFor(kinds ...Kind) func(*testing.T, Result) {
	return func(t *testing.T, r Result) {
		t.Helper()
		for _, k := range kinds {
			if r.Target.Kind == k {
				wantErr(t, r)
			}
		}
	}
}

const secret = "the-secret-outside-7f3c1a"

// Run runs every case against target.
func Run(t *testing.T, target Target) {
	for _, tc := range cases() {
		t.Run(tc.name, func(t *testing.T) {
			if tc.plant != nil && target.Kind != Extract {
				t.Skip("planting is for entry points that write into an existing tree")
			}
			if tc.race != nil && target.Kind != Extract {
				t.Skip("racing is for entry points that write into a live tree")
			}
			out := outsideDir(t)
			before := describe(t, out)
			up := strings.Repeat("../", 40)
			tarball := Tar(t, tc.entries(out, up)...)
			var plant func(dir string)
			var stop chan struct{}
			var wg sync.WaitGroup
			if tc.plant != nil || tc.race != nil {
				stop = make(chan struct{})
				plant = func(dir string) {
					if tc.plant != nil {
						tc.plant(t, dir, out)
					}
					if tc.race != nil {
						wg.Add(1)
						go func() {
							defer wg.Done()
							tc.race(dir, out, stop)
						}()
					}
				}
			}
			dir, err := target.Run(t, plant, tarball)
			if stop != nil {
				close(stop)
				wg.Wait()
			}
			if err != nil {
				t.Logf("%s: %v", target.Name, err)
			}
			if after := describe(t, out); after != before {
				t.Fatalf("%s changed what is outside its destination:\nbefore:\n%s\nafter:\n%s", target.Name, before, after)
			}
			r := Result{Target: target, Dir: dir, Err: err, Outside: out}
			if dir != "" {
				checkResult(t, r)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

// outsideDir makes a directory, outside every destination, holding one
// file whose content is the secret.
func outsideDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "archivetest-outside-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "secret"), []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// describe renders every entry under dir (type, mode, owner, size, links,
// mtime, xattrs, content), not following symlinks.
func describe(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		line := fmt.Sprintf("%s mode=%o uid=%d gid=%d nlink=%d size=%d rdev=%d mtime=%d", p, st.Mode, st.Uid, st.Gid, st.Nlink, st.Size, st.Rdev, st.Mtim.Nano())
		if st.Mode&unix.S_IFMT == unix.S_IFREG {
			b, _ := os.ReadFile(p)
			line += fmt.Sprintf(" %q", b)
		}
		names := make([]byte, 4096)
		if n, err := unix.Llistxattr(p, names); err == nil && n > 0 {
			line += " xattrs=" + strings.ReplaceAll(string(names[:n]), "\x00", ",")
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// checkResult holds for every case: no file of the result has the secret
// (nothing read from outside), no device node where the entry point
// makes none, no setuid or setgid file owned by someone the tar did not
// name (the suite's tars name root or 1234 only).
func checkResult(t *testing.T, r Result) {
	t.Helper()
	err := filepath.WalkDir(r.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return nil
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, _ := os.ReadFile(p)
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s: %s holds the secret from outside", r.Target.Name, p)
			}
			if st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 && st.Uid != 0 && st.Uid != 1234 {
				t.Errorf("%s: %s is setuid/setgid (mode %o) owned by %d, whom no tar entry names", r.Target.Name, p, st.Mode, st.Uid)
			}
		case unix.S_IFCHR, unix.S_IFBLK:
			whiteout := st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 && r.Target.Kind == Layer
			if !whiteout && !r.Target.Devices {
				t.Errorf("%s: made the device node %s (mode %o rdev %d)", r.Target.Name, p, st.Mode, st.Rdev)
			}
		}
		return nil
	})
	if err != nil {
		t.Errorf("walk result: %v", err)
	}
}
