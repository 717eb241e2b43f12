package image

import (
	"context"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"

	"github.com/berth/berth/content"
	"github.com/berth/berth/leases"
	"github.com/berth/berth/snapshot"
)

func pushImage(t *testing.T, host, repoTag string, img v1.Image) {
	t.Helper()
	ref, err := name.ParseReference(host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
}

func imageChains(t *testing.T, img v1.Image) []digest.Digest {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	var diffIDs []digest.Digest
	for _, d := range cf.RootFS.DiffIDs {
		diffIDs = append(diffIDs, digest.Digest(d.String()))
	}
	return ChainIDs(diffIDs)
}

// TestRemoveDuringPullKeepsSharedLayer (issue 8 item 2): an rmi of the
// base image while a pull of an image on the same base is downloading
// its own layer (the base counted "Already exists") removes the base
// image but not its layer or blob; the pull completes and its image is
// whole. Before leases, the rmi removed the base layer and the pull
// waited for it forever.
func TestRemoveDuringPullKeepsSharedLayer(t *testing.T) {
	base, err := random.Image(4096, 1)
	if err != nil {
		t.Fatal(err)
	}
	top, err := random.Layer(4096, "application/vnd.docker.image.rootfs.diff.tar.gzip")
	if err != nil {
		t.Fatal(err)
	}
	child, err := mutate.AppendLayers(base, top)
	if err != nil {
		t.Fatal(err)
	}
	topDigest, _ := top.Digest()
	arrived, release := make(chan struct{}), make(chan struct{})
	var once bool
	e := newEnv(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+topDigest.String()) && !once {
				once = true
				close(arrived)
				<-release
			}
			next.ServeHTTP(w, r)
		})
	})
	pushImage(t, e.host, "test/base:1", base)
	pushImage(t, e.host, "test/child:1", child)
	if _, err := e.pull(t, "test/base:1"); err != nil {
		t.Fatal(err)
	}
	baseChain := imageChains(t, base)[0]
	baseLayer, _ := base.Layers()
	baseBlob, _ := baseLayer[0].Digest()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ref, err := ParseReference(e.host + "/test/child:1")
	if err != nil {
		t.Fatal(err)
	}
	c := &collect{}
	pulled := make(chan error, 1)
	go func() { pulled <- e.svc.Pull(ctx, ref, nil, c) }()
	select {
	case <-arrived:
	case err := <-pulled:
		t.Fatalf("the pull ended before fetching its own layer: %v", err)
	}
	if !strings.Contains(c.statuses(), "Already exists") {
		t.Fatalf("the pull did not count the base layer as present:\n%s", c.statuses())
	}
	out, err := e.svc.Remove(context.Background(), e.host+"/test/base:1", false, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out {
		if o.Deleted == baseChain.String() {
			t.Errorf("rmi deleted the base layer a pull in flight holds: %+v", out)
		}
	}
	close(release)
	if err := <-pulled; err != nil {
		t.Fatalf("pull: %v\n%s", err, c.statuses())
	}
	if _, err := e.svc.snapshots.Get(context.Background(), baseChain); err != nil {
		t.Errorf("base layer: %v", err)
	}
	if ok, _ := content.Has(context.Background(), e.svc.content, digest.Digest(baseBlob.String())); !ok {
		t.Errorf("base blob %s is gone", baseBlob)
	}
	if err := e.svc.Save(context.Background(), []string{e.host + "/test/child:1"}, io.Discard); err != nil {
		t.Errorf("save of the pulled image: %v", err)
	}
	// Nothing else holds the base layer once the pull's lease is gone: an
	// rmi of the child removes it.
	out, err = e.svc.Remove(context.Background(), e.host+"/test/child:1", false, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.snapshots.Get(context.Background(), baseChain); err == nil {
		t.Errorf("base layer kept after its last image went: %+v", out)
	}
}

// TestGCKeepsEverythingReferenced (issue 8 item 2, "nothing gets lost"):
// on a store filled without leases (as by an earlier berth), a
// collection removes exactly the blobs and layers no image, container or
// lease reaches; every image still saves whole.
func TestGCKeepsEverythingReferenced(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	e.push(t, "test/a:1", 3)
	if _, err := e.pull(t, "test/a:1"); err != nil {
		t.Fatal(err)
	}
	committed := commitImage(t, e.svc, "test/c:1", 2) // layers with no blob
	var saved strings.Builder
	if err := e.svc.Save(ctx, []string{"test/c:1"}, &saved); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Load(ctx, strings.NewReader(saved.String()), &collect{}, true); err != nil {
		t.Fatal(err)
	}
	// A container stands on test/a's top layer; its image goes (forced,
	// as `rmi -f` of an image a container used does not, here only the
	// layer usage matters).
	a, err := e.svc.Resolve(ctx, e.host+"/test/a:1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.snapshots.Prepare(ctx, "ctr1", a.TopChain); err != nil {
		t.Fatal(err)
	}
	e.svc.containers = layerUser{a.TopChain}

	// Garbage: a blob and a layer nothing names, and an idle ingest.
	junk, err := content.WriteBlob(ctx, e.svc.content, []byte("junk"))
	if err != nil {
		t.Fatal(err)
	}
	jl, err := e.svc.snapshots.ApplyNew(ctx, "", layerTar(t, map[string]string{"junk": "x"}))
	if err != nil {
		t.Fatal(err)
	}
	held, err := content.WriteBlob(ctx, e.svc.content, []byte("held by a lease"))
	if err != nil {
		t.Fatal(err)
	}
	lctx, done, err := e.svc.leases.Begin(ctx, leases.Content(held))
	if err != nil {
		t.Fatal(err)
	}
	_ = lctx

	blobsBefore := map[digest.Digest]bool{}
	recs, _ := e.svc.records.list()
	for _, r := range recs {
		for _, d := range append([]digest.Digest{r.ID, r.Manifest}, layerDigests(r)...) {
			if ok, _ := content.Has(ctx, e.svc.content, d); ok {
				blobsBefore[d] = true
			}
		}
	}
	rep, err := e.svc.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Blobs) != 1 || rep.Blobs[0] != junk {
		t.Errorf("blobs removed %v, want only %s", rep.Blobs, junk)
	}
	if len(rep.Layers) != 1 || rep.Layers[0] != jl.ChainID {
		t.Errorf("layers removed %v, want only %s", rep.Layers, jl.ChainID)
	}
	for d := range blobsBefore {
		if ok, _ := content.Has(ctx, e.svc.content, d); !ok {
			t.Errorf("referenced blob %s removed", d)
		}
	}
	if ok, _ := content.Has(ctx, e.svc.content, held); !ok {
		t.Errorf("leased blob removed")
	}
	for _, name := range []string{e.host + "/test/a:1", "test/c:1"} {
		if err := e.svc.Save(ctx, []string{name}, io.Discard); err != nil {
			t.Errorf("save %s after GC: %v", name, err)
		}
	}
	for _, c := range []digest.Digest{committed.TopChain, a.TopChain} {
		if _, err := e.svc.snapshots.Get(ctx, c); err != nil {
			t.Errorf("layer %s: %v", c, err)
		}
	}

	// The image the container stands on goes: its layers stay (the
	// container's), its blobs go.
	if _, err := e.svc.Remove(ctx, e.host+"/test/a:1", true, true); err != nil {
		t.Fatal(err)
	}
	for _, c := range ChainIDs(diffIDsOf(a)) {
		if _, err := e.svc.snapshots.Get(ctx, c); err != nil {
			t.Errorf("layer %s under a container: %v", c, err)
		}
	}
	if ok, _ := content.Has(ctx, e.svc.content, a.ID); ok {
		t.Errorf("config blob of the removed image kept")
	}

	// The lease released, its blob goes with the next collection.
	if err := done(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, _ := content.Has(ctx, e.svc.content, held); ok {
		t.Errorf("blob of a released lease kept")
	}
}

func layerDigests(r *Record) []digest.Digest {
	var out []digest.Digest
	for _, l := range r.Layers {
		out = append(out, l.Digest)
	}
	return out
}

func diffIDsOf(r *Record) []digest.Digest {
	var out []digest.Digest
	for _, l := range r.Layers {
		out = append(out, l.DiffID)
	}
	return out
}

// TestKilledPullLeftoversCollected: what a pull held when berthd died
// (its lease survives in the database) is released at the next start and
// collected.
func TestKilledPullLeftoversCollected(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	blob := []byte("a layer blob of a pull cut short")
	d := digest.FromBytes(blob)
	chain := snapshot.ChainID("", digest.FromString("unused"))
	lctx, _, err := e.svc.leases.Begin(ctx, append(blobResources(nil, d), leases.Snapshot(chain.String()))...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := content.WriteBlob(lctx, e.svc.content, blob); err != nil {
		t.Fatal(err)
	}
	l, err := e.svc.snapshots.ApplyNew(ctx, "", layerTar(t, map[string]string{"f": "x"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.leases.Hold(lctx, leases.Snapshot(l.ChainID.String())); err != nil {
		t.Fatal(err)
	}
	if rep, err := e.svc.GC(ctx); err != nil || len(rep.Blobs)+len(rep.Layers) != 0 {
		t.Fatalf("GC with the pull in flight removed %+v, %v", rep, err)
	}
	// "Restart": the lease database is opened again.
	e.svc.leases.Close()
	ls, err := leases.Open(ctx, e.svc.root+"/leases.db")
	if err != nil {
		t.Fatal(err)
	}
	e.svc.leases = ls
	rep, err := e.svc.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Blobs) != 1 || len(rep.Layers) != 1 {
		t.Errorf("after restart GC removed %+v, want the blob and the layer", rep)
	}
}

// hookWriter runs hook once, at its first Write, then writes to w.
type hookWriter struct {
	w    io.Writer
	hook func()
	done bool
}

func (h *hookWriter) Write(p []byte) (int, error) {
	if !h.done {
		h.done = true
		h.hook()
	}
	return h.w.Write(p)
}

// TestRemoveDuringSaveKeepsWhatSaveStreams (issue 8 item 2): an rmi of
// the images a save is writing (a pulled one with blobs, a committed one
// whose layers have none) removes them at once, but the collection leaves
// their blobs and layers to the save, which writes a whole archive; once
// the save is done the next collection takes them. Before save held a
// lease, the archive broke off ("layer ...: not found").
func TestRemoveDuringSaveKeepsWhatSaveStreams(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	e.push(t, "test/a:1", 3)
	if _, err := e.pull(t, "test/a:1"); err != nil {
		t.Fatal(err)
	}
	pulled, err := e.svc.Resolve(ctx, e.host+"/test/a:1")
	if err != nil {
		t.Fatal(err)
	}
	committed := commitImage(t, e.svc, "test/c:1", 2)
	names := []string{e.host + "/test/a:1", "test/c:1"}
	var removed [][]string
	var archive strings.Builder
	w := &hookWriter{w: &archive, hook: func() {
		for _, n := range names {
			out, err := e.svc.Remove(ctx, n, true, true)
			if err != nil {
				t.Errorf("rmi %s during save: %v", n, err)
			}
			var lines []string
			for _, o := range out {
				lines = append(lines, o.Untagged+o.Deleted)
			}
			removed = append(removed, lines)
		}
	}}
	if err := e.svc.Save(ctx, names, w); err != nil {
		t.Fatalf("save with an rmi of its images under way: %v", err)
	}
	for i, n := range names {
		if _, err := e.svc.Resolve(ctx, n); err == nil {
			t.Errorf("%s still there after rmi during the save (%v)", n, removed[i])
		}
	}
	// The archive is whole: it loads back, both images with every layer.
	if err := e.svc.Load(ctx, strings.NewReader(archive.String()), &collect{}, true); err != nil {
		t.Fatalf("load of the saved archive: %v", err)
	}
	for _, want := range []*Record{pulled, committed} {
		r, err := e.svc.records.get(want.ID)
		if err != nil {
			t.Errorf("image %s not in the archive: %v", want.ID, err)
			continue
		}
		if err := e.svc.Save(ctx, []string{r.ID.String()}, io.Discard); err != nil {
			t.Errorf("loaded %s: %v", r.ID, err)
		}
	}

	// The save's lease is gone: removing the images again frees what
	// they held.
	for _, n := range names {
		if _, err := e.svc.Remove(ctx, n, true, true); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.GC(ctx); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*Record{pulled, committed} {
		if ok, _ := content.Has(ctx, e.svc.content, r.ID); ok {
			t.Errorf("config %s kept after the save ended", r.ID)
		}
		if _, err := e.svc.snapshots.Get(ctx, r.TopChain); err == nil {
			t.Errorf("layer %s kept after the save ended", r.TopChain)
		}
	}
}

// hookReader runs hook once, at its first Read, then reads r.
type hookReader struct {
	r    io.Reader
	hook func()
	done bool
}

func (h *hookReader) Read(p []byte) (int, error) {
	if !h.done {
		h.done = true
		h.hook()
	}
	return h.r.Read(p)
}

// TestRemoveParentDuringCommit (issue 8 item 2): an rmi of the image a
// commit stands on, made while the commit reads its layer, removes the
// image; its collection keeps every blob and layer of it, because the new
// image names them (the commit's lease holds them from its start). Before,
// the lease held only the parent's top layer, and the new image named
// blobs the collection had removed.
func TestRemoveParentDuringCommit(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	e.push(t, "test/base:1", 2)
	if _, err := e.pull(t, "test/base:1"); err != nil {
		t.Fatal(err)
	}
	parent, err := e.svc.Resolve(ctx, e.host+"/test/base:1")
	if err != nil {
		t.Fatal(err)
	}
	removed := make(chan error, 1)
	layer := &hookReader{r: layerTar(t, map[string]string{"new": "file"}), hook: func() {
		// The rmi takes the image lock, removes the record, then waits
		// for the commit's unpack to end before it collects; it holds
		// the image lock until its collection is over, so the commit
		// records its image only after that.
		go func() {
			_, err := e.svc.Remove(ctx, e.host+"/test/base:1", true, true)
			removed <- err
		}()
		for {
			if _, err := e.svc.records.get(parent.ID); err != nil {
				return
			}
			runtime.Gosched()
		}
	}}
	id, err := e.svc.Commit(ctx, CommitRequest{Parent: parent, Layer: layer, Tag: "test/child:1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-removed; err != nil {
		t.Fatalf("rmi of the parent during the commit: %v", err)
	}
	if _, err := e.svc.records.get(parent.ID); err == nil {
		t.Fatal("parent image still there after its rmi")
	}
	child, err := e.svc.records.get(id)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range parent.Layers {
		if ok, _ := content.Has(ctx, e.svc.content, l.Digest); !ok {
			t.Errorf("blob %s of a layer the new image names was collected", l.Digest)
		}
	}
	for _, c := range ChainIDs(diffIDsOf(child)) {
		if _, err := e.svc.snapshots.Get(ctx, c); err != nil {
			t.Errorf("layer %s of the new image: %v", c, err)
		}
	}
	// The lease ended with the commit: the removed parent's own config
	// and manifest are garbage now, nothing else.
	rep, err := e.svc.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Layers) != 0 || len(rep.Blobs) != 2 || !slices.Contains(rep.Blobs, parent.ID) || !slices.Contains(rep.Blobs, parent.Manifest) {
		t.Errorf("a collection after the commit removed %+v, want the parent's config %s and manifest %s", rep, parent.ID, parent.Manifest)
	}
}

// TestReleaseLayerCollectsOrphans (issue 8 item 2): `rmi -f` of an image
// a stopped container uses deletes the image (as dockerd) and keeps its
// layers while the container stands on them; when the container is gone
// (ReleaseLayer) they are collected. Releasing a layer an image still
// names collects nothing (no collection runs: garbage stays).
func TestReleaseLayerCollectsOrphans(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	e.push(t, "test/a:1", 2)
	if _, err := e.pull(t, "test/a:1"); err != nil {
		t.Fatal(err)
	}
	e.push(t, "test/b:1", 1)
	if _, err := e.pull(t, "test/b:1"); err != nil {
		t.Fatal(err)
	}
	a, _ := e.svc.Resolve(ctx, e.host+"/test/a:1")
	b, _ := e.svc.Resolve(ctx, e.host+"/test/b:1")
	users := map[digest.Digest][]string{a.ID: {"ctr-a"}, b.ID: {"ctr-b"}}
	standing := map[digest.Digest]bool{a.TopChain: true, b.TopChain: true}
	e.svc.containers = funcUsers{
		image: func(id digest.Digest) (running, stopped []string) { return nil, users[id] },
		layers: func() []digest.Digest {
			var out []digest.Digest
			for c := range standing {
				out = append(out, c)
			}
			return out
		},
	}

	if _, err := e.svc.Remove(ctx, e.host+"/test/a:1", false, true); !cerrdefs.IsConflict(err) {
		t.Fatalf("rmi of an image a stopped container uses, unforced: %v, want a conflict", err)
	}
	out, err := e.svc.Remove(ctx, e.host+"/test/a:1", true, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 3 || out[0].Untagged == "" || out[2].Deleted != a.ID.String() {
		t.Errorf("rmi -f printed %+v, want untagged (tag, digest) and deleted %s, no layer", out, a.ID)
	}
	if _, err := e.svc.records.get(a.ID); err == nil {
		t.Fatal("rmi -f kept the image a stopped container uses")
	}
	for _, c := range ChainIDs(diffIDsOf(a)) {
		if _, err := e.svc.snapshots.Get(ctx, c); err != nil {
			t.Fatalf("layer %s under the container: %v", c, err)
		}
	}

	// Garbage nothing names: only a collection removes it.
	junk, err := content.WriteBlob(ctx, e.svc.content, []byte("junk"))
	if err != nil {
		t.Fatal(err)
	}
	// ctr-b goes: its image stays, nothing is collected.
	delete(standing, b.TopChain)
	e.svc.ReleaseLayer(ctx, b.TopChain)
	if ok, _ := content.Has(ctx, e.svc.content, junk); !ok {
		t.Error("releasing a layer an image names ran a collection")
	}
	// ctr-a goes: the removed image's layers go with it.
	delete(standing, a.TopChain)
	e.svc.ReleaseLayer(ctx, a.TopChain)
	for _, c := range ChainIDs(diffIDsOf(a)) {
		if _, err := e.svc.snapshots.Get(ctx, c); err == nil {
			t.Errorf("layer %s of the removed image kept after its container went", c)
		}
	}
	for _, c := range ChainIDs(diffIDsOf(b)) {
		if _, err := e.svc.snapshots.Get(ctx, c); err != nil {
			t.Errorf("layer %s of test/b: %v", c, err)
		}
	}
}

// TestRemoveDuringPush (issue 8 item 2): an rmi of an image while its
// push uploads (a committed image: the push compresses its layers from
// the unpacked ones) removes the image at once; the push's lease keeps
// what it reads, and the push completes with a whole image in the
// registry. Before, the collection removed the layers being compressed
// (or the push failed at its end, the record gone).
func TestRemoveDuringPush(t *testing.T) {
	var once sync.Once
	var e *env
	removed := make(chan error, 1)
	e = newEnv(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/blobs/uploads/") {
				once.Do(func() {
					_, err := e.svc.Remove(context.Background(), e.host+"/test/gone:1", true, true)
					removed <- err
				})
			}
			next.ServeHTTP(w, r)
		})
	})
	rec := commitImage(t, e.svc, e.host+"/test/gone:1", 3)
	c, err := e.pushLocal(t, "test/gone:1", nil)
	if err != nil {
		t.Fatalf("push with an rmi of its image under way: %v\n%s", err, c.statuses())
	}
	if err := <-removed; err != nil {
		t.Fatalf("rmi during the push: %v", err)
	}
	if _, err := e.svc.records.get(rec.ID); err == nil {
		t.Fatal("the image is still there after its rmi")
	}
	ref, _ := name.ParseReference(e.host + "/test/gone:1")
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	if cfg, _ := img.ConfigName(); cfg.String() != rec.ID.String() {
		t.Fatalf("pushed image ID %s, want %s", cfg, rec.ID)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("the pushed image is not whole: %v", err)
	}
	// The push's lease ended: what the image held is garbage now.
	if _, err := e.svc.GC(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.snapshots.Get(context.Background(), rec.TopChain); err == nil {
		t.Error("the removed image's layer kept after the push ended")
	}
}

// layerUser is a container standing on one layer chain.
type layerUser []digest.Digest

func (l layerUser) ImageUsage(digest.Digest) (running, stopped []string) { return nil, nil }
func (l layerUser) LayerUsage() []digest.Digest                          { return l }

// funcUsers are containers described by functions.
type funcUsers struct {
	image  func(digest.Digest) (running, stopped []string)
	layers func() []digest.Digest
}

func (f funcUsers) ImageUsage(id digest.Digest) (running, stopped []string) { return f.image(id) }
func (f funcUsers) LayerUsage() []digest.Digest                             { return f.layers() }
