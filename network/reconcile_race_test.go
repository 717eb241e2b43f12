package network

import (
	"context"
	"testing"
	"time"
)

// TestReconcileSparesSetupUnderWay (issue 13, crash loop): berthd's
// Reconcile runs once the container service has restored its containers,
// and by then a restart policy's start may be setting up a container's
// network (restore applies the policies, the first restart comes 100 ms
// later). Reconcile took that setup's freshly pinned namespace for a
// crash's leftover and removed it (and its port rules): the start then
// failed to join it, or ran in a namespace no longer pinned, which the
// next restore took for gone (its addresses released while it ran on).
func TestReconcileSparesSetupUnderWay(t *testing.T) {
	s := newTestService(t)
	ctx := context.Background()
	n, err := s.Create(ctx, CreateRequest{Name: "recrace", IPAM: &IPAMRequest{Config: []IPAMConfigRequest{{Subnet: "10.238.0.0/24"}}}})
	if err != nil {
		t.Fatal(err)
	}
	id := containerID()
	held := make(chan struct{})
	release := make(chan struct{})
	s.plumbHook = func(string) {
		close(held)
		<-release
	}
	type result struct {
		path string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		path, err := s.Setup(ctx, req(id, "restarting", n.ID, nil))
		done <- result{path, err}
	}()
	select {
	case <-held:
	case <-time.After(60 * time.Second):
		t.Fatal("the setup never reached its plumbing")
	}
	// The container is restarting: the container service counts it
	// running.
	rerr := s.Reconcile(ctx, map[string]bool{id: true})
	close(release)
	if rerr != nil {
		t.Errorf("reconcile: %v", rerr)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !isNetNS(r.path) {
		t.Errorf("the namespace of the setup under way is no longer pinned at %s", r.path)
	}
	if err := s.Release(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, n.ID); err != nil {
		t.Fatal(err)
	}
}
