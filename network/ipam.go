package network

import (
	"fmt"
	"net/netip"

	cerrdefs "github.com/containerd/errdefs"
)

// pool hands out the addresses of one subnet, IPv4 or IPv6 (a network
// with IPv6 has one of each). It lives in memory: the
// addresses in use are recorded in the sandboxes' records and the pool is
// rebuilt from them at startup (see Service.load), so no address is ever
// given twice and none outlives the container holding it.
//
// Like Docker, allocation is serial: the next free address after the last
// one given, wrapping around, so a released address is not reused at once
// (stale ARP and conntrack entries of the old holder have time to expire).
type pool struct {
	subnet  netip.Prefix
	rng     netip.Prefix // addresses handed out dynamically (IPRange, or the subnet)
	gateway netip.Addr
	used    map[netip.Addr]string // address → holder (container ID, or "gateway")
	last    netip.Addr
}

func newPool(subnet, rng netip.Prefix, gateway netip.Addr, aux map[string]netip.Addr) *pool {
	subnet = subnet.Masked()
	if !rng.IsValid() {
		rng = subnet
	}
	p := &pool{subnet: subnet, rng: rng.Masked(), gateway: gateway, used: map[netip.Addr]string{}}
	if gateway.IsValid() {
		p.used[gateway] = "gateway"
	}
	for _, a := range aux {
		p.used[a] = "aux"
	}
	return p
}

// bounds are the first and last addresses of pr that may be given: the
// subnet's network address never is, nor an IPv4 subnet's broadcast
// address (as Docker's IPAM: IPv6 has no broadcast, and its last address
// is given like any other).
func (p *pool) bounds(pr netip.Prefix) (netip.Addr, netip.Addr) {
	lo, hi := pr.Masked().Addr(), lastAddr(pr)
	if !p.subnet.Addr().Is4() {
		if lo == p.subnet.Addr() {
			lo = lo.Next()
		}
		return lo, hi
	}
	if p.subnet.Bits() <= 30 {
		if lo == p.subnet.Addr() {
			lo = lo.Next()
		}
		if hi == lastAddr(p.subnet) {
			hi = hi.Prev()
		}
	}
	return lo, hi
}

// lastAddr is the highest address of pr (IPv4 or IPv6).
func lastAddr(pr netip.Prefix) netip.Addr {
	b := pr.Masked().Addr().AsSlice()
	for i := range b {
		switch host := 8*(i+1) - pr.Bits(); {
		case host >= 8:
			b[i] = 0xff
		case host > 0:
			b[i] |= byte(1)<<host - 1
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// usable reports whether a may be given to a container.
func (p *pool) usable(a netip.Addr) bool {
	lo, hi := p.bounds(p.subnet)
	return a.Is4() == p.subnet.Addr().Is4() && p.subnet.Contains(a) && a.Compare(lo) >= 0 && a.Compare(hi) <= 0
}

// family is "IPv4" or "IPv6", for messages.
func (p *pool) family() string {
	if p.subnet.Addr().Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// request reserves a specific address (--ip) for holder.
func (p *pool) request(a netip.Addr, holder string) error {
	if !p.usable(a) {
		return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Invalid address %s: It does not belong to any of this network's subnets", a))
	}
	if h, ok := p.used[a]; ok && h != holder {
		return cerrdefs.ErrConflict.WithMessage(fmt.Sprintf("Address already in use: %s", a))
	}
	p.used[a] = holder
	return nil
}

// allocate gives the next free address to holder.
func (p *pool) allocate(holder string) (netip.Addr, error) {
	lo, hi := p.bounds(p.rng)
	a := lo
	if p.last.IsValid() && p.last.Compare(lo) >= 0 && p.last.Compare(hi) < 0 {
		a = p.last.Next()
	}
	start := a
	for {
		if _, taken := p.used[a]; !taken {
			p.used[a] = holder
			p.last = a
			return a, nil
		}
		if a == hi {
			a = lo
		} else {
			a = a.Next()
		}
		if a == start {
			return netip.Addr{}, fmt.Errorf("no available %s addresses on this network's address pools: %s", p.family(), p.subnet)
		}
	}
}

// release frees a if holder has it.
func (p *pool) release(a netip.Addr, holder string) {
	if h, ok := p.used[a]; ok && h == holder {
		delete(p.used, a)
	}
}

// inUse counts the addresses taken, the gateway included.
func (p *pool) inUse() int { return len(p.used) }

// macFor is Docker's MAC for an IPv4 address: 02:42 then the four bytes.
func macFor(a netip.Addr) string {
	b := a.As4()
	return fmt.Sprintf("02:42:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3])
}
