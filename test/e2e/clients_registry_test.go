package e2e

import (
	"net/http"
	"strings"
	"testing"
)

type distJSON struct {
	Descriptor struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Size      int64  `json:"size"`
	}
	Platforms []struct {
		Architecture string `json:"architecture"`
		OS           string `json:"os"`
		Variant      string `json:"variant"`
	}
}

// TestDistributionInspect (issue 11 item 8): GET /distribution/{name}/json
// answers the registry's descriptor of what the reference names and the
// platforms it offers; credentials come from X-Registry-Auth.
func TestDistributionInspect(t *testing.T) {
	a := requireEnv(t).api()
	bb := hubImage(t, "busybox:latest")
	var d distJSON
	a.call(t, "GET", "/v1.41/distribution/busybox:latest/json", nil, nil).wantStatus(t, 200).decode(t, &d)
	if d.Descriptor.Digest != bb.TagDigest || d.Descriptor.MediaType != "application/vnd.oci.image.manifest.v1+json" || d.Descriptor.Size <= 0 {
		t.Errorf("busybox:latest descriptor %+v, want the registry's %s", d.Descriptor, bb.TagDigest)
	}
	single := d.Platforms
	multi := hubImage(t, "busybox:multi")
	d = distJSON{}
	a.call(t, "GET", "/v1.41/distribution/docker.io/library/busybox:multi/json", nil, nil).wantStatus(t, 200).decode(t, &d)
	if d.Descriptor.Digest != multi.IndexDigest || d.Descriptor.MediaType != "application/vnd.oci.image.index.v1+json" {
		t.Errorf("busybox:multi descriptor %+v, want the index %s", d.Descriptor, multi.IndexDigest)
	}
	var plats []string
	for _, p := range d.Platforms {
		plats = append(plats, p.OS+"/"+p.Architecture+"/"+p.Variant)
	}
	if strings.Join(plats, " ") != "linux/arm64/v8 linux/amd64/" {
		t.Errorf("busybox:multi platforms %v, want the index's two", plats)
	}
	// The auth registry: with credentials.
	hdr := http.Header{"X-Registry-Auth": {registryAuth(authUser, authPassword, authRegistry)}}
	d = distJSON{}
	a.call(t, "GET", "/v1.41/distribution/"+authRegistry+"/printfchamp/busybox:latest/json", nil, hdr).wantStatus(t, 200).decode(t, &d)
	if d.Descriptor.Digest == "" {
		t.Errorf("auth registry descriptor %+v", d)
	}
	if r := a.call(t, "GET", "/v1.41/distribution/"+authRegistry+"/printfchamp/busybox:latest/json", nil, nil); r.Status < 400 {
		t.Errorf("without credentials: %s, want an error", r)
	}
	onlyBerth(t, "dockerd 20.10 lists no platform for a single OCI manifest; later dockerd and berth read its config")
	if len(single) != 1 || single[0].OS != "linux" || single[0].Architecture != "amd64" {
		t.Errorf("busybox:latest platforms %+v, want linux/amd64", single)
	}
}

// TestImageSearch (issue 11 item 8): GET /images/search answers from the
// registry the term names; an unreachable registry is a clear error.
func TestImageSearch(t *testing.T) {
	a := requireEnv(t).api()
	r := a.call(t, "GET", "/v1.41/images/search?term=127.0.0.1:1/busybox", nil, nil)
	if r.Status < 400 || r.message() == "" {
		t.Errorf("search on a registry that is down: %s, want an error that says so", r)
	}
	onlyBerth(t, "dockerd asks only the v1 search API (distribution registries lack it) and Docker Hub, not its mirrors")
	var res []struct {
		Name       string `json:"name"`
		IsOfficial bool   `json:"is_official"`
	}
	a.call(t, "GET", "/v1.41/images/search?term=busy", nil, nil).wantStatus(t, 200).decode(t, &res)
	if len(res) == 0 || res[0].Name != "busybox" || !res[0].IsOfficial {
		t.Errorf("search busy (Docker Hub through the mirror): %+v, want busybox, official", res)
	}
	res = nil
	a.call(t, "GET", "/v1.41/images/search?term="+plainRegistry+"/nginx", nil, nil).wantStatus(t, 200).decode(t, &res)
	if len(res) != 1 || res[0].Name != plainRegistry+"/library/nginx" {
		t.Errorf("search %s/nginx: %+v", plainRegistry, res)
	}
	a.call(t, "GET", "/v1.41/images/search?term=busybox&limit=101", nil, nil).wantError(t, 400, "limit 101 is outside the range of [1, 100]")
	out := cli(t, "docker").ok("search", "--format", "{{.Name}}", "busy").Stdout
	if !strings.Contains(out, "busybox\n") {
		t.Errorf("docker search busy: %q", out)
	}
}
