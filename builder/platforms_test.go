package builder

import (
	"context"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	controlapi "github.com/moby/buildkit/api/services/control"
	"google.golang.org/grpc"
)

// TestMultiPlatformLoad: a solve of several platforms into berth's image
// store is refused with buildx's words before anything is built; one
// platform, or several into another exporter, goes through.
func TestMultiPlatformLoad(t *testing.T) {
	info := &grpc.UnaryServerInfo{FullMethod: "/moby.buildkit.v1.Control/Solve"}
	for _, tc := range []struct {
		platform string
		exporter string
		refused  bool
	}{
		{"linux/amd64,linux/arm64", ExporterMoby, true},
		{"linux/amd64, linux/arm64", ExporterMoby, true},
		{"linux/amd64", ExporterMoby, false},
		{"", ExporterMoby, false},
		{"linux/amd64,linux/arm64", "image", false},
		{"linux/amd64,linux/arm64", "local", false},
	} {
		req := &controlapi.SolveRequest{
			FrontendAttrs: map[string]string{"platform": tc.platform},
			Exporters:     []*controlapi.Exporter{{Type: tc.exporter}},
		}
		called := false
		_, err := multiPlatformLoad(context.Background(), req, info, func(context.Context, any) (any, error) {
			called = true
			return nil, nil
		})
		if tc.refused {
			if called || !cerrdefs.IsNotImplemented(err) || err.Error() != ErrMultiPlatformLoad {
				t.Errorf("%q into %s: called %v, error %v", tc.platform, tc.exporter, called, err)
			}
		} else if !called || err != nil {
			t.Errorf("%q into %s: called %v, error %v, want it built", tc.platform, tc.exporter, called, err)
		}
	}
}
