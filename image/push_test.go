package image

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ccontent "github.com/containerd/containerd/v2/core/content"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/moby/api/types/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	cerrdefs "github.com/containerd/errdefs"
)

func (e *env) pushLocal(t *testing.T, repoTag string, auth *registry.AuthConfig) (*collect, error) {
	t.Helper()
	ref, err := ParsePushReference(e.host+"/"+repoTag, "")
	if err != nil {
		t.Fatal(err)
	}
	c := &collect{}
	return c, e.svc.Push(context.Background(), ref, nil, auth, c)
}

func (c *collect) ids(status string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.msgs {
		if m.Status == status {
			out = append(out, m.ID)
		}
	}
	return out
}

// TestPushPulledImageKeepsDigests: an image pulled and pushed unchanged
// keeps its manifest and blob digests; the second push uploads nothing.
func TestPushPulledImageKeepsDigests(t *testing.T) {
	var mu sync.Mutex
	var requests []string
	e := newEnv(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			requests = append(requests, r.Method+" "+r.URL.Path)
			mu.Unlock()
			next.ServeHTTP(w, r)
		})
	})
	img := e.push(t, "test/src:1", 3)
	if _, err := e.pull(t, "test/src:1"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Tag(context.Background(), e.host+"/test/src:1", e.host+"/test/dst", "2"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	requests = nil
	mu.Unlock()
	c, err := e.pushLocal(t, "test/dst:2", nil)
	if err != nil {
		t.Fatalf("push: %v\n%s", err, c.statuses())
	}
	want, _ := img.Digest()
	out := c.statuses()
	if !strings.HasPrefix(out, "The push refers to repository ["+e.host+"/test/dst]\n") ||
		!strings.Contains(out, fmt.Sprintf("2: digest: %s size: ", want)) {
		t.Fatalf("progress:\n%s", out)
	}
	if n := len(c.ids("Preparing")); n != 3 {
		t.Fatalf("%d Preparing messages, want 3:\n%s", n, out)
	}
	// The pull ran against the same in-process registry, whose blobs are
	// global: every layer already exists.
	if n := len(c.ids("Layer already exists")); n != 3 {
		t.Fatalf("want 3 layers already there:\n%s", out)
	}
	for _, m := range c.msgs {
		if m.ID != "" && m.ProgressDetail == nil {
			t.Errorf("per-layer message without progressDetail: %+v", m)
		}
	}
	last := c.msgs[len(c.msgs)-1]
	var aux struct {
		Tag    string
		Digest string
		Size   int
	}
	if last.Aux == nil || json.Unmarshal(*last.Aux, &aux) != nil || aux.Tag != "2" || aux.Digest != want.String() || aux.Size == 0 {
		t.Fatalf("last message %+v", last)
	}
	mu.Lock()
	for _, r := range requests {
		if strings.HasPrefix(r, "PATCH") {
			t.Errorf("blob uploaded though the registry had it: %s", r)
		}
	}
	mu.Unlock()
	ref, _ := name.ParseReference(e.host + "/test/dst:2")
	got, err := remote.Head(ref)
	if err != nil || got.Digest != want {
		t.Fatalf("registry has %v (%v), want %s", got, err, want)
	}
	insp, err := e.svc.Inspect(context.Background(), e.host+"/test/dst:2")
	if err != nil || !contains(insp.RepoDigests, e.host+"/test/dst@"+want.String()) {
		t.Fatalf("repo digests after push: %v %v", insp.RepoDigests, err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// commitImage makes a local image of n layers tagged ref.
func commitImage(t *testing.T, s *Service, ref string, n int) *Record {
	t.Helper()
	var parent *Record
	for i := 0; i < n; i++ {
		tag := ""
		if i == n-1 {
			tag = ref
		}
		id, err := s.Commit(context.Background(), CommitRequest{
			Parent:  parent,
			Layer:   layerTar(t, map[string]string{fmt.Sprintf("f%d", i): strings.Repeat(fmt.Sprintf("layer %d ", i), 20000)}),
			History: ocispec.History{CreatedBy: fmt.Sprintf("step %d", i)},
			Tag:     tag,
		})
		if err != nil {
			t.Fatal(err)
		}
		if parent, err = s.records.get(id); err != nil {
			t.Fatal(err)
		}
	}
	return parent
}

// compressAll gives a committed image's layers (stored without a blob)
// their gzip blobs, as its first push does, so that tests of pushing
// stored blobs have some.
func compressAll(t *testing.T, s *Service, rec *Record) *Record {
	t.Helper()
	ctx, end, err := s.begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer end(false)
	layers, fresh := s.pushLayers(ctx, rec)
	for i := range layers {
		if fresh[i] {
			ref, err := s.compressLayer(ctx, layers[i], io.Discard, nil)
			if err != nil {
				t.Fatal(err)
			}
			layers[i] = ref
		}
	}
	rec, err = s.rememberLayers(ctx, rec, layers)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestPushParallelWaitingAndRoundTrip: seven layers go up at most five
// at a time, two of them shown Waiting; the pushed image pulls back with
// the same ID.
func TestPushParallelWaitingAndRoundTrip(t *testing.T) {
	var inflight, peak atomic.Int32
	e := newEnv(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPatch {
				n := inflight.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				time.Sleep(50 * time.Millisecond) // let the others arrive
				defer inflight.Add(-1)
			}
			next.ServeHTTP(w, r)
		})
	})
	rec := commitImage(t, e.svc, e.host+"/test/seven:1", 7)
	c, err := e.pushLocal(t, "test/seven:1", nil)
	if err != nil {
		t.Fatalf("push: %v\n%s", err, c.statuses())
	}
	if n := len(c.ids("Pushed")); n != 7 {
		t.Fatalf("%d layers pushed, want 7:\n%s", n, c.statuses())
	}
	if n := len(c.ids("Waiting")); n != 2 {
		t.Fatalf("%d layers waiting, want 2:\n%s", n, c.statuses())
	}
	if p := peak.Load(); p > pushJobs || p < 2 {
		t.Fatalf("peak concurrent uploads %d, want 2..%d", p, pushJobs)
	}
	// Top layer first.
	prep := c.ids("Preparing")
	if prep[0] != shortID(rec.Layers[6].DiffID) || prep[6] != shortID(rec.Layers[0].DiffID) {
		t.Fatalf("Preparing order %v", prep)
	}
	ref, _ := name.ParseReference(e.host + "/test/seven:1")
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := img.ConfigName()
	if cfg.String() != rec.ID.String() {
		t.Fatalf("pushed image ID %s, local %s", cfg, rec.ID)
	}
	if _, err := img.Layers(); err != nil {
		t.Fatal(err)
	}
}

// TestPushChunked: a registry asking for chunks (OCI-Chunk-Min-Length)
// gets them, in order, each at least that long but the last.
func TestPushChunked(t *testing.T) {
	const chunk = 100 << 10
	var mu sync.Mutex
	var ranges []string
	e := newEnv(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/blobs/uploads/") {
				w.Header().Set("OCI-Chunk-Min-Length", fmt.Sprint(chunk))
			}
			if r.Method == http.MethodPatch {
				mu.Lock()
				ranges = append(ranges, fmt.Sprintf("%s/%d", r.Header.Get("Content-Range"), r.ContentLength))
				mu.Unlock()
			}
			next.ServeHTTP(w, r)
		})
	})
	rec := commitImage(t, e.svc, e.host+"/test/chunk:1", 1)
	// A layer big enough for several chunks (gzip shrinks the repeats).
	big := layerTar(t, map[string]string{"big": randomText(350 << 10)})
	id, err := e.svc.Commit(context.Background(), CommitRequest{Parent: rec, Layer: big, Tag: e.host + "/test/chunk:1"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.pushLocal(t, "test/chunk:1", nil)
	if err != nil {
		t.Fatalf("push: %v\n%s", err, c.statuses())
	}
	mu.Lock()
	defer mu.Unlock()
	multi := 0
	for _, r := range ranges {
		if r == "/0" || !strings.Contains(r, "-") {
			t.Errorf("PATCH without Content-Range: %q (all: %v)", r, ranges)
		}
		if strings.HasPrefix(r, fmt.Sprintf("%d-", chunk)) {
			multi++
		}
	}
	if multi == 0 {
		t.Fatalf("no second chunk was sent: %v", ranges)
	}
	ref, _ := name.ParseReference(e.host + "/test/chunk:1")
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	if cfg, _ := img.ConfigName(); cfg.String() != id.String() {
		t.Fatalf("pushed %s, want %s", cfg, id)
	}
	layers, _ := img.Layers()
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatalf("layer does not verify: %v", err)
		}
	}
}

func randomText(n int) string {
	var b strings.Builder
	x := uint32(2463534242)
	for b.Len() < n {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b.WriteByte(byte('a' + x%26))
	}
	return b.String()
}

// TestPushWrongDigestFails: a registry claiming to have stored a blob
// under another digest fails the push; nothing is reported Pushed.
func TestPushWrongDigestFails(t *testing.T) {
	e := newEnv(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") {
				next.ServeHTTP(&digestLiar{ResponseWriter: w}, r)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	compressAll(t, e.svc, commitImage(t, e.svc, e.host+"/test/liar:1", 2))
	c, err := e.pushLocal(t, "test/liar:1", nil)
	if err == nil || !strings.Contains(err.Error(), "corrupted") {
		t.Fatalf("push err = %v", err)
	}
	if n := len(c.ids("Pushed")); n != 0 {
		t.Fatalf("%d layers reported Pushed:\n%s", n, c.statuses())
	}
}

type digestLiar struct{ http.ResponseWriter }

func (d *digestLiar) WriteHeader(code int) {
	if code == http.StatusCreated {
		d.Header().Set("Docker-Content-Digest", digest.FromString("something else").String())
	}
	d.ResponseWriter.WriteHeader(code)
}

// TestPushDroppedConnectionFails: a registry that drops every upload
// midway fails the push after a bounded number of attempts.
func TestPushDroppedConnectionFails(t *testing.T) {
	defer func(f func(int) time.Duration) { retryDelay = f }(retryDelay)
	retryDelay = func(int) time.Duration { return 0 }
	var patches atomic.Int32
	e := newEnv(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPatch {
				patches.Add(1)
				buf := make([]byte, 1024)
				_, _ = r.Body.Read(buf)
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					conn.Close()
				}
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	compressAll(t, e.svc, commitImage(t, e.svc, e.host+"/test/drop:1", 1))
	start := time.Now()
	c, err := e.pushLocal(t, "test/drop:1", nil)
	if err == nil {
		t.Fatalf("push through a dropping registry succeeded:\n%s", c.statuses())
	}
	if n := len(c.ids("Pushed")); n != 0 {
		t.Fatalf("reported Pushed:\n%s", c.statuses())
	}
	if n := patches.Load(); n != uploadAttempts {
		t.Fatalf("%d upload attempts, want %d", n, uploadAttempts)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("took %s", d)
	}
}

// tokenServer is an in-process token service and registry front: Bearer
// challenges, tokens with a lifetime, and a record of what was asked.
type tokenServer struct {
	mu        sync.Mutex
	issued    int
	scopes    []string
	authSeen  []string // Authorization headers the token endpoint got
	expiresIn int
	forever   bool // the registry refuses every token
	revoked   int  // the registry refuses tokens numbered up to this one
}

func (ts *tokenServer) wrap(host *string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/token" {
				ts.mu.Lock()
				ts.issued++
				n := ts.issued
				ts.scopes = append(ts.scopes, strings.Join(r.URL.Query()["scope"], " "))
				ts.authSeen = append(ts.authSeen, r.Header.Get("Authorization"))
				exp := ts.expiresIn
				ts.mu.Unlock()
				if r.Header.Get("Authorization") != "Basic "+basicB64("user", "pass") {
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				json.NewEncoder(w).Encode(map[string]any{"token": fmt.Sprintf("tok%d", n), "expires_in": exp})
				return
			}
			ts.mu.Lock()
			forever, revoked := ts.forever, ts.revoked
			ts.mu.Unlock()
			var n int
			_, err := fmt.Sscanf(r.Header.Get("Authorization"), "Bearer tok%d", &n)
			if forever || err != nil || n <= revoked {
				w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://%s/token",service="test"`, *host))
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func basicB64(u, p string) string {
	return strings.TrimPrefix(basicHeader(&registry.AuthConfig{Username: u, Password: p}), "Basic ")
}

// TestPushTokenScopesAndCache: tokens are asked with the target's
// pull,push scope, reused until they expire, and a refusal ends.
func TestPushTokenScopesAndCache(t *testing.T) {
	ts := &tokenServer{expiresIn: 300}
	var host string
	e := newEnv(t, ts.wrap(&host))
	host = e.host
	commitImage(t, e.svc, e.host+"/test/tok:1", 2)
	auth := &registry.AuthConfig{Username: "user", Password: "pass"}
	if c, err := e.pushLocal(t, "test/tok:1", auth); err != nil {
		t.Fatalf("push: %v\n%s", err, c.statuses())
	}
	if c, err := e.pushLocal(t, "test/tok:1", auth); err != nil {
		t.Fatalf("second push: %v\n%s", err, c.statuses())
	}
	ts.mu.Lock()
	if ts.issued != 1 || ts.scopes[0] != "repository:test/tok:pull,push" {
		t.Fatalf("tokens issued %d for scopes %q, want 1 for repository:test/tok:pull,push", ts.issued, ts.scopes)
	}
	ts.mu.Unlock()

	// Another repository on the same registry: a new token, and a mount
	// source asks for pull on the source.
	if err := e.svc.Tag(context.Background(), e.host+"/test/tok:1", e.host+"/test/other", "1"); err != nil {
		t.Fatal(err)
	}
	if c, err := e.pushLocal(t, "test/other:1", auth); err != nil {
		t.Fatalf("push: %v\n%s", err, c.statuses())
	}
	ts.mu.Lock()
	if ts.issued != 2 || !strings.Contains(ts.scopes[1], "repository:test/other:pull,push") || !strings.Contains(ts.scopes[1], "repository:test/tok:pull") {
		t.Fatalf("scopes %q", ts.scopes)
	}
	ts.mu.Unlock()

	// Wrong password: the token service's refusal, nothing cached.
	_, err := e.pushLocal(t, "test/tok:1", &registry.AuthConfig{Username: "user", Password: "wrong"})
	if err == nil {
		t.Fatal("push with a wrong password succeeded")
	}

	// A registry refusing every token ends, after one refresh.
	ts.mu.Lock()
	ts.forever = true
	before := ts.issued
	ts.mu.Unlock()
	start := time.Now()
	if _, err := e.pushLocal(t, "test/tok:1", auth); err == nil {
		t.Fatal("push to a registry refusing every token succeeded")
	}
	ts.mu.Lock()
	extra := ts.issued - before
	ts.mu.Unlock()
	if extra > 2 || time.Since(start) > 20*time.Second {
		t.Fatalf("%d more tokens, %s", extra, time.Since(start))
	}
}

// TestPushTokenRefreshedOn401: a cached token that has not expired but
// that the registry no longer takes (a 401) is replaced by a new one, once,
// and the push goes through with it; the new token is the one cached.
func TestPushTokenRefreshedOn401(t *testing.T) {
	ts := &tokenServer{expiresIn: 300}
	var host string
	e := newEnv(t, ts.wrap(&host))
	host = e.host
	commitImage(t, e.svc, e.host+"/test/refresh:1", 2)
	auth := &registry.AuthConfig{Username: "user", Password: "pass"}
	if c, err := e.pushLocal(t, "test/refresh:1", auth); err != nil {
		t.Fatalf("push: %v\n%s", err, c.statuses())
	}
	ts.mu.Lock()
	ts.revoked = ts.issued // every token so far, the cached one too
	before := ts.issued
	ts.mu.Unlock()
	c, err := e.pushLocal(t, "test/refresh:1", auth)
	if err != nil {
		t.Fatalf("push after the registry revoked the cached token: %v\n%s", err, c.statuses())
	}
	if n := len(c.ids("Layer already exists")); n != 2 {
		t.Errorf("second push: %d layers already there, want 2\n%s", n, c.statuses())
	}
	ts.mu.Lock()
	extra := ts.issued - before
	ts.mu.Unlock()
	if extra != 1 {
		t.Fatalf("%d new tokens after a 401 on the cached one, want 1", extra)
	}
	// The refreshed token is cached: a third push asks for none.
	if c, err := e.pushLocal(t, "test/refresh:1", auth); err != nil {
		t.Fatalf("third push: %v\n%s", err, c.statuses())
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.issued != before+1 {
		t.Fatalf("third push asked for %d more tokens, want the cached one", ts.issued-before-1)
	}
}

// TestTokenExpiry: an expired token is not reused.
func TestTokenExpiry(t *testing.T) {
	var c tokenCache
	now := time.Now()
	c.put("k", "t1", now.Add(time.Second))
	if tok, ok := c.get("k", now); !ok || tok != "t1" {
		t.Fatal("fresh token not found")
	}
	if _, ok := c.get("k", now.Add(2*time.Second)); ok {
		t.Fatal("expired token returned")
	}
}

// TestCredentialsStayWithTheRegistry: an upload sent to another host (a
// Location pointing at blob storage) carries no credentials, and neither
// does plain http to a registry that is not insecure.
func TestCredentialsStayWithTheRegistry(t *testing.T) {
	var mu sync.Mutex
	var leaked []string
	var storageHits atomic.Int32
	var backend http.Handler
	storage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		storageHits.Add(1)
		if a := r.Header.Get("Authorization"); a != "" {
			mu.Lock()
			leaked = append(leaked, r.Method+" "+a)
			mu.Unlock()
		}
		backend.ServeHTTP(w, r)
	}))
	defer storage.Close()
	storageURL, _ := url.Parse(storage.URL)
	// storage answers as "localhost:port": another host than 127.0.0.1:port.
	storageHost := "localhost:" + storageURL.Port()
	e := newEnv(t, func(next http.Handler) http.Handler {
		backend = next
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Basic "+basicB64("user", "pass") {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/blobs/uploads/") {
				rw := &locationRewriter{ResponseWriter: w, host: storageHost}
				next.ServeHTTP(rw, r)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	commitImage(t, e.svc, e.host+"/test/redir:1", 2)
	c, err := e.pushLocal(t, "test/redir:1", &registry.AuthConfig{Username: "user", Password: "pass"})
	if err != nil {
		t.Fatalf("push: %v\n%s", err, c.statuses())
	}
	if storageHits.Load() == 0 {
		t.Fatal("uploads never went to the storage host")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(leaked) > 0 {
		t.Fatalf("credentials sent to the storage host: %v", leaked)
	}

	rs := &regSession{host: "registry.example.com", insecure: false}
	for _, u := range []string{"http://registry.example.com/v2/", "https://other.example.com/v2/", "https://registry.example.com:444/v2/"} {
		pu, _ := url.Parse(u)
		if rs.owns(pu) {
			t.Errorf("credentials would go to %s", u)
		}
	}
	if pu, _ := url.Parse("https://registry.example.com:443/v2/x"); !rs.owns(pu) {
		t.Error("credentials would not go to the registry itself")
	}
	if err := rs.allowedTarget(mustURL("https://127.0.0.1:8080/x")); err == nil {
		t.Error("a public registry may send berth to a loopback address")
	}
}

func mustURL(s string) *url.URL {
	u, _ := url.Parse(s)
	return u
}

type locationRewriter struct {
	http.ResponseWriter
	host string
}

func (l *locationRewriter) WriteHeader(code int) {
	if loc := l.Header().Get("Location"); loc != "" {
		u, _ := url.Parse(loc)
		u.Scheme, u.Host = "http", l.host
		l.Header().Set("Location", u.String())
	}
	l.ResponseWriter.WriteHeader(code)
}

func TestParseChallenge(t *testing.T) {
	c := parseChallenge(`Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push"`)
	if c.scheme != "bearer" || c.params["realm"] != "https://auth.example.com/token" || c.params["service"] != "registry.example.com" || c.params["scope"] != "repository:a/b:pull,push" {
		t.Fatalf("%+v", c)
	}
	c = parseChallenge(`Basic realm="a \"quoted\" realm"`)
	if c.scheme != "basic" || c.params["realm"] != `a "quoted" realm` {
		t.Fatalf("%+v", c)
	}
	c = parseChallenge(`Bearer realm=unquoted,service="s"`)
	if c.params["realm"] != "unquoted" || c.params["service"] != "s" {
		t.Fatalf("%+v", c)
	}
}

func TestPushNothingLocal(t *testing.T) {
	e := newEnv(t, nil)
	c, err := e.pushLocal(t, "test/none:1", nil)
	if !cerrdefs.IsNotFound(err) || err.Error() != "An image does not exist locally with the tag: "+e.host+"/test/none" {
		t.Fatalf("err = %v", err)
	}
	if out := c.statuses(); out != "The push refers to repository ["+e.host+"/test/none]\n" {
		t.Fatalf("progress %q", out)
	}
	commitImage(t, e.svc, e.host+"/test/none:1", 1)
	if _, err := e.pushLocal(t, "test/none:2", nil); err == nil || err.Error() != "tag does not exist: "+e.host+"/test/none:2" {
		t.Fatalf("err = %v", err)
	}
	ref, _ := ParsePushReference(e.host+"/test/none", "1")
	err = e.svc.Push(context.Background(), ref, &ocispec.Platform{OS: "linux", Architecture: "arm64"}, nil, &collect{})
	if !cerrdefs.IsNotFound(err) || !strings.Contains(err.Error(), "was found but does not match the specified platform: wanted linux/arm64, actual: linux/amd64") {
		t.Fatalf("platform err = %v", err)
	}
}

// TestPushLoadedImage: an image loaded from a docker save archive (layers
// stored as plain tar) is pushed with gzip layers, compressed once: the
// compressed blobs are remembered, and another image with the same layer
// reuses them.
func TestPushLoadedImage(t *testing.T) {
	// The registry asks for chunks: the compressed stream goes up in them.
	var chunks atomic.Int32
	e := newEnv(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/blobs/uploads/") {
				w.Header().Set("OCI-Chunk-Min-Length", "65536")
			}
			if r.Method == http.MethodPatch && r.Header.Get("Content-Range") != "" {
				chunks.Add(1)
			}
			next.ServeHTTP(w, r)
		})
	})
	ctx := context.Background()
	rec := commitImage(t, e.svc, e.host+"/test/loaded:1", 3)
	var archive bytes.Buffer
	if err := e.svc.Save(ctx, []string{e.host + "/test/loaded:1"}, &archive); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Remove(ctx, rec.ID.String(), true, true); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Load(ctx, bytes.NewReader(archive.Bytes()), &collect{}, true); err != nil {
		t.Fatal(err)
	}
	loaded, err := e.svc.Resolve(ctx, e.host+"/test/loaded:1")
	if err != nil || loaded.ID != rec.ID {
		t.Fatalf("loaded %v, %v", loaded, err)
	}
	if loaded.Layers[0].MediaType == mediaTypeDockerLayerGzip {
		t.Skip("load now keeps compressed layers; nothing to compress on push")
	}
	c, err := e.pushLocal(t, "test/loaded:1", nil)
	if err != nil {
		t.Fatalf("push: %v\n%s", err, c.statuses())
	}
	ref, _ := name.ParseReference(e.host + "/test/loaded:1")
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	if cfg, _ := img.ConfigName(); cfg.String() != rec.ID.String() {
		t.Fatalf("pushed %s, want %s", cfg, rec.ID)
	}
	m, _ := img.Manifest()
	for i, l := range m.Layers {
		if string(l.MediaType) != mediaTypeDockerLayerGzip {
			t.Errorf("layer %d pushed as %s", i, l.MediaType)
		}
	}
	after, _ := e.svc.records.get(rec.ID)
	for i, l := range after.Layers {
		if l.MediaType != mediaTypeDockerLayerGzip || l.Digest.String() != m.Layers[i].Digest.String() {
			t.Errorf("record layer %d: %+v, pushed %s", i, l, m.Layers[i].Digest)
		}
	}
	if chunks.Load() < 3 {
		t.Errorf("%d chunks sent, want the layers in chunks", chunks.Load())
	}
	// Pushed again: nothing to compress, nothing to upload.
	c, err = e.pushLocal(t, "test/loaded:1", nil)
	if err != nil || len(c.ids("Layer already exists")) != 3 {
		t.Fatalf("second push: %v\n%s", err, c.statuses())
	}
}

// TestPushLoadedDroppedConnection: a layer compressed on the way up to a
// registry that drops the upload fails the push after bounded attempts;
// nothing is reported Pushed, and no half-written blob stays.
func TestPushLoadedDroppedConnection(t *testing.T) {
	defer func(f func(int) time.Duration) { retryDelay = f }(retryDelay)
	retryDelay = func(int) time.Duration { return 0 }
	var patches atomic.Int32
	e := newEnv(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPatch {
				patches.Add(1)
				buf := make([]byte, 1024)
				_, _ = r.Body.Read(buf)
				if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
					conn.Close()
				}
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	ctx := context.Background()
	rec := commitImage(t, e.svc, e.host+"/test/ldrop:1", 1)
	var archive bytes.Buffer
	if err := e.svc.Save(ctx, []string{e.host + "/test/ldrop:1"}, &archive); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Remove(ctx, rec.ID.String(), true, true); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Load(ctx, &archive, &collect{}, true); err != nil {
		t.Fatal(err)
	}
	c, err := e.pushLocal(t, "test/ldrop:1", nil)
	if err == nil || len(c.ids("Pushed")) != 0 {
		t.Fatalf("push: %v\n%s", err, c.statuses())
	}
	if n := patches.Load(); n != uploadAttempts {
		t.Fatalf("%d attempts, want %d", n, uploadAttempts)
	}
	after, _ := e.svc.records.get(rec.ID)
	if after.Layers[0].MediaType == mediaTypeDockerLayerGzip {
		t.Errorf("the record names a compressed blob though no push finished: %+v", after.Layers[0])
	}
}

// TestPushCompressesWaitingLayers: a fresh layer waiting for an upload
// slot is compressed meanwhile: while the registry holds the first five
// uploads open (their PUT), the sixth layer's gzip blob reaches the
// store. Its upload then sends the stored blob.
func TestPushCompressesWaitingLayers(t *testing.T) {
	var e *env
	var held atomic.Int32
	sixth := make(chan bool, 1) // true: the store held six gzip blobs
	release := make(chan struct{})
	var once sync.Once
	watch := func() {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if gzipBlobs(t, e) >= 6 {
				sixth <- true
				close(release)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		sixth <- false
		close(release)
	}
	e = newEnv(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") && held.Add(1) <= pushJobs {
				if held.Load() == pushJobs {
					once.Do(func() { go watch() })
				}
				<-release
			}
			next.ServeHTTP(w, r)
		})
	})
	commitImage(t, e.svc, e.host+"/test/six:1", 6)
	c, err := e.pushLocal(t, "test/six:1", nil)
	if err != nil {
		t.Fatalf("push: %v\n%s", err, c.statuses())
	}
	if !<-sixth {
		t.Fatalf("the waiting layer was not compressed while five uploads were open (%d gzip blobs stored)", gzipBlobs(t, e))
	}
	if n := len(c.ids("Pushed")); n != 6 {
		t.Fatalf("%d layers pushed, want 6:\n%s", n, c.statuses())
	}
	ref, _ := name.ParseReference(e.host + "/test/six:1")
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := img.Layers(); err != nil {
		t.Fatal(err)
	}
}

// gzipBlobs counts the store's blobs that are gzip streams.
func gzipBlobs(t *testing.T, e *env) int {
	ctx := context.Background()
	n := 0
	err := e.svc.content.Walk(ctx, func(info ccontent.Info) error {
		ra, err := e.svc.content.ReaderAt(ctx, ocispec.Descriptor{Digest: info.Digest, Size: info.Size})
		if err != nil {
			return nil // removed meanwhile
		}
		defer ra.Close()
		magic := make([]byte, 2)
		if _, err := ra.ReadAt(magic, 0); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
			n++
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	return n
}

// TestPushUploadOverlapsStoreCommit: a layer compressed on the way up is
// PUT to the registry while the store still commits (fsyncs) its blob:
// here the store's commit of every gzip blob waits for the registry's
// PUT of that digest, and the push still completes.
func TestPushUploadOverlapsStoreCommit(t *testing.T) {
	puts := &digestSignals{m: map[string]chan struct{}{}}
	var late atomic.Int32
	e := newEnvStore(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") {
				puts.signal(r.URL.Query().Get("digest"))
			}
			next.ServeHTTP(w, r)
		})
	}, func(cs ccontent.Store) ccontent.Store {
		return &commitGate{Store: cs, before: func(d digest.Digest) {
			select {
			case <-puts.get(d.String()):
			case <-time.After(10 * time.Second):
				late.Add(1)
			}
		}}
	})
	commitImage(t, e.svc, e.host+"/test/overlap:1", 3)
	c, err := e.pushLocal(t, "test/overlap:1", nil)
	if err != nil {
		t.Fatalf("push: %v\n%s", err, c.statuses())
	}
	if n := late.Load(); n != 0 {
		t.Fatalf("%d layer blob(s) committed to the store before their PUT to the registry", n)
	}
	if n := len(c.ids("Pushed")); n != 3 {
		t.Fatalf("%d layers pushed, want 3:\n%s", n, c.statuses())
	}
}

// digestSignals is a channel per digest, closed once.
type digestSignals struct {
	mu sync.Mutex
	m  map[string]chan struct{}
}

func (s *digestSignals) get(d string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.m[d]
	if !ok {
		ch = make(chan struct{})
		s.m[d] = ch
	}
	return ch
}

func (s *digestSignals) signal(d string) {
	ch := s.get(d)
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// commitGate is a content store whose writers call before(digest) ahead
// of committing a gzip stream.
type commitGate struct {
	ccontent.Store
	before func(digest.Digest)
}

func (g *commitGate) Writer(ctx context.Context, opts ...ccontent.WriterOpt) (ccontent.Writer, error) {
	w, err := g.Store.Writer(ctx, opts...)
	if err != nil {
		return nil, err
	}
	return &gatedWriter{Writer: w, before: g.before}, nil
}

type gatedWriter struct {
	ccontent.Writer
	before func(digest.Digest)
	head   []byte
}

func (w *gatedWriter) Write(p []byte) (int, error) {
	if len(w.head) < 2 {
		w.head = append(w.head, p[:min(len(p), 2-len(w.head))]...)
	}
	return w.Writer.Write(p)
}

func (w *gatedWriter) Commit(ctx context.Context, size int64, expected digest.Digest, opts ...ccontent.Opt) error {
	if len(w.head) == 2 && w.head[0] == 0x1f && w.head[1] == 0x8b {
		w.before(expected)
	}
	return w.Writer.Commit(ctx, size, expected, opts...)
}
