package network

import (
	"net/netip"
	"testing"

	"github.com/google/nftables"
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
