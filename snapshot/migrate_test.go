package snapshot

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
)

// TestMigrateOldLayout opens a store in the layout berth used before
// containerd's snapshotter (layers/<hex>/diff, containers/<key>/upper) and
// finds its layers and container snapshots moved, content and all.
func TestMigrateOldLayout(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	write := func(p, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeJSON := func(p string, v any) {
		t.Helper()
		b, _ := json.Marshal(v)
		write(p, string(b))
	}
	d1, d2 := digest.FromString("diff1"), digest.FromString("diff2")
	c1 := ChainID("", d1)
	c2 := ChainID(c1, d2)
	orphan := ChainID(digest.FromString("gone"), d2)
	for _, l := range []struct {
		chain, diff, parent digest.Digest
		file                string
	}{{c1, d1, "", "a"}, {c2, d2, c1, "b"}, {orphan, d2, digest.FromString("gone"), "o"}} {
		dir := filepath.Join(root, "layers", l.chain.Encoded())
		write(filepath.Join(dir, "diff", l.file), l.file)
		writeJSON(filepath.Join(dir, "layer.json"), map[string]any{"chainID": l.chain, "diffID": l.diff, "parent": l.parent, "size": 1})
	}
	cdir := filepath.Join(root, "containers", "ctr1")
	write(filepath.Join(cdir, "upper", "u"), "u")
	os.MkdirAll(filepath.Join(cdir, "work", "work"), 0o700)
	writeJSON(filepath.Join(cdir, "container.json"), map[string]any{"chain": []digest.Digest{c2, c1}})
	os.MkdirAll(filepath.Join(root, "l"), 0o700)
	os.MkdirAll(filepath.Join(root, "tmp", "apply-1"), 0o700)

	s, err := NewStore(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	top, err := s.Get(ctx, c2)
	if err != nil || top.Parent != c1 || top.DiffID != d2 || top.Size != 1 {
		t.Fatalf("top layer = %+v, %v", top, err)
	}
	if readString(t, filepath.Join(top.Dir, "b")) != "b" {
		t.Error("top layer's files not moved")
	}
	if _, err := s.Get(ctx, orphan); !cerrdefs.IsNotFound(err) {
		t.Errorf("layer with a missing parent: %v", err)
	}
	m, err := s.Mounts(ctx, "ctr1")
	if err != nil {
		t.Fatal(err)
	}
	target := mountT(t, m)
	for _, f := range []string{"a", "b", "u"} {
		if readString(t, filepath.Join(target, f)) != f {
			t.Errorf("%s missing from the container's root", f)
		}
	}
	for _, d := range []string{"layers", "containers", "l", "tmp"} {
		if _, err := os.Stat(filepath.Join(root, d)); !os.IsNotExist(err) {
			t.Errorf("%s/ still there: %v", d, err)
		}
	}
	tmpEmpty(t, s)
}
