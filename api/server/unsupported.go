package server

import (
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
)

// unsupported lists Engine API endpoints that dockerd serves and berth does
// not (yet). A request that no route takes but that names one of these is
// answered 501 with what is missing, instead of dockerd's bare "page not
// found" for paths that are not in the API at all. Routes always win: an
// endpoint that gets implemented needs no change here to work.
// (None today: POST /build/cancel, the last, is served since issue 9.)
var unsupported = []struct {
	method, path, what string
}{}

// unsupportedError reports whether method and path name an endpoint berth
// lacks, and says which.
func unsupportedError(method string, segs []string) error {
	for _, u := range unsupported {
		if u.method != method {
			continue
		}
		if match(splitPath(u.path), segs, map[string]string{}) {
			return cerrdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("%s is not supported by berth", u.what))
		}
	}
	return nil
}
