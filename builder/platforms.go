package builder

import (
	"context"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	controlapi "github.com/moby/buildkit/api/services/control"
	"google.golang.org/grpc"
)

// ErrMultiPlatformLoad is buildx's refusal of a build for several
// platforms on a daemon whose image store keeps one platform per image
// (its docker driver without the containerd image store; berth's images
// are such).
const ErrMultiPlatformLoad = "Multi-platform build is not supported for the docker driver.\n" +
	"Switch to a different driver, or turn on the containerd image store, and try again.\n" +
	"Learn more at https://docs.docker.com/go/build-multi-platform/"

// multiPlatformLoad refuses, before anything is built, a solve that would
// store a result of several platforms as a berth image (the "moby"
// exporter): buildx sends one when the worker looks like the containerd
// image store's, and berth's images hold one platform. Other exporters
// (push, oci, tar, local) take several platforms.
func multiPlatformLoad(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if sr, ok := req.(*controlapi.SolveRequest); ok && strings.HasSuffix(info.FullMethod, "/Solve") && isMultiPlatformLoad(sr) {
		return nil, cerrdefs.ErrNotImplemented.WithMessage(ErrMultiPlatformLoad)
	}
	return handler(ctx, req)
}

func isMultiPlatformLoad(sr *controlapi.SolveRequest) bool {
	n := 0
	for p := range strings.SplitSeq(sr.FrontendAttrs["platform"], ",") {
		if strings.TrimSpace(p) != "" {
			n++
		}
	}
	if n < 2 {
		return false
	}
	if sr.ExporterDeprecated == ExporterMoby {
		return true
	}
	for _, e := range sr.Exporters {
		if e.GetType() == ExporterMoby {
			return true
		}
	}
	return false
}
