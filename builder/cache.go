package builder

import (
	"context"
	"time"

	controlapi "github.com/moby/buildkit/api/services/control"
	"github.com/moby/moby/api/types/build"
	"golang.org/x/sync/errgroup"
)

// BuildCacheDiskUsage lists the build cache's records, as GET /system/df
// reports them.
func (b *Builder) BuildCacheDiskUsage(ctx context.Context) ([]build.CacheRecord, error) {
	resp, err := b.controller.DiskUsage(ctx, &controlapi.DiskUsageRequest{})
	if err != nil {
		return nil, err
	}
	recs := make([]build.CacheRecord, 0, len(resp.Record))
	for _, r := range resp.Record {
		rec := build.CacheRecord{
			ID: r.ID, Parents: r.Parents, Type: r.RecordType, Description: r.Description,
			InUse: r.InUse, Shared: r.Shared, Size: r.Size, UsageCount: int(r.UsageCount),
		}
		if r.CreatedAt != nil {
			rec.CreatedAt = r.CreatedAt.AsTime()
		}
		if r.LastUsedAt != nil {
			t := r.LastUsedAt.AsTime()
			rec.LastUsedAt = &t
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// PruneOptions selects what POST /build/prune removes.
type PruneOptions struct {
	// All removes internal and frontend records too, not only dangling ones.
	All bool
	// KeepDuration keeps records used within this long.
	KeepDuration time.Duration
	// ReservedSpace (keep-storage) keeps this many bytes of cache.
	ReservedSpace int64
	MaxUsedSpace  int64
	MinFreeSpace  int64
	// Filters are BuildKit's record filters (id==..., type==...).
	Filters []string
}

// Prune removes build cache records and returns the space reclaimed and
// the IDs removed.
func (b *Builder) Prune(ctx context.Context, opts PruneOptions) (int64, []string, error) {
	ch := make(chan *controlapi.UsageRecord)
	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error {
		defer close(ch)
		return b.controller.Prune(&controlapi.PruneRequest{
			All:           opts.All,
			KeepDuration:  int64(opts.KeepDuration),
			ReservedSpace: opts.ReservedSpace,
			MaxUsedSpace:  opts.MaxUsedSpace,
			MinFreeSpace:  opts.MinFreeSpace,
			Filter:        opts.Filters,
		}, &pruneStream{streamProxy: streamProxy{ctx: ctx}, ch: ch})
	})
	var size int64
	ids := []string{}
	eg.Go(func() error {
		for r := range ch {
			size += r.Size
			ids = append(ids, r.ID)
		}
		return nil
	})
	if err := eg.Wait(); err != nil {
		return 0, nil, err
	}
	return size, ids, nil
}

type pruneStream struct {
	streamProxy
	ch chan<- *controlapi.UsageRecord
}

func (s *pruneStream) Send(r *controlapi.UsageRecord) error { return s.SendMsg(r) }
func (s *pruneStream) SendMsg(m any) error {
	if r, ok := m.(*controlapi.UsageRecord); ok {
		select {
		case s.ch <- r:
		case <-s.ctx.Done():
			return s.ctx.Err()
		}
	}
	return nil
}
