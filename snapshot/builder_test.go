package snapshot

import (
	"context"
	"slices"
	"testing"
)

// TestSweepBuilder: the collector removes the builder's snapshots nothing
// holds, children first, and keeps the held ones with the chain below
// them; berth's layers and containers' snapshots are not its business,
// and restore leaves the builder's active snapshots alone.
func TestSweepBuilder(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	sn := s.Snapshotter()
	mk := func(key, parent string, commit bool) {
		t.Helper()
		if _, err := sn.Prepare(ctx, key+"-active", parent); err != nil {
			t.Fatal(err)
		}
		if !commit {
			if _, err := sn.Prepare(ctx, key, parent); err != nil {
				t.Fatal(err)
			}
			return
		}
		if err := sn.Commit(ctx, key, key+"-active"); err != nil {
			t.Fatal(err)
		}
	}
	// Two chains: a <- b (active), c <- d (active).
	mk("buildkit-a", "", true)
	mk("buildkit-b", "buildkit-a", false)
	mk("buildkit-c", "", true)
	mk("buildkit-d", "buildkit-c", false)
	// Prepare's "-active" helpers of the uncommitted ones are unheld too.
	if _, err := s.Prepare(ctx, "container1", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveUnused(ctx, func(k string) bool { return k == "container1" }); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Stat(ctx, "buildkit-b"); err != nil {
		t.Fatalf("restore removed a builder snapshot: %v", err)
	}
	removed, _, err := s.SweepBuilder(ctx, func(k string) bool { return k == "buildkit-b" })
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	if want := []string{"buildkit-b-active", "buildkit-c", "buildkit-d", "buildkit-d-active"}; !slices.Equal(removed, want) {
		t.Errorf("removed %v, want %v", removed, want)
	}
	for _, k := range []string{"buildkit-a", "buildkit-b", "container1"} {
		if _, err := sn.Stat(ctx, k); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
}
