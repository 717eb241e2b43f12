package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/moby/api/types/network"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/network/portspec"
)

// portTable records which host ports berth's containers hold, so that a
// second container asking for one gets Docker's "port is already
// allocated" rather than a bind error, and hands out "random" ports
// serially from the kernel's ephemeral range, as Docker's allocator does.
type portTable struct {
	held map[portKey][]holder
	next map[string]uint16 // per protocol: where the next random search starts
	lo   uint16
	hi   uint16
}

type portKey struct {
	proto string
	port  uint16
}

type holder struct {
	ip    netip.Addr
	owner string
}

func newPortTable() *portTable {
	t := &portTable{held: map[portKey][]holder{}, next: map[string]uint16{}, lo: 32768, hi: 60999}
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 {
			lo, err1 := strconv.Atoi(f[0])
			hi, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil && lo > 0 && hi <= 65535 && lo < hi {
				t.lo, t.hi = uint16(lo), uint16(hi)
			}
		}
	}
	return t
}

// clash reports whether ip:port/proto overlaps a held binding: same
// family and same address, or either the wildcard.
func (t *portTable) clash(proto string, ip netip.Addr, port uint16) bool {
	for _, h := range t.held[portKey{proto, port}] {
		if h.ip.Is4() != ip.Is4() {
			continue
		}
		if h.ip == ip || h.ip.IsUnspecified() || ip.IsUnspecified() {
			return true
		}
	}
	return false
}

func (t *portTable) add(proto string, ip netip.Addr, port uint16, owner string) {
	k := portKey{proto, port}
	t.held[k] = append(t.held[k], holder{ip, owner})
}

func (t *portTable) remove(owner string) {
	for k, hs := range t.held {
		kept := hs[:0]
		for _, h := range hs {
			if h.owner != owner {
				kept = append(kept, h)
			}
		}
		if len(kept) == 0 {
			delete(t.held, k)
		} else {
			t.held[k] = kept
		}
	}
}

// candidates yields the host ports to try for a wanted binding.
func (t *portTable) candidates(proto string, r portspec.Range) func(yield func(uint16) bool) {
	return func(yield func(uint16) bool) {
		if r.Start != 0 {
			for p := uint32(r.Start); p <= uint32(r.End); p++ {
				if !yield(uint16(p)) {
					return
				}
			}
			return
		}
		start := t.next[proto]
		if start < t.lo || start > t.hi {
			start = t.lo
		}
		p := start
		for {
			next := p + 1
			if p == t.hi {
				next = t.lo
			}
			t.next[proto] = next
			if !yield(p) {
				return
			}
			p = next
			if p == start {
				return
			}
		}
	}
}

// wanted is one published port asked for.
type wanted struct {
	proto   string
	ctrPort uint16
	hostIP  netip.Addr // invalid: all addresses, both families
	hosts   portspec.Range
}

// wantedPorts collects the bindings of a request: PortBindings, and with
// PublishAllPorts every exposed port without one (random host port).
func wantedPorts(req Request) ([]wanted, []string, error) {
	var out []wanted
	exposed := map[string]bool{}
	hc, cfg := req.HostConfig, req.Config
	if hc == nil {
		return nil, nil, nil
	}
	bound := map[network.Port]bool{}
	for p, bs := range hc.PortBindings {
		exposed[p.String()] = true
		bound[p] = true
		if len(bs) == 0 {
			bs = []network.PortBinding{{}}
		}
		for _, b := range bs {
			var r portspec.Range
			if b.HostPort != "" {
				var err error
				if r, err = portspec.ParseRange(b.HostPort); err != nil {
					return nil, nil, fmt.Errorf("invalid port specification: %q", b.HostPort)
				}
			}
			out = append(out, wanted{proto: string(p.Proto()), ctrPort: p.Num(), hostIP: b.HostIP, hosts: r})
		}
	}
	if cfg != nil {
		for p := range cfg.ExposedPorts {
			exposed[p.String()] = true
			if hc.PublishAllPorts && !bound[p] {
				out = append(out, wanted{proto: string(p.Proto()), ctrPort: p.Num()})
			}
		}
	}
	// As dockerd (go-connections' SortPortMap): the bindings that name a
	// host port first, so a port picked for another binding of the same
	// request never takes one that is named.
	sort.SliceStable(out, func(i, j int) bool {
		if ei, ej := out[i].hosts.Start != 0, out[j].hosts.Start != 0; ei != ej {
			return ei
		}
		if out[i].ctrPort != out[j].ctrPort {
			return out[i].ctrPort < out[j].ctrPort
		}
		return out[i].proto < out[j].proto
	})
	var ex []string
	for p := range exposed {
		ex = append(ex, p)
	}
	sort.Strings(ex)
	return out, ex, nil
}

var hostHasIPv6 = sync.OnceValue(func() bool {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	l.Close()
	return true
})

// publish binds every wanted port (the proxy's listeners hold them) and
// records the bindings in sb.Ports. On error the caller tears down.
func (s *Service) publish(sb *sandbox, req Request, rt *runtimeState) error {
	ws, exposed, err := wantedPorts(req)
	if err != nil {
		return err
	}
	sb.Exposed = exposed
	ip, _ := s.primary(sb)
	if !ip.IsValid() {
		return nil // no network to publish on
	}
	epID := ""
	for _, ep := range sb.Endpoints {
		if ep.IP == ip {
			epID = ep.EndpointID
		}
	}
	ip6 := s.primary6(sb)
	for _, w := range ws {
		var ips []netip.Addr
		switch {
		case !w.hostIP.IsValid():
			ips = []netip.Addr{netip.IPv4Unspecified()}
			if hostHasIPv6() {
				ips = append(ips, netip.IPv6Unspecified())
			}
		default:
			ips = []netip.Addr{w.hostIP.Unmap()}
		}
		var lastErr error
		done := false
		for port := range s.ports.candidates(w.proto, w.hosts) {
			ps, err := s.bindAll(w.proto, ips, port, ip, ip6, w.ctrPort)
			if err != nil {
				lastErr = err
				if w.hosts.Start != 0 && w.hosts.Len() == 1 {
					break
				}
				continue
			}
			for i, p := range ps {
				rt.proxies = append(rt.proxies, p)
				s.ports.add(w.proto, ips[i], port, sb.ContainerID)
				sb.Ports = append(sb.Ports, binding{Proto: w.proto, HostIP: ips[i], HostPort: port, CtrPort: w.ctrPort})
			}
			done = true
			break
		}
		if !done {
			if lastErr == nil {
				lastErr = errors.New("no free host port in range")
			}
			return fmt.Errorf("driver failed programming external connectivity on endpoint %s (%s): %w", sb.Name, epID, lastErr)
		}
	}
	for _, p := range rt.proxies {
		p.serve()
	}
	return nil
}

// proxyTarget is where a published port's proxy on host address hostIP
// relays to: the container's IPv6 address for an IPv6 host address when
// it has one, its IPv4 address otherwise (dockerd 20.10's docker-proxy
// does the same).
func proxyTarget(hostIP, ctr4, ctr6 netip.Addr, port uint16) netip.AddrPort {
	if !hostIP.Is4() && ctr6.IsValid() {
		return netip.AddrPortFrom(ctr6, port)
	}
	return netip.AddrPortFrom(ctr4, port)
}

// bindAll binds port on every address, all or none; the proxies relay to
// ctrPort of the container's address ctr4 or ctr6 (see proxyTarget).
func (s *Service) bindAll(proto string, ips []netip.Addr, port uint16, ctr4, ctr6 netip.Addr, ctrPort uint16) ([]*proxy, error) {
	var out []*proxy
	for _, ip := range ips {
		target := proxyTarget(ip, ctr4, ctr6, ctrPort)
		if s.ports.clash(proto, ip, port) {
			for _, p := range out {
				p.close()
			}
			return nil, fmt.Errorf("Bind for %s failed: port is already allocated", net.JoinHostPort(ip.String(), strconv.Itoa(int(port))))
		}
		p, err := listenProxy(proto, ip, port, target)
		if err != nil {
			for _, p := range out {
				p.close()
			}
			if errors.Is(err, unix.EADDRINUSE) {
				return nil, fmt.Errorf("Error starting userland proxy: %w", err)
			}
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}
