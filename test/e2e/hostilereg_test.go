package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// rssKiB is a process's resident memory.
func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestPullHostileRegistry (issue 12 item 6): a registry on loopback
// declares a 1 GiB config, or streams a manifest without end. berthd
// refuses both before reading much: no config byte is fetched, the
// manifest is cut at 4 MiB, and berthd's memory stays where it was (it
// grew from 31 MB to 2.8 GB and stayed there).
func TestPullHostileRegistry(t *testing.T) {
	d := requireEnv(t)
	onlyBerth(t, "berth's limits on manifests and configs (dockerd 20.10 has its own)")
	var configBytes, manifestBytes atomic.Int64
	cfgDigest := "sha256:" + strings.Repeat("c", 64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		zeros := make([]byte, 64<<10)
		switch {
		case r.URL.Path == "/v2/":
			w.WriteHeader(200)
		case r.URL.Path == "/v2/hostile/config/manifests/1":
			mf := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":%d,"digest":%q},"layers":[]}`, 1<<30, cfgDigest)
			w.Header().Set("Content-Type", "application/vnd.docker.distribution.manifest.v2+json")
			w.Header().Set("Docker-Content-Digest", "")
			w.Write([]byte(mf))
		case r.URL.Path == "/v2/hostile/config/blobs/"+cfgDigest:
			for configBytes.Load() < 1<<30 {
				n, err := w.Write(zeros)
				configBytes.Add(int64(n))
				if err != nil {
					return
				}
			}
		case r.URL.Path == "/v2/hostile/manifest/manifests/1":
			w.Header().Set("Content-Type", "application/vnd.docker.distribution.manifest.v2+json")
			w.Write([]byte(`{"schemaVersion":2,"x":"`))
			for manifestBytes.Load() < 1<<30 {
				n, err := w.Write(zeros)
				manifestBytes.Add(int64(n))
				if err != nil {
					return
				}
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	a := d.api()
	before := rssKiB(t, d.pid())
	for _, repo := range []string{"hostile/config", "hostile/manifest"} {
		r := a.call(t, "POST", "/images/create?fromImage="+host+"/"+repo+"&tag=1", nil, nil)
		if r.Status == 200 && !strings.Contains(string(r.Body), "error") {
			t.Errorf("pull of %s: %d %s, want it refused", repo, r.Status, r.Body)
		}
	}
	after := rssKiB(t, d.pid())
	if n := configBytes.Load(); n != 0 {
		t.Errorf("berthd fetched %d bytes of a config declared as 1 GiB", n)
	}
	if n := manifestBytes.Load(); n > 32<<20 {
		t.Errorf("berthd read %d bytes of an endless manifest", n)
	}
	if after-before > 100<<10 {
		t.Errorf("berthd's RSS grew from %d KiB to %d KiB", before, after)
	}
}
