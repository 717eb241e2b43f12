package container

import (
	"context"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/berth/berth/filters"
)

func TestPruneUntil(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	old := e.create(t, "old", []string{"true"}, nil)
	young := e.create(t, "young", []string{"true"}, nil)
	c, err := e.svc.Get(old)
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.Created = time.Now().Add(-2 * time.Hour)
	c.mu.Unlock()

	for _, bad := range []filters.Args{{"until": {"soon"}}, {"until": {"1h", "2h"}}} {
		if rep, err := e.svc.Prune(ctx, bad); !cerrdefs.IsInvalidArgument(err) {
			t.Fatalf("prune %v: %+v %v, want InvalidArgument", bad, rep, err)
		}
	}
	rep, err := e.svc.Prune(ctx, filters.Args{"until": {"1h"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.ContainersDeleted) != 1 || rep.ContainersDeleted[0] != old {
		t.Fatalf("prune until=1h deleted %v, want only %s", rep.ContainersDeleted, old)
	}
	if _, err := e.svc.Get(young); err != nil {
		t.Fatalf("young container pruned: %v", err)
	}
}
