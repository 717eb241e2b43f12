package snapshot

import (
	"context"
	"errors"
	"sort"
	"strings"

	"github.com/containerd/containerd/v2/core/snapshots"
	cerrdefs "github.com/containerd/errdefs"
)

// BuilderKeyPrefix begins the keys (and names) of the builder's snapshots:
// BuildKit's cache records, in this store beside berth's layers and
// containers, held by BuildKit's leases. They are neither layers nor
// containers' snapshots: restore (RemoveUnused) leaves them alone and the
// garbage collector removes them with SweepBuilder.
const BuilderKeyPrefix = "buildkit-"

// SweepBuilder removes every builder snapshot (active or committed) that
// held rejects and that no kept builder snapshot stands on, children
// first, and returns the keys removed and the bytes their usage counted.
// A snapshot something else still stands on is kept.
func (s *Store) SweepBuilder(ctx context.Context, held func(key string) bool) ([]string, int64, error) {
	infos := map[string]snapshots.Info{}
	err := s.walk(ctx, func(_ context.Context, info snapshots.Info) error {
		if strings.HasPrefix(info.Name, BuilderKeyPrefix) {
			infos[info.Name] = info
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	keep := map[string]bool{}
	for k := range infos {
		if !held(k) {
			continue
		}
		// A kept snapshot keeps the chain below it.
		for p := k; p != "" && !keep[p]; p = infos[p].Parent {
			keep[p] = true
		}
	}
	depth := func(k string) int {
		n := 0
		for p := infos[k].Parent; p != "" && n < 10000; p = infos[p].Parent {
			n++
		}
		return n
	}
	var doomed []string
	for k := range infos {
		if !keep[k] {
			doomed = append(doomed, k)
		}
	}
	depths := make(map[string]int, len(doomed))
	for _, k := range doomed {
		depths[k] = depth(k)
	}
	sort.Slice(doomed, func(i, j int) bool { return depths[doomed[i]] > depths[doomed[j]] })
	var removed []string
	var size int64
	var errs []error
	for _, k := range doomed {
		if err := ctx.Err(); err != nil {
			return removed, size, err
		}
		u, _ := s.sn.Usage(ctx, k)
		switch err := s.sn.Remove(ctx, k); {
		case err == nil:
			removed = append(removed, k)
			size += u.Size
		case cerrdefs.IsNotFound(err), cerrdefs.IsFailedPrecondition(err), cerrdefs.IsConflict(err):
			// Gone already, or something stands on it.
		default:
			errs = append(errs, err)
		}
	}
	return removed, size, errors.Join(errs...)
}
