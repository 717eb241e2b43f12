package network

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/network"
	"github.com/vishvananda/netlink"
)

func TestDefaultBridgePublishedPort(t *testing.T) {
	s := newTestService(t)
	ctx := context.Background()
	id := containerID()
	free := freePort(t)
	r := req(id, "web", "default", map[string][]network.PortBinding{"80/tcp": {{HostPort: itoa(int(free))}}})
	if err := s.Validate(ctx, r); err != nil {
		t.Fatal(err)
	}
	path, err := s.Setup(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if !isNetNS(path) {
		t.Fatalf("%s is not a netns", path)
	}
	// Inside: lo, eth0 with the address and the default route.
	out := run(t, "nsenter", "--net="+path, "ip", "-o", "addr")
	ip := s.ContainerIP(id)
	if !strings.Contains(out, "eth0") || !strings.Contains(out, ip+"/") || !strings.Contains(out, "127.0.0.1/8") {
		t.Fatalf("addresses in netns:\n%s", out)
	}
	rt := run(t, "nsenter", "--net="+path, "ip", "route")
	gw := s.networks[s.sandboxes[id].Endpoints[0].NetworkID].Gateway.String()
	if !strings.Contains(rt, "default via "+gw) {
		t.Fatalf("routes:\n%s", rt)
	}
	mac := run(t, "nsenter", "--net="+path, "ip", "-o", "link", "show", "eth0")
	if !strings.Contains(mac, "link/ether "+macFor(netip.MustParseAddr(ip))) {
		t.Fatalf("mac %s for %s", mac, ip)
	}
	serveIn(t, path, ":80", "hello from web")
	// The walk-through: curl http://localhost:8080.
	mustFetch(t, "", fmtAddr("127.0.0.1", free), "hello from web")
	mustFetch(t, "", fmtAddr("::1", free), "hello from web")
	// A host address (the bridge's own): the kernel's DNAT in output.
	mustFetch(t, "", fmtAddr(gw, free), "hello from web")
	// Direct to the container.
	mustFetch(t, "", fmtAddr(ip, 80), "hello from web")

	// A second container on the same bridge reaches the first directly and
	// through the published port on the gateway (hairpin via the proxy).
	id2 := containerID()
	path2, err := s.Setup(ctx, req(id2, "client", "bridge", nil))
	if err != nil {
		t.Fatal(err)
	}
	mustFetch(t, path2, fmtAddr(ip, 80), "hello from web")
	mustFetch(t, path2, fmtAddr(gw, free), "hello from web")

	// Masquerade rule present.
	ruleset := run(t, "nft", "list", "table", "ip", s.cfg.Prefix)
	sub := s.networks[s.sandboxes[id].Endpoints[0].NetworkID].Subnet.String()
	if !strings.Contains(ruleset, "ip saddr "+sub+" oifname != \""+s.defaultBridge()+"\" masquerade") {
		t.Fatalf("no masquerade rule:\n%s", ruleset)
	}
	if !strings.Contains(ruleset, "dnat to "+ip+":80") {
		t.Fatalf("no dnat rule:\n%s", ruleset)
	}

	// Teardown undoes everything, twice is fine.
	for i := 0; i < 2; i++ {
		if err := s.Teardown(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("netns file left: %v", err)
	}
	if _, err := fetch("", fmtAddr("127.0.0.1", free)); err == nil {
		t.Fatal("port still served after teardown")
	}
	if strings.Contains(run(t, "nft", "list", "table", "ip", s.cfg.Prefix), "dnat to") {
		t.Fatalf("dnat rule left after teardown:\n%s", run(t, "nft", "list", "table", "ip", s.cfg.Prefix))
	}
	if err := s.Release(ctx, id); err != nil {
		t.Fatal(err)
	}
}

func freePort(t testing.TB) uint16 {
	t.Helper()
	for i := 0; i < 100; i++ {
		p := uint16(20000 + (int(randByte())<<8|int(randByte()))%10000)
		if canBind(p) {
			return p
		}
	}
	t.Fatal("no free port")
	return 0
}

// TestBridgeMACStable: a bridge keeps its MAC while containers' veths join
// and leave it. Left to the kernel, a bridge takes the lowest MAC of its
// ports: a running container learned the gateway's MAC while another
// container's veth (the lowest) was on the bridge, that container went
// away (a refused start: its namespace is destroyed asynchronously), and
// the first one's packets went to a MAC the bridge no longer had until its
// ARP entry expired (e2e TestPublishedPorts/allocated-by-another-container:
// the holder's published port accepted connections and answered nothing).
func TestBridgeMACStable(t *testing.T) {
	s := newTestService(t)
	ctx := context.Background()
	port := freePort(t)
	a := containerID()
	pathA, err := s.Setup(ctx, req(a, "holder", "bridge", map[string][]network.PortBinding{"80/tcp": {{HostPort: itoa(int(port))}}}))
	if err != nil {
		t.Fatal(err)
	}
	serveIn(t, pathA, ":80", "hello from holder")
	br := s.defaultBridge()
	mac0 := bridgeMAC(t, br)
	if mac0 == "00:00:00:00:00:00" {
		t.Fatalf("bridge %s has no MAC of its own", br)
	}
	// The host answers on the gateway's address.
	gw := s.networks[s.sandboxes[a].Endpoints[0].NetworkID].Gateway.String()
	ln, err := net.Listen("tcp4", gw+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("hello from the host"))
			c.Close()
		}
	}()
	hostAddr := ln.Addr().String()

	b := containerID()
	if _, err := s.Setup(ctx, req(b, "other", "bridge", nil)); err != nil {
		t.Fatal(err)
	}
	s.mu.RLock()
	vethB := s.sandboxes[b].Endpoints[0].HostVeth
	s.mu.RUnlock()
	// The lowest MAC a port can have: a bridge left to the kernel takes it.
	run(t, "ip", "link", "set", "dev", vethB, "address", "00:00:00:00:00:01")
	if got := bridgeMAC(t, br); got != mac0 {
		t.Errorf("bridge MAC %s once a port with a lower MAC joined, want %s", got, mac0)
	}
	// The holder learns the gateway's MAC now.
	mustFetch(t, pathA, hostAddr, "hello from the host")
	if err := s.Release(ctx, b); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the other container's veth gone", func() (bool, string) {
		_, err := netlink.LinkByName(vethB)
		return err != nil, vethB + " still exists"
	})
	if got := bridgeMAC(t, br); got != mac0 {
		t.Errorf("bridge MAC %s once that port left, want %s", got, mac0)
	}
	// The holder still reaches the host, and its published port answers.
	mustFetch(t, pathA, hostAddr, "hello from the host")
	mustFetch(t, "", fmtAddr("127.0.0.1", port), "hello from holder")
}

func bridgeMAC(t testing.TB, name string) string {
	t.Helper()
	l, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().HardwareAddr.String()
}

// TestEnsureBridgePinsExistingMAC: a bridge made before berth set bridges'
// MACs (an older berthd's, restored) keeps the MAC it has, now set.
func TestEnsureBridgePinsExistingMAC(t *testing.T) {
	needRoot(t)
	name := "bt" + randHex(6) + "x"
	if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = deleteBridge(name) })
	l, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if macIsSet(name, l.Attrs().Index) {
		t.Fatal("a new bridge's MAC is already set: the test proves nothing here")
	}
	before := l.Attrs().HardwareAddr.String()
	if err := ensureBridge(&netRecord{Bridge: name}); err != nil {
		t.Fatal(err)
	}
	if got := bridgeMAC(t, name); got != before {
		t.Errorf("MAC %s, want the one it had, %s", got, before)
	}
	if !macIsSet(name, l.Attrs().Index) {
		t.Error("the MAC is not set (the kernel would change it)")
	}
}

// TestLinkLocalIPs: IPAMConfig.LinkLocalIPs are on the container's
// interface, as dockerd puts them (/16 for IPv4, /64 for IPv6).
func TestLinkLocalIPs(t *testing.T) {
	s := newTestService(t)
	ctx := context.Background()
	id := containerID()
	r := req(id, "ll", "bridge", nil)
	r.Networking = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		"bridge": {IPAMConfig: &network.EndpointIPAMConfig{LinkLocalIPs: []netip.Addr{netip.MustParseAddr("169.254.8.8"), netip.MustParseAddr("fe80::254:88")}}},
	}}
	path, err := s.Setup(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	out := run(t, "nsenter", "--net="+path, "ip", "-o", "addr", "show", "dev", "eth0")
	for _, want := range []string{"inet 169.254.8.8/16", "inet6 fe80::254:88/64"} {
		if !strings.Contains(out, want) {
			t.Errorf("eth0 has no %q:\n%s", want, out)
		}
	}
}
