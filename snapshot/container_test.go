package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/berth/berth/archive"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// mountT mounts m on a fresh directory and unmounts it when the test ends.
func mountT(t *testing.T, m Mount) string {
	t.Helper()
	target := t.TempDir()
	if err := m.Mount(target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(target, unix.MNT_DETACH) })
	return target
}

func readString(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPrepareMountOverlay(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	base := applyTar(t, s, "",
		fileEnt("a", "A", 0o644),
		fileEnt("b", "B", 0o644),
		dirEnt("d/", 0o755),
		fileEnt("d/old", "old", 0o644),
	)
	top := applyTar(t, s, base.ChainID,
		fileEnt(".wh.a", "", 0o600),
		dirEnt("d/", 0o755),
		fileEnt("d/.wh..wh..opq", "", 0o600),
		fileEnt("d/new", "new", 0o644),
		fileEnt("c", "C", 0o644),
	)
	before := describeTree(t, base.Dir) + "\n" + describeTree(t, top.Dir)

	m, err := s.Prepare(ctx, "c1", top.ChainID)
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != "overlay" || m.Source != "overlay" || m.Dir != "" {
		t.Fatalf("mount = %+v", m)
	}
	if want := top.Dir + ":" + base.Dir; m.option("lowerdir") != want {
		t.Fatalf("lowerdir = %q, want %q (top first)", m.option("lowerdir"), want)
	}
	upper := upperOf(t, s, "c1")
	if m.option("upperdir") != upper || m.option("workdir") == "" {
		t.Fatalf("options = %q", m.Options)
	}

	target := mountT(t, m)
	if _, err := os.Lstat(filepath.Join(target, "a")); !os.IsNotExist(err) {
		t.Error("whiteout in top layer does not hide a")
	}
	if _, err := os.Lstat(filepath.Join(target, "d/old")); !os.IsNotExist(err) {
		t.Error("opaque dir does not hide d/old")
	}
	if readString(t, filepath.Join(target, "b")) != "B" || readString(t, filepath.Join(target, "c")) != "C" || readString(t, filepath.Join(target, "d/new")) != "new" {
		t.Error("merged view wrong")
	}

	if err := os.WriteFile(filepath.Join(target, "hello"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(target, "b")); err != nil {
		t.Fatal(err)
	}
	if readString(t, filepath.Join(upper, "hello")) != "hello" {
		t.Error("write did not land in upper")
	}
	if st := lstat(t, filepath.Join(upper, "b")); st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Error("delete did not leave a whiteout in upper")
	}
	if after := describeTree(t, base.Dir) + "\n" + describeTree(t, top.Dir); after != before {
		t.Errorf("lower layers changed:\n%s\n---\n%s", before, after)
	}
	// The upper dir exports as a layer diff (what commit and build need).
	rc, err := archive.TarDir(ctx, upper, archive.WriterOptions{Layer: true})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	rc.Close()
	if got := strings.Join(names, " "); got != ".wh.b hello" {
		t.Errorf("upper exports as %q", got)
	}
	if n, err := s.Usage(ctx, "c1"); err != nil || n != 5 {
		t.Errorf("Usage = %d, %v; want 5", n, err)
	}

	if err := s.Remove(ctx, base.ChainID); !cerrdefs.IsConflict(err) {
		t.Errorf("removing a layer in use: %v", err)
	}
	if _, err := s.Prepare(ctx, "c1", top.ChainID); !cerrdefs.IsConflict(err) {
		t.Errorf("Prepare of existing key: %v", err)
	}
	again, err := s.Mounts(ctx, "c1")
	if err != nil || strings.Join(again.Options, ",") != strings.Join(m.Options, ",") {
		t.Errorf("Mounts = %+v, %v", again, err)
	}

	if err := Unmount(target); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveContainer(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Usage(ctx, "c1"); !cerrdefs.IsNotFound(err) {
		t.Errorf("Usage after remove: %v", err)
	}
	if err := s.RemoveContainer(ctx, "c1"); !cerrdefs.IsNotFound(err) {
		t.Errorf("second RemoveContainer: %v", err)
	}
	if err := s.Remove(ctx, top.ChainID); err != nil {
		t.Errorf("layer still held after its container went: %v", err)
	}
	if err := s.Remove(ctx, base.ChainID); err != nil {
		t.Errorf("layer still held after its container went: %v", err)
	}
	tmpEmpty(t, s)
}

func TestPrepareErrors(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	if _, err := s.Prepare(ctx, "c", digest.FromString("missing")); !cerrdefs.IsNotFound(err) {
		t.Errorf("missing parent: %v", err)
	}
	// A layer whose parent never comes: Apply waits for it until its
	// context ends, then leaves nothing behind.
	b, d := makeTar(t, fileEnt("x", "x", 0o644))
	wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err := s.Apply(wctx, digest.FromString("missing"), d, bytes.NewReader(b))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("apply on a missing parent: %v", err)
	}
	for _, key := range []string{"", "../x", "a/b", ".hidden", strings.Repeat("k", 200)} {
		if _, err := s.Prepare(ctx, key, ""); !cerrdefs.IsInvalidArgument(err) {
			t.Errorf("key %q: %v", key, err)
		}
	}
	if _, err := s.Mounts(ctx, "nope"); !cerrdefs.IsNotFound(err) {
		t.Errorf("Mounts missing: %v", err)
	}
	tmpEmpty(t, s)
}

func TestPrepareWithoutParentBindMounts(t *testing.T) {
	s := newTestStore(t)
	m, err := s.Prepare(context.Background(), "scratch", "")
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != "bind" {
		t.Fatalf("mount = %+v", m)
	}
	target := mountT(t, m)
	os.WriteFile(filepath.Join(target, "f"), []byte("1234"), 0o644)
	if n, _ := s.Usage(context.Background(), "scratch"); n != 4 {
		t.Fatalf("Usage = %d", n)
	}
}

// chain applies n layers, each adding f<i> and overwriting "top".
func chain(t *testing.T, s *Store, n int) Layer {
	t.Helper()
	var l Layer
	for i := range n {
		l = applyTar(t, s, l.ChainID,
			fileEnt(fmt.Sprintf("f%d", i), fmt.Sprint(i), 0o644),
			fileEnt("top", fmt.Sprint(i), 0o644),
		)
	}
	return l
}

func TestPrepareLongChains(t *testing.T) {
	for _, tc := range []struct {
		layers   int
		relative bool
	}{
		{40, false}, // full paths fit
		{125, true}, // Docker's practical maximum: only relative paths fit
	} {
		t.Run(fmt.Sprint(tc.layers), func(t *testing.T) {
			s := newTestStore(t)
			top := chain(t, s, tc.layers)
			m, err := s.Prepare(context.Background(), "long", top.ChainID)
			if err != nil {
				t.Fatal(err)
			}
			if data := strings.Join(m.Options, ","); len(data) >= pageSize {
				t.Fatalf("mount data is %d bytes", len(data))
			}
			if (m.Dir != "") != tc.relative {
				t.Fatalf("mount = %+v", m)
			}
			target := mountT(t, m)
			if readString(t, filepath.Join(target, "f0")) != "0" ||
				readString(t, filepath.Join(target, fmt.Sprintf("f%d", tc.layers-1))) != fmt.Sprint(tc.layers-1) ||
				readString(t, filepath.Join(target, "top")) != fmt.Sprint(tc.layers-1) {
				t.Fatal("merged view wrong")
			}
			wd, _ := os.Getwd()
			if wd == s.Root() {
				t.Fatal("process working directory changed")
			}
		})
	}
}
