package builder

import (
	"context"
	"fmt"

	"github.com/containerd/containerd/v2/core/images"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/source"
	"github.com/moby/buildkit/source/containerimage"
	"github.com/moby/buildkit/util/resolver"
)

// berthImages is the worker's image store: berth's images, looked up by
// full reference ("docker.io/library/alpine:3.18"), so that a FROM image
// berth holds is used from berth's store (see preferLocal). Naming the
// images a build exports is accepted and changes nothing: the moby
// exporter names them in berth's store (ImportBuilt).
type berthImages struct {
	images Images
}

func (s berthImages) Get(ctx context.Context, name string) (images.Image, error) {
	return s.images.LocalImage(ctx, name)
}

// List lists berth's images: BuildKit reads their manifests to tell
// which cache records hold layers images use (shared: listed so by
// system df -v and kept by a prune without --all, as under dockerd).
func (s berthImages) List(ctx context.Context, _ ...string) ([]images.Image, error) {
	return s.images.LocalImages(ctx)
}

func (berthImages) Create(_ context.Context, img images.Image) (images.Image, error) {
	return img, nil
}

func (berthImages) Update(_ context.Context, img images.Image, _ ...string) (images.Image, error) {
	return img, nil
}

func (berthImages) Delete(context.Context, string, ...images.DeleteOpt) error { return nil }

// preferLocal is the docker-image source with Docker's default resolve
// mode: an image berth's store holds under the FROM name is used from
// there, without asking the registry (dockerd's builder does the same:
// "default == prefer local"); --pull (force-pull) still asks the
// registry, and an image berth lacks is pulled. BuildKit's own default is
// the registry first, the local store only when the registry fails.
type preferLocal struct {
	*containerimage.Source
}

func (s preferLocal) Identifier(scheme, ref string, attrs map[string]string, platform *pb.Platform) (source.Identifier, error) {
	id, err := s.Source.Identifier(scheme, ref, attrs, platform)
	if err != nil {
		return nil, err
	}
	if img, ok := id.(*containerimage.ImageIdentifier); ok && img.ResolveMode == resolver.ResolveModeDefault {
		img.ResolveMode = resolver.ResolveModePreferLocal
	}
	return id, nil
}

// localFirst turns the default resolve mode of an image metadata request
// (a frontend resolving FROM's config) into prefer-local, as preferLocal
// does for the image source itself.
func localFirst(mode string) (string, error) {
	rm, err := resolver.ParseImageResolveMode(mode)
	if err != nil {
		return "", fmt.Errorf("%w: %w", cerrdefs.ErrInvalidArgument, err)
	}
	if rm == resolver.ResolveModeDefault {
		rm = resolver.ResolveModePreferLocal
	}
	return rm.String(), nil
}
