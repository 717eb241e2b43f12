package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ensureBridge creates (or checks) the Linux bridge of a network, with the
// gateway address and up. Without a gateway (none given, internal) the
// bridge has no address.
func ensureBridge(name string, gw netip.Addr, subnet netip.Prefix) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return fmt.Errorf("look up bridge %s: %w", name, err)
		}
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, TxQLen: -1}}
		if err := netlink.LinkAdd(br); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create bridge %s: %w", name, err)
		}
		if link, err = netlink.LinkByName(name); err != nil {
			return err
		}
	}
	if _, ok := link.(*netlink.Bridge); !ok {
		return fmt.Errorf("interface %s exists and is not a bridge", name)
	}
	// Before it is up (when the kernel would give it IPv6 link-local
	// addresses and start listening for routers).
	if err := bridgeIPv6Off(name); err != nil {
		return err
	}
	if gw.IsValid() {
		want := &netlink.Addr{IPNet: &net.IPNet{IP: net.IP(gw.AsSlice()), Mask: net.CIDRMask(subnet.Bits(), 32)}}
		addrs, err := netlink.AddrList(link, unix.AF_INET)
		if err != nil {
			return err
		}
		found := false
		for _, a := range addrs {
			if a.IPNet.String() == want.IPNet.String() {
				found = true
				continue
			}
		}
		if !found {
			if err := netlink.AddrAdd(link, want); err != nil && !errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("address bridge %s: %w", name, err)
			}
		}
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(link); err != nil {
			return fmt.Errorf("bring up %s: %w", name, err)
		}
	}
	return nil
}

// bridgeIPv6Off makes the host ignore IPv6 router advertisements arriving
// on bridge name (accept_ra=0): any container on it (NET_RAW is a default
// capability) could otherwise send one and give the host an address and
// a route of its choosing (the CVE-2020-13401 class). While berth's
// networks carry no IPv6, the bridge has IPv6 off altogether
// (disable_ipv6=1); an IPv6 network will turn only that back on. The
// settings are per network namespace: this runs in berthd's own. A host
// without IPv6 has neither file, which is fine.
func bridgeIPv6Off(name string) error {
	dir := "/proc/sys/net/ipv6/conf/" + name
	for _, kv := range [][2]string{{"accept_ra", "0"}, {"disable_ipv6", "1"}} {
		if err := os.WriteFile(dir+"/"+kv[0], []byte(kv[1]+"\n"), 0o644); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("bridge %s: set %s=%s: %w", name, kv[0], kv[1], err)
		}
	}
	return nil
}

// iccOption is the network option that turns inter-container
// communication off (Docker's).
const iccOption = "com.docker.network.bridge.enable_icc"

// parseICC reads a network's enable_icc option: true unless it says
// otherwise; a value that is not a boolean is an error, as with dockerd.
func parseICC(opts map[string]string) (bool, error) {
	v, ok := opts[iccOption]
	if !ok {
		return true, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return true, fmt.Errorf("failed to parse %s value: %s (%v)", iccOption, v, err)
	}
	return b, nil
}

// iccOff reports whether containers on n must not reach each other.
func (n *netRecord) iccOff() bool {
	on, err := parseICC(n.Options)
	return err == nil && !on
}

// isolatePort marks a container's veth, a port of an enable_icc=false
// network's bridge, isolated: the bridge forwards nothing between two
// isolated ports (not even ARP), while each still reaches the bridge
// itself, that is the host and, through it, the outside. The routed way
// round (a frame sent to the gateway's MAC for a peer's address) is
// dropped by the firewall (see addNetworkRules).
func isolatePort(h *netlink.Handle, veth string) error {
	l, err := h.LinkByName(veth)
	if err != nil {
		return err
	}
	if err := h.LinkSetIsolated(l, true); err != nil {
		return fmt.Errorf("isolate %s: %w", veth, err)
	}
	return nil
}

// deleteBridge removes a network's bridge; missing is fine.
func deleteBridge(name string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return nil
	}
	if _, ok := link.(*netlink.Bridge); !ok {
		return nil
	}
	return netlink.LinkDel(link)
}

// hostPrefixes lists what the host's routes and addresses cover, for
// choosing a subnet that collides with nothing.
func hostPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	routes, err := netlink.RouteListFiltered(unix.AF_INET, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, err
	}
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		if p, ok := ipnetPrefix(r.Dst); ok && p.Bits() > 0 && !p.Addr().IsLoopback() {
			out = append(out, p)
		}
	}
	addrs, err := netlink.AddrList(nil, unix.AF_INET)
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		if p, ok := ipnetPrefix(a.IPNet); ok && !p.Addr().IsLoopback() {
			out = append(out, p.Masked())
		}
	}
	return out, nil
}

func ipnetPrefix(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	bits, _ := n.Mask.Size()
	return netip.PrefixFrom(a, bits), true
}

// enableForwarding turns on IPv4 forwarding, as Docker does.
func enableForwarding() error {
	const p = "/proc/sys/net/ipv4/ip_forward"
	b, err := os.ReadFile(p)
	if err == nil && len(b) > 0 && b[0] == '1' {
		return nil
	}
	return os.WriteFile(p, []byte("1\n"), 0o644)
}
