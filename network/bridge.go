package network

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ensureBridge creates (or checks) the Linux bridge of network n, with the
// gateway address and up. Without a gateway (none given, internal) the
// bridge has no address. A network with IPv6 (hasIPv6) also gets its IPv6
// gateway and fe80::1/64, as dockerd's bridges.
func ensureBridge(n *netRecord) error {
	name := n.Bridge
	link, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return fmt.Errorf("look up bridge %s: %w", name, err)
		}
		// A MAC of its own, set (not left to the kernel): see pinBridgeMAC.
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, TxQLen: -1, HardwareAddr: randomMAC()}}
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
	if err := pinBridgeMAC(link); err != nil {
		return err
	}
	// Before it is up (when the kernel would give it IPv6 link-local
	// addresses and start listening for routers).
	if err := bridgeIPv6Off(name, n.hasIPv6()); err != nil {
		return err
	}
	if n.Gateway.IsValid() {
		if err := ensureAddr(link, n.Gateway, n.Subnet.Bits()); err != nil {
			return err
		}
	}
	if n.hasIPv6() {
		if err := ensureAddr(link, bridgeLinkLocal, 64); err != nil {
			return err
		}
		if err := ensureAddr(link, n.Gateway6, n.Subnet6.Bits()); err != nil {
			return err
		}
		if err := enableForwarding6(); err != nil {
			return fmt.Errorf("enable IPv6 forwarding: %w", err)
		}
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(link); err != nil {
			return fmt.Errorf("bring up %s: %w", name, err)
		}
	}
	return nil
}

// pinBridgeMAC makes the bridge's MAC address one set by berth, so that
// the kernel keeps it. A bridge whose address nobody set takes the lowest
// MAC of its ports and changes it whenever a port with a lower one joins
// or the lowest one leaves (a container's veth, removed with its
// namespace after the container is gone). The containers still hold the
// gateway's old MAC in their ARP caches (confirmed by every TCP ACK) and
// send their replies there: frames to a MAC the bridge no longer owns are
// flooded to the other ports instead of reaching the host, so published
// ports and outbound traffic of the running containers hang until their
// ARP entries go stale (15-45 s, then 5 s of probes). dockerd gives its
// bridges a random MAC for the same reason. A bridge made by an older
// berthd keeps the MAC it has now (its containers know that one); one
// without (no ports: all zeros) gets a random one.
func pinBridgeMAC(link netlink.Link) error {
	name := link.Attrs().Name
	if macIsSet(name, link.Attrs().Index) {
		return nil
	}
	mac := link.Attrs().HardwareAddr
	if len(mac) != 6 || bytes.Equal(mac, make(net.HardwareAddr, 6)) {
		mac = randomMAC()
	}
	if err := netlink.LinkSetHardwareAddr(link, mac); err != nil {
		return fmt.Errorf("set the MAC address of bridge %s: %w", name, err)
	}
	return nil
}

// macIsSet reports whether sysfs says the MAC of the link name (ifindex
// index) was set from user space. sysfs shows the network namespace it was
// mounted in: when that is not berthd's (berthd started with nsenter
// --net), the link there is another or none, and the answer is no (the
// MAC is then set again, to the same value: harmless).
func macIsSet(name string, index int) bool {
	dir := "/sys/class/net/" + name + "/"
	idx, err := os.ReadFile(dir + "ifindex")
	if err != nil || strings.TrimSpace(string(idx)) != strconv.Itoa(index) {
		return false
	}
	t, err := os.ReadFile(dir + "addr_assign_type")
	return err == nil && strings.TrimSpace(string(t)) == addrAssignSet
}

// addrAssignSet is the kernel's NET_ADDR_SET (sysfs addr_assign_type): the
// address was set from user space.
const addrAssignSet = "3"

// randomMAC is a random locally administered unicast MAC address.
func randomMAC() net.HardwareAddr {
	mac := make(net.HardwareAddr, 6)
	_, _ = rand.Read(mac)
	mac[0] = mac[0]&^0x01 | 0x02
	return mac
}

// bridgeLinkLocal is the IPv6 link-local address dockerd gives bridges
// with IPv6.
var bridgeLinkLocal = netip.MustParseAddr("fe80::1")

// ensureAddr gives link the address a/bits unless it has it. IPv6
// addresses skip duplicate address detection (IPAM made them unique): a
// tentative gateway would answer no neighbour solicitation for a second.
func ensureAddr(link netlink.Link, a netip.Addr, bits int) error {
	fam, size := unix.AF_INET, 32
	if !a.Is4() {
		fam, size = unix.AF_INET6, 128
	}
	want := &netlink.Addr{IPNet: &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(bits, size)}}
	if !a.Is4() {
		want.Flags = unix.IFA_F_NODAD
	}
	addrs, err := netlink.AddrList(link, fam)
	if err != nil {
		return err
	}
	for _, have := range addrs {
		if have.IPNet.String() == want.IPNet.String() {
			return nil
		}
	}
	if err := netlink.AddrAdd(link, want); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("address bridge %s: %w", link.Attrs().Name, err)
	}
	return nil
}

// bridgeIPv6Off makes the host ignore IPv6 router advertisements arriving
// on bridge name (accept_ra=0): any container on it (NET_RAW is a default
// capability) could otherwise send one and give the host an address and
// a route of its choosing (the CVE-2020-13401 class). A bridge whose
// network carries no IPv6 has IPv6 off altogether (disable_ipv6=1); one
// with IPv6 (on) keeps accept_ra=0 and turns only that back on. The
// settings are per network namespace: this runs in berthd's own. A host
// without IPv6 has neither file, which is fine unless on asks for IPv6.
func bridgeIPv6Off(name string, on bool) error {
	dir := "/proc/sys/net/ipv6/conf/" + name
	disable := "1"
	if on {
		disable = "0"
	}
	for _, kv := range [][2]string{{"accept_ra", "0"}, {"disable_ipv6", disable}} {
		if err := os.WriteFile(dir+"/"+kv[0], []byte(kv[1]+"\n"), 0o644); err != nil {
			if errors.Is(err, os.ErrNotExist) && !on {
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

// enableForwarding6 turns on IPv6 forwarding (all and default), as dockerd
// does once a network has an IPv6 subnet. Note for hosts that take their
// own IPv6 address from router advertisements: with forwarding on, an
// interface needs accept_ra=2 to keep accepting them (dockerd's caveat too).
func enableForwarding6() error {
	for _, p := range []string{"/proc/sys/net/ipv6/conf/default/forwarding", "/proc/sys/net/ipv6/conf/all/forwarding"} {
		b, err := os.ReadFile(p)
		if err == nil && len(b) > 0 && b[0] == '1' {
			continue
		}
		if err := os.WriteFile(p, []byte("1\n"), 0o644); err != nil {
			return err
		}
	}
	return nil
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
