package image

import (
	"encoding/json"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestParseReferenceUppercase: capitals in a repository name are refused
// in dockerd's words, whichever check of the library would catch them.
func TestParseReferenceUppercase(t *testing.T) {
	for _, s := range []string{"Busybox", "UPPER/x", "localhost:5000/Foo:tag", "busybox@SHA256:0123", "example.com/A/b"} {
		_, err := ParseReference(s)
		if err == nil || err.Error() != errUppercase || !cerrdefs.IsInvalidArgument(err) {
			t.Errorf("ParseReference(%q) = %v, want %q (invalid argument)", s, err, errUppercase)
		}
	}
	for s, want := range map[string]string{
		"busybox:TAG":         "docker.io/library/busybox:TAG",
		"localhost:5000/foo":  "localhost:5000/foo:latest",
		"example.com/a/b:1.0": "example.com/a/b:1.0",
		// A registry host may have capitals (moby's TestTagValidPrefixedRepo).
		"HOSTNAME.DOMAIN.COM:443/foo/bar": "HOSTNAME.DOMAIN.COM:443/foo/bar:latest",
		"Example.com/a":                   "Example.com/a:latest",
		"alpine:3.18@sha256:" + hex64:     "docker.io/library/alpine:3.18@sha256:" + hex64,
	} {
		r, err := ParseReference(s)
		if err != nil || r.String() != want {
			t.Errorf("ParseReference(%q) = %v, %v; want %s", s, r, err, want)
		}
	}
}

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// TestIndexHasPlatform: a pull of an index without linux/amd64 is told by
// the index, not by go-containerregistry's error words.
func TestIndexHasPlatform(t *testing.T) {
	index := func(ps ...*v1.Platform) []byte {
		var m v1.IndexManifest
		m.SchemaVersion = 2
		for _, p := range ps {
			m.Manifests = append(m.Manifests, v1.Descriptor{MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 1, Digest: v1.Hash{Algorithm: "sha256", Hex: hex64}, Platform: p})
		}
		b, _ := json.Marshal(m)
		return b
	}
	arm := &v1.Platform{OS: "linux", Architecture: "arm64"}
	amd := &v1.Platform{OS: "linux", Architecture: "amd64", Variant: "v2"}
	win := &v1.Platform{OS: "windows", Architecture: "amd64"}
	for _, c := range []struct {
		manifest []byte
		want     bool
	}{
		{index(arm), false},
		{index(arm, win), false},
		{index(arm, amd), true},
		{index(nil), true}, // no platform: linux/amd64
		{index(), false},
	} {
		if got := indexHasPlatform(c.manifest, linuxAMD64); got != c.want {
			t.Errorf("indexHasPlatform(%s) = %v, want %v", c.manifest, got, c.want)
		}
	}
}
