package snapshot

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// TestLinkLayer: a layer made from a build step's committed snapshot has
// the step's files without a second copy of their data (the same
// inodes), directories of its own with the step's metadata and opaque
// marks (not overlayfs's other marks), the size Apply would count, and
// mounts as the step's result; it outlives the step's snapshot. A
// snapshot that is not committed or not on the expected parent is
// refused with nothing left behind.
func TestLinkLayer(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	base := applyTar(t, s, "",
		fileEnt("gone", "G", 0o644),
		fileEnt("kept", "K", 0o644),
		dirEnt("d/", 0o755),
		fileEnt("d/old", "old", 0o644),
	)

	// A build step: a container snapshot on base, changed through its
	// overlay mount as a RUN step changes it, then committed as BuildKit
	// commits it.
	const step = "buildkit-step"
	m, err := s.Prepare(ctx, step, base.ChainID)
	if err != nil {
		t.Fatal(err)
	}
	root := mountT(t, m)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Remove(filepath.Join(root, "gone")))
	must(os.RemoveAll(filepath.Join(root, "d")))
	must(os.Mkdir(filepath.Join(root, "d"), 0o750))
	must(os.WriteFile(filepath.Join(root, "d/new"), []byte("new"), 0o600))
	must(os.WriteFile(filepath.Join(root, "big"), []byte(strings.Repeat("x", 100000)), 0o644))
	must(os.Link(filepath.Join(root, "big"), filepath.Join(root, "big2")))
	must(os.Symlink("big", filepath.Join(root, "sym")))
	must(os.Chmod(filepath.Join(root, "kept"), 0o600)) // a copy-up
	must(os.Mkdir(filepath.Join(root, "sg"), 0o755))
	must(os.Chmod(filepath.Join(root, "sg"), 0o2775|os.ModeSetgid))
	must(os.Chown(filepath.Join(root, "sg"), 1000, 1001))
	must(unix.Lsetxattr(filepath.Join(root, "sg"), "user.note", []byte("v"), 0))
	must(unix.Unmount(root, 0))
	upper := upperOf(t, s, step)
	// overlayfs's own marks of the upper dir, as a kernel may leave them
	must(unix.Lsetxattr(filepath.Join(upper, "d"), "trusted.overlay.impure", []byte("y"), 0))
	const stepDone = "buildkit-step-done"
	must(s.sn.Commit(ctx, stepDone, step))
	srcDir, err := s.dir(ctx, stepDone)
	must(err)

	diffID := digest.FromString("the step's layer")
	// refused: the snapshot is not on the parent given, or not committed
	if _, err := s.LinkLayer(ctx, stepDone, "", base.ChainID, diffID); !cerrdefs.IsFailedPrecondition(err) {
		t.Errorf("LinkLayer with a wrong snapshot parent: %v, want failed precondition", err)
	}
	if _, err := s.Prepare(ctx, "buildkit-active", base.ChainID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LinkLayer(ctx, "buildkit-active", base.ChainID.String(), base.ChainID, diffID); !cerrdefs.IsFailedPrecondition(err) {
		t.Errorf("LinkLayer of an active snapshot: %v, want failed precondition", err)
	}
	if _, err := s.LinkLayer(ctx, "buildkit-none", base.ChainID.String(), base.ChainID, diffID); !cerrdefs.IsNotFound(err) {
		t.Errorf("LinkLayer of a missing snapshot: %v, want not found", err)
	}
	tmpEmpty(t, s)
	if _, err := s.Get(ctx, ChainID(base.ChainID, diffID)); !cerrdefs.IsNotFound(err) {
		t.Fatalf("a refused LinkLayer left layer: %v", err)
	}

	l, err := s.LinkLayer(ctx, stepDone, base.ChainID.String(), base.ChainID, diffID)
	if err != nil {
		t.Fatal(err)
	}
	if l.ChainID != ChainID(base.ChainID, diffID) || l.Parent != base.ChainID || l.DiffID != diffID {
		t.Errorf("layer = %+v", l)
	}
	// regular file content, each inode once: big (and big2), d/new, kept
	if want := int64(100000 + 3 + 1); l.Size != want {
		t.Errorf("size = %d, want %d", l.Size, want)
	}
	// the same tree, overlayfs's marks other than opaque left out
	want := describeTree(t, srcDir)
	var kept []string
	for _, line := range strings.Split(want, "\n") {
		line = strings.ReplaceAll(line, "trusted.overlay.impure=y;", "")
		line = strings.ReplaceAll(line, " xattrs=trusted.overlay.impure=y", "")
		kept = append(kept, line)
	}
	want = strings.Join(kept, "\n")
	if got := describeTree(t, l.Dir); got != want {
		t.Errorf("linked layer:\n%s\nwant:\n%s", got, want)
	}
	if _, err := getXattr(filepath.Join(l.Dir, "d"), "trusted.overlay.opaque"); err != nil {
		t.Errorf("opaque mark of d not kept: %v", err)
	}
	// one copy of the data: files are the step's inodes, directories new
	for _, name := range []string{"big", "big2", "d/new", "kept", "sym", "gone"} {
		if a, b := lstat(t, filepath.Join(srcDir, name)), lstat(t, filepath.Join(l.Dir, name)); a.Ino != b.Ino {
			t.Errorf("%s: not the step's inode", name)
		}
	}
	if a, b := lstat(t, filepath.Join(srcDir, "d")), lstat(t, filepath.Join(l.Dir, "d")); a.Ino == b.Ino {
		t.Error("d: the step's directory itself")
	}
	again, err := s.LinkLayer(ctx, stepDone, base.ChainID.String(), base.ChainID, diffID)
	if err != nil || again.Dir != l.Dir {
		t.Errorf("LinkLayer of a layer that exists: %+v, %v; want the layer", again, err)
	}

	// the step's snapshot removed, the layer mounts as the step's result
	must(s.sn.Remove(ctx, "buildkit-active"))
	must(s.sn.Remove(ctx, stepDone))
	cm, err := s.Prepare(ctx, "c1", l.ChainID)
	must(err)
	view := mountT(t, cm)
	for p, want := range map[string]string{"kept": "K", "d/new": "new", "big2": strings.Repeat("x", 100000)} {
		if got := readString(t, filepath.Join(view, p)); got != want {
			t.Errorf("%s = %.20q, want %.20q", p, got, want)
		}
	}
	for _, p := range []string{"gone", "d/old"} {
		if _, err := os.Lstat(filepath.Join(view, p)); !os.IsNotExist(err) {
			t.Errorf("%s visible over the linked layer: %v", p, err)
		}
	}
	if st := lstat(t, filepath.Join(view, "sg")); st.Mode&0o7777 != 0o2775 || st.Uid != 1000 || st.Gid != 1001 {
		t.Errorf("sg: mode %o uid %d gid %d", st.Mode&0o7777, st.Uid, st.Gid)
	}
	tmpEmpty(t, s)
}
