package network

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// proxy is the in-process userland proxy of one published port on one
// host address: its listening socket holds the port (so that the port is
// really berth's, as docker-proxy's is), and it relays what the kernel's
// DNAT path cannot serve: connections to 127.0.0.1 and ::1, IPv6
// connections (relayed to the container's IPv6 address if it has one, to
// its IPv4 address otherwise), and connections from containers
// on berth's bridges (not DNATed, as Docker's hairpin). It is goroutines,
// not a process per port.
type proxy struct {
	proto  string
	target netip.AddrPort
	ln     net.Listener
	pc     net.PacketConn
	once   sync.Once
	done   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[io.Closer]struct{}
}

const udpIdle = 90 * time.Second

// listenProxy binds proto on ip:port; serve starts relaying to target.
func listenProxy(proto string, ip netip.Addr, port uint16, target netip.AddrPort) (*proxy, error) {
	p := &proxy{proto: proto, target: target, done: make(chan struct{}), conns: map[io.Closer]struct{}{}}
	fam := "4"
	if !ip.Is4() {
		fam = "6"
	}
	addr := net.JoinHostPort(ip.String(), strconv.Itoa(int(port)))
	var err error
	switch proto {
	case "udp":
		p.pc, err = net.ListenPacket("udp"+fam, addr)
	default:
		p.ln, err = net.Listen("tcp"+fam, addr)
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

func (p *proxy) serve() {
	p.wg.Add(1)
	if p.ln != nil {
		go p.serveTCP()
	} else {
		go p.serveUDP()
	}
}

func (p *proxy) track(c io.Closer) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		c.Close()
		return false
	default:
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) untrack(c io.Closer) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

// close stops the proxy: the port is free when it returns, and the
// connections it relayed are closed.
func (p *proxy) close() {
	p.once.Do(func() {
		p.mu.Lock()
		close(p.done)
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		if p.ln != nil {
			p.ln.Close()
		}
		if p.pc != nil {
			p.pc.Close()
		}
	})
	p.wg.Wait()
}

func (p *proxy) serveTCP() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			select {
			case <-p.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if !p.track(c) {
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.untrack(c)
			p.relayTCP(c.(*net.TCPConn))
		}()
	}
}

func (p *proxy) relayTCP(in *net.TCPConn) {
	d := net.Dialer{Timeout: 5 * time.Second}
	oc, err := d.Dial("tcp", p.target.String())
	if err != nil {
		return
	}
	if !p.track(oc) {
		return
	}
	defer p.untrack(oc)
	out := oc.(*net.TCPConn)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(out, in) // splice(2) between TCP sockets
		_ = out.CloseWrite()
	}()
	_, _ = io.Copy(in, out)
	_ = in.CloseWrite()
	wg.Wait()
}

func (p *proxy) serveUDP() {
	defer p.wg.Done()
	type session struct{ c *net.UDPConn }
	var mu sync.Mutex
	sessions := map[string]*session{}
	buf := make([]byte, 65535)
	for {
		n, from, err := p.pc.ReadFrom(buf)
		if err != nil {
			select {
			case <-p.done:
				return
			default:
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		key := from.String()
		mu.Lock()
		sess := sessions[key]
		if sess == nil {
			c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(p.target))
			if err != nil {
				mu.Unlock()
				continue
			}
			if !p.track(c) {
				mu.Unlock()
				continue
			}
			sess = &session{c: c}
			sessions[key] = sess
			p.wg.Add(1)
			go func(from net.Addr) {
				defer p.wg.Done()
				defer func() {
					mu.Lock()
					delete(sessions, key)
					mu.Unlock()
					p.untrack(c)
				}()
				rb := make([]byte, 65535)
				for {
					_ = c.SetReadDeadline(time.Now().Add(udpIdle))
					m, err := c.Read(rb)
					if err != nil {
						return
					}
					if _, err := p.pc.WriteTo(rb[:m], from); err != nil {
						return
					}
				}
			}(from)
		}
		mu.Unlock()
		_, _ = sess.c.Write(buf[:n])
	}
}

func (rt *runtimeState) stop() {
	if rt == nil {
		return
	}
	for _, p := range rt.proxies {
		p.close()
	}
	rt.proxies = nil
	if rt.dns != nil {
		rt.dns.close()
		rt.dns = nil
	}
}
