package system

import (
	"context"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/volume"
)

// ImageUsage reports the images `system df` lists, each with its Size and
// SharedSize (the bytes of its layers that other images use too), and the
// bytes of every layer in the store, counted once.
type ImageUsage interface {
	ImageDiskUsage(ctx context.Context) (layersSize int64, images []image.Summary, err error)
}

// ContainerUsage lists every container with SizeRw and SizeRootFs.
type ContainerUsage interface {
	ContainerDiskUsage(ctx context.Context) ([]container.Summary, error)
}

// VolumeUsage lists the local volumes with their UsageData.
type VolumeUsage interface {
	DiskUsage(ctx context.Context) ([]volume.Volume, error)
}

// BuildCacheUsage lists the builder's cache records.
type BuildCacheUsage interface {
	BuildCacheDiskUsage(ctx context.Context) ([]build.CacheRecord, error)
}

// DiskUsageReport is the answer of GET /system/df for API versions before
// 1.52 (every version berth serves): the objects themselves, from which
// clients compute the totals.
type DiskUsageReport struct {
	LayersSize int64               `json:"LayersSize"`
	Images     []image.Summary     `json:"Images"`
	Containers []container.Summary `json:"Containers"`
	Volumes    []volume.Volume     `json:"Volumes"`
	BuildCache []build.CacheRecord `json:"BuildCache"`
}

// DiskUsage answers GET /system/df from the stores' own reports.
type DiskUsage struct {
	Images     ImageUsage
	Containers ContainerUsage
	Volumes    VolumeUsage
	// BuildCache is the builder's cache (nil: the report lists none).
	BuildCache BuildCacheUsage
}

// Object kinds GET /system/df?type= selects (API 1.42 and later).
const (
	ObjectContainer  = "container"
	ObjectImage      = "image"
	ObjectVolume     = "volume"
	ObjectBuildCache = "build-cache"
)

// Usage reports the kinds in types (all of them when types is empty), as
// dockerd does: each image with the number of containers using it, each
// container with its sizes, each local volume with its size and users.
func (d *DiskUsage) Usage(ctx context.Context, types []string) (*DiskUsageReport, error) {
	want := map[string]bool{}
	for _, t := range types {
		switch t {
		case ObjectContainer, ObjectImage, ObjectVolume, ObjectBuildCache:
			want[t] = true
		default:
			return nil, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("unknown object type: %s", t))
		}
	}
	all := len(want) == 0
	rep := &DiskUsageReport{}
	var ctrs []container.Summary
	if all || want[ObjectContainer] || want[ObjectImage] {
		var err error
		if ctrs, err = d.Containers.ContainerDiskUsage(ctx); err != nil {
			return nil, fmt.Errorf("container disk usage: %w", err)
		}
		if all || want[ObjectContainer] {
			rep.Containers = ctrs
		}
	}
	if all || want[ObjectImage] {
		layers, imgs, err := d.Images.ImageDiskUsage(ctx)
		if err != nil {
			return nil, fmt.Errorf("image disk usage: %w", err)
		}
		users := map[string]int64{}
		for _, c := range ctrs {
			users[c.ImageID]++
		}
		for i := range imgs {
			imgs[i].Containers = users[imgs[i].ID]
		}
		rep.LayersSize, rep.Images = layers, imgs
	}
	if all || want[ObjectVolume] {
		vols, err := d.Volumes.DiskUsage(ctx)
		if err != nil {
			return nil, fmt.Errorf("volume disk usage: %w", err)
		}
		rep.Volumes = vols
	}
	if all || want[ObjectBuildCache] {
		rep.BuildCache = []build.CacheRecord{}
		if d.BuildCache != nil {
			bc, err := d.BuildCache.BuildCacheDiskUsage(ctx)
			if err != nil {
				return nil, fmt.Errorf("build cache disk usage: %w", err)
			}
			rep.BuildCache = bc
		}
	}
	return rep, nil
}
