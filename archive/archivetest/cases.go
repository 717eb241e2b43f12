package archivetest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func cases() []tcase {
	isReg := func(rel string, kinds ...Kind) func(*testing.T, Result) {
		return func(t *testing.T, r Result) {
			t.Helper()
			for _, k := range kinds {
				if r.Target.Kind != k {
					continue
				}
				if st, ok := r.Lstat(t, rel); !ok || st.Mode&unix.S_IFMT != unix.S_IFREG {
					t.Errorf("%s: %s is not a regular file in the result (err %v)", r.Target.Name, rel, r.Err)
				}
			}
		}
	}
	return []tcase{
		// ---- names ------------------------------------------------------
		{
			name:    "dotdot",
			entries: func(out, up string) []Entry { return []Entry{File(up+out[1:]+"/dotdot", "x")} },
			check: func(t *testing.T, r Result) {
				wantErrFor(Extract)(t, r)
				if r.Target.Kind == Layer && !r.Has(r.Outside[1:]+"/dotdot") {
					t.Errorf("%s: the entry was not cleaned into the layer: %v", r.Target.Name, r.Err)
				}
			},
		},
		{
			name:    "dotdot cleaned inside a layer",
			entries: func(out, up string) []Entry { return []Entry{File("a/../../../b/../../"+up+"inside", "x")} },
			check: func(t *testing.T, r Result) {
				if r.Target.Kind == Layer && !r.Has("inside") {
					t.Errorf("%s: the entry did not land at the root: %v", r.Target.Name, r.Err)
				}
			},
		},
		{
			name:    "absolute name",
			entries: func(out, up string) []Entry { return []Entry{File(out+"/abs", "x")} },
			check: func(t *testing.T, r Result) {
				if r.Target.Kind != Copy && !r.Has(r.Outside[1:]+"/abs") {
					t.Errorf("%s: %s/abs did not land under the destination: %v", r.Target.Name, r.Outside, r.Err)
				}
			},
		},

		// ---- symlinks -----------------------------------------------------
		{
			name:    "file through absolute symlink",
			entries: func(out, up string) []Entry { return []Entry{Symlink("evil", out), File("evil/x", "x")} },
			check:   wantErrFor(Layer),
		},
		{
			name:    "file through relative symlink",
			entries: func(out, up string) []Entry { return []Entry{Symlink("evil", up+out[1:]), File("evil/x", "x")} },
			check:   wantErrFor(Layer, Extract),
		},
		{
			name:    "dir through symlink",
			entries: func(out, up string) []Entry { return []Entry{Symlink("evil", out), Dir("evil/sub/")} },
			check:   wantErrFor(Layer),
		},
		{
			name: "nested symlinks",
			entries: func(out, up string) []Entry {
				return []Entry{Dir("a/"), Symlink("a/b", "../c"), Symlink("c", out), File("a/b/x", "x")}
			},
			check: wantErrFor(Layer),
		},
		{
			name:    "device through symlink",
			entries: func(out, up string) []Entry { return []Entry{Symlink("evil", out), Char("evil/null", 1, 3)} },
			check:   wantErrFor(Layer),
		},
		{
			name:    "symlink loop",
			entries: func(out, up string) []Entry { return []Entry{Symlink("a", "b"), Symlink("b", "a"), File("a/x", "x")} },
			check:   wantErrFor(Layer, Extract),
		},
		{
			name: "symlink swapped in for a directory mid-stream",
			entries: func(out, up string) []Entry {
				return []Entry{Dir("d/"), File("d/a", "a"), Symlink("d", out), File("d/x", "x")}
			},
			check: wantErrFor(Layer),
		},
		{
			name: "file replaces a symlink to outside",
			entries: func(out, up string) []Entry {
				return []Entry{Symlink("s", out+"/secret"), Owned(File("s", "overwrite"), 1234, 1234, 0o4777)}
			},
			check: isReg("s", Layer, Extract),
		},
		{
			name:    "dir replaces a symlink to outside",
			entries: func(out, up string) []Entry { return []Entry{Symlink("s", out), Owned(Dir("s/"), 1234, 1234, 0o700)} },
			check: func(t *testing.T, r Result) {
				if r.Target.Kind == Copy || (r.Target.Kind == Extract && r.Err != nil) {
					return // noOverwriteDirNonDir refuses it
				}
				if st, ok := r.Lstat(t, "s"); !ok || st.Mode&unix.S_IFMT != unix.S_IFDIR {
					t.Errorf("%s: s is not a directory (err %v)", r.Target.Name, r.Err)
				}
			},
		},
		{
			name: "device replaces a symlink to outside",
			entries: func(out, up string) []Entry {
				return []Entry{Symlink("s", out+"/secret"), Owned(Char("s", 1, 3), 1234, 1234, 0o666)}
			},
		},

		// ---- hard links ---------------------------------------------------
		{
			name:    "hardlink target climbs out",
			entries: func(out, up string) []Entry { return []Entry{Link("h", up+out[1:]+"/secret")} },
			check:   wantErrFor(Layer, Extract),
		},
		{
			name:    "hardlink absolute target",
			entries: func(out, up string) []Entry { return []Entry{Link("h", out+"/secret")} },
			check:   wantErrFor(Layer, Extract),
		},
		{
			name:    "hardlink target through a symlinked dir",
			entries: func(out, up string) []Entry { return []Entry{Symlink("d", out), Link("h", "d/secret")} },
			check:   wantErrFor(Layer, Extract),
		},
		{
			name: "hardlink made in a symlinked dir",
			entries: func(out, up string) []Entry {
				return []Entry{File("a", "a"), Symlink("evil", out), Link("evil/h", "a")}
			},
			check: wantErrFor(Layer),
		},
		{
			name:    "hardlink to a symlink links the symlink",
			entries: func(out, up string) []Entry { return []Entry{Symlink("s", out+"/secret"), Link("h", "s")} },
			check: func(t *testing.T, r Result) {
				if r.Target.Kind == Copy {
					return
				}
				if st, ok := r.Lstat(t, "h"); !ok || st.Mode&unix.S_IFMT != unix.S_IFLNK {
					t.Errorf("%s: h is not the symlink (err %v)", r.Target.Name, r.Err)
				}
			},
		},

		// ---- devices, setuid, xattrs -----------------------------------
		{
			name:    "device nodes",
			entries: func(out, up string) []Entry { return []Entry{Char("null", 1, 3), Block("sda", 8, 0)} },
			check: func(t *testing.T, r Result) {
				if !r.Target.Devices || r.Err != nil {
					return
				}
				if st, ok := r.Lstat(t, "sda"); !ok || st.Mode&unix.S_IFMT != unix.S_IFBLK || st.Rdev != unix.Mkdev(8, 0) {
					t.Errorf("%s: sda is not block device 8,0: ok=%v mode=%o rdev=%x", r.Target.Name, ok, st.Mode, st.Rdev)
				}
			},
		},
		{
			name: "setuid and setgid bits",
			entries: func(out, up string) []Entry {
				return []Entry{
					Owned(File("suid", "x"), 1234, 1234, 0o4755),
					Owned(File("sgid", "x"), 1234, 1234, 0o2755),
					Owned(File("rootsuid", "x"), 0, 0, 0o4755),
				}
			},
			check: func(t *testing.T, r Result) {
				if r.Err != nil {
					t.Errorf("%s: %v", r.Target.Name, r.Err)
					return
				}
				for _, n := range []string{"suid", "sgid", "rootsuid"} {
					st, ok := r.Lstat(t, n)
					if !ok {
						t.Errorf("%s: %s missing", r.Target.Name, n)
						continue
					}
					if st.Mode&unix.S_ISUID != 0 && st.Uid != map[string]uint32{"suid": 1234, "rootsuid": 0}[n] {
						t.Errorf("%s: %s is setuid (mode %o) but owned by %d", r.Target.Name, n, st.Mode, st.Uid)
					}
					if st.Mode&unix.S_ISGID != 0 && st.Gid != 1234 {
						t.Errorf("%s: %s is setgid (mode %o) but of group %d", r.Target.Name, n, st.Mode, st.Gid)
					}
				}
				if st, _ := r.Lstat(t, "suid"); r.Target.SameOwner && (st.Mode&0o7777 != 0o4755 || st.Uid != 1234) {
					t.Errorf("%s: suid is mode %o uid %d, want 4755 1234 as in the tar", r.Target.Name, st.Mode&0o7777, st.Uid)
				}
				if st, _ := r.Lstat(t, "rootsuid"); os.Geteuid() == 0 && st.Mode&0o7777 != 0o4755 {
					t.Errorf("%s: rootsuid is mode %o, want 4755 as in the tar", r.Target.Name, st.Mode&0o7777)
				}
			},
		},
		{
			name: "overlayfs xattrs from the tar",
			entries: func(out, up string) []Entry {
				f := File("f", "x")
				f.Hdr.PAXRecords = map[string]string{"SCHILY.xattr.trusted.overlay.redirect": "/etc", "SCHILY.xattr.trusted.overlay.opaque": "y"}
				d := Dir("d/")
				d.Hdr.PAXRecords = map[string]string{"SCHILY.xattr.trusted.overlay.opaque": "y"}
				return []Entry{f, d}
			},
			check: func(t *testing.T, r Result) {
				for _, n := range []string{"f", "d"} {
					if v, err := getXattr(filepath.Join(r.Dir, n), "trusted.overlay.redirect"); err == nil {
						t.Errorf("%s: %s got trusted.overlay.redirect=%q", r.Target.Name, n, v)
					}
					if v, err := getXattr(filepath.Join(r.Dir, n), "trusted.overlay.opaque"); err == nil {
						t.Errorf("%s: %s got trusted.overlay.opaque=%q", r.Target.Name, n, v)
					}
				}
			},
		},

		// ---- whiteouts ----------------------------------------------------
		{
			name:    "whiteout",
			entries: func(out, up string) []Entry { return []Entry{Dir("d/"), File("d/.wh.gone", "")} },
			check: func(t *testing.T, r Result) {
				switch r.Target.Kind {
				case Layer:
					if st, ok := r.Lstat(t, "d/gone"); !ok || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
						t.Errorf("%s: d/gone is not an overlayfs whiteout", r.Target.Name)
					}
				case Extract:
					isReg("d/.wh.gone", Extract)(t, r)
				}
			},
		},
		{
			name:    "opaque directory",
			entries: func(out, up string) []Entry { return []Entry{Dir("o/"), File("o/.wh..wh..opq", ""), File("o/x", "x")} },
			check: func(t *testing.T, r Result) {
				v, err := getXattr(filepath.Join(r.Dir, "o"), "trusted.overlay.opaque")
				switch r.Target.Kind {
				case Layer:
					if err != nil || v != "y" {
						t.Errorf("%s: o is not opaque: %q %v", r.Target.Name, v, err)
					}
				default:
					if err == nil {
						t.Errorf("%s: a tar made o opaque", r.Target.Name)
					}
				}
			},
		},
		{
			name:    "whiteout through symlink",
			entries: func(out, up string) []Entry { return []Entry{Symlink("evil", out), File("evil/.wh.secret", "")} },
			check:   wantErrFor(Layer),
		},
		{
			name:    "opaque marker through symlink",
			entries: func(out, up string) []Entry { return []Entry{Symlink("evil", out), File("evil/.wh..wh..opq", "")} },
			check:   wantErrFor(Layer),
		},
		{
			name:    "whiteout of the parent",
			entries: func(out, up string) []Entry { return []Entry{Dir("x/"), File("x/.wh..", "")} },
			check:   wantErrFor(Layer),
		},

		// ---- existing trees (Extract) -------------------------------------
		{
			name:    "planted absolute symlink",
			entries: func(out, up string) []Entry { return []Entry{File("d/x", "x"), Dir("d/sub/"), Link("d/h", "d/x")} },
			plant: func(t *testing.T, dir, out string) {
				if err := os.Symlink(out, filepath.Join(dir, "d")); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name:    "planted relative symlink",
			entries: func(out, up string) []Entry { return []Entry{File("d/x", "x")} },
			plant: func(t *testing.T, dir, out string) {
				if err := os.Symlink(strings.Repeat("../", 40)+out[1:], filepath.Join(dir, "d")); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name:    "planted symlink replaced by a file",
			entries: func(out, up string) []Entry { return []Entry{Owned(File("s", "mine"), 1234, 1234, 0o644)} },
			plant: func(t *testing.T, dir, out string) {
				if err := os.Symlink(out+"/secret", filepath.Join(dir, "s")); err != nil {
					t.Fatal(err)
				}
			},
			check: isReg("s", Extract),
		},
		{
			name: "symlink swaps racing the extraction",
			entries: func(out, up string) []Entry {
				es := []Entry{Dir("race/")}
				for i := range 300 {
					es = append(es, File(fmt.Sprintf("race/f%03d", i), "x"), Dir(fmt.Sprintf("race/d%03d/", i)))
				}
				return es
			},
			plant: func(t *testing.T, dir, out string) {},
			race: func(dir, out string, stop <-chan struct{}) {
				p := filepath.Join(dir, "race")
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					_ = os.RemoveAll(p)
					if i%2 == 0 {
						_ = os.Symlink(out, p)
					} else {
						_ = os.Mkdir(p, 0o755)
					}
				}
			},
		},
	}
}

func getXattr(p, name string) (string, error) {
	b := make([]byte, 4096)
	n, err := unix.Lgetxattr(p, name, b)
	if err != nil {
		return "", err
	}
	return string(b[:n]), nil
}
