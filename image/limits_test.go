package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth/berth/filters"
)

// hostile serves made-up manifests and blobs in front of a real registry:
// manifests[path] answers GET and HEAD of that manifest path, blobs[digest]
// answers GET of that blob, everything else goes to the registry.
type hostile struct {
	manifests map[string]http.HandlerFunc
	blobs     map[string]http.HandlerFunc
	blobGets  atomic.Int64
}

func (h *hostile) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f, ok := h.manifests[r.URL.Path]; ok {
			f(w, r)
			return
		}
		if i := strings.Index(r.URL.Path, "/blobs/"); i >= 0 && r.Method == http.MethodGet {
			h.blobGets.Add(1)
			if f, ok := h.blobs[r.URL.Path[i+len("/blobs/"):]]; ok {
				f(w, r)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// fakeManifest is a schema2 manifest whose config and layers need not exist.
func fakeManifest(configSize int64, layers int) []byte {
	mf := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.DockerManifestSchema2,
		Config:        v1.Descriptor{MediaType: types.DockerConfigJSON, Size: configSize, Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("c", 64)}},
	}
	for i := range layers {
		mf.Layers = append(mf.Layers, v1.Descriptor{MediaType: types.DockerLayer, Size: 100, Digest: v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%064x", i+1)}})
	}
	b, _ := json.Marshal(mf)
	return b
}

func serveBytes(b []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", string(types.DockerManifestSchema2))
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		if r.Method == http.MethodGet {
			w.Write(b)
		}
	}
}

// endless streams filler after prefix until the client stops reading (or
// stop bytes, so a test against an unbounded reader still ends), counting
// what it wrote into n.
func endless(prefix string, filler byte, stop int64, n *atomic.Int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", string(types.DockerManifestSchema2))
		if r.Method != http.MethodGet {
			return
		}
		buf := make([]byte, 64<<10)
		for i := range buf {
			buf[i] = filler
		}
		k, _ := w.Write([]byte(prefix))
		n.Add(int64(k))
		for n.Load() < stop {
			k, err := w.Write(buf)
			n.Add(int64(k))
			if err != nil {
				return
			}
		}
	}
}

func (e *env) noImages(t *testing.T) {
	t.Helper()
	if list, _ := e.svc.List(context.Background(), filters.Args{}, true); len(list) != 0 {
		t.Errorf("images after a refused pull: %+v", list)
	}
	if l, _ := e.svc.snapshots.List(context.Background()); len(l) != 0 {
		t.Errorf("layers after a refused pull: %v", l)
	}
}

// A manifest declaring a 1 GiB config is refused before the config is
// fetched (berthd used to buffer all of it, RSS 31 MB → 2.8 GB).
func TestPullRefusesHugeConfig(t *testing.T) {
	h := &hostile{manifests: map[string]http.HandlerFunc{}, blobs: map[string]http.HandlerFunc{}}
	var served atomic.Int64
	h.manifests["/v2/test/huge/manifests/1"] = serveBytes(fakeManifest(1<<30, 1))
	h.blobs["sha256:"+strings.Repeat("c", 64)] = endless("{", ' ', 64<<20, &served)
	e := newEnv(t, h.wrap)
	_, err := e.pull(t, "test/huge:1")
	if err == nil || !strings.Contains(err.Error(), "image config too large") {
		t.Fatalf("pull: %v, want the config refused", err)
	}
	if n := h.blobGets.Load(); n != 0 || served.Load() != 0 {
		t.Errorf("%d blob requests, %d config bytes served, want none", n, served.Load())
	}
	e.noImages(t)
}

// Manifests are capped at distribution's 4 MiB: one that streams on is cut
// off there, one that says it is larger is not read, and a well-formed one
// padded past the limit is refused (go-containerregistry alone reads 100 MiB).
func TestPullManifestLimit(t *testing.T) {
	h := &hostile{manifests: map[string]http.HandlerFunc{}, blobs: map[string]http.HandlerFunc{}}
	var streamed atomic.Int64
	h.manifests["/v2/test/stream/manifests/1"] = endless(`{"schemaVersion":2,"x":"`, 'a', 200<<20, &streamed)
	big := make([]byte, 5<<20)
	h.manifests["/v2/test/declared/manifests/1"] = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", string(types.DockerManifestSchema2))
		w.Header().Set("Content-Length", strconv.Itoa(len(big)))
		w.WriteHeader(http.StatusOK)
		// Nothing written: the declared length alone must refuse it.
	}
	e := newEnv(t, h.wrap)
	img := e.push(t, "test/app:1", 1)
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	padded := append(append([]byte(nil), raw[:len(raw)-1]...), append(make([]byte, 0, 5<<20), []byte(strings.Repeat(" ", 5<<20)+"}")...)...)
	h.manifests["/v2/test/padded/manifests/1"] = serveBytes(padded)
	// Exactly the limit is accepted.
	atLimit := append(append([]byte(nil), raw[:len(raw)-1]...), []byte(strings.Repeat(" ", maxManifestSize-len(raw))+"}")...)
	h.manifests["/v2/test/atlimit/manifests/1"] = serveBytes(atLimit)

	for _, repo := range []string{"stream", "declared", "padded"} {
		_, err := e.pull(t, "test/"+repo+":1")
		if !errors.Is(err, errManifestTooLarge) {
			t.Errorf("%s: pull: %v, want %v", repo, err, errManifestTooLarge)
		}
	}
	// What the server managed to write before the client hung up: the
	// limit plus what the sockets buffer, not go-containerregistry's 100 MiB.
	if n := streamed.Load(); n > 32<<20 {
		t.Errorf("the streaming manifest was read for %d bytes", n)
	}
	if h.blobGets.Load() != 0 {
		t.Errorf("%d blob requests for refused manifests", h.blobGets.Load())
	}
	e.noImages(t)
	if _, err := e.pull(t, "test/atlimit:1"); err != nil {
		t.Errorf("a manifest of exactly %d bytes: %v", maxManifestSize, err)
	}
}

// dockerd refuses an image deeper than 125 layers; berth did not (10,000
// layers: 5 minutes at 100% CPU and 7,776 layers left behind). Nothing is
// fetched for such an image.
func TestPullLayerLimit(t *testing.T) {
	h := &hostile{manifests: map[string]http.HandlerFunc{}, blobs: map[string]http.HandlerFunc{}}
	h.manifests["/v2/test/deep/manifests/1"] = serveBytes(fakeManifest(1000, maxLayers+1))
	h.manifests["/v2/test/negative/manifests/1"] = serveBytes(fakeManifest(-1, 1))
	e := newEnv(t, h.wrap)
	if _, err := e.pull(t, "test/deep:1"); err == nil || !strings.Contains(err.Error(), "max depth exceeded") {
		t.Errorf("pull of %d layers: %v, want max depth exceeded", maxLayers+1, err)
	}
	if _, err := e.pull(t, "test/negative:1"); err == nil {
		t.Error("pull of a config of size -1 succeeded")
	}
	if h.blobGets.Load() != 0 {
		t.Errorf("%d blob requests for refused images", h.blobGets.Load())
	}
	e.noImages(t)
}
