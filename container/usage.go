package container

import (
	"context"

	"github.com/moby/moby/api/types/container"
)

// ContainerDiskUsage lists every container with the size of its writable
// layer (SizeRw) and of its whole root filesystem (SizeRootFs), for
// `system df`.
func (s *Service) ContainerDiskUsage(ctx context.Context) ([]container.Summary, error) {
	return s.List(ctx, ListOptions{All: true, Size: true})
}
