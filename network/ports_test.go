package network

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
)

func TestPortConflictsRollBack(t *testing.T) {
	s := newTestService(t)
	ctx := context.Background()
	port := freePort(t)
	a := containerID()
	if _, err := s.Setup(ctx, req(a, "first", "bridge", map[string][]network.PortBinding{"80/tcp": {{HostPort: itoa(int(port))}}})); err != nil {
		t.Fatal(err)
	}
	linksBefore := ourLinks(t, s)
	b := containerID()
	_, err := s.Setup(ctx, req(b, "second", "bridge", map[string][]network.PortBinding{"80/tcp": {{HostPort: itoa(int(port))}}}))
	want := fmt.Sprintf("Bind for 0.0.0.0:%d failed: port is already allocated", port)
	if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "driver failed programming external connectivity on endpoint second (") {
		t.Fatalf("got %v, want %q", err, want)
	}
	// Nothing of the second container is left.
	if _, err := os.Stat(s.nsPath(b)); !os.IsNotExist(err) {
		t.Fatal("netns left after failed setup")
	}
	eventually(t, "links changed by failed setup", func() (bool, string) {
		got := ourLinks(t, s)
		return got == linksBefore, linksBefore + " != " + got
	})
	if n := s.pools[s.sandboxes[a].Endpoints[0].NetworkID].inUse(); n != 2 {
		t.Fatalf("addresses in use: %d", n)
	}
	if _, known := s.sandboxes[b]; known {
		t.Fatal("failed sandbox remembered")
	}

	// A host process holds a port: Docker's proxy error.
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().(*net.TCPAddr).Port
	c := containerID()
	_, err = s.Setup(ctx, req(c, "third", "bridge", map[string][]network.PortBinding{"80/tcp": {{HostPort: itoa(taken)}}}))
	want = fmt.Sprintf("Error starting userland proxy: listen tcp4 0.0.0.0:%d: bind: address already in use", taken)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want %q", err, want)
	}
	// 127.0.0.1-bound port: not clashing with the same port on another address of... the wildcard does clash.
	d := containerID()
	if _, err := s.Setup(ctx, req(d, "fourth", "bridge", map[string][]network.PortBinding{"80/tcp": {{HostIP: mustAddr("127.0.0.1"), HostPort: itoa(int(port))}}})); err == nil {
		t.Fatal("127.0.0.1:port must clash with 0.0.0.0:port")
	}
}

func TestPublishAllRandomUDPAndLoopbackOnly(t *testing.T) {
	s := newTestService(t)
	ctx := context.Background()
	id := containerID()
	r := req(id, "svc", "bridge", map[string][]network.PortBinding{
		"53/udp":   {{}},
		"9000/tcp": {{HostIP: mustAddr("127.0.0.1")}},
	})
	r.Config.ExposedPorts[network.MustParsePort("80/tcp")] = struct{}{}
	r.HostConfig.PublishAllPorts = true
	path, err := s.Setup(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	serveIn(t, path, ":80", "eighty")
	serveIn(t, path, ":9000", "nine")
	serveUDPIn(t, path, ":53")
	p80 := hostPort(t, s, id, "tcp", 80, false)
	if p80 < s.ports.lo || p80 > s.ports.hi || hostPort(t, s, id, "tcp", 80, true) != p80 {
		t.Fatalf("random port %d", p80)
	}
	gw := s.networks[s.sandboxes[id].Endpoints[0].NetworkID].Gateway.String()
	mustFetch(t, "", fmtAddr("127.0.0.1", p80), "eighty")
	mustFetch(t, "", fmtAddr(gw, p80), "eighty")
	p9 := hostPort(t, s, id, "tcp", 9000, false)
	mustFetch(t, "", fmtAddr("127.0.0.1", p9), "nine")
	// Bound to 127.0.0.1: not on the host's other addresses, not from a container.
	if _, err := fetch("", fmtAddr(gw, p9)); err == nil {
		t.Fatal("127.0.0.1-bound port reachable on the gateway address")
	}
	other := containerID()
	opath, err := s.Setup(ctx, req(other, "peer", "bridge", nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fetch(opath, fmtAddr(gw, p9)); err == nil {
		t.Fatal("127.0.0.1-bound port reachable from a container")
	}
	mustFetch(t, opath, fmtAddr(gw, p80), "eighty")
	// UDP both through the proxy (loopback) and DNAT (gateway), host and netns.
	pu := hostPort(t, s, id, "udp", 53, false)
	for _, addr := range []string{fmtAddr("127.0.0.1", pu), fmtAddr(gw, pu)} {
		if got := udpAsk(t, "", addr, "ping"); got != "echo:ping" {
			t.Fatalf("udp %s: %q", addr, got)
		}
	}
	if got := udpAsk(t, opath, fmtAddr(gw, pu), "pong"); got != "echo:pong" {
		t.Fatalf("udp from netns: %q", got)
	}

	// ps and inspect shapes.
	sum := summaryOf(s, id)
	if len(sum) != 5 { // 53/udp x2 families, 80 x2, 9000 x1
		t.Fatalf("ports %v", sum)
	}
}

func udpAsk(t testing.TB, path, addr, msg string) string {
	t.Helper()
	var got string
	do := func() error {
		c, err := net.Dial("udp4", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		buf := make([]byte, 100)
		for i := 0; i < 3; i++ {
			_, _ = c.Write([]byte(msg))
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			n, err := c.Read(buf)
			if err == nil {
				got = string(buf[:n])
				return nil
			}
		}
		return fmt.Errorf("no udp answer from %s", addr)
	}
	var err error
	if path == "" {
		err = do()
	} else {
		err = inNetNS(path, do)
	}
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestCyclesLeaveNothing runs 200 set-up/tear-down cycles with a
// published port and compares the host before and after.
func TestCyclesLeaveNothing(t *testing.T) {
	s := newTestService(t)
	ctx := context.Background()
	snap := func() string {
		keep := ourLinks(t, s)
		rules := run(t, "nft", "list", "table", "ip", s.cfg.Prefix)
		ents, _ := os.ReadDir(netnsDir(s.cfg.ExecRoot))
		sbs, _ := os.ReadDir(s.cfg.Root + "/sandboxes")
		var inUse int
		for _, p := range s.pools {
			inUse += p.inUse()
		}
		return fmt.Sprintf("links=%v\nrules=%s\nnetns=%d sandboxes=%d ipam=%d ports=%d", keep, rules, len(ents), len(sbs), inUse, len(s.ports.held))
	}
	before := snap()
	port := freePort(t)
	n := 200
	if testing.Short() {
		n = 20
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		id := containerID()
		if _, err := s.Setup(ctx, req(id, "c", "bridge", map[string][]network.PortBinding{"80/tcp": {{HostPort: itoa(int(port))}}, "81/udp": {{}}})); err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		if err := s.Teardown(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := s.Release(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d cycles in %v (%v each)", n, time.Since(start), time.Since(start)/time.Duration(n))
	eventually(t, "host changed", func() (bool, string) {
		after := snap()
		return after == before, "before:\n" + before + "\nafter:\n" + after
	})
}

func mustAddr(s string) netipAddr { return mustParseAddr(s) }

func summaryOf(s *Service, id string) []string {
	var out []string
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, b := range s.sandboxes[id].Ports {
		out = append(out, fmt.Sprintf("%s:%d->%d/%s", b.HostIP, b.HostPort, b.CtrPort, b.Proto))
	}
	return out
}
