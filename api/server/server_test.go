package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/berth/berth/api/server/router"
)

type fakeRouter []router.Route

func (f fakeRouter) Routes() []router.Route { return f }

func TestMatchGreedyImageNames(t *testing.T) {
	vars := map[string]string{}
	if !match(splitPath("/images/{name:.*}/push"), splitPath("/images/127.0.0.1:5101/printfchamp/mytest/push"), vars) {
		t.Fatal("no match")
	}
	if vars["name"] != "127.0.0.1:5101/printfchamp/mytest" {
		t.Fatalf("name = %q", vars["name"])
	}
	vars = map[string]string{}
	if !match(splitPath("/images/{name:.*}"), splitPath("/images/a/b/json"), vars) || vars["name"] != "a/b/json" {
		t.Fatalf("delete pattern: %q", vars["name"])
	}
	if match(splitPath("/containers/{id}/start"), splitPath("/containers//start"), map[string]string{}) {
		t.Fatal("empty segment matched")
	}
}

func TestParseVersion(t *testing.T) {
	for in, want := range map[string][2]string{
		"/v1.41/version": {"1.41", "/version"},
		"/version":       {"", "/version"},
		"/v1.24":         {"1.24", "/"},
		"/volumes":       {"", "/volumes"},
	} {
		v, rest := ParseVersion(in)
		if v != want[0] || rest != want[1] {
			t.Errorf("ParseVersion(%q) = %q,%q", in, v, rest)
		}
	}
}

func TestServerHeadersVersionsAndErrors(t *testing.T) {
	s := New(Config{Version: "test"}, fakeRouter{
		{Method: "GET", Path: "/things/{id}", Handler: func(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
			if vars["id"] == "missing" {
				return cerrdefs.ErrNotFound.WithMessage("No such thing: missing")
			}
			w.WriteHeader(http.StatusNoContent)
			return nil
		}},
	})
	do := func(method, path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec
	}
	rec := do("GET", "/v1.41/things/x")
	if rec.Code != 204 {
		t.Fatalf("status %d", rec.Code)
	}
	for _, h := range []string{"Api-Version", "Ostype", "Docker-Experimental", "Server"} {
		if rec.Header().Get(h) == "" {
			t.Errorf("missing header %s", h)
		}
	}
	rec = do("GET", "/things/missing")
	var body map[string]string
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != 404 || body["message"] != "No such thing: missing" || rec.Header().Get("Api-Version") == "" {
		t.Fatalf("got %d %v", rec.Code, body)
	}
	rec = do("GET", "/v1.99/things/x")
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != 400 || body["message"] != "client version 1.99 is too new. Maximum supported API version is "+DefaultVersion {
		t.Fatalf("too new: %d %v", rec.Code, body)
	}
	if rec = do("GET", "/v1.12/things/x"); rec.Code != 400 {
		t.Fatalf("too old: %d", rec.Code)
	}
	if rec = do("GET", "/nowhere"); rec.Code != 404 {
		t.Fatalf("unknown path: %d", rec.Code)
	}
}

func TestUnsupportedEndpointSaysWhat(t *testing.T) {
	saved := unsupported
	t.Cleanup(func() { unsupported = saved })
	unsupported = append(unsupported, struct{ method, path, what string }{"POST", "/build/cancel", "cancelling a build"})
	s := New(Config{Version: "test"}, fakeRouter{
		{Method: "GET", Path: "/images/search", Handler: func(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
			w.WriteHeader(http.StatusNoContent)
			return nil
		}},
	})
	do := func(method, path string) (int, string) {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		var body struct{ Message string }
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		return rec.Code, body.Message
	}
	if code, msg := do("POST", "/v1.41/build/cancel?id=x"); code != http.StatusNotImplemented || msg != "cancelling a build is not supported by berth" {
		t.Errorf("build cancel without a route: %d %q, want 501 saying what is missing", code, msg)
	}
	if code, _ := do("GET", "/v1.41/images/search"); code != http.StatusNoContent {
		t.Errorf("a route must win over the unsupported list: %d", code)
	}
	if code, msg := do("GET", "/v1.41/no/such/endpoint"); code != http.StatusNotFound || msg != "page not found" {
		t.Errorf("unknown path: %d %q, want 404 page not found as dockerd", code, msg)
	}
}

// TestIdleKeepAliveClosed (issue 13 item 10): a keep-alive connection that
// carries no request for IdleTimeout is closed by the server; a request
// that takes longer than that (a stream) is not cut.
func TestIdleKeepAliveClosed(t *testing.T) {
	const idle = 300 * time.Millisecond
	s := New(Config{Version: "test", IdleTimeout: idle}, fakeRouter{
		{Method: "GET", Path: "/slow", Handler: func(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
			w.WriteHeader(http.StatusOK)
			for i := range 4 {
				fmt.Fprintf(w, "tick %d\n", i)
				w.(http.Flusher).Flush()
				time.Sleep(idle / 2)
			}
			return nil
		}},
	})
	l, err := net.Listen("unix", filepath.Join(t.TempDir(), "api.sock"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Close()
		<-done
	})
	conn, err := net.Dial("unix", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	get := func(path string) string {
		t.Helper()
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("GET %s: body: %v", path, err)
		}
		return string(b)
	}
	// A response that takes twice the idle timeout comes whole.
	if got := get("/slow"); !strings.Contains(got, "tick 3") {
		t.Fatalf("slow response cut: %q", got)
	}
	// The connection stays usable for another request...
	get("/_ping")
	// ...and is closed once idle: the read ends with EOF well before the
	// client's own deadline.
	began := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("idle keep-alive connection: read returned %v after %s, want EOF", err, time.Since(began))
	}
	if d := time.Since(began); d < idle/2 {
		t.Errorf("closed after %s, before the idle timeout %s", d, idle)
	}
}
