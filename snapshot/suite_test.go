package snapshot

import (
	"context"
	"testing"

	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/core/snapshots/testsuite"
)

// TestSnapshotterSuite runs containerd's snapshotter test suite against the
// store's Snapshotter, as berth configures it but for redirect_dir=off
// (its Rename test renames a lower directory, which is EXDEV without
// redirects, as under Docker with Debian's default module options).
func TestSnapshotterSuite(t *testing.T) {
	requireRoot(t)
	testsuite.SnapshotterSuite(t, "berth", func(ctx context.Context, root string) (snapshots.Snapshotter, func() error, error) {
		s, err := newStore(root, nil, []string{"redirect_dir=on", "metacopy=off"})
		if err != nil {
			return nil, nil, err
		}
		return s.Snapshotter(), s.Close, nil
	})
}
