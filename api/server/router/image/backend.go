package image

import (
	"context"
	"io"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/container"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth/berth/filters"
	"github.com/berth/berth/image"
	"github.com/berth/berth/progress"
)

// Backend is what the image routes need from the image service.
type Backend interface {
	Pull(ctx context.Context, ref reference.Named, auth *registry.AuthConfig, out progress.Output) error
	Push(ctx context.Context, ref reference.Named, platform *ocispec.Platform, auth *registry.AuthConfig, out progress.Output) error
	List(ctx context.Context, args filters.Args, all bool) ([]imagetypes.Summary, error)
	Inspect(ctx context.Context, name string) (*imagetypes.InspectResponse, error)
	// LegacyContainer: the container an image was committed from and
	// its config, for image inspect before API 1.45.
	LegacyContainer(ctx context.Context, id string) (string, *container.Config, error)
	History(ctx context.Context, name string) ([]imagetypes.HistoryResponseItem, error)
	Tag(ctx context.Context, name, repo, tag string) error
	Remove(ctx context.Context, name string, force, prune bool) ([]imagetypes.DeleteResponse, error)
	Prune(ctx context.Context, args filters.Args) (*image.PruneReport, error)
	Save(ctx context.Context, names []string, w io.Writer) error
	Load(ctx context.Context, r io.Reader, out progress.Output, quiet bool) error
	Import(ctx context.Context, req image.ImportRequest, out progress.Output) (digest.Digest, error)
	Search(ctx context.Context, term string, limit int, args filters.Args, auth *registry.AuthConfig) ([]registry.SearchResult, error)
	DistributionInspect(ctx context.Context, ref reference.Named, auth *registry.AuthConfig) (*registry.DistributionInspect, error)
}
