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

// TestImagePruneSpaceReclaimed (issue 8 item 2): image prune's
// SpaceReclaimed is what the removal freed, as dockerd's (the sizes of the
// layers it deleted), not the sizes of the images removed: pruning an
// image committed on busybox frees its own layer, not busybox's, which
// busybox:latest still uses. (berth answered the image's whole size.)
func TestImagePruneSpaceReclaimed(t *testing.T) {
	a := requireEnv(t).api()
	bb := ensureImage(t, a, "busybox:latest")
	if bb.Size < 256<<10 {
		t.Fatalf("busybox:latest is %d bytes: too small to tell its layer from the new one", bb.Size)
	}
	const change = 3000000
	c := cli(t, "docker")
	name := ctrName(t, "prune")
	c.ok("run", "--name", name, "busybox:latest", "sh", "-c", "head -c 3000000 /dev/urandom > /big")
	label := "berth.e2e.prune=" + uniq()
	id := strings.TrimSpace(c.ok("commit", "--change", "LABEL "+label, name).Stdout)
	c.ok("rm", name)
	t.Cleanup(func() { removeImage(t, a, id) })

	f := url.QueryEscape(`{"label":["` + label + `"]}`)
	var rep struct {
		ImagesDeleted  []struct{ Untagged, Deleted string }
		SpaceReclaimed int64
	}
	a.call(t, "POST", "/images/prune?filters="+f, nil, nil).wantStatus(t, 200).decode(t, &rep)
	deleted := false
	for _, d := range rep.ImagesDeleted {
		deleted = deleted || d.Deleted == id
	}
	if !deleted {
		t.Fatalf("prune did not delete the committed image %s: %+v", id, rep.ImagesDeleted)
	}
	if rep.SpaceReclaimed < change || rep.SpaceReclaimed >= change+64<<10 {
		t.Errorf("SpaceReclaimed %d, want the committed layer's %d bytes (+ <64 KiB), not busybox's %d too", rep.SpaceReclaimed, change, bb.Size)
	}
	if !imageExists(t, a, "busybox:latest") {
		t.Error("prune removed busybox:latest")
	}
}

// layerDirs lists the daemon's layer directories: berth's snapshots
// (image layers and containers' writable layers), dockerd's overlay2
// directories (its "l" link directory left out).
func layerDirs(t *testing.T, d *daemon) map[string]bool {
	t.Helper()
	dir := filepath.Join(d.dataRoot, "snapshots", "snapshots")
	if d.kind == "docker" {
		dir = filepath.Join(d.dataRoot, "overlay2")
	}
	out := map[string]bool{}
	for _, e := range entriesOf(t, dir) {
		if e != "l" {
			out[e] = true
		}
	}
	return out
}

// TestRmiForceUsedByStoppedContainer (issue 8 item 2): `rmi -f` of an
// image only a stopped container uses deletes the image (dockerd: the
// stopped container is a soft conflict, forced away); its layers stay
// while the container stands on them (it still starts), and removing the
// container frees them: no layer is left. (berth kept the image untagged,
// and removing a container collected nothing.)
func TestRmiForceUsedByStoppedContainer(t *testing.T) {
	d := requireEnv(t)
	a := d.api()
	ensureImage(t, a, "busybox:latest")
	c := cli(t, "docker")
	before := layerDirs(t, d)

	src := ctrName(t, "rmif-src")
	c.ok("run", "--name", src, "busybox:latest", "sh", "-c", "head -c 1000000 /dev/urandom > /big")
	tag := "e2e-rmi-used:" + uniq()
	id := strings.TrimSpace(c.ok("commit", src, tag).Stdout)
	t.Cleanup(func() { c.run("rmi", "-f", id) })
	c.ok("rm", src)
	user := ctrName(t, "rmif-user")
	c.ok("create", "--name", user, tag, "sh", "-c", "wc -c < /big")

	r := c.ok("rmi", "-f", tag)
	if want := "Untagged: " + tag + "\nDeleted: " + id + "\n"; r.Stdout != want {
		t.Errorf("rmi -f of an image a stopped container uses printed\n%s\nwant\n%s", r.Stdout, want)
	}
	if imageExists(t, a, id) {
		t.Fatalf("image %s still exists after rmi -f", id)
	}
	if out := strings.TrimSpace(c.ok("start", "-a", user).Stdout); out != "1000000" {
		t.Errorf("the container of the removed image printed %q, want its layer's file (1000000)", out)
	}
	c.ok("rm", user)
	after := layerDirs(t, d)
	for l := range after {
		if !before[l] {
			t.Errorf("layer directory %s left after the image and its container were removed", l)
		}
	}
}
