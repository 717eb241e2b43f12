package image

import (
	"context"

	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/opencontainers/go-digest"

	"github.com/berth/berth/filters"
)

// ImageDiskUsage reports the images `system df` lists (the tagged ones and
// those pulled by digest, as `docker images` lists them), each with its
// SharedSize: the bytes of its layers that another image uses too. layers
// is the size of every layer of every image, each counted once.
func (s *Service) ImageDiskUsage(ctx context.Context) (layers int64, images []imagetypes.Summary, err error) {
	list, err := s.List(ctx, filters.Args{}, false)
	if err != nil {
		return 0, nil, err
	}
	recs, err := s.records.list()
	if err != nil {
		return 0, nil, err
	}
	// How many images use each layer, and each layer's own size.
	users := map[digest.Digest]int{}
	chainsOf := map[digest.Digest][]digest.Digest{}
	size := map[digest.Digest]int64{}
	for _, r := range recs {
		diffIDs := make([]digest.Digest, len(r.Layers))
		for i, l := range r.Layers {
			diffIDs[i] = l.DiffID
		}
		chains := ChainIDs(diffIDs)
		chainsOf[r.ID] = chains
		for _, c := range chains {
			users[c]++
			if _, ok := size[c]; ok {
				continue
			}
			var n int64
			if l, err := s.snapshots.Get(ctx, c); err == nil {
				n = l.Size
			}
			size[c] = n
			layers += n
		}
	}
	for i := range list {
		var shared int64
		for _, c := range chainsOf[digest.Digest(list[i].ID)] {
			if users[c] > 1 {
				shared += size[c]
			}
		}
		list[i].SharedSize = shared
		list[i].Containers = 0
	}
	return layers, list, ctx.Err()
}
