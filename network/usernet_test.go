package network

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/berth/berth/filters"
)

// query asks the embedded DNS server inside the namespace at path.
func query(t testing.TB, path, name string, qtype dnsmessage.Type, transport string) (dnsmessage.RCode, []netip.Addr) {
	t.Helper()
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 4242, RecursionDesired: true})
	_ = b.StartQuestions()
	_ = b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name + "."), Type: qtype, Class: dnsmessage.ClassINET})
	msg, _ := b.Finish()
	var resp []byte
	err := inNetNS(path, func() error {
		c, err := net.DialTimeout(transport, dnsAddr+":53", 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if transport == "tcp" {
			msg = append([]byte{byte(len(msg) >> 8), byte(len(msg))}, msg...)
		}
		if _, err := c.Write(msg); err != nil {
			return err
		}
		buf := make([]byte, 4096)
		n, err := c.Read(buf)
		if err != nil {
			return err
		}
		resp = buf[:n]
		if transport == "tcp" {
			resp = resp[2:]
		}
		return nil
	})
	if err != nil {
		t.Fatalf("dns query %s: %v", name, err)
	}
	var p dnsmessage.Parser
	h, err := p.Start(resp)
	if err != nil {
		t.Fatal(err)
	}
	if h.ID != 4242 {
		t.Fatalf("id %d", h.ID)
	}
	_ = p.SkipAllQuestions()
	var ips []netip.Addr
	for {
		rh, err := p.AnswerHeader()
		if err != nil {
			break
		}
		if rh.Type == dnsmessage.TypeA {
			a, _ := p.AResource()
			ips = append(ips, netip.AddrFrom4(a.A))
		} else {
			_ = p.SkipAnswer()
		}
	}
	return h.RCode, ips
}

// fakeUpstream is a resolver on loopback answering every A query with
// 10.99.99.99 and counting the queries.
func fakeUpstream(t testing.TB) (string, *atomic.Int32) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	var n atomic.Int32
	go func() {
		buf := make([]byte, 4096)
		for {
			l, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			n.Add(1)
			var p dnsmessage.Parser
			h, err := p.Start(buf[:l])
			if err != nil {
				continue
			}
			q, _ := p.Question()
			b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true})
			_ = b.StartQuestions()
			_ = b.Question(q)
			_ = b.StartAnswers()
			_ = b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 5}, dnsmessage.AResource{A: [4]byte{10, 99, 99, 99}})
			out, _ := b.Finish()
			_, _ = pc.WriteTo(out, from)
		}
	}()
	return pc.LocalAddr().String(), &n
}

func TestUserNetworksDNSAndIsolation(t *testing.T) {
	s := newTestService(t)
	ctx := context.Background()
	up, upCount := fakeUpstream(t)
	s.upstreams = []string{up}

	app, err := s.Create(ctx, CreateRequest{Name: "app", Labels: map[string]string{"tier": "web"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, CreateRequest{Name: "app"}); !cerrdefs.IsConflict(err) || err.Error() != "network with name app already exists" {
		t.Fatalf("duplicate: %v", err)
	}
	other, err := s.Create(ctx, CreateRequest{Name: "other", IPAM: &IPAMRequest{Config: []IPAMConfigRequest{{Subnet: "10.231.0.0/24", Gateway: "10.231.0.254"}}}})
	if err != nil {
		t.Fatal(err)
	}
	internal, err := s.Create(ctx, CreateRequest{Name: "priv", Internal: true})
	if err != nil {
		t.Fatal(err)
	}

	dbID, webID := containerID(), containerID()
	dbReq := req(dbID, "db", "app", nil)
	dbReq.Hostname = "dbhost.example.com" // --hostname: resolvable as is, as with dockerd
	dbReq.Networking = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{"app": {Aliases: []string{"database"}}}}
	dbPath, err := s.Setup(ctx, dbReq)
	if err != nil {
		t.Fatal(err)
	}
	serveIn(t, dbPath, ":5432", "db here")
	webPath, err := s.Setup(ctx, req(webID, "web", "app", nil))
	if err != nil {
		t.Fatal(err)
	}
	if rc := s.ResolvConf(webID); len(rc) != 1 || rc[0] != "127.0.0.11" {
		t.Fatalf("resolv.conf nameservers %v", rc)
	}
	dbIP := netip.MustParseAddr(s.ContainerIP(dbID))
	for _, name := range []string{"db", "database", "DB", dbID[:12], "db.app", "dbhost.example.com", "dbhost.example.com.app"} {
		for _, tr := range []string{"udp", "tcp"} {
			rc, ips := query(t, webPath, name, dnsmessage.TypeA, tr)
			if rc != dnsmessage.RCodeSuccess || len(ips) != 1 || ips[0] != dbIP {
				t.Fatalf("%s over %s: %v %v, want %s", name, tr, rc, ips, dbIP)
			}
		}
	}
	mustFetch(t, webPath, "db:5432"[0:0]+fmtAddr(dbIP.String(), 5432), "db here")
	// Unknown names go to the upstream resolver.
	rc, ips := query(t, webPath, "example.com", dnsmessage.TypeA, "udp")
	if rc != dnsmessage.RCodeSuccess || len(ips) != 1 || ips[0].String() != "10.99.99.99" || upCount.Load() != 1 {
		t.Fatalf("forwarded: %v %v (upstream saw %d)", rc, ips, upCount.Load())
	}

	// A container on another network: not resolvable, not reachable.
	farID := containerID()
	farPath, err := s.Setup(ctx, req(farID, "far", "other", nil))
	if err != nil {
		t.Fatal(err)
	}
	if ip := s.ContainerIP(farID); ip != "10.231.0.1" {
		t.Fatalf("first address of 10.231.0.0/24 with gateway .254: %s", ip)
	}
	if rc, ips := query(t, farPath, "db", dnsmessage.TypeA, "udp"); len(ips) != 0 && ips[0] == dbIP {
		t.Fatalf("db resolved from another network: %v %v", rc, ips)
	}
	if _, err := fetch(farPath, fmtAddr(dbIP.String(), 5432)); err == nil {
		t.Fatal("reached a container on another network")
	}

	// Internal network: neighbours yes, outside no, no forwarding.
	inA, inB := containerID(), containerID()
	inAPath, err := s.Setup(ctx, req(inA, "ia", "priv", nil))
	if err != nil {
		t.Fatal(err)
	}
	serveIn(t, inAPath, ":7000", "inside")
	inBPath, err := s.Setup(ctx, req(inB, "ib", "priv", nil))
	if err != nil {
		t.Fatal(err)
	}
	mustFetch(t, inBPath, fmtAddr(s.ContainerIP(inA), 7000), "inside")
	if rc, ips := query(t, inBPath, "ia", dnsmessage.TypeA, "udp"); rc != dnsmessage.RCodeSuccess || len(ips) != 1 {
		t.Fatalf("internal name: %v %v", rc, ips)
	}
	before := upCount.Load()
	if rc, _ := query(t, inBPath, "example.com", dnsmessage.TypeA, "udp"); rc != dnsmessage.RCodeServerFailure || upCount.Load() != before {
		t.Fatalf("internal network forwarded: %v", rc)
	}
	if strings.Contains(run(t, "nsenter", "--net="+inBPath, "ip", "route"), "default") {
		t.Fatal("internal network container has a default route")
	}
	if _, err := fetch(inBPath, fmtAddr(dbIP.String(), 5432)); err == nil {
		t.Fatal("internal container reached another network")
	}

	// Listing, filters, inspect.
	list, err := s.List(ctx, filters.Args{"type": {"custom"}})
	if err != nil || len(list) != 3 {
		t.Fatalf("custom networks: %v %v", len(list), err)
	}
	list, _ = s.List(ctx, filters.Args{"label": {"tier=web"}})
	if len(list) != 1 || list[0].Name != "app" {
		t.Fatalf("label filter %v", list)
	}
	list, _ = s.List(ctx, filters.Args{"type": {"builtin"}})
	names := []string{}
	for _, n := range list {
		names = append(names, n.Name)
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "bridge,host,none" {
		t.Fatalf("builtin %v", names)
	}
	ins, err := s.Inspect(ctx, app.ID[:12])
	if err != nil || len(ins.Containers) != 2 || ins.Containers[dbID].Name != "db" {
		t.Fatalf("inspect %+v %v", ins, err)
	}

	// Removing a network in use is refused, with Docker's words.
	err = s.Remove(ctx, "app")
	if !errors.Is(err, cerrdefs.ErrPermissionDenied) || !strings.Contains(err.Error(), "has active endpoints") {
		t.Fatalf("remove in use: %v", err)
	}
	for _, id := range []string{dbID, webID, farID, inA, inB} {
		if err := s.Teardown(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := s.Prune(ctx, filters.Args{})
	if err != nil || len(rep.NetworksDeleted) != 3 {
		t.Fatalf("prune %v %v", rep, err)
	}
	_ = other
	_ = internal
	eventually(t, "bridges left", func() (bool, string) {
		out := ourLinks(t, s)
		return !strings.Contains(out, s.cfg.Prefix+"-"), out
	})
}

func TestCreateBadInput(t *testing.T) {
	s := newTestService(t)
	yes := true
	ctx := context.Background()
	if _, err := s.Create(ctx, CreateRequest{Name: "a", IPAM: &IPAMRequest{Config: []IPAMConfigRequest{{Subnet: "10.232.0.0/16"}}}}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		req   CreateRequest
		class error
		msg   string
	}{
		{CreateRequest{Name: "b", IPAM: &IPAMRequest{Config: []IPAMConfigRequest{{Subnet: "10.232.5.0/24"}}}}, cerrdefs.ErrPermissionDenied, "Pool overlaps with other one on this address space"},
		{CreateRequest{Name: "b", IPAM: &IPAMRequest{Config: []IPAMConfigRequest{{Subnet: "300.1.0.0/16"}}}}, cerrdefs.ErrInvalidArgument, "invalid CIDR address: 300.1.0.0/16"},
		{CreateRequest{Name: "b", IPAM: &IPAMRequest{Config: []IPAMConfigRequest{{Subnet: "abc"}}}}, cerrdefs.ErrInvalidArgument, "invalid CIDR address: abc"},
		{CreateRequest{Name: "b", IPAM: &IPAMRequest{Config: []IPAMConfigRequest{{Subnet: "10.233.0.0/24", Gateway: "10.234.0.1"}}}}, cerrdefs.ErrInvalidArgument, "failed to allocate gateway (10.234.0.1): Requested address is out of range"},
		{CreateRequest{Name: "b", IPAM: &IPAMRequest{Config: []IPAMConfigRequest{{Subnet: "10.233.0.0/24", Gateway: "nope"}}}}, cerrdefs.ErrInvalidArgument, "invalid gateway address nope in Ipam configuration"},
		{CreateRequest{Name: "a"}, cerrdefs.ErrConflict, "network with name a already exists"},
		{CreateRequest{Name: "bridge"}, cerrdefs.ErrPermissionDenied, "bridge is a pre-defined network and cannot be created"},
		{CreateRequest{Name: "b", Driver: "overlay"}, cerrdefs.ErrNotFound, `plugin "overlay" not found`},
		{CreateRequest{Name: "b", EnableIPv6: &yes}, cerrdefs.ErrNotFound, "could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network"},
		{CreateRequest{Name: "b", EnableIPv6: &yes, IPAM: &IPAMRequest{Config: []IPAMConfigRequest{{Subnet: "fd00:b5e7::/64"}, {Subnet: "fd00:b5e8::/64"}}}}, cerrdefs.ErrPermissionDenied, "bridge driver doesn't support multiple subnets"},
		{CreateRequest{Name: "b", IPAM: &IPAMRequest{Config: []IPAMConfigRequest{{Subnet: "10.233.0.0/24"}, {Subnet: "10.234.0.0/24"}}}}, cerrdefs.ErrPermissionDenied, "bridge driver doesn't support multiple subnets"},
		{CreateRequest{Name: "b", EnableIPv6: &yes, IPAM: &IPAMRequest{Config: []IPAMConfigRequest{{Subnet: "fd00:b5e7::/200"}}}}, cerrdefs.ErrInvalidArgument, "invalid CIDR address: fd00:b5e7::/200"},
		{CreateRequest{Name: "b", Options: map[string]string{iccOption: "nope"}}, cerrdefs.ErrInvalidArgument,
			`failed to parse com.docker.network.bridge.enable_icc value: nope (strconv.ParseBool: parsing "nope": invalid syntax)`},
	}
	before := ourLinks(t, s)
	for _, c := range cases {
		_, err := s.Create(ctx, c.req)
		if !errors.Is(err, c.class) || err.Error() != c.msg {
			t.Errorf("%+v: got %v, want %q", c.req, err, c.msg)
		}
	}
	if after := ourLinks(t, s); after != before {
		t.Fatalf("bad input changed links:\n%s\n%s", before, after)
	}
	if err := s.Remove(ctx, "bridge"); !errors.Is(err, cerrdefs.ErrPermissionDenied) {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "nope"); !cerrdefs.IsNotFound(err) || err.Error() != "network nope not found" {
		t.Fatal(err)
	}
	if err := s.Validate(ctx, req(containerID(), "x", "nope", nil)); !cerrdefs.IsNotFound(err) {
		t.Fatal(err)
	}
	bad := req(containerID(), "x", "bridge", nil)
	bad.HostConfig.PortBindings = network.PortMap{network.MustParsePort("80/tcp"): {{HostPort: "99999"}}}
	if err := s.Validate(ctx, bad); !cerrdefs.IsInvalidArgument(err) || err.Error() != `invalid port specification: "99999"` {
		t.Fatal(err)
	}
	alias := req(containerID(), "x", "bridge", nil)
	alias.Networking = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{"bridge": {Aliases: []string{"y"}}}}
	if err := s.Validate(ctx, alias); !cerrdefs.IsInvalidArgument(err) {
		t.Fatal(err)
	}
}
