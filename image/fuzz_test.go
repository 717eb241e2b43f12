package image

import (
	"bytes"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// FuzzManifestConfig decodes a registry's manifest, index and config
// bytes as Pull does: checkManifest, the index's platform lookup, the
// config and its chain IDs. No panic; a manifest checkManifest passes is
// within the limits.
func FuzzManifestConfig(f *testing.F) {
	f.Add(fakeManifest(1000, 2))
	f.Add(fakeManifest(-1, 1))
	f.Add(fakeManifest(1<<30, maxLayers+1))
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"digest":"sha256:` + string(bytes.Repeat([]byte("a"), 64)) + `","size":1,"platform":{"os":"linux","architecture":"amd64"}}]}`))
	f.Add([]byte(`{"architecture":"amd64","os":"linux","config":{"Env":["A=b"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:` + string(bytes.Repeat([]byte("b"), 64)) + `","x"]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if mf, err := v1.ParseManifest(bytes.NewReader(data)); err == nil {
			if checkManifest(mf) == nil {
				if len(mf.Layers) > maxLayers || mf.Config.Size > maxConfigSize || mf.Config.Size < 0 {
					t.Fatalf("checkManifest passed %d layers, config of %d bytes", len(mf.Layers), mf.Config.Size)
				}
			}
		}
		_ = indexHasPlatform(data, linuxAMD64)
		var cfg ImageConfig
		if jsonUnmarshal(data, &cfg) == nil {
			_ = ChainIDs(cfg.RootFS.DiffIDs)
		}
		// A manifest body is never read past the limit (scaled down).
		b := &limitedBody{rc: io.NopCloser(bytes.NewReader(data)), left: 64}
		got, err := io.ReadAll(b)
		if len(got) > 64 || (len(data) > 64 && err != errManifestTooLarge) || (len(data) <= 64 && err != nil) {
			t.Fatalf("limited read of %d bytes: %d, %v", len(data), len(got), err)
		}
	})
}

// FuzzParseReference parses image references as the API receives them
// (pull's fromImage and tag, push, any name): no panic, and a reference
// that parses prints as one that parses to itself.
func FuzzParseReference(f *testing.F) {
	for _, s := range []string{"busybox", "busybox:latest", "127.0.0.1:5000/a/b:1", "docker.io/library/nginx@sha256:" + string(bytes.Repeat([]byte("c"), 64)), "UPPER", "a//b", "a:b:c", "sha256:abc", ":tag", "localhost/x"} {
		f.Add(s, "latest")
	}
	f.Fuzz(func(t *testing.T, s, tag string) {
		if ref, err := ParseReference(s); err == nil {
			again, err := ParseReference(ref.String())
			if err != nil || again.String() != ref.String() {
				t.Fatalf("%q parsed as %q, which parses as %v, %v", s, ref.String(), again, err)
			}
		}
		_, _ = ParsePullReference(s, tag)
		_, _ = ParsePushReference(s, tag)
		_, _ = parseNormalized(s)
	})
}
