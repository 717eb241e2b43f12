package image

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ccontent "github.com/containerd/containerd/v2/core/content"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth/berth/archive"
	"github.com/berth/berth/content"
	"github.com/berth/berth/filters"
	"github.com/berth/berth/progress"
	"github.com/berth/berth/snapshot"
)

type collect struct {
	mu   sync.Mutex
	msgs []progress.Message
}

func (c *collect) WriteMessage(m progress.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, m)
	return nil
}

func (c *collect) statuses() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, m := range c.msgs {
		b.WriteString(m.Status + m.Stream + "\n")
	}
	return b.String()
}

type env struct {
	svc  *Service
	root string
	host string
}

func newEnv(t *testing.T, handler func(http.Handler) http.Handler) *env {
	t.Helper()
	return newEnvStore(t, handler, nil)
}

// newEnvStore is newEnv with the service's content store wrapped by wrap.
func newEnvStore(t *testing.T, handler func(http.Handler) http.Handler, wrap func(ccontent.Store) ccontent.Store) *env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("unpacking layers needs root")
	}
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if handler != nil {
		h = handler(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	root := t.TempDir()
	cs, err := content.NewStore(filepath.Join(root, "content"), false)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := snapshot.NewStore(filepath.Join(root, "snapshots"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if wrap != nil {
		cs = wrap(cs)
	}
	svc, err := New(Config{Root: filepath.Join(root, "image"), Content: cs, Snapshots: ss, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return &env{svc: svc, root: root, host: strings.TrimPrefix(srv.URL, "http://")}
}

func (e *env) push(t *testing.T, repoTag string, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(4096, layers)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(e.host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	return img
}

func (e *env) pull(t *testing.T, repoTag string) (*collect, error) {
	t.Helper()
	ref, err := ParseReference(e.host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	c := &collect{}
	return c, e.svc.Pull(context.Background(), ref, nil, c)
}

func TestPullListInspectHistory(t *testing.T) {
	e := newEnv(t, nil)
	img := e.push(t, "test/app:1", 3)
	c, err := e.pull(t, "test/app:1")
	if err != nil {
		t.Fatal(err)
	}
	out := c.statuses()
	for _, want := range []string{"Pulling from test/app", "Pulling fs layer", "Pull complete", "Digest: sha256:", "Status: Downloaded newer image for " + e.host + "/test/app:1"} {
		if !strings.Contains(out, want) {
			t.Errorf("progress lacks %q:\n%s", want, out)
		}
	}
	cfgName, _ := img.ConfigName()
	list, err := e.svc.List(context.Background(), filters.Args{}, false)
	if err != nil || len(list) != 1 || list[0].ID != cfgName.String() || list[0].RepoTags[0] != e.host+"/test/app:1" || list[0].Size <= 0 {
		t.Fatalf("list = %+v, %v", list, err)
	}
	insp, err := e.svc.Inspect(context.Background(), e.host+"/test/app:1")
	if err != nil || len(insp.RootFS.Layers) != 3 || len(insp.RepoDigests) != 1 {
		t.Fatalf("inspect = %+v, %v", insp, err)
	}
	short := strings.TrimPrefix(cfgName.String(), "sha256:")[:12]
	if _, err := e.svc.Inspect(context.Background(), short); err != nil {
		t.Fatalf("inspect by short ID: %v", err)
	}

	// The second pull finds everything in place.
	c, err = e.pull(t, "test/app:1")
	if err != nil || !strings.Contains(c.statuses(), "Image is up to date") {
		t.Fatalf("second pull: %v\n%s", err, c.statuses())
	}
}

func TestPullUnknownTagStoresNothing(t *testing.T) {
	e := newEnv(t, nil)
	e.push(t, "test/app:1", 1)
	_, err := e.pull(t, "test/app:nosuchtag")
	if !cerrdefs.IsNotFound(err) || !strings.Contains(err.Error(), "manifest unknown") {
		t.Fatalf("err = %v", err)
	}
	if list, _ := e.svc.List(context.Background(), filters.Args{}, true); len(list) != 0 {
		t.Fatalf("images after failed pull: %+v", list)
	}
}

// corrupting serves every blob with its last byte flipped.
func corrupting(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/blobs/") {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if len(body) > 0 && rec.Code == http.StatusOK && !bytes.HasPrefix(body, []byte("{")) {
			body[len(body)-1] ^= 0xff
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(body)
	})
}

func TestPullCorruptBlobCommitsNothing(t *testing.T) {
	e := newEnv(t, corrupting)
	e.push(t, "test/bad:1", 2)
	if _, err := e.pull(t, "test/bad:1"); err == nil {
		t.Fatal("pull of corrupt blobs succeeded")
	}
	layers, err := e.svc.snapshots.List(context.Background())
	if err != nil || len(layers) != 0 {
		t.Fatalf("layers left after corrupt pull: %v %v", layers, err)
	}
	n := 0
	_ = e.svc.content.Walk(context.Background(), func(ccontent.Info) error { n++; return nil })
	if n != 0 {
		t.Fatalf("%d blobs committed after corrupt pull", n)
	}
}

func TestTagRemoveSemantics(t *testing.T) {
	e := newEnv(t, nil)
	e.push(t, "test/app:1", 2)
	if _, err := e.pull(t, "test/app:1"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	src := e.host + "/test/app:1"
	if err := e.svc.Tag(ctx, src, "other/name", "2"); err != nil {
		t.Fatal(err)
	}
	r, _ := e.svc.Resolve(ctx, src)
	// By ID with two repositories: a conflict unless forced.
	_, err := e.svc.Remove(ctx, shortID(r.ID), false, true)
	if !cerrdefs.IsConflict(err) || !strings.Contains(err.Error(), "image is referenced in multiple repositories") {
		t.Fatalf("remove by id: %v", err)
	}
	// By name with another name left: untag only.
	out, err := e.svc.Remove(ctx, "other/name:2", false, true)
	if err != nil || len(out) != 1 || out[0].Untagged != "other/name:2" {
		t.Fatalf("untag: %+v %v", out, err)
	}
	// Last tag: untag, digest and delete with its layers.
	out, err = e.svc.Remove(ctx, src, false, true)
	if err != nil {
		t.Fatal(err)
	}
	var deleted int
	for _, o := range out {
		if o.Deleted != "" {
			deleted++
		}
	}
	if deleted != 3 { // the image and its two layers
		t.Fatalf("remove output %+v", out)
	}
	if _, err := e.svc.Resolve(ctx, src); !cerrdefs.IsNotFound(err) {
		t.Fatalf("image still resolves: %v", err)
	}
	if l, _ := e.svc.snapshots.List(ctx); len(l) != 0 {
		t.Fatalf("layers left: %v", l)
	}
	if _, err := e.svc.Remove(ctx, "nosuch:tag", false, true); !cerrdefs.IsNotFound(err) || err.Error() != "No such image: nosuch:tag" {
		t.Fatalf("remove missing: %v", err)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	e := newEnv(t, nil)
	e.push(t, "test/app:1", 2)
	if _, err := e.pull(t, "test/app:1"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ref := e.host + "/test/app:1"
	before, _ := e.svc.Resolve(ctx, ref)
	var buf bytes.Buffer
	if err := e.svc.Save(ctx, []string{ref}, &buf); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Remove(ctx, ref, true, true); err != nil {
		t.Fatal(err)
	}
	c := &collect{}
	if err := e.svc.Load(ctx, bytes.NewReader(buf.Bytes()), c, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(c.statuses(), "Loaded image: "+ref) {
		t.Fatalf("load said %q", c.statuses())
	}
	after, err := e.svc.Resolve(ctx, ref)
	if err != nil || after.ID != before.ID {
		t.Fatalf("loaded %v (%v), want %s", after, err, before.ID)
	}
	if err := e.svc.Save(ctx, []string{"nosuch"}, io.Discard); !errors.Is(err, cerrdefs.ErrNotFound) {
		t.Fatalf("save missing: %v", err)
	}
}

// Load takes the archive compressed as dockerd does; a corrupt stream is
// an invalid argument and loads nothing.
func TestLoadCompressed(t *testing.T) {
	e := newEnv(t, nil)
	e.push(t, "test/app:1", 2)
	if _, err := e.pull(t, "test/app:1"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ref := e.host + "/test/app:1"
	var buf bytes.Buffer
	if err := e.svc.Save(ctx, []string{ref}, &buf); err != nil {
		t.Fatal(err)
	}
	for _, c := range []archive.Compression{archive.Gzip, archive.Zstd, archive.Xz, archive.Bzip2} {
		var z []byte
		switch c {
		case archive.Gzip, archive.Zstd:
			var b bytes.Buffer
			w, _ := archive.Compress(&b, c)
			w.Write(buf.Bytes())
			w.Close()
			z = b.Bytes()
		default:
			cmd := exec.Command(archive.Name(c), "-c")
			cmd.Stdin = bytes.NewReader(buf.Bytes())
			out, err := cmd.Output()
			if err != nil {
				t.Logf("%s: %v", archive.Name(c), err)
				continue
			}
			z = out
		}
		if _, err := e.svc.Remove(ctx, ref, true, true); err != nil {
			t.Fatal(err)
		}
		bad := append(append([]byte(nil), z[:len(z)/2]...), bytes.Repeat([]byte{0x5a}, 4096)...)
		if err := e.svc.Load(ctx, bytes.NewReader(bad), &collect{}, false); !cerrdefs.IsInvalidArgument(err) {
			t.Errorf("%s, corrupt: %v, want an invalid argument", archive.Name(c), err)
		}
		if imgs, _ := e.svc.List(ctx, filters.Args{}, true); len(imgs) != 0 {
			t.Errorf("%s, corrupt: %d images after a refused load", archive.Name(c), len(imgs))
		}
		col := &collect{}
		if err := e.svc.Load(ctx, bytes.NewReader(z), col, false); err != nil {
			t.Fatalf("%s: %v", archive.Name(c), err)
		}
		if !strings.Contains(col.statuses(), "Loaded image: "+ref) {
			t.Fatalf("%s: load said %q", archive.Name(c), col.statuses())
		}
	}
}

func TestPruneUntil(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	for tag, created := range map[string]time.Time{
		"old": time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		"new": time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		img, err := random.Image(1024, 1)
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.CreatedAt(img, v1.Time{Time: created}); err != nil {
			t.Fatal(err)
		}
		ref, err := name.ParseReference(e.host + "/test/" + tag + ":1")
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
		if _, err := e.pull(t, "test/"+tag+":1"); err != nil {
			t.Fatal(err)
		}
	}
	all := func(until ...string) filters.Args { return filters.Args{"dangling": {"false"}, "until": until} }
	for _, bad := range []filters.Args{all("soon"), all("1h", "2h")} {
		if rep, err := e.svc.Prune(ctx, bad); !cerrdefs.IsInvalidArgument(err) {
			t.Fatalf("prune %v: %+v %v, want InvalidParameter", bad, rep, err)
		}
	}
	rep, err := e.svc.Prune(ctx, all("2022-01-01T00:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.ImagesDeleted) == 0 || rep.ImagesDeleted[0].Untagged != e.host+"/test/old:1" {
		t.Fatalf("prune until 2022: %+v", rep.ImagesDeleted)
	}
	if _, err := e.svc.Resolve(ctx, e.host+"/test/old:1"); !cerrdefs.IsNotFound(err) {
		t.Fatalf("old image still resolves: %v", err)
	}
	if _, err := e.svc.Resolve(ctx, e.host+"/test/new:1"); err != nil {
		t.Fatalf("new image pruned: %v", err)
	}
}
