package network

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// applyDefaultIPv6 gives the default bridge the daemon's IPv6 settings
// (--ipv6, --fixed-cidr-v6), as dockerd makes its default bridge network
// again at each start: with both, containers on it get an IPv6 address of
// the prefix and a default IPv6 route through its first address, the
// bridge's. A change is saved; containers still running keep what they
// have until they stop.
func (s *Service) applyDefaultIPv6(n *netRecord) error {
	var prefix netip.Prefix
	if v := s.cfg.DefaultFixedCIDRv6; v != "" {
		p, err := netip.ParsePrefix(v)
		if err != nil || p.Addr().Is4() || p.Addr().Zone() != "" {
			return fmt.Errorf("invalid fixed-cidr-v6 %q: not an IPv6 prefix", v)
		}
		prefix = p.Masked()
	}
	gw := netip.Addr{}
	if prefix.IsValid() {
		gw = prefix.Addr().Next()
	}
	if n.EnableIPv6 == s.cfg.DefaultIPv6 && n.Subnet6 == prefix && n.Gateway6 == gw {
		return nil
	}
	if n.Subnet6.IsValid() && n.Gateway6.IsValid() && n.Bridge != "" {
		// The old prefix's gateway address leaves the bridge (without
		// IPv6 at all the bridge loses every IPv6 address anyway).
		if l, err := netlink.LinkByName(n.Bridge); err == nil {
			_ = netlink.AddrDel(l, &netlink.Addr{IPNet: &net.IPNet{IP: net.IP(n.Gateway6.AsSlice()), Mask: net.CIDRMask(n.Subnet6.Bits(), 128)}})
		}
	}
	n.EnableIPv6, n.Subnet6, n.Gateway6, n.IPRange6, n.Gateway6Given, n.AuxAddresses6 = s.cfg.DefaultIPv6, prefix, gw, netip.Prefix{}, false, nil
	return s.saveNetwork(n)
}

// macIPv6 is the IPv6 address dockerd gives a container on its default
// bridge when --fixed-cidr-v6 leaves at least 48 host bits: the prefix
// with the container's MAC address in its last six bytes.
func macIPv6(prefix netip.Prefix, mac string) (netip.Addr, bool) {
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 || prefix.Bits() > 80 || prefix.Addr().Is4() {
		return netip.Addr{}, false
	}
	b := prefix.Masked().Addr().As16()
	copy(b[10:], hw)
	return netip.AddrFrom16(b), true
}
