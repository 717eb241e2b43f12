package network

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// dnsAddr is the embedded DNS server's address inside a container, as
// Docker's.
const dnsAddr = "127.0.0.11"

// dnsServer answers on 127.0.0.11:53 (UDP and TCP) inside one container's
// namespace. Its sockets are opened by a thread that enters the namespace
// for that moment only (see inNetNS): sockets keep the namespace they were
// made in, so the serving goroutines run on ordinary threads in the host's
// namespace, and forwarded queries leave from the host, where the host's
// resolvers (even 127.0.0.53) are reachable.
type dnsServer struct {
	s    *Service
	id   string // container ID
	udp  net.PacketConn
	tcp  net.Listener
	wg   sync.WaitGroup
	once sync.Once
}

// startDNS starts the embedded DNS server of sb if it is on a
// user-defined network.
func (s *Service) startDNS(sb *sandbox, rt *runtimeState) error {
	need := false
	for _, ep := range sb.Endpoints {
		if n := s.networks[ep.NetworkID]; n != nil && !n.Predefined && ep.IP.IsValid() {
			need = true
		}
	}
	if !need || rt.dns != nil {
		return nil
	}
	d := &dnsServer{s: s, id: sb.ContainerID}
	err := inNetNS(sb.NetNS, func() error {
		var err error
		if d.udp, err = net.ListenPacket("udp4", dnsAddr+":53"); err != nil {
			return err
		}
		if d.tcp, err = net.Listen("tcp4", dnsAddr+":53"); err != nil {
			d.udp.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	d.wg.Add(2)
	go d.serveUDP()
	go d.serveTCP()
	rt.dns = d
	return nil
}

// startRuntime restarts the proxies and DNS server of a sandbox that kept
// running while berthd was down. A port taken meanwhile is logged, not
// fatal: the kernel's DNAT path still serves it.
func (s *Service) startRuntime(sb *sandbox, rt *runtimeState) error {
	ip, _ := s.primary(sb)
	ip6 := s.primary6(sb)
	for _, b := range sb.Ports {
		if !ip.IsValid() {
			break
		}
		p, err := listenProxy(b.Proto, b.HostIP, b.HostPort, proxyTarget(b.HostIP, ip, ip6, b.CtrPort))
		if err != nil {
			s.log.Warn("network: cannot hold published port again", "container", sb.ContainerID, "port", b.HostPort, "err", err)
			continue
		}
		p.serve()
		rt.proxies = append(rt.proxies, p)
	}
	return s.startDNS(sb, rt)
}

func (d *dnsServer) close() {
	d.once.Do(func() {
		d.udp.Close()
		d.tcp.Close()
	})
	d.wg.Wait()
}

func (d *dnsServer) serveUDP() {
	defer d.wg.Done()
	buf := make([]byte, 4096)
	for {
		n, from, err := d.udp.ReadFrom(buf)
		if err != nil {
			if isClosed(err) {
				return
			}
			continue
		}
		q := append([]byte(nil), buf[:n]...)
		go func() {
			if resp := d.answer(q, "udp"); resp != nil {
				_, _ = d.udp.WriteTo(resp, from)
			}
		}()
	}
}

func (d *dnsServer) serveTCP() {
	defer d.wg.Done()
	for {
		c, err := d.tcp.Accept()
		if err != nil {
			if isClosed(err) {
				return
			}
			continue
		}
		go func() {
			defer c.Close()
			r := bufio.NewReader(c)
			for {
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				var l [2]byte
				if _, err := io.ReadFull(r, l[:]); err != nil {
					return
				}
				q := make([]byte, binary.BigEndian.Uint16(l[:]))
				if _, err := io.ReadFull(r, q); err != nil {
					return
				}
				resp := d.answer(q, "tcp")
				if resp == nil {
					return
				}
				out := binary.BigEndian.AppendUint16(nil, uint16(len(resp)))
				if _, err := c.Write(append(out, resp...)); err != nil {
					return
				}
			}
		}()
	}
}

func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed)
}

// answer resolves a query: names of containers sharing a network with the
// asker locally, anything else by the upstream resolvers (none for a
// container only on --internal networks).
func (d *dnsServer) answer(q []byte, transport string) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(q)
	if err != nil {
		return nil
	}
	question, err := p.Question()
	if err != nil {
		return reply(h, nil, dnsmessage.RCodeFormatError, nil)
	}
	name := strings.ToLower(strings.TrimSuffix(question.Name.String(), "."))
	ips, ptr, internal, upstreams := d.s.resolve(d.id, name, question.Type)
	if len(ips) > 0 || ptr != "" {
		// A name berth knows: its IPv4 addresses for A, its IPv6 ones
		// for AAAA (none without IPv6: NOERROR, no answer, as dockerd).
		return reply(h, &question, dnsmessage.RCodeSuccess, func(b *dnsmessage.Builder) error {
			rh := dnsmessage.ResourceHeader{Name: question.Name, Class: dnsmessage.ClassINET, TTL: 600}
			if ptr != "" {
				n, err := dnsmessage.NewName(ptr + ".")
				if err != nil {
					return err
				}
				return b.PTRResource(rh, dnsmessage.PTRResource{PTR: n})
			}
			for _, ip := range ips {
				var err error
				switch {
				case ip.Is4() && (question.Type == dnsmessage.TypeA || question.Type == dnsmessage.TypeALL):
					err = b.AResource(rh, dnsmessage.AResource{A: ip.As4()})
				case ip.Is6() && (question.Type == dnsmessage.TypeAAAA || question.Type == dnsmessage.TypeALL):
					err = b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: ip.As16()})
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	if internal || len(upstreams) == 0 {
		return reply(h, &question, dnsmessage.RCodeServerFailure, nil)
	}
	for _, up := range upstreams {
		if resp := forward(q, up, transport); resp != nil {
			return resp
		}
	}
	return reply(h, &question, dnsmessage.RCodeServerFailure, nil)
}

func reply(h dnsmessage.Header, q *dnsmessage.Question, rcode dnsmessage.RCode, answers func(*dnsmessage.Builder) error) []byte {
	rh := dnsmessage.Header{ID: h.ID, Response: true, OpCode: h.OpCode, RecursionDesired: h.RecursionDesired, RecursionAvailable: true, RCode: rcode, Authoritative: answers != nil}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if q != nil {
		_ = b.StartQuestions()
		_ = b.Question(*q)
	}
	if answers != nil {
		_ = b.StartAnswers()
		if err := answers(&b); err != nil {
			return nil
		}
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}

// forward relays a query to one upstream resolver ("ip" or "ip:port").
func forward(q []byte, up, transport string) []byte {
	if _, _, err := net.SplitHostPort(up); err != nil {
		up = net.JoinHostPort(up, "53")
	}
	c, err := net.DialTimeout(transport, up, 2*time.Second)
	if err != nil {
		return nil
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if transport == "tcp" {
		msg := binary.BigEndian.AppendUint16(nil, uint16(len(q)))
		if _, err := c.Write(append(msg, q...)); err != nil {
			return nil
		}
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return nil
		}
		resp := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, resp); err != nil {
			return nil
		}
		return resp
	}
	if _, err := c.Write(q); err != nil {
		return nil
	}
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

// resolve looks name up among the containers sharing a user-defined
// network with container id: their names, aliases and short IDs (ips has
// their IPv4 and IPv6 addresses); or, for an in-addr.arpa or ip6.arpa
// name, the container holding that address. internal is
// true when the asker is on internal networks only; upstreams are where
// other names go.
func (s *Service) resolve(id, name string, qtype dnsmessage.Type) (ips []netip.Addr, ptr string, internal bool, upstreams []string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	me := s.sandboxes[id]
	if me == nil {
		return nil, "", true, nil
	}
	nets := map[string]bool{}
	internal = true
	for _, ep := range me.Endpoints {
		n := s.networks[ep.NetworkID]
		if n == nil || !ep.IP.IsValid() {
			continue
		}
		if !n.Internal {
			internal = false
		}
		if !n.Predefined {
			nets[n.ID] = true
		}
	}
	var rev netip.Addr
	if qtype == dnsmessage.TypePTR {
		rev = reverseName(name)
	}
	for _, sb := range s.sandboxes {
		for _, ep := range sb.Endpoints {
			if !nets[ep.NetworkID] || !ep.IP.IsValid() {
				continue
			}
			if rev.IsValid() {
				if ep.IP == rev || ep.IP6 == rev {
					ptr = sb.Name + "." + s.networks[ep.NetworkID].Name
				}
				continue
			}
			if dnsNameMatch(sb, ep, name, s.networks[ep.NetworkID].Name) {
				ips = append(ips, ep.IP)
				if ep.IP6.IsValid() {
					ips = append(ips, ep.IP6)
				}
			}
		}
	}
	if len(ips) == 0 && ptr == "" && !internal {
		upstreams = me.DNS
		if s.upstreams != nil {
			upstreams = s.upstreams
		}
		if len(upstreams) == 0 {
			upstreams = hostResolvers(s.cfg.ResolvConf)
		}
	}
	return ips, ptr, internal, upstreams
}

// reverseName is the address a PTR query's name stands for: a.b.c.d
// .in-addr.arpa (IPv4) or 32 nibbles .ip6.arpa (IPv6); invalid if neither.
func reverseName(name string) netip.Addr {
	if v4, ok := strings.CutSuffix(name, ".in-addr.arpa"); ok {
		parts := strings.Split(v4, ".")
		if len(parts) == 4 {
			a, _ := netip.ParseAddr(parts[3] + "." + parts[2] + "." + parts[1] + "." + parts[0])
			return a
		}
		return netip.Addr{}
	}
	v6, ok := strings.CutSuffix(name, ".ip6.arpa")
	if !ok {
		return netip.Addr{}
	}
	nib := strings.Split(v6, ".")
	if len(nib) != 32 {
		return netip.Addr{}
	}
	var b [16]byte
	for i, n := range nib {
		if len(n) != 1 {
			return netip.Addr{}
		}
		v, err := strconv.ParseUint(n, 16, 8)
		if err != nil {
			return netip.Addr{}
		}
		// nib[0] is the last address nibble.
		pos := 31 - i
		if pos%2 == 0 {
			b[pos/2] |= byte(v) << 4
		} else {
			b[pos/2] |= byte(v)
		}
	}
	return netip.AddrFrom16(b)
}

// dnsNameMatch: the container's name, its 12-character ID, its hostname
// (dockerd adds it to the container's aliases on each user-defined
// network), its aliases on that network, each also qualified with the
// network's name.
func dnsNameMatch(sb *sandbox, ep *endpoint, name, netName string) bool {
	if base, ok := strings.CutSuffix(name, "."+strings.ToLower(netName)); ok {
		name = base
	}
	if strings.EqualFold(sb.Name, name) || (len(sb.ContainerID) >= 12 && sb.ContainerID[:12] == name) {
		return true
	}
	if sb.Hostname != "" && strings.EqualFold(sb.Hostname, name) {
		return true
	}
	for _, a := range ep.Aliases {
		if strings.EqualFold(a, name) {
			return true
		}
	}
	return false
}

// hostResolvers reads the nameservers of a resolv.conf.
func hostResolvers(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			if a, err := netip.ParseAddr(f[1]); err == nil && a.Is4() {
				out = append(out, f[1])
			}
		}
	}
	return out
}
