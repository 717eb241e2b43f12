package network

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/network"
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
