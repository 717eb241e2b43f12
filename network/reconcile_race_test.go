package network

import (
	"context"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
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

// TestReconcileRemovesConnectCutShort (issue 13, crash loop finding): a
// network connect of a running container that a crash cut short between
// plugging its interface and saving its record left a port on the
// network's bridge that no sandbox names, and in the container an
// interface with an address IPAM did not hold. The restart's Reconcile
// removes it (the connect did not happen); the container's recorded
// interface stays.
func TestReconcileRemovesConnectCutShort(t *testing.T) {
	s := newTestService(t)
	ctx := context.Background()
	a, err := s.Create(ctx, CreateRequest{Name: "cuta", IPAM: &IPAMRequest{Config: []IPAMConfigRequest{{Subnet: "10.237.0.0/24"}}}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Create(ctx, CreateRequest{Name: "cutb", IPAM: &IPAMRequest{Config: []IPAMConfigRequest{{Subnet: "10.237.1.0/24"}}}})
	if err != nil {
		t.Fatal(err)
	}
	id := containerID()
	path, err := s.Setup(ctx, req(id, "cut", a.ID, nil))
	if err != nil {
		t.Fatal(err)
	}
	s.mu.RLock()
	kept := s.sandboxes[id].Endpoints[0].HostVeth
	nb := s.networks[b.ID]
	s.mu.RUnlock()
	br, err := netlink.LinkByName(nb.Bridge)
	if err != nil {
		t.Fatal(err)
	}
	// What the cut connect made: a veth on b's bridge, its other end in
	// the container's namespace.
	nsh, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	stray := "vethcut" + randHex(2)
	if err := netlink.LinkAdd(&netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: stray, MasterIndex: br.Attrs().Index},
		PeerName:  "eth1", PeerNamespace: netlink.NsFd(int(nsh)),
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if l, err := netlink.LinkByName(stray); err == nil {
			_ = netlink.LinkDel(l)
		}
	})
	if err := s.Reconcile(ctx, map[string]bool{id: true}); err != nil {
		t.Errorf("reconcile: %v", err)
	}
	if _, err := netlink.LinkByName(stray); err == nil {
		t.Errorf("the port %s of the cut connect is still on bridge %s", stray, nb.Bridge)
	}
	if l, err := netlink.LinkByName(kept); err != nil || l.Attrs().MasterIndex == 0 {
		t.Errorf("the container's recorded port %s: %v", kept, err)
	}
	if err := s.Release(ctx, id); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{a.ID, b.ID} {
		if err := s.Remove(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
}
