package image

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
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
	e.svc.SetLayerUsage(func() []digest.Digest { return []digest.Digest{a.TopChain} })

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
