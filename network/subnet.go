package network

import (
	"net/netip"
)

// defaultPools are the candidates for a network created without a subnet,
// in order: Docker's local pools (172.17-31.0.0/16, then 192.168.0-240.0/20).
// 172.17.0.0/16 is left out: it is docker0's, even while Docker is stopped
// (or not yet installed), and taking it would push Docker somewhere else.
func defaultPools() []netip.Prefix {
	var out []netip.Prefix
	for i := 18; i <= 31; i++ {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(i), 0, 0}), 16))
	}
	for i := 0; i <= 240; i += 16 {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(i), 0}), 20))
	}
	return out
}

// overlaps reports whether two prefixes share an address.
func overlaps(a, b netip.Prefix) bool {
	return a.Overlaps(b)
}

// chooseSubnet returns the first pool that overlaps none of taken: the
// host's routes and addresses and the subnets of berth's other networks.
// A default route (0.0.0.0/0) is not counted as taking anything.
func chooseSubnet(pools, taken []netip.Prefix) (netip.Prefix, bool) {
	for _, p := range pools {
		free := true
		for _, t := range taken {
			if t.Bits() == 0 {
				continue
			}
			if overlaps(p, t) {
				free = false
				break
			}
		}
		if free {
			return p, true
		}
	}
	return netip.Prefix{}, false
}
