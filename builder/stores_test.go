package builder

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/metadata"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	cerrdefs "github.com/containerd/errdefs"
	bksnapshot "github.com/moby/buildkit/snapshot"
	bkoverlay "github.com/moby/buildkit/util/overlay"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	berthcontent "github.com/berth/berth/content"
	"github.com/berth/berth/snapshot"
)

// testLeases is containerd's lease manager on a database of its own, as
// berth's lease store is.
func testLeases(t *testing.T) leases.Manager {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "leases.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return metadata.NewLeaseManager(metadata.NewDB(db, nil, nil))
}

func heldBy(t *testing.T, ctx context.Context, lm leases.Manager, id string) []string {
	t.Helper()
	rs, err := lm.ListResources(ctx, leases.Lease{ID: id})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		out = append(out, r.Type+" "+r.ID)
	}
	slices.Sort(out)
	return out
}

// TestBuildContent: blobs BuildKit writes under a lease go into berth's
// store held by the lease (ingest and digest), their labels are kept,
// updated and walked by filter, and Delete leaves the blob to the
// collector.
func TestBuildContent(t *testing.T) {
	ctx := namespaces.WithNamespace(context.Background(), "berth")
	cs, err := berthcontent.NewStore(filepath.Join(t.TempDir(), "content"), false)
	if err != nil {
		t.Fatal(err)
	}
	lm := testLeases(t)
	labels, err := openLabelStore(filepath.Join(t.TempDir(), "labels.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer labels.Close()
	bc := &buildContent{Store: cs, labels: labels, hold: newHold(lm)}

	l, err := lm.Create(ctx, leases.WithRandomID())
	if err != nil {
		t.Fatal(err)
	}
	lctx := leases.WithLease(ctx, l.ID)
	data := []byte("layer data")
	d := digest.FromBytes(data)
	if err := content.WriteBlob(lctx, bc, "ref-1", bytes.NewReader(data), ocispec.Descriptor{Digest: d, Size: int64(len(data))},
		content.WithLabels(map[string]string{"containerd.io/uncompressed": "sha256:abc"})); err != nil {
		t.Fatal(err)
	}
	if got, want := heldBy(t, ctx, lm, l.ID), []string{"content " + d.String(), "ingests ref-1"}; !slices.Equal(got, want) {
		t.Errorf("lease holds %v, want %v", got, want)
	}
	if ok, _ := berthcontent.Has(ctx, cs, d); !ok {
		t.Fatal("blob is not in berth's store")
	}
	info, err := bc.Info(ctx, d)
	if err != nil || info.Labels["containerd.io/uncompressed"] != "sha256:abc" || info.Size != int64(len(data)) {
		t.Fatalf("info %+v %v", info, err)
	}
	// One label set, one removed by field path.
	info, err = bc.Update(ctx, content.Info{Digest: d, Labels: map[string]string{"a": "1"}}, "labels.a", "labels.containerd.io/uncompressed")
	if err != nil || len(info.Labels) != 1 || info.Labels["a"] != "1" {
		t.Fatalf("update: %+v %v", info, err)
	}
	var seen []digest.Digest
	if err := bc.Walk(ctx, func(i content.Info) error { seen = append(seen, i.Digest); return nil }, "labels.a==1"); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || seen[0] != d {
		t.Errorf("walk by label found %v", seen)
	}
	if _, err := bc.Update(ctx, content.Info{Digest: digest.FromString("none")}, "labels.a"); !cerrdefs.IsNotFound(err) {
		t.Errorf("update of a missing blob: %v", err)
	}
	if err := bc.Delete(ctx, d); err != nil {
		t.Fatal(err)
	}
	if ok, _ := berthcontent.Has(ctx, cs, d); !ok {
		t.Fatal("Delete removed berth's blob")
	}

	// A blob berth holds already: the writer says so, and the lease now
	// holds it too.
	l2, err := lm.Create(ctx, leases.WithRandomID())
	if err != nil {
		t.Fatal(err)
	}
	_, err = bc.Writer(leases.WithLease(ctx, l2.ID), content.WithRef("ref-2"), content.WithDescriptor(ocispec.Descriptor{Digest: d, Size: int64(len(data))}))
	if !cerrdefs.IsAlreadyExists(err) {
		t.Fatalf("writer of an existing blob: %v", err)
	}
	if got := heldBy(t, ctx, lm, l2.ID); !slices.Contains(got, "content "+d.String()) {
		t.Errorf("lease holds %v, want the existing blob", got)
	}
}

// TestBuildSnapshotter: BuildKit's snapshots are in berth's snapshotter
// under "buildkit-" keys, held by the lease they are made under (the
// lease manager names them by BuildKit's keys), and BuildKit sees only
// its own; berth's restore leaves them alone.
func TestBuildSnapshotter(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("overlay snapshots need root")
	}
	ctx := namespaces.WithNamespace(context.Background(), "berth")
	ss, err := snapshot.NewStore(filepath.Join(t.TempDir(), "snapshots"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	raw := ss.Snapshotter()
	lm := testLeases(t)
	resType := "snapshots/overlayfs"
	sn := &buildSnapshotter{sn: raw, resType: resType, hold: newHold(lm)}
	bl := &buildLeases{Manager: lm, resType: resType}

	l, err := bl.Create(ctx, leases.WithRandomID())
	if err != nil {
		t.Fatal(err)
	}
	lctx := leases.WithLease(ctx, l.ID)
	if _, err := sn.Prepare(lctx, "active1", ""); err != nil {
		t.Fatal(err)
	}
	if err := sn.Commit(lctx, "committed1", "active1"); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Prepare(lctx, "active2", "committed1"); err != nil {
		t.Fatal(err)
	}
	// In berth's snapshotter under the prefix.
	info, err := raw.Stat(ctx, "buildkit-active2")
	if err != nil || info.Parent != "buildkit-committed1" {
		t.Fatalf("berth's snapshotter: %+v %v", info, err)
	}
	// BuildKit's names.
	info, err = sn.Stat(ctx, "active2")
	if err != nil || info.Name != "active2" || info.Parent != "committed1" || info.Kind != snapshots.KindActive {
		t.Fatalf("stat: %+v %v", info, err)
	}
	// Held by the lease, under berth's keys; BuildKit reads its own.
	got, err := lm.ListResources(ctx, leases.Lease{ID: l.ID})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range got {
		ids = append(ids, r.ID)
	}
	slices.Sort(ids)
	if want := []string{"buildkit-active1", "buildkit-active2", "buildkit-committed1"}; !slices.Equal(ids, want) {
		t.Errorf("lease holds %v, want %v", ids, want)
	}
	if rs, _ := bl.ListResources(ctx, leases.Lease{ID: l.ID}); len(rs) != 3 || strings.HasPrefix(rs[0].ID, "buildkit-") {
		t.Errorf("BuildKit's view of the lease: %+v", rs)
	}
	if err := bl.DeleteResource(ctx, leases.Lease{ID: l.ID}, leases.Resource{ID: "active1", Type: resType}); err != nil {
		t.Fatal(err)
	}
	if got := heldBy(t, ctx, lm, l.ID); slices.Contains(got, resType+" buildkit-active1") {
		t.Errorf("DeleteResource left %v", got)
	}

	// A berth layer next to them: BuildKit's walk does not see it.
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	tw.WriteHeader(&tar.Header{Name: "f", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
	tw.Write([]byte("x"))
	tw.Close()
	if _, err := ss.Apply(ctx, "", digest.FromBytes(layer.Bytes()), &layer); err != nil {
		t.Fatal(err)
	}
	var names []string
	if err := sn.Walk(ctx, func(_ context.Context, i snapshots.Info) error { names = append(names, i.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	if want := []string{"active2", "committed1"}; !slices.Equal(names, want) {
		t.Errorf("walk: %v, want %v", names, want)
	}

	// berth's restore removes containers' leftover snapshots, not these.
	if err := ss.RemoveUnused(ctx, func(string) bool { return false }); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Stat(ctx, "active2"); err != nil {
		t.Errorf("restore removed BuildKit's active snapshot: %v", err)
	}
}

// TestRemoveOldWorker: the state of the worker that had stores of its
// own (content, snapshots, leases, and the cache records pointing into
// them) is removed once; the new worker's state is kept.
func TestRemoveOldWorker(t *testing.T) {
	root := t.TempDir()
	for _, p := range []string{"runc-overlayfs/content/blobs/sha256/x", "runc-overlayfs/snapshots/snapshots/1/fs/f", "cache.db", "history.db", "worker/metadata_v2.db"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := removeOldWorker(root)
	if err != nil || !removed {
		t.Fatalf("removeOldWorker: %v %v", removed, err)
	}
	for _, p := range []string{"runc-overlayfs", "cache.db", "history.db"} {
		if _, err := os.Stat(filepath.Join(root, p)); !os.IsNotExist(err) {
			t.Errorf("%s is still there: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "worker/metadata_v2.db")); err != nil {
		t.Errorf("the new worker's state went: %v", err)
	}
	if removed, err := removeOldWorker(root); err != nil || removed {
		t.Errorf("second call: %v %v", removed, err)
	}
}

// TestBuildSnapshotterBerthLayers: BuildKit's snapshot of an image layer
// is berth's layer of that chain ID when berth holds it (no second
// unpack of a FROM image from berth's store): BuildKit stats it under its
// own name, builds on it, and holds it in its leases; it neither removes
// nor relabels it. A layer berth does not hold is BuildKit's own.
func TestBuildSnapshotterBerthLayers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("overlay snapshots need root")
	}
	ctx := namespaces.WithNamespace(context.Background(), "berth")
	ss, err := snapshot.NewStore(filepath.Join(t.TempDir(), "snapshots"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	raw := ss.Snapshotter()
	lm := testLeases(t)
	resType := "snapshots/overlayfs"
	sn := &buildSnapshotter{sn: raw, resType: resType, hold: newHold(lm)}
	bl := &buildLeases{Manager: lm, resType: resType, sn: raw}

	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	tw.WriteHeader(&tar.Header{Name: "base-file", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
	tw.Write([]byte("x"))
	tw.Close()
	ly, err := ss.Apply(ctx, "", digest.FromBytes(layer.Bytes()), &layer)
	if err != nil {
		t.Fatal(err)
	}
	base := bksnapshot.LayerSnapshotID(ly.ChainID)
	before, err := raw.Stat(ctx, ly.ChainID.String())
	if err != nil {
		t.Fatal(err)
	}

	info, err := sn.Stat(ctx, base)
	if err != nil || info.Name != base || info.Kind != snapshots.KindCommitted {
		t.Fatalf("stat of berth's layer by BuildKit's name: %+v %v", info, err)
	}
	l, err := bl.Create(ctx, leases.WithRandomID())
	if err != nil {
		t.Fatal(err)
	}
	lctx := leases.WithLease(ctx, l.ID)
	if err := bl.AddResource(ctx, l, leases.Resource{ID: base, Type: resType}); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Prepare(lctx, "run1", base); err != nil {
		t.Fatal(err)
	}
	if info, err := raw.Stat(ctx, "buildkit-run1"); err != nil || info.Parent != ly.ChainID.String() {
		t.Fatalf("the step's snapshot in berth's snapshotter: %+v %v, want parent %s", info, err, ly.ChainID)
	}
	if info, err := sn.Stat(ctx, "run1"); err != nil || info.Parent != base {
		t.Errorf("BuildKit's view of the step's snapshot: %+v %v, want parent %s", info, err, base)
	}
	got := heldBy(t, ctx, lm, l.ID)
	if want := []string{resType + " buildkit-run1", resType + " " + ly.ChainID.String()}; !slices.Equal(got, want) {
		t.Errorf("lease holds %v, want %v", got, want)
	}
	if rs, _ := bl.ListResources(ctx, l); !slices.ContainsFunc(rs, func(r leases.Resource) bool { return r.ID == base }) {
		t.Errorf("BuildKit's view of the lease lacks %s: %+v", base, rs)
	}

	// Neither relabelled nor removed by BuildKit.
	if _, err := sn.Update(ctx, snapshots.Info{Name: base, Labels: map[string]string{"x": "y"}}); err != nil {
		t.Fatal(err)
	}
	if err := sn.Remove(ctx, base); err != nil {
		t.Fatal(err)
	}
	after, err := raw.Stat(ctx, ly.ChainID.String())
	if err != nil || !maps.Equal(after.Labels, before.Labels) {
		t.Errorf("berth's layer after BuildKit's update and remove: %+v %v (labels were %v)", after, err, before.Labels)
	}

	// A layer berth does not hold is BuildKit's own.
	other := bksnapshot.LayerSnapshotID(digest.FromString("not a layer berth holds"))
	if _, err := sn.Stat(ctx, other); !cerrdefs.IsNotFound(err) {
		t.Fatalf("stat of an unknown layer: %v", err)
	}
	if _, err := sn.Prepare(lctx, "extract1", ""); err != nil {
		t.Fatal(err)
	}
	if err := sn.Commit(lctx, other, "extract1"); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Stat(ctx, "buildkit-"+other); err != nil {
		t.Errorf("BuildKit's own layer snapshot: %v", err)
	}
	if info, err := sn.Stat(ctx, other); err != nil || info.Name != other {
		t.Errorf("stat of BuildKit's own layer: %+v %v", info, err)
	}
}

// TestBuildSnapshotterOverlayDiffer: the mounts BuildKit gets of a build
// step's snapshot and of the one below are ones BuildKit's overlay
// differ understands (util/overlay.GetUpperdir finds the step's upper
// directory), where the kernel's overlay makes no metadata-only
// copy-ups by default: else every exported layer was computed by the
// walking differ, comparing the whole root filesystems (seconds per
// layer on a python base). Where metacopy is on by default, the mounts
// keep metacopy=off.
func TestBuildSnapshotterOverlayDiffer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("overlay snapshots need root")
	}
	ctx := namespaces.WithNamespace(context.Background(), "berth")
	ss, err := snapshot.NewStore(filepath.Join(t.TempDir(), "snapshots"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	sn := &buildSnapshotter{sn: ss.Snapshotter(), resType: "snapshots/overlayfs", hold: newHold(testLeases(t))}
	// base -> mid (committed) -> step (active, then committed)
	for _, s := range [][2]string{{"base", ""}, {"mid", "base"}, {"step", "mid"}} {
		if _, err := sn.Prepare(ctx, s[0]+"-a", s[1]); err != nil {
			t.Fatal(err)
		}
		if err := sn.Commit(ctx, s[0], s[0]+"-a"); err != nil {
			t.Fatal(err)
		}
	}
	param := filepath.Join(t.TempDir(), "metacopy")
	defer func(p string) { metacopyParam = p }(metacopyParam)
	metacopyParam = param
	for _, def := range []string{"N", "Y"} {
		if err := os.WriteFile(param, []byte(def+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		lower, err := sn.View(ctx, "mid-view-"+def, "mid")
		if err != nil {
			t.Fatal(err)
		}
		upper, err := sn.View(ctx, "step-view-"+def, "step")
		if err != nil {
			t.Fatal(err)
		}
		active, err := sn.Prepare(ctx, "run-"+def, "step")
		if err != nil {
			t.Fatal(err)
		}
		all := append(append(slices.Clone(lower), upper...), active...)
		dir, err := bkoverlay.GetUpperdir(lower, upper)
		switch def {
		case "N":
			if err != nil {
				t.Errorf("metacopy off by default: BuildKit's overlay differ cannot use the mounts %+v / %+v: %v", lower, upper, err)
			} else if strings.Contains(fmt.Sprint(lower), dir) {
				t.Errorf("upper dir %s is one of the lower mount's %+v", dir, lower)
			}
			for _, m := range all {
				if slices.Contains(m.Options, "metacopy=off") {
					t.Errorf("mount %+v keeps metacopy=off", m)
				}
			}
		case "Y":
			for _, m := range all {
				if m.Type == "overlay" && !slices.Contains(m.Options, "metacopy=off") {
					t.Errorf("metacopy on by default: mount %+v lost metacopy=off", m)
				}
			}
		}
	}
}
