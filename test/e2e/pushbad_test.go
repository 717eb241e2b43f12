package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// startFrontedRegistry starts a registry with an in-process front whose
// handler wrap decides what reaches it.
func startFrontedRegistry(t *testing.T, wrap func(next http.Handler) http.Handler) *testRegistry {
	t.Helper()
	reg := startRegistry(t, registryOpts{})
	reg.Host = serve(t, "127.0.0.1:0", wrap(proxyTo(reg.backend)))
	return reg
}

// isUpload reports whether r carries blob bytes (PATCH, or PUT with a body).
func isUpload(r *http.Request) bool {
	return strings.Contains(r.URL.Path, "/blobs/uploads/") && (r.Method == http.MethodPatch || (r.Method == http.MethodPut && r.ContentLength != 0))
}

// digestLiar makes a 201 answer to an upload claim another digest.
type digestLiar struct{ http.ResponseWriter }

func (d *digestLiar) WriteHeader(code int) {
	if code == http.StatusCreated {
		d.Header().Set("Docker-Content-Digest", "sha256:0000000000000000000000000000000000000000000000000000000000000000")
	}
	d.ResponseWriter.WriteHeader(code)
}

// TestPushBadRegistries: a registry that answers an upload with another
// digest, or drops the connection in the middle of one, or refuses every
// token, fails the push loudly and in bounded time; no layer is reported
// Pushed.
func TestPushBadRegistries(t *testing.T) {
	a := requireEnv(t).api()
	ensureImage(t, a, "alpine:3.18")
	cases := []struct {
		name      string
		wrap      func(next http.Handler) http.Handler
		bound     time.Duration
		berthOnly string
	}{
		{"wrong digest", func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") {
					next.ServeHTTP(&digestLiar{w}, r)
					return
				}
				next.ServeHTTP(w, r)
			})
		}, 60 * time.Second, "dockerd 20.10 does not check the digest a registry answers a blob upload with: it reports Pushed and prints the digest"},
		{"connection dropped", func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if isUpload(r) {
					_, _ = io.CopyN(io.Discard, r.Body, 4096)
					if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
						conn.Close()
					}
					return
				}
				next.ServeHTTP(w, r)
			})
		}, 150 * time.Second, ""}, // dockerd tries 5 times, 5 to 20 s apart
		{"401 forever", func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/token" {
					fmt.Fprint(w, `{"token":"never-good-enough","expires_in":300}`)
					return
				}
				w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://%s/token",service="forever"`, r.Host))
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}`)
			})
		}, 60 * time.Second, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.berthOnly != "" {
				onlyBerth(t, tc.berthOnly)
			}
			reg := startFrontedRegistry(t, tc.wrap)
			c := cli(t, "docker")
			repo := reg.Host + "/bad/alpine"
			c.ok("tag", "alpine:3.18", repo+":1")
			defer removeImage(t, a, repo+":1")
			r := c.runTimeout(tc.bound+30*time.Second, nil, "push", repo+":1")
			r.wantFailure(t, c.name)
			if r.Elapsed > tc.bound {
				t.Errorf("the push took %s, want at most %s", r.Elapsed.Round(time.Second), tc.bound)
			}
			for id, status := range pushedLayers(r.Stdout) {
				if status == "Pushed" {
					t.Errorf("layer %s reported Pushed:\n%s", id, r.Stdout)
				}
			}
			if strings.Contains(r.Stdout, ": digest: sha256:") {
				t.Errorf("a digest was printed:\n%s", r.Stdout)
			}
		})
	}
}

// TestPushDaemonKilled: kill -9 of the daemon in the middle of a push,
// then a restart: the next push completes and the registry holds a
// consistent image (every blob its manifest names, the local image ID).
// Two pushes are cut: a pulled image (its blobs are uploaded as stored)
// and a committed one (its layer is compressed on the way up, so the
// kill lands in the middle of the compression too).
func TestPushDaemonKilled(t *testing.T) {
	requireEnv(t)
	var mu sync.Mutex
	arrived := map[string]bool{} // repositories an upload of reached the registry
	arrival := make(chan struct{}, 16)
	blocking := true
	release := make(chan struct{})
	reg := startFrontedRegistry(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			b := blocking
			if b && isUpload(r) {
				repo, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v2/"), "/blobs/")
				arrived[repo] = true
				select {
				case arrival <- struct{}{}:
				default:
				}
			}
			mu.Unlock()
			if b && isUpload(r) {
				<-release // hold the upload until the daemon is dead
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	unblock := func() {
		mu.Lock()
		if blocking {
			blocking = false
			close(release)
		}
		mu.Unlock()
	}
	defer unblock()

	d := startTestDaemon(t, env.target, daemonOpts{mirror: true})
	c := cliFor(t, "docker", d)
	ensureImage(t, d.api(), "alpine:3.18")
	// A committed layer of 4 MB of random bytes: no compressed blob yet.
	c.ok("run", "--name", "killed-src", "alpine:3.18", "sh", "-c", "head -c 4000000 /dev/urandom > /big")
	c.ok("commit", "killed-src", "killed-committed:1")
	images := map[string]imageInspect{
		"killed/alpine":    inspectImage(t, d.api(), "alpine:3.18"),
		"killed/committed": inspectImage(t, d.api(), "killed-committed:1"),
	}
	c.ok("tag", "alpine:3.18", reg.Host+"/killed/alpine:1")
	c.ok("tag", "killed-committed:1", reg.Host+"/killed/committed:1")

	done := make(chan result, len(images))
	for repo := range images {
		go func() { done <- c.runTimeout(120*time.Second, nil, "push", reg.Host+"/"+repo+":1") }()
	}
	deadline := time.After(60 * time.Second)
	for waiting := true; waiting; {
		mu.Lock()
		waiting = len(arrived) < len(images)
		mu.Unlock()
		if !waiting {
			break
		}
		select {
		case <-arrival:
		case r := <-done:
			t.Fatalf("a push ended before its upload reached the registry: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		case <-deadline:
			t.Fatalf("uploads reached the registry for %v only", arrived)
		}
	}
	d.kill9()
	for range images {
		if r := <-done; r.Code == 0 {
			t.Fatalf("a push succeeded though its daemon was killed:\n%s", r.Stdout)
		}
	}
	unblock()

	d2 := restartOnSameContainerd(t, d)
	c = cliFor(t, "docker", d2)
	for repo, img := range images {
		r := c.ok("push", reg.Host+"/"+repo+":1")
		digest := wantPush(t, r, reg.Host+"/"+repo, "1", img, "")
		m := registryImage(t, reg.Host, repo, "1", "")
		if m.ManifestDigest != digest || m.ConfigDigest != img.ID {
			t.Errorf("registry %s: manifest %s config %s, want %s %s", repo, m.ManifestDigest, m.ConfigDigest, digest, img.ID)
		}
		for _, l := range m.Layers {
			if _, _, err := registryGet("HEAD", reg.Host, "/v2/"+repo+"/blobs/"+l, ""); err != nil {
				t.Errorf("the manifest of %s names blob %s, which the registry lacks: %v", repo, l, err)
			}
		}
	}
}

// TestPushChunkedUpload: a registry that asks for chunks
// (OCI-Chunk-Min-Length on the upload's POST) gets the blob in chunks of
// at least that size, each with its Content-Range, and the image arrives
// whole.
func TestPushChunkedUpload(t *testing.T) {
	a := requireEnv(t).api()
	img := ensureImage(t, a, "alpine:3.18")
	const chunk = 256 << 10
	var mu sync.Mutex
	var patches []string
	reg := startFrontedRegistry(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/blobs/uploads/") {
				w.Header().Set("OCI-Chunk-Min-Length", fmt.Sprint(chunk))
			}
			if r.Method == http.MethodPatch {
				mu.Lock()
				patches = append(patches, fmt.Sprintf("%s/%d", r.Header.Get("Content-Range"), r.ContentLength))
				mu.Unlock()
			}
			next.ServeHTTP(w, r)
		})
	})
	c := cli(t, "docker")
	repo := reg.Host + "/chunked/alpine"
	c.ok("tag", "alpine:3.18", repo+":1")
	defer removeImage(t, a, repo+":1")
	d := wantPush(t, c.ok("push", repo+":1"), repo, "1", img, "Pushed")
	m := registryImage(t, reg.Host, "chunked/alpine", "1", "")
	if m.ManifestDigest != d || m.ConfigDigest != img.ID {
		t.Errorf("registry: %s %s, want %s %s", m.ManifestDigest, m.ConfigDigest, d, img.ID)
	}
	onlyBerth(t, "dockerd 20.10 ignores OCI-Chunk-Min-Length and sends each blob in one PATCH")
	mu.Lock()
	defer mu.Unlock()
	second := false
	for _, p := range patches {
		if !strings.Contains(p, "-") || strings.HasPrefix(p, "/") {
			t.Errorf("a PATCH without Content-Range: %q (all: %v)", p, patches)
		}
		if strings.HasPrefix(p, fmt.Sprintf("%d-", chunk)) {
			second = true
		}
	}
	if !second {
		t.Errorf("no blob went up in more than one chunk: %v", patches)
	}
}
