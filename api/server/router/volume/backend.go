package volume

import (
	"context"

	volumetypes "github.com/moby/moby/api/types/volume"

	"github.com/berth/berth/filters"
)

// Backend is what the volume routes need from the volume service.
type Backend interface {
	List(ctx context.Context, args filters.Args) ([]volumetypes.Volume, []string, error)
	Get(ctx context.Context, name string) (*volumetypes.Volume, error)
	Create(ctx context.Context, name, driver string, labels, opts map[string]string) (*volumetypes.Volume, error)
	Remove(ctx context.Context, name string, force bool) error
	Prune(ctx context.Context, args filters.Args) (*volumetypes.PruneReport, error)
}
