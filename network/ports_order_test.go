package network

import (
	"slices"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// TestWantedPortsNamedFirst: the bindings naming a host port come before
// those given a random one, as dockerd orders them, so a random pick never
// takes a port named in the same request.
func TestWantedPortsNamedFirst(t *testing.T) {
	hc := &container.HostConfig{PortBindings: network.PortMap{
		network.MustParsePort("80/tcp"):   {{}},
		network.MustParsePort("81/tcp"):   {{HostPort: ""}},
		network.MustParsePort("8080/tcp"): {{HostPort: "32768"}},
		network.MustParsePort("9/udp"):    {{HostPort: "32769-32770"}},
	}}
	ws, _, err := wantedPorts(Request{HostConfig: hc, Config: &container.Config{}})
	if err != nil {
		t.Fatal(err)
	}
	var got []uint16
	for _, w := range ws {
		got = append(got, w.ctrPort)
	}
	if want := []uint16{9, 8080, 80, 81}; !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
}
