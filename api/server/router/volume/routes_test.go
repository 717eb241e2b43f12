package volume_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	volumetypes "github.com/moby/moby/api/types/volume"

	"github.com/berth/berth/api/server"
	volumerouter "github.com/berth/berth/api/server/router/volume"
	"github.com/berth/berth/volume"
)

var _ volumerouter.Backend = (*volume.Service)(nil)

type harness struct {
	t   *testing.T
	svc *volume.Service
	srv *server.Server
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	svc, err := volume.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, svc: svc, srv: server.New(server.Config{Version: "test"}, volumerouter.New(svc))}
}

func (h *harness) do(method, path, body string) *httptest.ResponseRecorder {
	h.t.Helper()
	var req *http.Request
	if body == "" {
		req = httptest.NewRequest(method, path, nil)
	} else {
		req = httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.srv.ServeHTTP(rec, req)
	return rec
}

func (h *harness) expect(rec *httptest.ResponseRecorder, code int, msg string) {
	h.t.Helper()
	if rec.Code != code {
		h.t.Fatalf("status %d, want %d: %s", rec.Code, code, rec.Body)
	}
	if msg == "" {
		return
	}
	var e struct{ Message string }
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Message != msg {
		h.t.Fatalf("message\n got %q\nwant %q", rec.Body.String(), msg)
	}
}

func decode[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %s: %v", rec.Body, err)
	}
	return v
}

func filtersQuery(f map[string][]string) string {
	m := map[string]map[string]bool{}
	for k, vs := range f {
		m[k] = map[string]bool{}
		for _, v := range vs {
			m[k][v] = true
		}
	}
	b, _ := json.Marshal(m)
	return "filters=" + url.QueryEscape(string(b))
}

func TestCreateInspectList(t *testing.T) {
	h := newHarness(t)
	rec := h.do("POST", "/v1.50/volumes/create", `{"Name":"web","Driver":"local","DriverOpts":{},"Labels":{"app":"web"}}`)
	h.expect(rec, http.StatusCreated, "")
	v := decode[volumetypes.Volume](t, rec)
	if v.Name != "web" || v.Driver != "local" || v.Scope != "local" || v.Labels["app"] != "web" || v.Options == nil {
		t.Fatalf("created %+v", v)
	}
	if !strings.HasSuffix(v.Mountpoint, "/web/_data") || v.CreatedAt == "" {
		t.Fatalf("created %+v", v)
	}
	// The JSON keys Docker sends, no more.
	var raw map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &raw)
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options", "Scope"}; !slices.Equal(keys, want) {
		t.Fatalf("keys %v", keys)
	}

	// Creating again answers with the existing volume.
	rec = h.do("POST", "/v1.50/volumes/create", `{"Name":"web","Labels":{"app":"other"}}`)
	h.expect(rec, http.StatusCreated, "")
	if again := decode[volumetypes.Volume](t, rec); again.Labels["app"] != "web" || again.CreatedAt != v.CreatedAt {
		t.Fatalf("second create %+v", again)
	}

	// No body: refused as dockerd does, nothing created.
	rec = h.do("POST", "/v1.50/volumes/create", "")
	h.expect(rec, http.StatusBadRequest, "invalid JSON: got EOF while reading request body")

	// An empty object: an anonymous volume.
	rec = h.do("POST", "/v1.50/volumes/create", "{}")
	h.expect(rec, http.StatusCreated, "")
	anon := decode[volumetypes.Volume](t, rec)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(anon.Name) {
		t.Fatalf("anonymous name %q", anon.Name)
	}
	if _, ok := anon.Labels[volume.AnonymousLabel]; !ok {
		t.Fatalf("anonymous labels %v", anon.Labels)
	}

	rec = h.do("GET", "/v1.50/volumes/web", "")
	h.expect(rec, http.StatusOK, "")
	if got := decode[volumetypes.Volume](t, rec); got.Name != "web" || got.Mountpoint != v.Mountpoint {
		t.Fatalf("inspect %+v", got)
	}

	rec = h.do("GET", "/v1.50/volumes", "")
	h.expect(rec, http.StatusOK, "")
	if !strings.Contains(rec.Body.String(), `"Warnings":null`) { // as dockerd sends it
		t.Fatalf("list body %s", rec.Body)
	}
	list := decode[volumetypes.ListResponse](t, rec)
	if len(list.Volumes) != 2 {
		t.Fatalf("list %+v", list)
	}
	rec = h.do("GET", "/v1.50/volumes?"+filtersQuery(map[string][]string{"label": {"app=web"}}), "")
	h.expect(rec, http.StatusOK, "")
	if list := decode[volumetypes.ListResponse](t, rec); len(list.Volumes) != 1 || list.Volumes[0].Name != "web" {
		t.Fatalf("filtered %+v", list)
	}
	// The old filter form, too.
	rec = h.do("GET", "/v1.50/volumes?filters="+url.QueryEscape(`{"name":["^web$"]}`), "")
	h.expect(rec, http.StatusOK, "")
	if list := decode[volumetypes.ListResponse](t, rec); len(list.Volumes) != 1 {
		t.Fatalf("legacy filter %+v", list)
	}
	rec = h.do("GET", "/v1.50/volumes?"+filtersQuery(map[string][]string{"name": {"nothing-matches"}}), "")
	h.expect(rec, http.StatusOK, "")
	if !strings.Contains(rec.Body.String(), `"Volumes":[]`) {
		t.Fatalf("empty list %s", rec.Body)
	}
}

func TestBadRequests(t *testing.T) {
	h := newHarness(t)
	h.expect(h.do("POST", "/v1.50/volumes/create", `{"Name":"x/y"}`), http.StatusBadRequest,
		`create x/y: "x/y" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`)
	h.expect(h.do("POST", "/v1.50/volumes/create", `{"Name":"a"}`), http.StatusBadRequest,
		"create a: volume name is too short, names should be at least two alphanumeric characters")
	h.expect(h.do("POST", "/v1.50/volumes/create", `{"Name":"v2","Driver":"foo"}`), http.StatusNotFound,
		`create v2: error looking up volume plugin foo: plugin "foo" not found`)
	h.expect(h.do("POST", "/v1.50/volumes/create", `{"Name":"v2","DriverOpts":{"bogus":"1"}}`), http.StatusBadRequest,
		`create v2: invalid option: "bogus"`)
	h.expect(h.do("POST", "/v1.50/volumes/create", `{"Name":`), http.StatusBadRequest, "")
	h.expect(h.do("POST", "/v1.50/volumes/create", `{"Name":"cv","ClusterVolumeSpec":{}}`), http.StatusServiceUnavailable,
		`This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.`)
	// Before 1.42 there were no cluster volumes: the spec is ignored.
	h.expect(h.do("POST", "/v1.41/volumes/create", `{"Name":"cv","ClusterVolumeSpec":{}}`), http.StatusCreated, "")

	h.expect(h.do("GET", "/v1.50/volumes/nosuch", ""), http.StatusNotFound, "get nosuch: no such volume")
	h.expect(h.do("GET", "/v1.50/volumes/x/y", ""), http.StatusNotFound, "get x/y: no such volume")
	h.expect(h.do("GET", "/v1.50/volumes?"+filtersQuery(map[string][]string{"bogus": {"x"}}), ""), http.StatusBadRequest, "Invalid filter 'bogus'")
	h.expect(h.do("GET", "/v1.50/volumes?filters=notjson", ""), http.StatusBadRequest, "")
	h.expect(h.do("PUT", "/v1.50/volumes/cv?version=1", `{}`), http.StatusServiceUnavailable,
		"volume update only valid for cluster volumes, but swarm is unavailable")
	h.expect(h.do("POST", "/v1.50/volumes/prune?"+filtersQuery(map[string][]string{"until": {"1h"}}), ""), http.StatusBadRequest, "Invalid filter 'until'")
}

func TestRemove(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.expect(h.do("POST", "/volumes/create", `{"Name":"busy"}`), http.StatusCreated, "")
	c1, c2 := strings.Repeat("a", 64), strings.Repeat("b", 64)
	for _, id := range []string{c1, c2} {
		if _, err := h.svc.Acquire(ctx, "busy", id); err != nil {
			t.Fatal(err)
		}
	}
	inUse := "remove busy: volume is in use - [" + c1 + ", " + c2 + "]"
	h.expect(h.do("DELETE", "/v1.50/volumes/busy", ""), http.StatusConflict, inUse)
	h.expect(h.do("DELETE", "/v1.50/volumes/busy?force=1", ""), http.StatusConflict, inUse)

	h.expect(h.do("DELETE", "/v1.50/volumes/nosuch", ""), http.StatusNotFound, "get nosuch: no such volume")
	h.expect(h.do("DELETE", "/v1.50/volumes/nosuch?force=true", ""), http.StatusNoContent, "")

	for _, id := range []string{c1, c2} {
		if err := h.svc.Release(ctx, "busy", id); err != nil {
			t.Fatal(err)
		}
	}
	rec := h.do("DELETE", "/v1.50/volumes/busy", "")
	h.expect(rec, http.StatusNoContent, "")
	if rec.Body.Len() != 0 {
		t.Fatalf("204 with a body: %q", rec.Body)
	}
	h.expect(h.do("GET", "/v1.50/volumes/busy", ""), http.StatusNotFound, "get busy: no such volume")
}

func TestPrune(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.expect(h.do("POST", "/volumes/create", `{"Name":"named"}`), http.StatusCreated, "")
	anon := decode[volumetypes.Volume](t, h.do("POST", "/volumes/create", `{}`))
	used := decode[volumetypes.Volume](t, h.do("POST", "/volumes/create", `{}`))
	if _, err := h.svc.Acquire(ctx, used.Name, "c1"); err != nil {
		t.Fatal(err)
	}

	// API ≥ 1.42: anonymous volumes only.
	rec := h.do("POST", "/v1.50/volumes/prune", "")
	h.expect(rec, http.StatusOK, "")
	rep := decode[volumetypes.PruneReport](t, rec)
	if !slices.Equal(rep.VolumesDeleted, []string{anon.Name}) {
		t.Fatalf("prune %+v", rep)
	}
	rec = h.do("POST", "/v1.50/volumes/prune", "")
	if !strings.Contains(rec.Body.String(), `"VolumesDeleted":[]`) || !strings.Contains(rec.Body.String(), `"SpaceReclaimed":0`) {
		t.Fatalf("empty prune %s", rec.Body)
	}

	// API < 1.42: every unused volume.
	h.expect(h.do("POST", "/volumes/create", `{"Name":"named2"}`), http.StatusCreated, "")
	rec = h.do("POST", "/v1.41/volumes/prune", "")
	h.expect(rec, http.StatusOK, "")
	if rep := decode[volumetypes.PruneReport](t, rec); !slices.Equal(rep.VolumesDeleted, []string{"named", "named2"}) {
		t.Fatalf("old-API prune %+v", rep)
	}

	// all=true (docker volume prune -a) on a current API.
	h.expect(h.do("POST", "/volumes/create", `{"Name":"named3"}`), http.StatusCreated, "")
	rec = h.do("POST", "/v1.50/volumes/prune?"+filtersQuery(map[string][]string{"all": {"true"}}), "")
	if rep := decode[volumetypes.PruneReport](t, rec); !slices.Equal(rep.VolumesDeleted, []string{"named3"}) {
		t.Fatalf("prune all %+v", rep)
	}
	if _, err := h.svc.Get(ctx, used.Name); err != nil {
		t.Fatalf("in-use volume pruned: %v", err)
	}
}
