package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// blobGate is a proxy to the plain registry that holds the first GET of
// one blob until released: a pull in flight, for as long as a test needs.
type blobGate struct {
	host    string
	arrived chan struct{} // closed when the held request comes in
	release chan struct{} // close to let it through
	once    sync.Once
}

func startBlobGate(t *testing.T, blob string) *blobGate {
	t.Helper()
	g := &blobGate{arrived: make(chan struct{}), release: make(chan struct{})}
	p := proxyTo(plainRegistry)
	g.host = serve(t, "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+blob) {
			held := false
			g.once.Do(func() { held = true })
			if held {
				close(g.arrived)
				select {
				case <-g.release:
				case <-r.Context().Done():
					return
				}
			}
		}
		p.ServeHTTP(w, r)
	}))
	t.Cleanup(g.open)
	return g
}

func (g *blobGate) open() {
	select {
	case <-g.release:
	default:
		close(g.release)
	}
}

// startPull starts POST /images/create of ref (host/repo:tag) and returns
// its messages as they come; the channel closes at the end of the stream.
func startPull(t *testing.T, ctx context.Context, a *apiClient, repo, tag string) <-chan jsonMessage {
	t.Helper()
	q := url.Values{"fromImage": {repo}, "tag": {tag}}
	resp, err := a.stream(ctx, "POST", "/images/create?"+q.Encode(), nil, http.Header{"X-Registry-Auth": {"e30="}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("pull %s:%s: %s %s", repo, tag, resp.Status, body)
	}
	ch := make(chan jsonMessage, 256)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		for {
			var m jsonMessage
			if err := dec.Decode(&m); err != nil {
				return
			}
			ch <- m
		}
	}()
	t.Cleanup(func() { resp.Body.Close() })
	return ch
}

// TestRmiDuringPullKeepsSharedLayer (issue 8 item 2): `docker rmi` of an
// image while a pull of another image on the same base layer is under
// way (the base counted "Already exists", the pull still downloading its
// own layer) untags and deletes the image but leaves the shared layer: the
// pull completes and its image runs and saves. (berth deleted the layer,
// and the pull then waited for it forever.)
func TestRmiDuringPullKeepsSharedLayer(t *testing.T) {
	requireEnv(t)
	base, img := hubImage(t, "debian:bookworm"), hubImage(t, "nginx:alpine")
	if len(img.Layers) < 2 || img.Layers[0] != base.Layers[0] {
		t.Fatalf("registry: nginx:alpine %v does not stand on debian:bookworm's layer %v", img.Layers, base.Layers)
	}
	g := startBlobGate(t, img.Layers[len(img.Layers)-1])
	c := cli(t, "docker")
	baseRef, imgRef := g.host+"/library/debian:bookworm", g.host+"/library/nginx:alpine"
	t.Cleanup(func() { c.run("rmi", "-f", imgRef, baseRef) })
	c.ok("pull", baseRef)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	msgs := startPull(t, ctx, requireEnv(t).api(), g.host+"/library/nginx", "alpine")
	var seen []jsonMessage
	already := false
	for !already {
		select {
		case m, ok := <-msgs:
			if !ok {
				t.Fatalf("the pull ended before it counted the base layer present: %+v", seen)
			}
			seen = append(seen, m)
			already = m.Status == "Already exists"
		case <-ctx.Done():
			t.Fatalf("no 'Already exists' from the pull: %+v", seen)
		}
	}
	select {
	case <-g.arrived:
	case <-ctx.Done():
		t.Fatal("the pull never asked for its own layer")
	}
	r := c.ok("rmi", baseRef)
	if !strings.Contains(r.Stdout, "Untagged: "+baseRef) || !strings.Contains(r.Stdout, "Deleted: "+base.ConfigDigest) {
		t.Errorf("rmi printed:\n%s", r.Stdout)
	}
	g.open()
	var last jsonMessage
	for m := range msgs {
		if m.Error != "" {
			t.Fatalf("pull after the rmi: %s", m.Error)
		}
		last = m
	}
	if want := "Status: Downloaded newer image for " + imgRef; last.Status != want {
		t.Fatalf("pull ended with %+v, want %q", last, want)
	}
	c.ok("run", "--rm", "--entrypoint", "/bin/true", imgRef)
	c.ok("save", "-o", filepath.Join(t.TempDir(), "nginx.tar"), imgRef)
}

// TestKillMidPullCollected (issue 8 item 2): berthd killed with SIGKILL
// while a pull holds finished layers (blobs stored, layers unpacked) and
// waits for another; restarted, it collects what the pull left: no blob,
// no layer, no ingest stays.
func TestKillMidPullCollected(t *testing.T) {
	requireEnv(t)
	onlyBerth(t, "berth's data root layout and crash-safety promise (issue 8 item 2)")
	img := hubImage(t, "bench/big:latest")
	if len(img.Layers) < 3 {
		t.Fatalf("registry: bench/big has %d layers, the test wants several", len(img.Layers))
	}
	g := startBlobGate(t, img.Layers[len(img.Layers)-1]) // never released before the kill
	b := startTestDaemon(t, "berth", daemonOpts{})
	blobs := filepath.Join(b.dataRoot, "content", "blobs", "sha256")
	layers := filepath.Join(b.dataRoot, "snapshots", "snapshots")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	msgs := startPull(t, ctx, b.api(), g.host+"/bench/big", "latest")
	complete := 0
	for complete == 0 {
		select {
		case m, ok := <-msgs:
			if !ok {
				t.Fatal("the pull ended before a layer was complete")
			}
			if m.Error != "" {
				t.Fatalf("pull: %s", m.Error)
			}
			if m.Status == "Pull complete" {
				complete++
			}
		case <-ctx.Done():
			t.Fatal("no layer completed")
		}
	}
	select {
	case <-g.arrived:
	case <-ctx.Done():
		t.Fatal("the pull never asked for its last layer")
	}
	before := entriesOf(t, blobs)
	if len(before) == 0 || len(entriesOf(t, layers)) == 0 {
		t.Fatalf("before the kill: blobs %v, layers %v: the pull stored nothing yet", before, entriesOf(t, layers))
	}
	b.kill9()

	b2 := b.restartT(t, daemonOpts{})
	if imageExists(t, b2.api(), g.host+"/bench/big:latest") {
		t.Fatal("bench/big exists after a pull killed before its last layer")
	}
	if left := entriesOf(t, blobs); len(left) != 0 {
		t.Errorf("blobs of the killed pull left after restart: %v (before the kill: %v)", left, before)
	}
	if left := entriesOf(t, layers); len(left) != 0 {
		t.Errorf("layers of the killed pull left after restart: %v", left)
	}
	wantNoLeftovers(t, b.dataRoot)
}

// entriesOf lists dir's entries (none if it does not exist).
func entriesOf(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	slices.Sort(out)
	return out
}
