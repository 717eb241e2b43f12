package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// outsideDir makes a directory outside the store holding one file,
// "secret", which no layer may touch.
func outsideDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "secret"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func checkOutsideUntouched(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "secret" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("outside dir changed: %v", names)
	}
	st := lstat(t, filepath.Join(dir, "secret"))
	b, _ := os.ReadFile(filepath.Join(dir, "secret"))
	if st.Mode != unix.S_IFREG|0o600 || st.Nlink != 1 || st.Uid != 0 || string(b) != "secret" {
		t.Fatalf("outside file changed: mode %o nlink %d uid %d content %q", st.Mode, st.Nlink, st.Uid, b)
	}
	if _, err := getXattr(dir, opaqueXattr); err == nil {
		t.Fatal("outside dir got an opaque xattr")
	}
}

func TestApplyCannotEscape(t *testing.T) {
	s := newTestStore(t)
	out := outsideDir(t)
	up := strings.Repeat("../", 20)
	chr := func(name string) ent {
		return ent{hdr: tar.Header{Typeflag: tar.TypeChar, Name: name, Mode: 0o666, Devmajor: 1, Devminor: 3, ModTime: testTime}}
	}
	owned := func(e ent) ent { e.hdr.Uid, e.hdr.Gid = 1234, 1234; e.hdr.Mode = 0o4777; return e }

	cases := []struct {
		name    string
		ents    []ent
		wantErr bool
		inLayer string // for accepted tars: where the entry must land
	}{
		{name: "dotdot is cleaned to the root", ents: []ent{fileEnt("../escape", "x", 0o644)}, inLayer: "escape"},
		{name: "deep dotdot", ents: []ent{fileEnt("a/../../../b/../../"+up+out[1:]+"/new", "x", 0o644)}, inLayer: out[1:] + "/new"},
		{name: "absolute name", ents: []ent{fileEnt(out+"/abs", "x", 0o644)}, inLayer: out[1:] + "/abs"},
		{name: "file through absolute symlink", ents: []ent{symlinkEnt("evil", out), fileEnt("evil/passwd", "x", 0o644)}, wantErr: true},
		{name: "file through relative symlink", ents: []ent{symlinkEnt("evil", up+out[1:]), fileEnt("evil/passwd", "x", 0o644)}, wantErr: true},
		{name: "dir through symlink", ents: []ent{symlinkEnt("evil", out), dirEnt("evil/sub/", 0o755)}, wantErr: true},
		{name: "nested symlinks", ents: []ent{dirEnt("a/", 0o755), symlinkEnt("a/b", "../c"), symlinkEnt("c", out), fileEnt("a/b/x", "x", 0o644)}, wantErr: true},
		{name: "device through symlink", ents: []ent{symlinkEnt("evil", out), chr("evil/null")}, wantErr: true},
		{name: "hardlink target climbs out", ents: []ent{linkEnt("h", up+out[1:]+"/secret")}, wantErr: true},
		{name: "hardlink absolute target", ents: []ent{linkEnt("h", out+"/secret")}, wantErr: true},
		{name: "hardlink target via symlinked dir", ents: []ent{symlinkEnt("d", out), linkEnt("h", "d/secret")}, wantErr: true},
		{name: "hardlink created in symlinked dir", ents: []ent{fileEnt("a", "a", 0o644), symlinkEnt("evil", out), linkEnt("evil/h", "a")}, wantErr: true},
		{name: "whiteout through symlink", ents: []ent{symlinkEnt("evil", out), fileEnt("evil/.wh.secret", "", 0o600)}, wantErr: true},
		{name: "opaque through symlink", ents: []ent{symlinkEnt("evil", out), fileEnt("evil/.wh..wh..opq", "", 0o600)}, wantErr: true},
		{name: "file replaces symlink to outside", ents: []ent{symlinkEnt("s", out+"/secret"), owned(fileEnt("s", "overwrite", 0o644))}, inLayer: "s"},
		{name: "dir replaces symlink to outside", ents: []ent{symlinkEnt("s", out), owned(dirEnt("s/", 0o755))}, inLayer: "s"},
		{name: "device replaces symlink to outside", ents: []ent{symlinkEnt("s", out+"/secret"), owned(chr("s"))}, inLayer: "s"},
		{name: "hardlink to symlink links the symlink", ents: []ent{symlinkEnt("s", out+"/secret"), linkEnt("h", "s")}, inLayer: "h"},
		{name: "symlink loop", ents: []ent{symlinkEnt("a", "b"), symlinkEnt("b", "a"), fileEnt("a/x", "x", 0o644)}, wantErr: true},
		{name: "invalid whiteout", ents: []ent{fileEnt("x/.wh..", "", 0o600)}, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, d := makeTar(t, tc.ents...)
			l, err := s.Apply(context.Background(), "", d, bytes.NewReader(b))
			checkOutsideUntouched(t, out)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("applied; layer has:\n%s", describeTree(t, l.Dir))
				}
				t.Logf("error: %v", err)
				tmpEmpty(t, s)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(filepath.Join(l.Dir, tc.inLayer)); err != nil {
				t.Fatalf("entry not inside the layer: %v\n%s", err, describeTree(t, l.Dir))
			}
			if _, err := os.Lstat(filepath.Join(filepath.Dir(l.Dir), "escape")); err == nil {
				t.Fatal("entry written next to the diff dir")
			}
		})
	}
}

func TestApplyFifoAsParentDoesNotHang(t *testing.T) {
	s := newTestStore(t)
	fifo := ent{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "f", Mode: 0o600, ModTime: testTime}}
	b, d := makeTar(t, fifo, fileEnt("f/x", "x", 0o644))
	done := make(chan error, 1)
	go func() {
		_, err := s.Apply(context.Background(), "", d, bytes.NewReader(b))
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("file under a fifo applied")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Apply hangs opening a fifo as a directory")
	}
	tmpEmpty(t, s)
}
