package image

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// What a registry may make berthd hold in memory or on disk (issue 12
// items 6 and 8). Layers stream to disk; manifests and configs are read
// whole, so they are capped before they are read.
const (
	// maxManifestSize is distribution's limit on a manifest (or index)
	// it accepts; go-containerregistry alone would read up to 100 MiB.
	maxManifestSize = 4 << 20
	// maxConfigSize caps an image config. Real ones are a few KiB (a
	// 125-layer image with long history stays well under 1 MiB); the
	// size comes from the manifest and is checked before the fetch.
	maxConfigSize = 8 << 20
	// maxLayers is dockerd's layer.MaxImageDepth: a deeper image is
	// refused before anything is fetched.
	maxLayers = 125
)

// errManifestTooLarge is returned while a registry's manifest response
// passes maxManifestSize.
var errManifestTooLarge = fmt.Errorf("manifest too large: more than %d bytes", maxManifestSize)

// checkManifest refuses, before any blob is fetched, an image manifest
// whose config or layer count is past berth's limits, or whose sizes are
// negative (go-containerregistry reads a blob of unknown size without a
// bound).
func checkManifest(mf *v1.Manifest) error {
	if n := len(mf.Layers); n > maxLayers {
		return fmt.Errorf("max depth exceeded: the image has %d layers, more than %d", n, maxLayers)
	}
	if mf.Config.Size < 0 || mf.Config.Size > maxConfigSize {
		return fmt.Errorf("image config too large: the manifest declares %d bytes, the limit is %d", mf.Config.Size, maxConfigSize)
	}
	for _, l := range mf.Layers {
		if l.Size < 0 {
			return fmt.Errorf("layer %s: invalid size %d", l.Digest, l.Size)
		}
	}
	return nil
}

// manifestLimit caps the body of every manifest a registry answers with
// at maxManifestSize: one that says it is larger is refused at once, one
// that streams on fails once past the limit.
type manifestLimit struct{ inner http.RoundTripper }

func (m manifestLimit) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := m.inner.RoundTrip(req)
	if err != nil || req.Method != http.MethodGet || !strings.Contains(req.URL.Path, "/manifests/") {
		return resp, err
	}
	if resp.ContentLength > maxManifestSize {
		resp.Body.Close()
		return nil, errManifestTooLarge
	}
	resp.Body = &limitedBody{rc: resp.Body, left: maxManifestSize}
	return resp, nil
}

// limitedBody reads at most left bytes of rc and fails past them.
type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more tells a body of exactly the limit from a longer one.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, errManifestTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
