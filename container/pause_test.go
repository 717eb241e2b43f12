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

// TestKillPaused: kill of a paused container thaws it after the signal,
// as dockerd's, so SIGKILL ends it (before, the frozen container never
// got it: Kill answered after its 10 s wait with it still running,
// paused).
func TestKillPaused(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	id := e.create(t, "killpaused", []string{"sleep", "1000"}, nil)
	if err := e.svc.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Pause(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Kill(ctx, id, "KILL"); err != nil {
		t.Fatal(err)
	}
	c, _ := e.svc.Get(id)
	c.mu.Lock()
	st := c.State
	c.mu.Unlock()
	if st.Running || st.Paused || st.ExitCode != 137 {
		t.Errorf("right after kill of the paused container: Running %v Paused %v ExitCode %d, want exited 137", st.Running, st.Paused, st.ExitCode)
	}
}
