package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth/berth/content"
	"github.com/berth/berth/snapshot"
)

func newCommitService(t *testing.T) *Service {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("unpacking layers needs root")
	}
	root := t.TempDir()
	cs, err := content.NewStore(filepath.Join(root, "content"), false)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := snapshot.NewStore(filepath.Join(root, "snapshots"), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Root: filepath.Join(root, "image"), Content: cs, Snapshots: ss})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func layerTar(t *testing.T, files map[string]string) *bytes.Buffer {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for name, body := range files {
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(1600000000, 0)})
		tw.Write([]byte(body))
	}
	tw.Close()
	return &b
}

func TestCommit(t *testing.T) {
	s := newCommitService(t)
	ctx := context.Background()
	base, err := s.Commit(ctx, CommitRequest{
		Layer:   layerTar(t, map[string]string{"a": "A"}),
		History: ocispec.History{CreatedBy: "base"},
		Tag:     "base",
	})
	if err != nil {
		t.Fatal(err)
	}
	baseRec, err := s.Resolve(ctx, "base:latest")
	if err != nil || baseRec.ID != base || len(baseRec.Layers) != 1 || baseRec.TopChain == "" {
		t.Fatalf("base: %+v %v", baseRec, err)
	}
	cfg := &ImageConfig{}
	cfg.Config.Cmd = []string{"run"}
	cfg.Author = "someone"
	child, err := s.Commit(ctx, CommitRequest{
		Parent:  baseRec,
		Layer:   layerTar(t, map[string]string{"b": "B"}),
		Config:  cfg,
		History: ocispec.History{CreatedBy: "child", Comment: "c"},
		Tag:     "registry.local:5000/team/child:v2",
	})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := s.Resolve(ctx, "registry.local:5000/team/child:v2")
	if err != nil || rec.ID != child || rec.Parent != base || len(rec.Layers) != 2 || rec.Manifest == "" {
		t.Fatalf("child: %+v %v", rec, err)
	}
	c, err := s.Config(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	if c.Author != "someone" || c.Config.Cmd[0] != "run" || len(c.RootFS.DiffIDs) != 2 || len(c.History) != 2 ||
		c.History[1].Comment != "c" || c.History[1].EmptyLayer || c.OS != "linux" || c.Created == nil {
		t.Fatalf("config: %+v", c)
	}
	// Stored without a blob: the layer's digest is its diff ID, and its
	// blob is made from the unpacked layer when push or save need it.
	if l := rec.Layers[1]; l.DiffID != c.RootFS.DiffIDs[1] || l.MediaType != mediaTypeOCILayer || l.Digest != l.DiffID {
		t.Fatalf("layer ref: %+v", rec.Layers[1])
	}
	if ok, _ := content.Has(ctx, s.content, rec.Layers[1].Digest); ok {
		t.Fatal("commit stored a blob")
	}
	rc, err := s.layerReader(ctx, rec.Layers[1])
	if err != nil {
		t.Fatal(err)
	}
	dg := digest.Canonical.Digester()
	io.Copy(dg.Hash(), rc)
	rc.Close()
	if dg.Digest() != rec.Layers[1].DiffID {
		t.Fatalf("tar of the unpacked layer is %s, want its diff ID %s", dg.Digest(), rec.Layers[1].DiffID)
	}
	// The unpacked layer is there, on top of the base's.
	l, err := s.snapshots.Get(ctx, rec.TopChain)
	if err != nil || l.Parent != baseRec.TopChain {
		t.Fatalf("snapshot: %+v %v", l, err)
	}
	if b, _ := os.ReadFile(filepath.Join(l.Dir, "b")); string(b) != "B" {
		t.Fatalf("layer content %q", b)
	}

	// No layer: an empty_layer history entry, same layers.
	empty, err := s.Commit(ctx, CommitRequest{Parent: rec, History: ocispec.History{CreatedBy: "ENV x=y"}})
	if err != nil {
		t.Fatal(err)
	}
	erec, _ := s.Resolve(ctx, empty.String())
	ec, _ := s.Config(ctx, erec)
	if len(erec.Layers) != 2 || erec.TopChain != rec.TopChain || !ec.History[2].EmptyLayer || ec.Config.Cmd[0] != "run" {
		t.Fatalf("empty layer: %+v %+v", erec, ec)
	}
	// Saved like any other image.
	var out bytes.Buffer
	if err := s.Save(ctx, []string{"registry.local:5000/team/child:v2"}, &out); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, CommitRequest{Tag: "Bad Ref"}); err == nil {
		t.Fatal("bad tag accepted")
	}
}

// TestLocalImageOfCommit: the builder's view of a committed image (its
// layer recorded without a blob) names only blobs the content store
// holds: LocalImage stores the layer's uncompressed tar once, checked
// against its diff ID.
func TestLocalImageOfCommit(t *testing.T) {
	s := newCommitService(t)
	ctx := context.Background()
	if _, err := s.Commit(ctx, CommitRequest{
		// One file: layerTar's order is the map's, and the tar of the
		// unpacked layer (sorted, as a container's diff is) must be the
		// same stream.
		Layer:   layerTar(t, map[string]string{"a": "A"}),
		History: ocispec.History{CreatedBy: "base"},
		Tag:     "committed",
	}); err != nil {
		t.Fatal(err)
	}
	rec, err := s.Resolve(ctx, "committed:latest")
	if err != nil {
		t.Fatal(err)
	}
	l := rec.Layers[0]
	if ok, _ := content.Has(ctx, s.content, l.Digest); ok {
		t.Fatal("commit stored a blob")
	}
	img, err := s.LocalImage(ctx, "docker.io/library/committed:latest")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := content.ReadBlob(ctx, s.content, img.Target.Digest)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Layers) != 1 || m.Layers[0].Digest != l.DiffID {
		t.Fatalf("manifest layers %+v, want the committed layer %s", m.Layers, l.DiffID)
	}
	info, err := s.content.Info(ctx, l.DiffID)
	if err != nil {
		t.Fatalf("the committed layer's blob is not in the content store: %v", err)
	}
	if info.Size != l.Size || info.Size != m.Layers[0].Size {
		t.Fatalf("blob size %d, layer ref %d, manifest %d", info.Size, l.Size, m.Layers[0].Size)
	}
	all, err := s.LocalImages(ctx)
	if err != nil || len(all) != 1 || all[0].Target.Digest != img.Target.Digest || all[0].Name != rec.ID.String() {
		t.Fatalf("LocalImages: %+v %v", all, err)
	}
	// Asked again: nothing more to do.
	if _, err := s.LocalImage(ctx, "docker.io/library/committed:latest"); err != nil {
		t.Fatal(err)
	}
}
