package network

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestParallelSetupsOverlap (issue 8 item 6): the service lock is not held
// across a container's namespace plumbing, so one start's network setup
// does not wait for another's (Compose starts a project's containers in
// parallel). The first setup is held inside its plumbing until a second
// one, on the same user network, has finished: with the lock held across
// the plumbing the second could never finish.
func TestParallelSetupsOverlap(t *testing.T) {
	s := newTestService(t)
	ctx := context.Background()
	n, err := s.Create(ctx, CreateRequest{Name: "par", IPAM: &IPAMRequest{Config: []IPAMConfigRequest{{Subnet: "10.237.0.0/24"}}}})
	if err != nil {
		t.Fatal(err)
	}
	first, second := containerID(), containerID()
	held := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	s.plumbHook = func(id string) {
		if id == first {
			once.Do(func() { close(held) })
			<-release
		}
	}
	errs := make(chan error, 1)
	go func() {
		_, err := s.Setup(ctx, req(first, "first", n.ID, nil))
		errs <- err
	}()
	<-held
	done := make(chan error, 1)
	go func() {
		_, err := s.Setup(ctx, req(second, "second", n.ID, nil))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		close(release)
		t.Fatal("a setup waited for another container's setup to finish")
	}
	// While the first is under way its address is taken and its network
	// in use; inspect does not see it yet.
	if err := s.Remove(ctx, n.ID); err == nil {
		t.Fatal("a network with a setup under way was removed")
	}
	if ip := s.ContainerIP(first); ip != "" {
		t.Errorf("half-made setup visible: %s", ip)
	}
	close(release)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	a, b := s.ContainerIP(first), s.ContainerIP(second)
	if a == "" || b == "" || a == b {
		t.Fatalf("addresses %q and %q", a, b)
	}
	for _, id := range []string{first, second} {
		if err := s.Release(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Remove(ctx, n.ID); err != nil {
		t.Fatal(err)
	}
}
