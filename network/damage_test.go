package network

import (
	"net/netip"
	"testing"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// TestParsePortRule: the published port a DNAT rule was made for is read
// back from it (what a damaged sandbox record lost).
func TestParsePortRule(t *testing.T) {
	for _, r := range []portRule{
		{Proto: "tcp", HostIP: netip.IPv4Unspecified(), HostPort: 8080, Ctr: netip.MustParseAddr("172.17.0.2"), CtrPort: 80, Bridge: "berth0"},
		{Proto: "udp", HostIP: netip.MustParseAddr("192.0.2.7"), HostPort: 5353, Ctr: netip.MustParseAddr("10.1.0.9"), CtrPort: 53, Bridge: "berth-abc"},
	} {
		got, ok := parsePortRule(&nftables.Rule{Exprs: portRuleExprs(r)})
		want := binding{Proto: r.Proto, HostIP: r.HostIP, HostPort: r.HostPort, CtrPort: r.CtrPort}
		if !ok || got != want {
			t.Errorf("parsePortRule(%+v) = %+v, %v; want %+v", r, got, ok, want)
		}
	}
	if _, ok := parsePortRule(&nftables.Rule{}); ok {
		t.Error("an empty rule parsed as a port")
	}
}

// TestRebuildSandboxIPv6: a running container's damaged network record is
// rebuilt with its IPv6 address on a network with IPv6, so that address is
// not given to another container.
func TestRebuildSandboxIPv6(t *testing.T) {
	s := newTestService(t)
	n := &netRecord{ID: randHex(64), Name: "n6", Driver: "bridge", Bridge: "x", Subnet: netip.MustParsePrefix("10.236.0.0/24"),
		Gateway: netip.MustParseAddr("10.236.0.1"), EnableIPv6: true, Subnet6: netip.MustParsePrefix("fd00:b5e7:90::/64"), Gateway6: netip.MustParseAddr("fd00:b5e7:90::1")}
	s.mu.Lock()
	s.networks[n.ID] = n
	s.mu.Unlock()
	id := containerID()
	path := s.nsPath(id)
	if err := newNetNS(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = removeNetNS(path) })
	nsh, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	nlh, err := netlink.NewHandleAt(nsh, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer nlh.Close()
	if err := nlh.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "peer0"}); err != nil {
		t.Fatal(err)
	}
	l, err := nlh.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"10.236.0.5/24", "fd00:b5e7:90::5/64"} {
		ipn, _ := netlink.ParseIPNet(a)
		if err := nlh.AddrAdd(l, &netlink.Addr{IPNet: ipn, Flags: unix.IFA_F_NODAD}); err != nil {
			t.Fatal(err)
		}
	}
	sb, err := s.rebuildSandbox(id)
	if err != nil || sb == nil || len(sb.Endpoints) != 1 {
		t.Fatalf("rebuild: %+v %v", sb, err)
	}
	if ep := sb.Endpoints[0]; ep.IP.String() != "10.236.0.5" || ep.IP6.String() != "fd00:b5e7:90::5" || ep.NetworkID != n.ID {
		t.Errorf("rebuilt endpoint %+v, want 10.236.0.5 and fd00:b5e7:90::5 on %s", ep, n.Name)
	}
}
