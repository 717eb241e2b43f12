package volume

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// imageDir builds what an image might hold at a volume's mount point.
func imageDir(t *testing.T) string {
	t.Helper()
	src := filepath.Join(tempDir(t), "var-lib-app")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "conf", "ro"), 0o755))
	must(os.WriteFile(filepath.Join(src, "conf", "app.conf"), []byte("listen 80\n"), 0o640))
	must(os.WriteFile(filepath.Join(src, "conf", "ro", "fixed"), []byte("f"), 0o444))
	must(os.Chmod(filepath.Join(src, "conf", "ro"), 0o555))
	must(os.WriteFile(filepath.Join(src, "suid"), []byte("#!/bin/sh\n"), 0o755))
	must(os.Chmod(filepath.Join(src, "suid"), 0o4755|os.ModeSetuid))
	must(os.Symlink("/etc/passwd", filepath.Join(src, "abs-link")))
	must(os.Symlink("conf/app.conf", filepath.Join(src, "rel-link")))
	must(os.Link(filepath.Join(src, "conf", "app.conf"), filepath.Join(src, "hardlink")))
	must(unix.Mkfifo(filepath.Join(src, "fifo"), 0o620))
	must(os.Chmod(filepath.Join(src, "fifo"), 0o620)) // past the umask
	must(os.MkdirAll(filepath.Join(src, "empty"), 0o1777))
	must(os.Chmod(filepath.Join(src, "empty"), 0o1777|os.ModeSticky))
	must(unix.Setxattr(filepath.Join(src, "conf", "app.conf"), "user.origin", []byte("image"), 0))
	if os.Geteuid() == 0 {
		must(unix.Mknod(filepath.Join(src, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		must(os.Lchown(filepath.Join(src, "conf"), 1000, 1001))
		must(os.Lchown(filepath.Join(src, "abs-link"), 1000, 1000))
		must(os.Chown(src, 999, 999))
		// A file capability, as ping has: security.capability v2, cap_net_raw.
		capv2 := []byte{0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
		must(os.WriteFile(filepath.Join(src, "ping"), []byte("elf"), 0o755))
		must(unix.Setxattr(filepath.Join(src, "ping"), "security.capability", capv2, 0))
	}
	must(os.Chmod(src, 0o750))
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	must(os.Chtimes(filepath.Join(src, "conf", "app.conf"), old, old))
	must(os.Chtimes(filepath.Join(src, "conf"), old, old))
	return src
}

func stat(t *testing.T, p string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t)
}

func TestCopyUpFillsEmptyVolume(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	v := mustCreate(t, s, "appdata", nil, nil)
	src := imageDir(t)
	if err := s.CopyUp(ctx, "appdata", src); err != nil {
		t.Fatal(err)
	}
	dst := v.Mountpoint
	root := os.Geteuid() == 0

	if b, err := os.ReadFile(filepath.Join(dst, "conf", "app.conf")); err != nil || string(b) != "listen 80\n" {
		t.Fatalf("content %q %v", b, err)
	}
	// Modes, special bits included.
	for p, want := range map[string]os.FileMode{
		".":             0o750 | os.ModeDir,
		"conf/app.conf": 0o640,
		"conf/ro":       0o555 | os.ModeDir,
		"conf/ro/fixed": 0o444,
		"suid":          0o755 | os.ModeSetuid,
		"empty":         0o777 | os.ModeDir | os.ModeSticky,
		"fifo":          0o620 | os.ModeNamedPipe,
		"abs-link":      0o777 | os.ModeSymlink,
	} {
		fi, err := os.Lstat(filepath.Join(dst, p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
	}
	// Symlinks are copied, not followed.
	for p, want := range map[string]string{"abs-link": "/etc/passwd", "rel-link": "conf/app.conf"} {
		if got, err := os.Readlink(filepath.Join(dst, p)); err != nil || got != want {
			t.Errorf("%s -> %q (%v), want %q", p, got, err, want)
		}
	}
	// Hard links stay linked.
	if a, b := stat(t, filepath.Join(dst, "hardlink")), stat(t, filepath.Join(dst, "conf", "app.conf")); a.Ino != b.Ino {
		t.Error("hard link became two files")
	}
	// Times and xattrs.
	if fi, _ := os.Stat(filepath.Join(dst, "conf", "app.conf")); fi.ModTime().Year() != 2020 {
		t.Errorf("mtime %v", fi.ModTime())
	}
	if fi, _ := os.Stat(filepath.Join(dst, "conf")); fi.ModTime().Year() != 2020 {
		t.Errorf("dir mtime %v", fi.ModTime())
	}
	buf := make([]byte, 64)
	if n, err := unix.Getxattr(filepath.Join(dst, "conf", "app.conf"), "user.origin", buf); err != nil || string(buf[:n]) != "image" {
		t.Errorf("xattr %q %v", buf[:n], err)
	}
	if root {
		if st := stat(t, filepath.Join(dst, "conf")); st.Uid != 1000 || st.Gid != 1001 {
			t.Errorf("conf owner %d:%d", st.Uid, st.Gid)
		}
		if st := stat(t, filepath.Join(dst, "abs-link")); st.Uid != 1000 {
			t.Errorf("symlink owner %d", st.Uid)
		}
		// The volume's root takes the image directory's owner.
		if st := stat(t, dst); st.Uid != 999 || st.Gid != 999 {
			t.Errorf("volume root owner %d:%d", st.Uid, st.Gid)
		}
		if st := stat(t, filepath.Join(dst, "null")); st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
			t.Errorf("device node mode %o rdev %d", st.Mode, st.Rdev)
		}
		n, err := unix.Getxattr(filepath.Join(dst, "ping"), "security.capability", buf)
		if err != nil || n != 20 || buf[5] != 0x20 {
			t.Errorf("file capability lost: %x %v", buf[:max(n, 0)], err)
		}
	}

	// Populated once: a second copy from elsewhere does nothing, even
	// after the volume was emptied by its user.
	_ = os.Chmod(filepath.Join(dst, "conf", "ro"), 0o755)
	entries, _ := os.ReadDir(dst)
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dst, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CopyUp(ctx, "appdata", imageDir(t)); err != nil {
		t.Fatal(err)
	}
	if empty, _ := isEmptyDir(dst); !empty {
		t.Fatal("copied into a volume that was populated before")
	}
	// The flag survives a restart.
	s2, err := New(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.CopyUp(ctx, "appdata", imageDir(t)); err != nil {
		t.Fatal(err)
	}
	if empty, _ := isEmptyDir(dst); !empty {
		t.Fatal("copied after restart")
	}
}

func TestCopyUpSkipsNonEmptyVolume(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	v := mustCreate(t, s, "used", nil, nil)
	if err := os.WriteFile(filepath.Join(v.Mountpoint, "mine"), []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.CopyUp(ctx, "used", imageDir(t)); err != nil {
		t.Fatal(err)
	}
	des, _ := os.ReadDir(v.Mountpoint)
	if len(des) != 1 || des[0].Name() != "mine" {
		t.Fatalf("volume content %v", des)
	}
	if fi, _ := os.Stat(v.Mountpoint); fi.Mode().Perm() != 0o755 {
		t.Fatalf("root mode changed to %v", fi.Mode())
	}
}

func TestCopyUpNothingToCopy(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	v := mustCreate(t, s, "vol", nil, nil)
	dir := t.TempDir()
	// Missing, a file, and a symlink to a directory: nothing copied, no
	// symlink followed.
	if err := s.CopyUp(ctx, "vol", filepath.Join(dir, "missing")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.CopyUp(ctx, "vol", filepath.Join(dir, "file")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := s.CopyUp(ctx, "vol", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if empty, _ := isEmptyDir(v.Mountpoint); !empty {
		t.Fatal("copied something")
	}
	// An empty image directory lends its mode but does not populate: a
	// later image with content still fills the volume.
	emptyDir := filepath.Join(dir, "emptydir")
	if err := os.Mkdir(emptyDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := s.CopyUp(ctx, "vol", emptyDir); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(v.Mountpoint); fi.Mode().Perm() != 0o700 {
		t.Fatalf("root mode %v", fi.Mode())
	}
	if err := s.CopyUp(ctx, "vol", imageDir(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(v.Mountpoint, "conf", "app.conf")); err != nil {
		t.Fatal(err)
	}
	if err := s.CopyUp(ctx, "nosuch", dir); err == nil || err.Error() != "get nosuch: no such volume" {
		t.Fatalf("missing volume: %v", err)
	}
}

func TestCopyUpCancelledLeavesVolumeEmpty(t *testing.T) {
	s := newService(t)
	v := mustCreate(t, s, "vol", nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.CopyUp(ctx, "vol", imageDir(t))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	if empty, _ := isEmptyDir(v.Mountpoint); !empty {
		t.Fatal("partial copy left behind")
	}
	// A later attempt copies everything.
	if err := s.CopyUp(context.Background(), "vol", imageDir(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(v.Mountpoint, "conf", "ro", "fixed")); err != nil {
		t.Fatal(err)
	}
}

// A tmpfs volume is filled again each time it is freshly mounted.
func TestCopyUpTmpfsVolume(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	s := newService(t)
	cleanupMounts(t, s.Root())
	mustCreate(t, s, "tv", nil, map[string]string{"type": "tmpfs", "device": "tmpfs"})
	if err := s.CopyUp(ctx, "tv", imageDir(t)); err == nil {
		t.Fatal("copy into an unmounted tmpfs volume was allowed")
	}
	for range 2 {
		mp, err := s.Acquire(ctx, "tv", "c1")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CopyUp(ctx, "tv", imageDir(t)); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(mp, "conf", "app.conf")); err != nil {
			t.Fatal(err)
		}
		if err := s.Unmount(ctx, "tv", "c1"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Release(ctx, "tv", "c1"); err != nil {
		t.Fatal(err)
	}
}
