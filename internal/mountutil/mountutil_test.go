package mountutil

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// A tree with a tmpfs mounted in it is not removed: the files behind the
// mount (a container's writable layer, in berthd) survive; once it is
// unmounted, the tree goes.
func TestRemoveAllNeverCrossesAMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	dir := filepath.Join(t.TempDir(), "state")
	mp := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(mp, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", mp, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(mp, unix.MNT_DETACH) })
	precious := filepath.Join(mp, "important")
	if err := os.WriteFile(precious, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	mps, err := MountsUnder(dir)
	if err != nil || len(mps) != 1 || mps[0] != mp {
		t.Fatalf("MountsUnder = %v, %v; want [%s]", mps, err, mp)
	}
	err = RemoveAll(dir)
	if !errors.Is(err, cerrdefs.ErrFailedPrecondition) {
		t.Fatalf("RemoveAll with a mount inside: %v, want a failed precondition", err)
	}
	if b, err := os.ReadFile(precious); err != nil || string(b) != "precious" {
		t.Fatalf("the file behind the mount: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err != nil {
		t.Fatalf("RemoveAll removed part of the tree before refusing: %v", err)
	}
	if err := Unmount(dir, false); err != nil {
		t.Fatal(err)
	}
	if mps, _ := MountsUnder(dir); len(mps) != 0 {
		t.Fatalf("still mounted after Unmount: %v", mps)
	}
	if err := RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("%s still there: %v", dir, err)
	}
	if err := RemoveAll(dir); err != nil {
		t.Fatalf("RemoveAll of a missing dir: %v", err)
	}
}

// Mounts stacked on one path and nested ones come deepest and topmost
// first, and Unmount takes them all.
func TestUnmountNested(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	dir := t.TempDir()
	a := filepath.Join(dir, "a")
	if err := os.MkdirAll(a, 0o700); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := unix.Mount("tmpfs", a, "tmpfs", 0, "size=1m"); err != nil {
			t.Skipf("mount tmpfs: %v", err)
		}
	}
	b := filepath.Join(a, "b")
	if err := os.MkdirAll(b, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", b, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 3 {
			_ = unix.Unmount(a, unix.MNT_DETACH)
		}
	})
	mps, err := MountsUnder(dir)
	if err != nil || len(mps) != 3 || mps[0] != b {
		t.Fatalf("MountsUnder = %v, %v; want %s first of 3", mps, err, b)
	}
	if err := Unmount(dir, false); err != nil {
		t.Fatal(err)
	}
	if mps, _ := MountsUnder(dir); len(mps) != 0 {
		t.Fatalf("still mounted: %v", mps)
	}
}
