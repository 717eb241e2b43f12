package volume

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

func TestParseMountOptions(t *testing.T) {
	flags, prop, data := parseMountOptions("size=64m,ro,uid=1000,noexec,nosuid,rw,rprivate,mode=1777")
	if flags != unix.MS_NOEXEC|unix.MS_NOSUID {
		t.Errorf("flags %#x", flags)
	}
	if prop != unix.MS_PRIVATE|unix.MS_REC {
		t.Errorf("propagation %#x", prop)
	}
	if data != "size=64m,uid=1000,mode=1777" {
		t.Errorf("data %q", data)
	}
	flags, _, data = parseMountOptions("bind,ro")
	if flags != unix.MS_BIND|unix.MS_RDONLY || data != "" {
		t.Errorf("bind: %#x %q", flags, data)
	}
}

func TestUnescapeMountPath(t *testing.T) {
	for in, want := range map[string]string{
		`/a\040b`:    "/a b",
		`/tab\011x`:  "/tab\tx",
		`/back\134s`: `/back\s`,
		`/plain`:     "/plain",
		`/short\04`:  `/short\04`,
	} {
		if got := unescapeMountPath(in); got != want {
			t.Errorf("%q: got %q want %q", in, got, want)
		}
	}
}

func TestMaskPassword(t *testing.T) {
	got := maskPassword("mount //h/s: data: user=u,password=s3cret: permission denied", "user=u,password=s3cret")
	if strings.Contains(got, "s3cret") || !strings.Contains(got, "password=********") {
		t.Fatal(got)
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// fsType returns the filesystem type mounted at path, or "".
func fsType(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	typ := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 9 || unescapeMountPath(fields[4]) != path {
			continue
		}
		for i, fld := range fields {
			if fld == "-" && i+1 < len(fields) {
				typ = fields[i+1] // the last mount on path is what shows
			}
		}
	}
	return typ
}

func cleanupMounts(t *testing.T, root string) {
	t.Cleanup(func() {
		if mps, _ := mountsUnder(root); len(mps) > 0 {
			t.Errorf("mounts left behind: %v", mps)
			_ = unmountAllUnder(root)
		}
	})
}

func TestTmpfsVolumeMountsWhileUsed(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	s := newService(t)
	cleanupMounts(t, s.Root())
	v := mustCreate(t, s, "scratch", nil, map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m,uid=1000,mode=0710"})
	if fsType(t, v.Mountpoint) != "" {
		t.Fatal("mounted before first use")
	}

	mp, err := s.Acquire(ctx, "scratch", "c1")
	if err != nil {
		t.Fatal(err)
	}
	if fsType(t, mp) != "tmpfs" {
		t.Fatalf("not a tmpfs at %s", mp)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(mp, &st); err != nil || st.Blocks*uint64(st.Bsize) != 1<<20 {
		t.Fatalf("size: %d blocks of %d (%v)", st.Blocks, st.Bsize, err)
	}
	if fi, _ := os.Stat(mp); fi.Mode().Perm() != 0o710 {
		t.Fatalf("mode %v", fi.Mode())
	}
	if err := os.WriteFile(filepath.Join(mp, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A second user shares the mount; no second mount is stacked.
	if _, err := s.Acquire(ctx, "scratch", "c2"); err != nil {
		t.Fatal(err)
	}
	if mps, _ := mountsUnder(filepath.Dir(mp)); len(mps) != 1 {
		t.Fatalf("mounts %v", mps)
	}

	// The daemon restarts while both use it: the mount is recognised.
	s2, err := New(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Unmount(ctx, "scratch", "c1"); err != nil {
		t.Fatal(err)
	}
	if fsType(t, mp) != "tmpfs" {
		t.Fatal("unmounted while c2 still uses it")
	}
	wantErr(t, s2.Remove(ctx, "scratch", false), cerrdefs.IsConflict, "remove scratch: volume is in use - [c1, c2]")
	if err := s2.Unmount(ctx, "scratch", "c2"); err != nil {
		t.Fatal(err)
	}
	if fsType(t, mp) != "" {
		t.Fatal("still mounted after the last user stopped")
	}
	if _, err := os.Stat(filepath.Join(mp, "f")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("tmpfs content outlived the mount: %v", err)
	}
	// Restarting (c2 starts again) mounts a fresh tmpfs.
	if _, err := s2.Acquire(ctx, "scratch", "c2"); err != nil {
		t.Fatal(err)
	}
	if fsType(t, mp) != "tmpfs" {
		t.Fatal("not remounted")
	}
	for _, id := range []string{"c1", "c2"} {
		if err := s2.Release(ctx, "scratch", id); err != nil {
			t.Fatal(err)
		}
	}
	if fsType(t, mp) != "" {
		t.Fatal("still mounted after release")
	}
	if err := s2.Remove(ctx, "scratch", false); err != nil {
		t.Fatal(err)
	}
}

// berthd died between the last user going and the unmount: New unmounts.
func TestNewUnmountsStaleMount(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	s := newService(t)
	cleanupMounts(t, s.Root())
	v := mustCreate(t, s, "stale", nil, map[string]string{"type": "tmpfs", "device": "tmpfs"})
	if err := unix.Mount("tmpfs", v.Mountpoint, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := New(s.Root()); err != nil {
		t.Fatal(err)
	}
	if fsType(t, v.Mountpoint) != "" {
		t.Fatal("stale mount kept")
	}
	if err := s.Remove(ctx, "stale", false); err != nil {
		t.Fatal(err)
	}
}

func TestBadMountOptionsFailAcquire(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	s := newService(t)
	cleanupMounts(t, s.Root())
	mustCreate(t, s, "bad", nil, map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=abc"})
	_, err := s.Acquire(ctx, "bad", "c1")
	if err == nil || !strings.HasPrefix(err.Error(), "failed to mount local volume: mount tmpfs:") {
		t.Fatalf("acquire: %v", err)
	}
	if refs, _ := s.Refs(ctx, "bad"); len(refs) != 0 {
		t.Fatalf("a failed mount left a reference: %v", refs)
	}
	if err := s.Remove(ctx, "bad", false); err != nil {
		t.Fatal(err)
	}
}

// A bind-mounted volume must never delete the host directory's files.
func TestBindVolumeKeepsHostData(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	s := newService(t)
	cleanupMounts(t, s.Root())
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "precious"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, "hostdir", nil, map[string]string{"type": "none", "device": host, "o": "bind,ro"})
	mp, err := s.Acquire(ctx, "hostdir", "c1")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(mp, "precious")); err != nil || string(b) != "x" {
		t.Fatalf("bind content: %q %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(mp, "w"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Fatalf("write to ro bind: %v", err)
	}
	// Simulate a mount the service does not know of (left by a crash, or
	// propagated from elsewhere): removal must unmount, not delete through it.
	if err := s.Release(ctx, "hostdir", "c1"); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(host, mp, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "hostdir", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(host, "precious")); err != nil {
		t.Fatalf("host data deleted by volume removal: %v", err)
	}
}

func TestDeleteTreeRefusesMounts(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	inner := filepath.Join(dir, "a", "b")
	if err := os.MkdirAll(inner, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", inner, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(inner, unix.MNT_DETACH)
	if err := os.WriteFile(filepath.Join(inner, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := deleteTree(dir); err == nil || !strings.Contains(err.Error(), "is mounted") {
		t.Fatalf("deleteTree over a mount: %v", err)
	}
	if mps, _ := mountsUnder(dir); !slices.Contains(mps, inner) {
		t.Fatal("mount gone")
	}
}
