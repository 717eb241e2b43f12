package image

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// layerGate sits in front of a registry and decides, request by request,
// how a layer blob is served. Other requests pass through.
type layerGate struct {
	mu      sync.Mutex
	layers  map[string]bool     // layer digests it governs
	gets    map[string]int      // GETs per layer digest
	ranges  map[string][]string // Range headers per layer digest
	serve   func(w http.ResponseWriter, r *http.Request, next http.Handler, nth int)
	mfGets  atomic.Int64
	mfGotCh chan struct{} // gets a value per manifest GET
}

func newLayerGate(t *testing.T, img v1.Image) *layerGate {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	g := &layerGate{layers: map[string]bool{}, gets: map[string]int{}, ranges: map[string][]string{}, mfGotCh: make(chan struct{}, 100)}
	for _, l := range ls {
		d, _ := l.Digest()
		g.layers[d.String()] = true
	}
	return g
}

func (g *layerGate) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/") {
			g.mfGets.Add(1)
			g.mfGotCh <- struct{}{}
		}
		i := strings.Index(r.URL.Path, "/blobs/")
		if i < 0 || r.Method != http.MethodGet || !g.layers[r.URL.Path[i+len("/blobs/"):]] {
			next.ServeHTTP(w, r)
			return
		}
		d := r.URL.Path[i+len("/blobs/"):]
		g.mu.Lock()
		g.gets[d]++
		nth := g.gets[d]
		g.ranges[d] = append(g.ranges[d], r.Header.Get("Range"))
		g.mu.Unlock()
		g.serve(w, r, next, nth)
	})
}

// serveHalf writes the whole blob's headers and its first half, then
// calls then (which may cut the connection or hold it).
func serveHalf(w http.ResponseWriter, r *http.Request, next http.Handler, then func()) {
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r)
	body := rec.Body.Bytes()
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(rec.Code)
	w.Write(body[:len(body)/2])
	w.(http.Flusher).Flush()
	then()
}

func abort() { panic(http.ErrAbortHandler) }

func pushGated(t *testing.T, layers int64, serve func(w http.ResponseWriter, r *http.Request, next http.Handler, nth int)) (*env, *layerGate) {
	t.Helper()
	var g atomic.Pointer[layerGate] // set once the image is pushed
	e := newEnv(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if gate := g.Load(); gate != nil {
				gate.wrap(next).ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	img := e.push(t, "test/app:1", layers)
	gate := newLayerGate(t, img)
	gate.serve = serve
	g.Store(gate)
	return e, gate
}

// A connection that breaks off mid-layer is resumed with a Range request
// from the byte reached; the pull completes with the right bytes.
func TestPullResumesBrokenLayer(t *testing.T) {
	e, g := pushGated(t, 2, func(w http.ResponseWriter, r *http.Request, next http.Handler, nth int) {
		if nth == 1 {
			serveHalf(w, r, next, abort)
			return
		}
		next.ServeHTTP(w, r)
	})
	if _, err := e.pull(t, "test/app:1"); err != nil {
		t.Fatalf("pull: %v", err)
	}
	for d, rs := range g.ranges {
		if len(rs) != 2 || rs[0] != "" || !strings.HasPrefix(rs[1], "bytes=") || rs[1] == "bytes=0-" {
			t.Errorf("layer %s: Range headers %q, want none and then one from the middle", d, rs)
		}
	}
}

// A registry that ignores Range answers the whole blob again: what was
// already there is skipped.
func TestPullResumeWithoutRange(t *testing.T) {
	e, _ := pushGated(t, 1, func(w http.ResponseWriter, r *http.Request, next http.Handler, nth int) {
		if nth == 1 {
			serveHalf(w, r, next, abort)
			return
		}
		r.Header.Del("Range")
		next.ServeHTTP(w, r)
	})
	if _, err := e.pull(t, "test/app:1"); err != nil {
		t.Fatalf("pull: %v", err)
	}
	if _, err := e.svc.Resolve(context.Background(), e.host+"/test/app:1"); err != nil {
		t.Fatal(err)
	}
}

// A layer body that stops delivering is dropped after the stall timeout
// and resumed; one that stalls every time fails the pull in bounded time
// and leaves nothing behind.
func TestPullStalledLayer(t *testing.T) {
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	stall := func(r *http.Request) func() {
		return func() {
			select {
			case <-hold:
			case <-r.Context().Done():
			}
		}
	}
	t.Run("once", func(t *testing.T) {
		e, g := pushGated(t, 1, func(w http.ResponseWriter, r *http.Request, next http.Handler, nth int) {
			if nth == 1 {
				serveHalf(w, r, next, stall(r))
				return
			}
			next.ServeHTTP(w, r)
		})
		e.svc.blobStall = 200 * time.Millisecond
		if _, err := e.pull(t, "test/app:1"); err != nil {
			t.Fatalf("pull: %v", err)
		}
		for d, rs := range g.ranges {
			if len(rs) != 2 || !strings.HasPrefix(rs[1], "bytes=") {
				t.Errorf("layer %s: Range headers %q", d, rs)
			}
		}
	})
	t.Run("always", func(t *testing.T) {
		e, _ := pushGated(t, 1, func(w http.ResponseWriter, r *http.Request, next http.Handler, nth int) {
			serveHalf(w, r, next, stall(r))
		})
		e.svc.blobStall = 200 * time.Millisecond
		start := time.Now()
		_, err := e.pull(t, "test/app:1")
		if err == nil || !strings.Contains(err.Error(), "no data for 200ms") {
			t.Fatalf("pull: %v, want a stall error", err)
		}
		if d := time.Since(start); d > 30*time.Second {
			t.Errorf("a stalled pull took %s to fail", d)
		}
		e.noImages(t)
	})
}

// Three concurrent pulls of one image download each layer once.
func TestConcurrentPullsShareLayers(t *testing.T) {
	release := make(chan struct{})
	e, g := pushGated(t, 3, func(w http.ResponseWriter, r *http.Request, next http.Handler, nth int) {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		next.ServeHTTP(w, r)
	})
	const pulls = 3
	errs := make(chan error, pulls)
	outs := make([]*collect, pulls)
	for i := range pulls {
		go func() {
			var err error
			outs[i], err = e.pull(t, "test/app:1")
			errs <- err
		}()
	}
	// Every pull has its manifest before any layer byte goes out.
	for range pulls {
		<-g.mfGotCh
	}
	close(release)
	for range pulls {
		if err := <-errs; err != nil {
			t.Fatalf("pull: %v", err)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for d, n := range g.gets {
		if n != 1 {
			t.Errorf("layer %s downloaded %d times, want once", d, n)
		}
	}
	for i, c := range outs {
		if s := c.statuses(); strings.Count(s, "Pull complete")+strings.Count(s, "Already exists") < 3 {
			t.Errorf("pull %d: progress lacks a layer's end:\n%s", i, s)
		}
	}
}
