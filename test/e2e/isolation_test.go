package e2e

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// bridgeFor is the name of the interface in the sandbox that holds addr
// (a network's gateway: its bridge).
func bridgeFor(t *testing.T, sb *netSandbox, addr string) string {
	t.Helper()
	for _, l := range lines(sb.sh("ip", "-o", "-4", "addr", "show")) {
		f := strings.Fields(l)
		if len(f) >= 4 && f[2] == "inet" && strings.HasPrefix(f[3], addr+"/") {
			return f[1]
		}
	}
	t.Fatalf("no interface in the sandbox holds %s:\n%s", addr, sb.sh("ip", "-o", "-4", "addr", "show"))
	return ""
}

// netGateway is a network's gateway address: inspect's, or the subnet's
// first address (dockerd shows none unless it was given).
func netGateway(t *testing.T, a *apiClient, name string) string {
	t.Helper()
	n := inspectNet(t, a, name)
	if len(n.IPAM.Config) == 0 {
		t.Fatalf("network %s has no IPAM config: %+v", name, n.IPAM)
	}
	if gw := n.IPAM.Config[0].Gateway; gw != "" {
		return gw
	}
	p, err := netip.ParsePrefix(n.IPAM.Config[0].Subnet)
	if err != nil {
		t.Fatalf("network %s: subnet %q: %v", name, n.IPAM.Config[0].Subnet, err)
	}
	return p.Masked().Addr().Next().String()
}

// sysctl reads a sysctl in the sandbox's network namespace.
func (sb *netSandbox) sysctl(path string) string {
	sb.t.Helper()
	return strings.TrimSpace(sb.sh("cat", "/proc/sys/"+path))
}

// captureRA watches ifname in the sandbox for an IPv6 router advertisement
// that carries prefix; seen is closed when one arrives.
func captureRA(t *testing.T, sb *netSandbox, ifname string, prefix netip.Prefix) (seen chan struct{}) {
	t.Helper()
	ifi := -1
	var fd int
	err := inNetns(sb.path, func() error {
		i, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		ifi = i.Index
		// Datagrams: the IPv6 packet without its Ethernet header;
		// non-blocking, so that closing the file ends a pending read.
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, int(htons(unix.ETH_P_IPV6)))
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IPV6), Ifindex: ifi})
	})
	if err != nil {
		t.Fatalf("capture on %s: %v", ifname, err)
	}
	f := os.NewFile(uintptr(fd), "capture")
	seen = make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	t.Cleanup(func() { f.Close(); wg.Wait() })
	want := prefix.Addr().As16()
	go func() {
		defer wg.Done()
		buf := make([]byte, 2048)
		for {
			n, err := f.Read(buf)
			if err != nil {
				return
			}
			// IPv6 header (40 bytes), next header ICMPv6, type 134, and the prefix somewhere in it.
			p := buf[:n]
			if len(p) > 41 && p[6] == 58 && p[40] == 134 && bytes.Contains(p[40:], want[:8]) {
				close(seen)
				return
			}
		}
	}()
	return seen
}

func htons(v uint16) uint16 { return binary.BigEndian.Uint16(binary.NativeEndian.AppendUint16(nil, v)) }

// TestBridgeIgnoresRouterAdvertisements (issue 12, item 3; the
// CVE-2020-13401 class): a container (NET_RAW is a default capability)
// sends router advertisements on its network; the host takes neither an
// address nor a route from them. Every bridge the daemon made has
// accept_ra=0; berth's also have IPv6 off while they carry none.
func TestBridgeIgnoresRouterAdvertisements(t *testing.T) {
	sb, nd := newNetTarget(t)
	a := nd.api()
	tool := sb.tool()
	c := cliFor(t, "docker", nd.daemon)
	freeSubnet(t, sb, "10.126.0.0/24")
	user := netName("ra")
	c.ok("network", "create", "--subnet", "10.126.0.0/24", user)
	nd.rmNetLater(t, user)

	for i, netw := range []string{"bridge", user} {
		br := bridgeFor(t, sb, netGateway(t, a, netw))
		if got := sb.sysctl("net/ipv6/conf/" + br + "/accept_ra"); got != "0" {
			t.Errorf("network %s: bridge %s has accept_ra=%s, want 0", netw, br, got)
		}
		prefix := netip.MustParsePrefix(fmt.Sprintf("2001:db8:bad:%d::/64", i+1))
		seen := captureRA(t, sb, br, prefix)
		c.ok("run", "--rm", "--network", netw, "-v", tool+":/nettool:ro", "busybox", "/nettool", "ra", "eth0", prefix.String())
		select {
		case <-seen:
		case <-time.After(10 * time.Second):
			t.Fatalf("network %s: the router advertisement never reached bridge %s", netw, br)
		}
		// The kernel handles it as it arrives; give it a moment to show.
		bad := prefix.Addr().String()
		bad = bad[:len(bad)-2] // "2001:db8:bad:1:"
		took := ""
		poll(2*time.Second, func() bool {
			addrs := sb.sh("ip", "-6", "addr", "show", "dev", br)
			routes := sb.sh("ip", "-6", "route", "show")
			switch {
			case strings.Contains(addrs, bad):
				took = "an address:\n" + addrs
			case strings.Contains(routes, bad) || strings.Contains(routes, "default via fe80"):
				took = "a route:\n" + routes
			}
			return took != ""
		})
		if took != "" {
			t.Errorf("network %s: after a container's router advertisement for %s, the host took %s", netw, prefix, took)
		}
	}

	onlyBerth(t, "dockerd 20.10 leaves IPv6 on in its bridges (link-local only)")
	for _, netw := range []string{"bridge", user} {
		br := bridgeFor(t, sb, netGateway(t, a, netw))
		if got := sb.sysctl("net/ipv6/conf/" + br + "/disable_ipv6"); got != "1" {
			t.Errorf("network %s: bridge %s has disable_ipv6=%s, want 1 (it carries no IPv6)", netw, br, got)
		}
	}
}

// TestInternalNetworkHostUnreachable (issue 12, item 4): a container on an
// --internal network reaches no service of the host, not through the
// host's address on the bridge nor through any other of its addresses; the
// same probe from an ordinary network does. The host still reaches the
// containers, names resolve and the containers talk to each other.
// dockerd (20.10 and since) lets internal containers reach the host's
// services: that part is berth's.
func TestInternalNetworkHostUnreachable(t *testing.T) {
	sb, nd := newNetTarget(t)
	a := nd.api()
	tool := sb.tool()
	c := cliFor(t, "docker", nd.daemon)
	freeSubnet(t, sb, "10.127.0.0/24")
	freeSubnet(t, sb, "10.128.0.0/24")
	serveHost(t, sb, "18080")
	in, open := netName("internal"), netName("open")
	c.ok("network", "create", "--internal", "--subnet", "10.127.0.0/24", in)
	nd.rmNetLater(t, in)
	c.ok("network", "create", "--subnet", "10.128.0.0/24", open)
	nd.rmNetLater(t, open)

	// Names resolve, containers talk, the host reaches them.
	peer := netName("peer")
	nd.rmLater(t, peer)
	c.ok(append([]string{"run", "-d", "--name", peer, "--network", in, "busybox"}, webCmd("peer")...)...)
	if r := c.run("run", "--rm", "--network", in, "-v", tool+":/nettool:ro", "busybox", "/nettool", "get", "http://"+peer+"/"); !strings.Contains(r.Stdout, "hi-from-peer") {
		t.Errorf("on the internal network, http://%s/ did not answer: %q %q", peer, r.Stdout, r.Stderr)
	}
	waitHTTP(t, sb.path, "http://"+netCtrIP(t, a, peer, in)+"/", "hi-from-peer", 10*time.Second)

	probe := func(netw string) string {
		gw := netGateway(t, a, netw)
		return c.run("run", "--rm", "--network", netw, "-v", tool+":/nettool:ro", "busybox", "sh", "-c",
			"/nettool get -once -t 3 http://"+gw+":18080/ && echo REACHED-GATEWAY; /nettool get -once -t 3 http://"+sbHostAddr+":18080/ && echo REACHED-HOST; true").Stdout
	}
	if out := probe(open); !strings.Contains(out, "REACHED-GATEWAY") {
		t.Fatalf("from an ordinary network, the host's service on the gateway address did not answer: %q", out)
	}

	onlyBerth(t, "dockerd lets containers on an --internal network reach the host's services through the bridge's address (moby/libnetwork#1151)")
	out := probe(in)
	if strings.Contains(out, "REACHED-GATEWAY") {
		t.Errorf("a container on an --internal network reached the host's service on its bridge address %s:18080: %q", netGateway(t, a, in), out)
	}
	if strings.Contains(out, "REACHED-HOST") {
		t.Errorf("a container on an --internal network reached the host's service on %s:18080: %q", sbHostAddr, out)
	}
}

// TestICCDisabled (issue 12, item 5): on a network with
// com.docker.network.bridge.enable_icc=false, containers do not reach each
// other, and still reach the host and the outside; on an ordinary network
// they reach each other.
func TestICCDisabled(t *testing.T) {
	sb, nd := newNetTarget(t)
	tool := sb.tool()
	a := nd.api()
	c := cliFor(t, "docker", nd.daemon)
	freeSubnet(t, sb, "10.129.0.0/24")
	freeSubnet(t, sb, "10.130.0.0/24")
	serveHost(t, sb, "18080")
	serveOutside(t, sb, "18090")
	noicc, icc := netName("noicc"), netName("icc")
	c.ok("network", "create", "--subnet", "10.129.0.0/24", "-o", "com.docker.network.bridge.enable_icc=false", noicc)
	nd.rmNetLater(t, noicc)
	c.ok("network", "create", "--subnet", "10.130.0.0/24", icc)
	nd.rmNetLater(t, icc)
	if got := inspectNet(t, a, noicc).Options["com.docker.network.bridge.enable_icc"]; got != "false" {
		t.Errorf("network inspect %s: Options enable_icc = %q, want false", noicc, got)
	}

	for _, netw := range []string{icc, noicc} {
		web := netName("iccweb")
		nd.rmLater(t, web)
		c.ok(append([]string{"run", "-d", "--name", web, "--network", netw, "busybox"}, webCmd("iccweb")...)...)
		ip := netCtrIP(t, a, web, netw)
		r := c.run("run", "--rm", "--network", netw, "-v", tool+":/nettool:ro", "busybox", "sh", "-c",
			"/nettool get -once -t 3 http://"+ip+"/ && echo REACHED-PEER; echo ===; /nettool get http://"+sbHostAddr+":18080/; /nettool get http://"+sbClientAddr+":18090/")
		peer, rest, _ := strings.Cut(r.Stdout, "===")
		if netw == icc && !strings.Contains(peer, "hi-from-iccweb") {
			t.Errorf("on %s (icc on), the peer %s did not answer: %q %q", netw, ip, peer, r.Stderr)
		}
		if netw == noicc && (strings.Contains(peer, "REACHED-PEER") || strings.Contains(peer, "hi-from-iccweb")) {
			t.Errorf("on %s (enable_icc=false), a container reached its peer %s: %q", netw, ip, peer)
		}
		for _, want := range []string{"host-says-hi", "outside-says-hi"} {
			if !strings.Contains(rest, want) {
				t.Errorf("on %s: no %q from the host and the outside: %q %q", netw, want, rest, r.Stderr)
			}
		}
	}
}
