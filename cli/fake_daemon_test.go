package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/system"
)

// fakeDaemon is an in-process Engine API server that knows just enough
// endpoints for the CLI's tests: ping, version, info, images (list,
// inspect, history, create, tag, delete), auth. Everything else is 404,
// like a daemon that does not have the object.
type fakeDaemon struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	requests []string      // "METHOD /path?query", version prefix removed
	headers  []http.Header // headers of each request

	images  []image.Summary
	inspect map[string]string // image name → raw inspect JSON
	history map[string][]image.HistoryResponseItem
	// pullStream is sent for POST /images/create, one message per line.
	pullStream []string
	deletes    map[string][]image.DeleteResponse
	users      map[string]string // username → password accepted by /auth
	// extra serves endpoints a test adds; it reports whether it handled
	// the request.
	extra func(w http.ResponseWriter, r *http.Request, path string) bool
}

var versionPrefix = regexp.MustCompile(`^/v1\.\d+`)

func newFakeDaemon(t *testing.T) *fakeDaemon {
	d := &fakeDaemon{
		t:       t,
		inspect: map[string]string{},
		history: map[string][]image.HistoryResponseItem{},
		deletes: map[string][]image.DeleteResponse{},
		users:   map[string]string{},
	}
	d.srv = httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(d.srv.Close)
	return d
}

// host is the daemon's address for -H / BERTH_HOST.
func (d *fakeDaemon) host() string {
	return "tcp://" + strings.TrimPrefix(d.srv.URL, "http://")
}

func (d *fakeDaemon) calls() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.requests...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func notFound(w http.ResponseWriter, msg string) {
	writeJSON(w, http.StatusNotFound, map[string]string{"message": msg})
}

func (d *fakeDaemon) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Api-Version", "1.41")
	w.Header().Set("Ostype", "linux")
	path := versionPrefix.ReplaceAllString(r.URL.Path, "")
	if path != "/_ping" {
		d.mu.Lock()
		call := r.Method + " " + path
		if r.URL.RawQuery != "" {
			call += "?" + r.URL.RawQuery
		}
		d.requests = append(d.requests, call)
		d.headers = append(d.headers, r.Header.Clone())
		d.mu.Unlock()
	}

	switch {
	case path == "/_ping":
		_, _ = io.WriteString(w, "OK")
	case path == "/version":
		writeJSON(w, 200, system.VersionResponse{
			Version: "0.1.0", APIVersion: "1.41", MinAPIVersion: "1.40", Os: "linux", Arch: "amd64",
			Components: []system.ComponentVersion{
				{Name: "Engine", Version: "0.1.0", Details: map[string]string{
					"ApiVersion": "1.41", "MinAPIVersion": "1.40", "GitCommit": "abc1234", "GoVersion": "go1.26",
					"Os": "linux", "Arch": "amd64", "Experimental": "false", "BuildTime": "2026-05-07T21:09:36.000000000+00:00",
				}},
				{Name: "runc", Version: "1.1.5", Details: map[string]string{"GitCommit": "v1.1.5-0-gf19387a"}},
			},
		})
	case path == "/images/json" && r.Method == http.MethodGet:
		writeJSON(w, 200, d.images)
	case path == "/images/create" && r.Method == http.MethodPost:
		w.Header().Set("Content-Type", "application/json")
		for _, m := range d.pullStream {
			_, _ = io.WriteString(w, m+"\r\n")
		}
	case path == "/auth" && r.Method == http.MethodPost:
		var ac registry.AuthConfig
		_ = json.NewDecoder(r.Body).Decode(&ac)
		if pass, ok := d.users[ac.Username]; !ok || pass != ac.Password {
			writeJSON(w, 500, map[string]string{"message": fmt.Sprintf("login attempt to http://%s/v2/ failed with status: 401 Unauthorized", ac.ServerAddress)})
			return
		}
		writeJSON(w, 200, registry.AuthResponse{Status: "Login Succeeded"})
	case strings.HasPrefix(path, "/images/"):
		d.serveImage(w, r, strings.TrimPrefix(path, "/images/"))
	case d.extra != nil && d.extra(w, r, path):
		// handled by a test's own endpoints (containers, exec, volumes ...)
	case strings.HasPrefix(path, "/containers/"):
		notFound(w, "No such container: "+strings.TrimSuffix(strings.TrimPrefix(path, "/containers/"), "/json"))
	default:
		notFound(w, "page not found")
	}
}

func (d *fakeDaemon) serveImage(w http.ResponseWriter, r *http.Request, rest string) {
	switch {
	case r.Method == http.MethodGet && strings.HasSuffix(rest, "/json"):
		name := strings.TrimSuffix(rest, "/json")
		raw, ok := d.inspect[name]
		if !ok {
			notFound(w, fmt.Sprintf("no such image: %s: No such image: %s", name, withLatest(name)))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, raw+"\n")
	case r.Method == http.MethodGet && strings.HasSuffix(rest, "/history"):
		name := strings.TrimSuffix(rest, "/history")
		h, ok := d.history[name]
		if !ok {
			notFound(w, "No such image: "+withLatest(name))
			return
		}
		writeJSON(w, 200, h)
	case r.Method == http.MethodPost && strings.HasSuffix(rest, "/tag"):
		w.WriteHeader(http.StatusCreated)
	case r.Method == http.MethodDelete:
		res, ok := d.deletes[rest]
		if !ok {
			notFound(w, "No such image: "+withLatest(rest))
			return
		}
		writeJSON(w, 200, res)
	default:
		notFound(w, "page not found")
	}
}

func withLatest(name string) string {
	if strings.Contains(name, ":") {
		return name
	}
	return name + ":latest"
}

// result is what one CLI invocation produced.
type result struct {
	stdout, stderr string
	code           int
}

// fixedNow is the clock of every test: 2026-11-27 12:00:00 UTC.
var fixedNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// run executes the berth CLI in-process against d with the given stdin.
// configDir is the BERTH_CONFIG directory ("" for a fresh temporary one).
func (d *fakeDaemon) run(t *testing.T, configDir, stdin string, args ...string) result {
	t.Helper()
	if configDir == "" {
		configDir = t.TempDir()
	}
	var out, errOut strings.Builder
	c := New(strings.NewReader(stdin), &out, &errOut)
	c.Now = func() time.Time { return fixedNow }
	env := map[string]string{EnvHost: d.host(), "BERTH_CONFIG": configDir}
	c.Getenv = func(k string) string { return env[k] }
	defer c.Close()

	root := NewRootCommand(c)
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	if msg := c.ErrorMessage(err); msg != "" {
		fmt.Fprintln(&errOut, msg)
	}
	return result{stdout: out.String(), stderr: errOut.String(), code: ExitCode(err)}
}

// writeConfig creates a config.json with the given content in a new
// directory and returns the directory.
func writeConfig(t *testing.T, content string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func checkOutput(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s:\n--- got\n%s\n--- want\n%s", what, got, want)
	}
}
