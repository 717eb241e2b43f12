package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// IPv6 networks (issue 14 item 11): --ipv6 with an IPv6 --subnet, --ip6,
// what inspect shows, addresses and routes in the container, traffic over
// IPv6, and dockerd's answers to bad input. Each test runs its own daemon
// in a sandbox (net_fixture_test.go); every prefix is a ULA (fd00::/8)
// seen only inside it.

// netCtr6 is the IPv6 part of a container's inspect.
type netCtr6 struct {
	NetworkSettings struct {
		GlobalIPv6Address   string
		GlobalIPv6PrefixLen int
		IPv6Gateway         string
		Networks            map[string]*struct {
			IPAMConfig *struct {
				IPv4Address string
				IPv6Address string
			}
			IPAddress           string
			GlobalIPv6Address   string
			GlobalIPv6PrefixLen int
			IPv6Gateway         string
		}
	}
}

func inspectCtr6(t *testing.T, a *apiClient, ref string) netCtr6 {
	t.Helper()
	var c netCtr6
	a.call(t, "GET", "/containers/"+ref+"/json", nil, nil).wantStatus(t, 200).decode(t, &c)
	return c
}

// netJSON6 is the IPv6 part of a network's inspect.
type netJSON6 struct {
	EnableIPv6 bool
	IPAM       struct {
		Config []map[string]any
	}
	Containers map[string]struct {
		Name        string
		IPv4Address string
		IPv6Address string
	}
}

func inspectNet6(t *testing.T, a *apiClient, ref string) netJSON6 {
	t.Helper()
	var n netJSON6
	a.call(t, "GET", "/networks/"+ref, nil, nil).wantStatus(t, 200).decode(t, &n)
	return n
}

// TestIPv6Network: a network with --ipv6 and an IPv6 subnet; containers
// get addresses from it (--ip6 or the next free one), a default IPv6 route
// through the gateway, inspect shows them as dockerd does, and they reach
// each other and are reached from the host over IPv6.
func TestIPv6Network(t *testing.T) {
	sb, nd := newNetTarget(t)
	a := nd.api()
	tool := sb.tool()
	i := 0
	nd.eachCLI(t, func(t *testing.T, c *CLI) {
		i++
		sub4, gw4 := fmt.Sprintf("10.131.%d.0/24", i), fmt.Sprintf("10.131.%d.1", i)
		sub6, gw6 := fmt.Sprintf("fd00:b5e7:%d::/64", i), fmt.Sprintf("fd00:b5e7:%d::1", i)
		fixed := fmt.Sprintf("fd00:b5e7:%d::50", i)
		n6 := netName("v6")
		c.ok("network", "create", "--ipv6", "--subnet", sub4, "--gateway", gw4, "--subnet", sub6, "--gateway", gw6, n6)
		nd.rmNetLater(t, n6)
		c.ok("network", "inspect", "--format", "{{.EnableIPv6}} {{range .IPAM.Config}}{{.Subnet}},{{.Gateway}};{{end}}", n6).
			wantOut(t, c.name, "true "+sub4+","+gw4+";"+sub6+","+gw6+";")

		web := netName("web6")
		nd.rmLater(t, web)
		webID := strings.TrimSpace(c.ok(append([]string{"run", "-d", "--name", web, "--network", n6, "--ip6", fixed, "busybox"}, webCmd("web6")...)...).Stdout)
		other := netName("other6")
		nd.rmLater(t, other)
		c.ok("run", "-d", "--name", other, "--network", n6, "-v", tool+":/nettool:ro", "busybox", "sleep", "300")

		ci := inspectCtr6(t, a, web)
		ep := ci.NetworkSettings.Networks[n6]
		if ep == nil {
			t.Fatalf("inspect %s: no endpoint on %s", web, n6)
		}
		if ep.GlobalIPv6Address != fixed || ep.GlobalIPv6PrefixLen != 64 || ep.IPv6Gateway != gw6 {
			t.Errorf("Networks[%s]: GlobalIPv6Address %q /%d IPv6Gateway %q; want %s /64 %s", n6, ep.GlobalIPv6Address, ep.GlobalIPv6PrefixLen, ep.IPv6Gateway, fixed, gw6)
		}
		if ep.IPAMConfig == nil || ep.IPAMConfig.IPv6Address != fixed || ep.IPAMConfig.IPv4Address != "" {
			t.Errorf("Networks[%s].IPAMConfig = %+v, want IPv6Address %s only", n6, ep.IPAMConfig, fixed)
		}
		if ci.NetworkSettings.GlobalIPv6Address != "" {
			t.Errorf("top-level GlobalIPv6Address %q: it mirrors the default bridge only", ci.NetworkSettings.GlobalIPv6Address)
		}
		oep := inspectCtr6(t, a, other).NetworkSettings.Networks[n6]
		if oep == nil {
			t.Fatalf("inspect %s: no endpoint on %s", other, n6)
		}
		otherIP, err := netip.ParseAddr(oep.GlobalIPv6Address)
		if err != nil || !netip.MustParsePrefix(sub6).Contains(otherIP) || oep.GlobalIPv6Address == fixed || oep.GlobalIPv6Address == gw6 {
			t.Errorf("%s got IPv6 address %q, want a free one of %s", other, oep.GlobalIPv6Address, sub6)
		}
		if oep.IPAMConfig != nil {
			t.Errorf("%s asked for no address, IPAMConfig = %+v", other, oep.IPAMConfig)
		}
		ni := inspectNet6(t, a, n6)
		if e := ni.Containers[webID]; e.IPv6Address != fixed+"/64" || !strings.HasPrefix(e.IPv4Address, fmt.Sprintf("10.131.%d.", i)) {
			t.Errorf("network inspect: Containers[%s] = %+v, want IPv6Address %s/64", web, e, fixed)
		}

		// Inside: the address (not tentative) and the default route.
		in := c.ok("exec", other, "sh", "-c", "ip -6 addr show dev eth0; echo ===; ip -6 route").Stdout
		if !strings.Contains(in, "inet6 "+otherIP.String()+"/64") {
			t.Errorf("%s has no %s/64 on eth0:\n%s", other, otherIP, in)
		}
		if !strings.Contains(in, "default via "+gw6+" dev eth0") {
			t.Errorf("%s has no default IPv6 route via %s:\n%s", other, gw6, in)
		}
		// /etc/hosts names the container by its IPv6 address too.
		if hosts := c.ok("exec", other, "cat", "/etc/hosts").Stdout; !strings.Contains(hosts, otherIP.String()+"\t") {
			t.Errorf("%s's /etc/hosts has no line for %s:\n%s", other, otherIP, hosts)
		}
		// Container to container, and host to container, over IPv6.
		r := c.run("exec", other, "/nettool", "get", "http://["+fixed+"]/")
		if r.Code != 0 || !strings.Contains(r.Stdout, "hi-from-web6") {
			t.Errorf("from %s, http://[%s]/: exit %d %q %q", other, fixed, r.Code, r.Stdout, r.Stderr)
		}
		waitHTTP(t, sb.path, "http://["+fixed+"]/", "hi-from-web6", 30*time.Second)
	})
}

// TestIPv6NetworkInspectAsAsked: dockerd shows an IPv6 IPAM config as it
// was asked (no gateway unless one was given), EnableIPv6 false and the
// config kept for a network given an IPv6 subnet without --ipv6, whose
// containers then get no IPv6 address.
func TestIPv6NetworkInspectAsAsked(t *testing.T) {
	_, nd := newNetTarget(t)
	a := nd.api()
	c := cliFor(t, "docker", nd.daemon)
	n6 := netName("v6")
	c.ok("network", "create", "--ipv6", "--subnet", "10.132.0.0/24", "--subnet", "fd00:b5e7:20::/64", n6)
	nd.rmNetLater(t, n6)
	ni := inspectNet6(t, a, n6)
	if !ni.EnableIPv6 || len(ni.IPAM.Config) != 2 {
		t.Fatalf("network inspect: EnableIPv6 %v, IPAM.Config %v", ni.EnableIPv6, ni.IPAM.Config)
	}
	if v6 := ni.IPAM.Config[1]; v6["Subnet"] != "fd00:b5e7:20::/64" || v6["Gateway"] != nil {
		t.Errorf("IPAM.Config[1] = %v, want the subnet fd00:b5e7:20::/64 and no gateway", v6)
	}
	ctr := netName("c")
	nd.rmLater(t, ctr)
	c.ok("run", "-d", "--name", ctr, "--network", n6, "busybox", "sleep", "300")
	if ep := inspectCtr6(t, a, ctr).NetworkSettings.Networks[n6]; ep == nil || ep.GlobalIPv6Address != "fd00:b5e7:20::2" || ep.IPv6Gateway != "fd00:b5e7:20::1" {
		t.Errorf("the first container on %s: %+v, want fd00:b5e7:20::2 via fd00:b5e7:20::1", n6, ep)
	}

	// An IPv6 subnet without --ipv6: kept, shown, not used.
	off := netName("v6off")
	c.ok("network", "create", "--subnet", "fd00:b5e7:21::/64", off)
	nd.rmNetLater(t, off)
	no := inspectNet6(t, a, off)
	b, _ := json.Marshal(no.IPAM.Config)
	if no.EnableIPv6 || len(no.IPAM.Config) != 2 || no.IPAM.Config[1]["Subnet"] != "fd00:b5e7:21::/64" {
		t.Errorf("network with an IPv6 subnet and no --ipv6: EnableIPv6 %v, IPAM.Config %s", no.EnableIPv6, b)
	}
	ctr2 := netName("c")
	nd.rmLater(t, ctr2)
	c.ok("run", "-d", "--name", ctr2, "--network", off, "busybox", "sleep", "300")
	if ep := inspectCtr6(t, a, ctr2).NetworkSettings.Networks[off]; ep == nil || ep.GlobalIPv6Address != "" || ep.IPAddress == "" {
		t.Errorf("a container on a network without --ipv6: %+v, want an IPv4 address only", ep)
	}
}

// TestIPv6NetworkBadInput: dockerd's answers to bad IPv6 requests, and
// nothing is made.
func TestIPv6NetworkBadInput(t *testing.T) {
	_, nd := newNetTarget(t)
	a := nd.api()
	netList := func() string {
		var ns []struct{ Name string }
		a.call(t, "GET", "/networks", nil, nil).wantStatus(t, 200).decode(t, &ns)
		var names []string
		for _, n := range ns {
			names = append(names, n.Name)
		}
		sort.Strings(names)
		return strings.Join(names, " ")
	}
	n6 := netName("v6")
	a.call(t, "POST", "/networks/create", []byte(`{"Name":"`+n6+`","CheckDuplicate":true,"EnableIPv6":true,"IPAM":{"Config":[{"Subnet":"fd00:b5e7:30::/64"}]}}`), nil).wantStatus(t, 201)
	nd.rmNetLater(t, n6)
	v4 := netName("v4")
	a.call(t, "POST", "/networks/create", []byte(`{"Name":"`+v4+`","CheckDuplicate":true,"IPAM":{"Config":[{"Subnet":"10.133.0.0/24"}]}}`), nil).wantStatus(t, 201)
	nd.rmNetLater(t, v4)
	before := netList()

	// dockerd 20.10 answers 500 to an invalid subnet (berth 400, as for
	// IPv4: see TestNetworkBadInput).
	badIPAM := 400
	if env.target == "docker" {
		badIPAM = 500
	}
	for _, tc := range []struct {
		what, body string
		status     int
		want       string
	}{
		{"--ipv6 without an IPv6 subnet", `{"Name":"` + netName("x") + `","CheckDuplicate":true,"EnableIPv6":true}`, 404,
			"could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network"},
		{"invalid IPv6 subnet", `{"Name":"` + netName("x") + `","CheckDuplicate":true,"EnableIPv6":true,"IPAM":{"Config":[{"Subnet":"fd00:b5e7:31::/200"}]}}`, badIPAM,
			"invalid CIDR address: fd00:b5e7:31::/200"},
		{"overlapping IPv6 subnet", `{"Name":"` + netName("x") + `","CheckDuplicate":true,"EnableIPv6":true,"IPAM":{"Config":[{"Subnet":"fd00:b5e7:30:0:1::/80"}]}}`, 403,
			"Pool overlaps with other one on this address space"},
		{"two IPv6 subnets", `{"Name":"` + netName("x") + `","CheckDuplicate":true,"EnableIPv6":true,"IPAM":{"Config":[{"Subnet":"fd00:b5e7:32::/64"},{"Subnet":"fd00:b5e7:33::/64"}]}}`, 403,
			"bridge driver doesn't support multiple subnets"},
	} {
		r := a.call(t, "POST", "/networks/create", []byte(tc.body), nil)
		msg := r.wantError(t, tc.status, tc.want)
		t.Logf("%s → %d %s", tc.what, r.Status, msg)
	}
	if after := netList(); after != before {
		t.Errorf("bad requests changed the networks: before %q, after %q", before, after)
	}

	nd.eachCLI(t, func(t *testing.T, c *CLI) {
		c.fail([]string{"network", "create", "--ipv6", "--subnet", "fd00:b5e7:30::/96", netName("ovl")}, "Pool overlaps with other one on this address space")
		r := c.run("run", "--rm", "--network", n6, "--ip6", "fd00:b5e7:99::5", "busybox", "true")
		r.wantCode(t, c.name, 125, "Invalid address fd00:b5e7:99::5: It does not belong to any of this network's subnets")
		r = c.run("run", "--rm", "--network", v4, "--ip6", "fd00:b5e7:30::5", "busybox", "true")
		r.wantCode(t, c.name, 125, "user specified IP address is supported only when connecting to networks with user configured subnets")
		r = c.run("run", "--rm", "--ip6", "fd00:b5e7:30::5", "busybox", "true")
		r.wantCode(t, c.name, 125, "user specified IP address is supported on user defined networks only")
	})
	if after := netList(); after != before {
		t.Errorf("bad CLI invocations changed the networks: before %q, after %q", before, after)
	}
}

// bridgeFor6 is the name of the interface in the sandbox that holds the
// IPv6 address addr (a network's IPv6 gateway: its bridge), "" if none.
func bridgeFor6(sb *netSandbox, addr string) string {
	for _, l := range lines(sb.sh("ip", "-o", "-6", "addr", "show")) {
		f := strings.Fields(l)
		if len(f) >= 4 && f[2] == "inet6" && strings.HasPrefix(f[3], addr+"/") {
			return f[1]
		}
	}
	return ""
}

// TestIPv6NetworkCleanup: an IPv6 network's kernel objects (its bridge's
// addresses, the ip6 nftables table, addresses of its containers) go with
// it: after network rm, after kill -9 of berthd and a restart (the
// survivor keeps its address, the victim's is given again), and when
// berthd stops with no container.
func TestIPv6NetworkCleanup(t *testing.T) {
	requireEnv(t)
	onlyBerth(t, "looks at berthd's kernel objects (nftables tables, bridges, veths)")
	sb, nd := newNetTarget(t)
	a := nd.api()
	sleeper := func(network, ip6 string) map[string]any {
		b := map[string]any{"Image": "busybox:latest", "Cmd": webCmd("v6"), "HostConfig": map[string]any{"NetworkMode": network}}
		if ip6 != "" {
			b["NetworkingConfig"] = map[string]any{"EndpointsConfig": map[string]any{network: map[string]any{"IPAMConfig": map[string]any{"IPv6Address": ip6}}}}
		}
		return b
	}
	// Warm up: the first container makes the default bridge and the table.
	id := netAPICreate(t, a, "", sleeper("bridge", ""))
	a.call(t, "POST", "/containers/"+id+"/start", nil, nil).wantStatus(t, 204)
	a.call(t, "DELETE", "/containers/"+id+"?force=1", nil, nil).wantStatus(t, 204)
	var before hostState
	netPoll(90*time.Second, func() bool {
		before = sb.state(t, nd.execRoot)
		for _, l := range before.Links {
			if strings.HasPrefix(l, "veth") && !strings.HasSuffix(l, "master=") {
				return false
			}
		}
		return before.Spares <= 1
	})
	if strings.Contains(before.Nft, "table ip6 ") {
		t.Fatalf("an IPv6 table with no IPv6 network:\n%s", before.Nft)
	}

	n6 := netName("v6")
	// A /125: ::0 is the network's, ::1 the gateway's, ::2-::7 for containers.
	a.call(t, "POST", "/networks/create", []byte(`{"Name":"`+n6+`","EnableIPv6":true,"IPAM":{"Config":[{"Subnet":"fd00:b5e7:40::/125"}]}}`), nil).wantStatus(t, 201)
	nd.rmNetLater(t, n6)
	br := bridgeFor6(sb, "fd00:b5e7:40::1")
	if br == "" {
		t.Fatalf("no bridge holds the gateway fd00:b5e7:40::1:\n%s", sb.sh("ip", "-6", "addr"))
	}
	if nft := sb.sh("nft", "list", "ruleset"); !strings.Contains(nft, "ip6 saddr fd00:b5e7:40::/125") {
		t.Errorf("no IPv6 masquerade for the network:\n%s", nft)
	}

	survivor := netAPICreate(t, a, netName("survivor"), sleeper(n6, "fd00:b5e7:40::7"))
	nd.rmLater(t, survivor)
	victim := netAPICreate(t, a, netName("victim"), sleeper(n6, ""))
	nd.rmLater(t, victim)
	for _, id := range []string{survivor, victim} {
		a.call(t, "POST", "/containers/"+id+"/start", nil, nil).wantStatus(t, 204)
	}
	waitHTTP(t, sb.path, "http://[fd00:b5e7:40::7]/", "hi-from-v6", 30*time.Second)
	vpid := inspectNetCtr(t, a, victim).State.Pid

	nd.kill9()
	if err := syscall.Kill(vpid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill the victim's init (pid %d): %v", vpid, err)
	}
	netPoll(10*time.Second, func() bool { return syscall.Kill(vpid, 0) != nil })
	nd.restart(t)
	a = nd.api()
	waitNetCtr(t, a, victim, "exited", func(c netCtr) bool { return c.State.Status == "exited" })
	waitHTTP(t, sb.path, "http://[fd00:b5e7:40::7]/", "hi-from-v6", 30*time.Second)
	if nft := sb.sh("nft", "list", "ruleset"); !strings.Contains(nft, "ip6 saddr fd00:b5e7:40::/125") {
		t.Errorf("after the restart, no IPv6 masquerade for the network:\n%s", nft)
	}
	// IPv6 IPAM: the survivor holds ::7, so ::2-::6 are free again (the
	// victim's among them), then the subnet is full.
	var extra []string
	for i := 0; i < 5; i++ {
		id := netAPICreate(t, a, "", sleeper(n6, ""))
		nd.rmLater(t, id)
		if r := a.call(t, "POST", "/containers/"+id+"/start", nil, nil); r.Status != 204 {
			t.Errorf("container %d of 5 on the /125 after the restart: %s (an address leaked?)", i+1, r)
		}
		extra = append(extra, id)
	}
	id = netAPICreate(t, a, "", sleeper(n6, ""))
	nd.rmLater(t, id)
	a.call(t, "POST", "/containers/"+id+"/start", nil, nil).wantError(t, 500, "no available IPv6 addresses on this network's address pools")
	for _, id := range append(extra, id, survivor, victim) {
		a.call(t, "DELETE", "/containers/"+id+"?force=1", nil, nil).wantStatus(t, 204)
	}

	// A stopped berthd with no container leaves nothing; a started one
	// makes the network's bridge and rules again.
	if err := nd.daemon.stop(); err != nil {
		t.Fatal(err)
	}
	if nft := sb.sh("nft", "list", "ruleset"); strings.Contains(nft, "table ip6 ") {
		t.Errorf("a stopped berthd left an IPv6 table:\n%s", nft)
	}
	if links := sb.sh("ip", "-o", "link"); strings.Contains(links, br+":") {
		t.Errorf("a stopped berthd left the bridge %s:\n%s", br, links)
	}
	nd.restart(t)
	a = nd.api()
	if got := bridgeFor6(sb, "fd00:b5e7:40::1"); got == "" {
		t.Errorf("after a restart the network's bridge has no IPv6 gateway:\n%s", sb.sh("ip", "-6", "addr"))
	}
	if nft := sb.sh("nft", "list", "ruleset"); !strings.Contains(nft, "ip6 saddr fd00:b5e7:40::/125") {
		t.Errorf("after a restart, no IPv6 masquerade for the network:\n%s", nft)
	}
	a.call(t, "DELETE", "/networks/"+n6, nil, nil).wantStatus(t, 204)
	sb.waitState(t, nd.execRoot, before, "after network rm")
}

// TestIPv6RouterAdvertisements (issue 12 item 3 on IPv6 networks): a
// container on an IPv6 network sends router advertisements; the host's
// bridge, which now carries IPv6, still takes neither an address nor a
// route from them, and (berth) neither do the other containers on it:
// their interfaces have accept_ra=0, their addresses and routes are
// static.
func TestIPv6RouterAdvertisements(t *testing.T) {
	sb, nd := newNetTarget(t)
	tool := sb.tool()
	c := cliFor(t, "docker", nd.daemon)
	n6 := netName("ra6")
	c.ok("network", "create", "--ipv6", "--subnet", "fd00:b5e7:50::/64", n6)
	nd.rmNetLater(t, n6)
	br := bridgeFor6(sb, "fd00:b5e7:50::1")
	if br == "" {
		t.Fatalf("no bridge holds fd00:b5e7:50::1:\n%s", sb.sh("ip", "-6", "addr"))
	}
	if got := sb.sysctl("net/ipv6/conf/" + br + "/accept_ra"); got != "0" {
		t.Errorf("bridge %s has accept_ra=%s, want 0", br, got)
	}
	if got := sb.sysctl("net/ipv6/conf/" + br + "/disable_ipv6"); got != "0" {
		t.Errorf("bridge %s of an IPv6 network has disable_ipv6=%s, want 0", br, got)
	}
	peer := netName("peer")
	nd.rmLater(t, peer)
	c.ok("run", "-d", "--name", peer, "--network", n6, "busybox", "sleep", "300")

	prefix := netip.MustParsePrefix("2001:db8:bad:7::/64")
	seen := captureRA(t, sb, br, prefix)
	c.ok("run", "--rm", "--network", n6, "-v", tool+":/nettool:ro", "busybox", "/nettool", "ra", "eth0", prefix.String())
	select {
	case <-seen:
	case <-time.After(10 * time.Second):
		t.Fatalf("the router advertisement never reached bridge %s", br)
	}
	const bad = "2001:db8:bad:7:"
	took := func(addrs, routes string) string {
		switch {
		case strings.Contains(addrs, bad):
			return "an address:\n" + addrs
		case strings.Contains(routes, bad) || strings.Contains(routes, "default via fe80"):
			return "a route:\n" + routes
		}
		return ""
	}
	var host string
	poll(2*time.Second, func() bool {
		host = took(sb.sh("ip", "-6", "addr", "show", "dev", br), sb.sh("ip", "-6", "route", "show"))
		return host != ""
	})
	if host != "" {
		t.Errorf("after a container's router advertisement for %s, the host took %s", prefix, host)
	}

	onlyBerth(t, "dockerd 20.10 leaves accept_ra=1 in containers: they take addresses and routes from a neighbour's advertisements")
	if got := strings.TrimSpace(c.ok("exec", peer, "cat", "/proc/sys/net/ipv6/conf/eth0/accept_ra").Stdout); got != "0" {
		t.Errorf("the container's eth0 has accept_ra=%s, want 0", got)
	}
	var ctr string
	poll(2*time.Second, func() bool {
		in := c.ok("exec", peer, "sh", "-c", "ip -6 addr show dev eth0; echo ===; ip -6 route").Stdout
		addrs, routes, _ := strings.Cut(in, "===")
		ctr = took(addrs, routes)
		return ctr != ""
	})
	if ctr != "" {
		t.Errorf("after a neighbour's router advertisement for %s, the container took %s", prefix, ctr)
	}
}

// TestIPv6NetworkTraffic: published ports answer on the host's IPv6
// loopback ([::1]) and reach the container over IPv6 when it has an IPv6
// address (dockerd 20.10's userland proxy does both), and on the host's
// other IPv6 addresses from another machine; the embedded DNS
// answers AAAA with containers' IPv6 addresses; and (berth) containers
// reach other machines over IPv6 through masquerading.
func TestIPv6NetworkTraffic(t *testing.T) {
	sb, nd := newNetTarget(t)
	tool := sb.tool()
	c := cliFor(t, "docker", nd.daemon)
	n6 := netName("t6")
	c.ok("network", "create", "--ipv6", "--subnet", "fd00:b5e7:60::/64", n6)
	nd.rmNetLater(t, n6)
	web := netName("web")
	nd.rmLater(t, web)
	c.ok("run", "-d", "--name", web, "--network", n6, "--ip6", "fd00:b5e7:60::80", "-p", "8080:80", "-v", tool+":/nettool:ro", "busybox", "/nettool", "whoami", "80")

	// [::1]:8080 on the host, relayed to the container's IPv6 address:
	// the container sees a client from its IPv6 subnet (the gateway).
	body := waitHTTP(t, sb.path, "http://[::1]:8080/", "from ", 30*time.Second)
	if !strings.Contains(body, "fd00:b5e7:60::1") {
		t.Errorf("http://[::1]:8080/: %s, want a client from the network's IPv6 gateway fd00:b5e7:60::1", body)
	}
	c.ok("port", web, "80").wantOut(t, c.name, "0.0.0.0:8080\n[::]:8080")

	// AAAA from the embedded DNS (Go's resolver asks A and AAAA).
	r := c.ok("run", "--rm", "--network", n6, "-v", tool+":/nettool:ro", "busybox", "/nettool", "lookup", web)
	got := lines(r.Stdout)
	if !netHas(got, "fd00:b5e7:60::80") || len(got) != 2 {
		t.Errorf("lookup %s on %s: %q, want its IPv4 address and fd00:b5e7:60::80", web, n6, got)
	}

	// Another machine on the host's IPv6 network reaches the published
	// port on the host's IPv6 address.
	netRun(t, "ip", "-n", sb.name, "addr", "add", "fd00:b5e7:ff::1/64", "dev", "h0", "nodad")
	netRun(t, "ip", "-n", sb.clientName, "addr", "add", "fd00:b5e7:ff::2/64", "dev", "eth0", "nodad")
	waitHTTP(t, sb.clientPath, "http://[fd00:b5e7:ff::1]:8080/", "from ", 10*time.Second)

	onlyBerth(t, "dockerd 20.10 masquerades IPv6 only with the experimental ip6tables option")
	// The container's connection to that machine arrives from the host's
	// address.
	l, err := listenIn(sb.clientPath, "tcp6", "[::]:18091")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "outside-sees %s\n", r.RemoteAddr) })}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	r = c.run("exec", web, "/nettool", "get", "http://[fd00:b5e7:ff::2]:18091/")
	if r.Code != 0 || !strings.Contains(r.Stdout, "outside-sees [fd00:b5e7:ff::1]:") {
		t.Errorf("from %s to another machine over IPv6: exit %d %q %q, want it seen from the host's fd00:b5e7:ff::1", web, r.Code, r.Stdout, r.Stderr)
	}
}

// TestIPv6Connect: network connect --ip6 gives a running container on the
// default bridge the address and a default IPv6 route at once; disconnect
// takes them away.
func TestIPv6Connect(t *testing.T) {
	_, nd := newNetTarget(t)
	a := nd.api()
	i := 0
	nd.eachCLI(t, func(t *testing.T, c *CLI) {
		i++
		sub6, gw6, fixed := fmt.Sprintf("fd00:b5e7:7%d::/64", i), fmt.Sprintf("fd00:b5e7:7%d::1", i), fmt.Sprintf("fd00:b5e7:7%d::9", i)
		n6 := netName("c6")
		c.ok("network", "create", "--ipv6", "--subnet", sub6, n6)
		nd.rmNetLater(t, n6)
		ctr := netName("roamer6")
		nd.rmLater(t, ctr)
		c.ok("run", "-d", "--name", ctr, "busybox", "sleep", "300")
		c.ok("network", "connect", "--ip6", fixed, n6, ctr)
		in := c.ok("exec", ctr, "sh", "-c", "ip -6 addr; echo ===; ip -6 route").Stdout
		if !strings.Contains(in, "inet6 "+fixed+"/64") || !strings.Contains(in, "default via "+gw6) {
			t.Errorf("after network connect --ip6 %s: no address or no default route via %s:\n%s", fixed, gw6, in)
		}
		if ep := inspectCtr6(t, a, ctr).NetworkSettings.Networks[n6]; ep == nil || ep.GlobalIPv6Address != fixed || ep.IPv6Gateway != gw6 || ep.IPAMConfig == nil || ep.IPAMConfig.IPv6Address != fixed {
			t.Errorf("after connect, Networks[%s] = %+v", n6, ep)
		}
		c.ok("network", "disconnect", n6, ctr)
		if in := c.ok("exec", ctr, "sh", "-c", "ip -6 addr; ip -6 route").Stdout; strings.Contains(in, fmt.Sprintf("fd00:b5e7:7%d:", i)) {
			t.Errorf("after disconnect the container keeps the network's IPv6 address or route:\n%s", in)
		}
	})
}

// TestIPv6InternalNetwork: on an --internal network with IPv6 the
// containers reach each other over IPv6; (berth) they have no default
// IPv6 route and the host's services refuse them over IPv6 as over IPv4,
// through the bridge's IPv6 gateway.
func TestIPv6InternalNetwork(t *testing.T) {
	sb, nd := newNetTarget(t)
	tool := sb.tool()
	c := cliFor(t, "docker", nd.daemon)
	n6 := netName("in6")
	c.ok("network", "create", "--internal", "--ipv6", "--subnet", "fd00:b5e7:80::/64", n6)
	nd.rmNetLater(t, n6)
	web := netName("web")
	nd.rmLater(t, web)
	c.ok(append([]string{"run", "-d", "--name", web, "--network", n6, "--ip6", "fd00:b5e7:80::50", "busybox"}, webCmd("in6")...)...)
	r := c.run("run", "--rm", "--network", n6, "-v", tool+":/nettool:ro", "busybox", "sh", "-c", "/nettool get http://[fd00:b5e7:80::50]/; echo ===; ip -6 route")
	out, routes, _ := strings.Cut(r.Stdout, "===")
	if !strings.Contains(out, "hi-from-in6") {
		t.Errorf("on the internal network, http://[fd00:b5e7:80::50]/: %q %q", r.Stdout, r.Stderr)
	}

	onlyBerth(t, "dockerd lets containers on an --internal network reach the host's services through the bridge's address (moby/libnetwork#1151) and gives them a default route")
	if strings.Contains(routes, "default") {
		t.Errorf("a container on an internal network has a default IPv6 route:\n%s", routes)
	}
	l, err := listenIn(sb.path, "tcp6", "[::]:18095")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "host-says-hi") })}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	// The bridge's IPv6 gateway is on the containers' link: only the
	// firewall stands between them and the host's service there.
	waitHTTP(t, sb.path, "http://[fd00:b5e7:80::1]:18095/", "host-says-hi", 10*time.Second)
	r = c.run("run", "--rm", "--network", n6, "-v", tool+":/nettool:ro", "busybox", "/nettool", "get", "-once", "-t", "3", "http://[fd00:b5e7:80::1]:18095/")
	if strings.Contains(r.Stdout, "host-says-hi") {
		t.Errorf("a container on an --internal IPv6 network reached the host's service through the bridge's IPv6 gateway")
	}
}

// TestIPv6ICCDisabled (issue 12 item 5 on IPv6): with
// com.docker.network.bridge.enable_icc=false, containers on an IPv6
// network do not reach each other over IPv6 either (berth: dockerd 20.10
// enforces it with iptables only, so IPv6 passes); with icc on they do.
func TestIPv6ICCDisabled(t *testing.T) {
	sb, nd := newNetTarget(t)
	tool := sb.tool()
	c := cliFor(t, "docker", nd.daemon)
	icc, noicc := netName("icc6"), netName("noicc6")
	c.ok("network", "create", "--ipv6", "--subnet", "fd00:b5e7:a1::/64", icc)
	nd.rmNetLater(t, icc)
	c.ok("network", "create", "--ipv6", "--subnet", "fd00:b5e7:a2::/64", "-o", "com.docker.network.bridge.enable_icc=false", noicc)
	nd.rmNetLater(t, noicc)
	probe := func(netw, ip6 string) string {
		web := netName("iccweb6")
		nd.rmLater(t, web)
		c.ok(append([]string{"run", "-d", "--name", web, "--network", netw, "--ip6", ip6, "busybox"}, webCmd("iccweb6")...)...)
		r := c.run("run", "--rm", "--network", netw, "-v", tool+":/nettool:ro", "busybox", "/nettool", "get", "-t", "3", "http://["+ip6+"]/")
		return r.Stdout
	}
	if out := probe(icc, "fd00:b5e7:a1::50"); !strings.Contains(out, "hi-from-iccweb6") {
		t.Errorf("on %s (icc on), the peer did not answer over IPv6: %q", icc, out)
	}
	onlyBerth(t, "dockerd 20.10 enforces enable_icc=false with iptables only: IPv6 between containers passes")
	if out := probe(noicc, "fd00:b5e7:a2::50"); strings.Contains(out, "hi-from-iccweb6") {
		t.Errorf("on %s (enable_icc=false), a container reached its peer over IPv6: %q", noicc, out)
	}
}

// TestLinkLocalIPs: --link-local-ip addresses (IPAMConfig.LinkLocalIPs)
// are on the container's interface, /16 for IPv4 and /64 for IPv6 as
// dockerd's, with run on the default bridge and with network connect on
// a user network, and inspect shows them.
func TestLinkLocalIPs(t *testing.T) {
	_, nd := newNetTarget(t)
	a := nd.api()
	i := 0
	nd.eachCLI(t, func(t *testing.T, c *CLI) {
		i++
		ll4, ll6 := fmt.Sprintf("169.254.8.%d", i), fmt.Sprintf("fe80::254:8%d", i)
		// The network first: cleanups run in reverse, the container goes
		// before its network.
		n := netName("lln")
		c.ok("network", "create", n)
		nd.rmNetLater(t, n)
		ctr := netName("ll")
		nd.rmLater(t, ctr)
		// (An IPv6 one on a network without IPv6: dockerd 20.10 fails the
		// start, "permission denied", its container has IPv6 off; berth
		// adds it. Not checked here.)
		_ = ll6
		c.ok("run", "-d", "--name", ctr, "--link-local-ip", ll4, "busybox", "sleep", "300")
		in := c.ok("exec", ctr, "ip", "addr", "show", "dev", "eth0").Stdout
		for _, want := range []string{"inet " + ll4 + "/16"} {
			if !strings.Contains(in, want) {
				t.Errorf("run --link-local-ip: eth0 has no %q:\n%s", want, in)
			}
		}
		var ci struct {
			NetworkSettings struct {
				Networks map[string]*struct {
					IPAMConfig *struct{ LinkLocalIPs []string }
				}
			}
		}
		a.call(t, "GET", "/containers/"+ctr+"/json", nil, nil).wantStatus(t, 200).decode(t, &ci)
		if ep := ci.NetworkSettings.Networks["bridge"]; ep == nil || ep.IPAMConfig == nil || strings.Join(ep.IPAMConfig.LinkLocalIPs, " ") != ll4 {
			t.Errorf("inspect: Networks[bridge] = %+v, want IPAMConfig.LinkLocalIPs [%s]", ep, ll4)
		}

		ll := fmt.Sprintf("169.254.9.%d", i)
		c.ok("network", "connect", "--link-local-ip", ll, n, ctr)
		if in := c.ok("exec", ctr, "ip", "addr", "show", "dev", "eth1").Stdout; !strings.Contains(in, "inet "+ll+"/16") {
			t.Errorf("network connect --link-local-ip %s: eth1 has no such address:\n%s", ll, in)
		}
	})
}

// TestDefaultBridgeIPv6: the daemon's --ipv6 and --fixed-cidr-v6
// (daemon.json "ipv6", "fixed-cidr-v6") give the default bridge IPv6, as
// dockerd 20.10: a container there gets the prefix with its MAC address in
// the last six bytes, a default IPv6 route through the prefix's first
// address (the bridge's), and answers over IPv6.
func TestDefaultBridgeIPv6(t *testing.T) {
	sb := newNetSandbox(t)
	nd := startNetDaemonConfig(t, sb, env.target, `{"ipv6": true, "fixed-cidr-v6": "fd00:b5e7:d::/64"}`)
	tool := sb.tool()
	a := nd.api()
	c := cliFor(t, "docker", nd.daemon)
	var bridge struct {
		EnableIPv6 bool
		IPAM       struct {
			Config []struct{ Subnet, Gateway string }
		}
	}
	a.call(t, "GET", "/networks/bridge", nil, nil).wantStatus(t, 200).decode(t, &bridge)
	has6 := false
	for _, cf := range bridge.IPAM.Config {
		has6 = has6 || cf.Subnet == "fd00:b5e7:d::/64"
	}
	if !bridge.EnableIPv6 || !has6 {
		t.Errorf("network inspect bridge: EnableIPv6 %v, IPAM %+v; want true and the subnet fd00:b5e7:d::/64", bridge.EnableIPv6, bridge.IPAM.Config)
	}
	t.Logf("default bridge IPAM: %+v", bridge.IPAM.Config)

	web := netName("web6")
	nd.rmLater(t, web)
	c.ok("run", "-d", "--name", web, "-v", tool+":/nettool:ro", "busybox", "/nettool", "whoami", "80")
	var ci struct {
		NetworkSettings struct {
			MacAddress, GlobalIPv6Address, IPv6Gateway string
			GlobalIPv6PrefixLen                        int
		}
	}
	a.call(t, "GET", "/containers/"+web+"/json", nil, nil).wantStatus(t, 200).decode(t, &ci)
	ns := ci.NetworkSettings
	mac := strings.Split(ns.MacAddress, ":")
	if len(mac) != 6 {
		t.Fatalf("MacAddress %q", ns.MacAddress)
	}
	want := netip.MustParseAddr(fmt.Sprintf("fd00:b5e7:d::%s%s:%s%s:%s%s", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5])).String()
	if ns.GlobalIPv6Address != want || ns.GlobalIPv6PrefixLen != 64 || ns.IPv6Gateway != "fd00:b5e7:d::1" {
		t.Errorf("inspect: GlobalIPv6Address %q/%d, IPv6Gateway %q; want %s/64 (the prefix and the MAC %s) via fd00:b5e7:d::1",
			ns.GlobalIPv6Address, ns.GlobalIPv6PrefixLen, ns.IPv6Gateway, want, ns.MacAddress)
	}
	in := c.ok("exec", web, "sh", "-c", "ip -6 addr show dev eth0; echo ===; ip -6 route").Stdout
	if !strings.Contains(in, "inet6 "+want+"/64") || !strings.Contains(in, "default via fd00:b5e7:d::1") {
		t.Errorf("in the container: no %s/64 or no default route via fd00:b5e7:d::1:\n%s", want, in)
	}
	// The host reaches it over IPv6.
	waitHTTP(t, sb.path, "http://["+want+"]:80/", "from [fd00:b5e7:d::1]:", 20*time.Second)
}
