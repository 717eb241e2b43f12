package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The suite reads the test registries directly to know what a correct
// pull must produce (digests, layers, history), independently of any
// engine.

const manifestAccept = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, " +
	"application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"

var registryHTTP = &http.Client{Timeout: 30 * time.Second}

func registryGet(method, host, path, basic string) (*http.Response, []byte, error) {
	req, err := http.NewRequest(method, "http://"+host+path, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", manifestAccept)
	if basic != "" {
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(basic)))
	}
	resp, err := registryHTTP.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != 200 {
		return resp, b, fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return resp, b, nil
}

// headManifest returns the digest and media type of repo:ref.
func headManifest(host, repo, ref, basic string) (digest, mediaType string, err error) {
	resp, _, err := registryGet("HEAD", host, "/v2/"+repo+"/manifests/"+ref, basic)
	if err != nil {
		return "", "", err
	}
	return resp.Header.Get("Docker-Content-Digest"), resp.Header.Get("Content-Type"), nil
}

// regImage is what the registry says an image is (linux/amd64 for an index).
type regImage struct {
	Repo           string
	IndexDigest    string   // digest of the index/manifest list, when there is one
	ManifestDigest string   // digest of the linux/amd64 image manifest
	TagDigest      string   // what the tag points at: IndexDigest or ManifestDigest
	ConfigDigest   string   // the image ID an engine must report
	Layers         []string // compressed layer digests, in order
	LayerTypes     []string
	Config         regConfig
}

type regConfig struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
		Cmd        []string `json:"Cmd"`
		Entrypoint []string `json:"Entrypoint"`
	} `json:"config"`
	RootFS struct {
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
	History []struct {
		CreatedBy  string `json:"created_by"`
		EmptyLayer bool   `json:"empty_layer"`
		Comment    string `json:"comment"`
	} `json:"history"`
}

type regManifest struct {
	MediaType string `json:"mediaType"`
	Config    struct {
		Digest string `json:"digest"`
	} `json:"config"`
	Layers []struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
	} `json:"layers"`
	Manifests []struct {
		Digest   string `json:"digest"`
		Platform struct {
			Architecture string `json:"architecture"`
			OS           string `json:"os"`
		} `json:"platform"`
	} `json:"manifests"`
}

// registryImage reads repo:ref from the plain registry (or, with basic
// "user:password", from host).
func registryImage(t *testing.T, host, repo, ref, basic string) regImage {
	t.Helper()
	img := regImage{Repo: repo}
	resp, body, err := registryGet("GET", host, "/v2/"+repo+"/manifests/"+ref, basic)
	if err != nil {
		t.Fatalf("registry %s: %s:%s: %v", host, repo, ref, err)
	}
	var m regManifest
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("registry %s: manifest %s:%s: %v", host, repo, ref, err)
	}
	img.TagDigest = resp.Header.Get("Docker-Content-Digest")
	img.ManifestDigest = img.TagDigest
	if len(m.Manifests) > 0 {
		img.IndexDigest = img.TagDigest
		img.ManifestDigest = ""
		for _, e := range m.Manifests {
			if e.Platform.OS == "linux" && e.Platform.Architecture == "amd64" {
				img.ManifestDigest = e.Digest
			}
		}
		if img.ManifestDigest == "" {
			t.Fatalf("registry %s: index %s:%s has no linux/amd64 entry", host, repo, ref)
		}
		if _, body, err = registryGet("GET", host, "/v2/"+repo+"/manifests/"+img.ManifestDigest, basic); err != nil {
			t.Fatalf("registry %s: %v", host, err)
		}
		m = regManifest{}
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("registry %s: manifest %s@%s: %v", host, repo, img.ManifestDigest, err)
		}
	}
	img.ConfigDigest = m.Config.Digest
	for _, l := range m.Layers {
		img.Layers = append(img.Layers, l.Digest)
		img.LayerTypes = append(img.LayerTypes, l.MediaType)
	}
	if _, body, err = registryGet("GET", host, "/v2/"+repo+"/blobs/"+img.ConfigDigest, basic); err != nil {
		t.Fatalf("registry %s: config of %s:%s: %v", host, repo, ref, err)
	}
	if err := json.Unmarshal(body, &img.Config); err != nil {
		t.Fatalf("registry %s: config of %s:%s: %v", host, repo, ref, err)
	}
	return img
}

// hubImage is registryImage for a Docker Hub name served by the mirror:
// "nginx:alpine" is library/nginx:alpine on 127.0.0.1:5000.
func hubImage(t *testing.T, ref string) regImage {
	t.Helper()
	repo, tag, _ := strings.Cut(ref, ":")
	if !strings.Contains(repo, "/") {
		repo = "library/" + repo
	}
	return registryImage(t, plainRegistry, repo, tag, "")
}

// shortID is the 12-hex form of "sha256:..." that docker prints.
func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
