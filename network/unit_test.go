package network

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/network"

	"github.com/berth/berth/network/portspec"
)

func TestPoolSerialNoReuseNoDouble(t *testing.T) {
	p := newPool(netip.MustParsePrefix("10.9.0.0/29"), netip.Prefix{}, netip.MustParseAddr("10.9.0.1"), nil)
	// Usable: .2 .. .6 (gateway .1, network .0, broadcast .7).
	var got []string
	for i := 0; i < 5; i++ {
		a, err := p.allocate("c" + string(rune('a'+i)))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, a.String())
	}
	if strings.Join(got, ",") != "10.9.0.2,10.9.0.3,10.9.0.4,10.9.0.5,10.9.0.6" {
		t.Fatalf("allocation order %v", got)
	}
	if _, err := p.allocate("x"); err == nil {
		t.Fatal("full pool must refuse")
	}
	// Released addresses come back only after the rest of the range.
	p.release(netip.MustParseAddr("10.9.0.3"), "cb")
	p.release(netip.MustParseAddr("10.9.0.3"), "other") // not its holder: no-op
	a, _ := p.allocate("y")
	if a.String() != "10.9.0.3" {
		t.Fatalf("got %s", a)
	}
	// Requesting a held address conflicts; the gateway is never given.
	if err := p.request(netip.MustParseAddr("10.9.0.4"), "z"); err == nil {
		t.Fatal("double allocation")
	}
	if err := p.request(netip.MustParseAddr("10.9.0.1"), "z"); err == nil {
		t.Fatal("gateway given away")
	}
	if err := p.request(netip.MustParseAddr("10.9.0.7"), "z"); err == nil {
		t.Fatal("broadcast given away")
	}
	if err := p.request(netip.MustParseAddr("10.9.1.2"), "z"); err == nil {
		t.Fatal("address outside subnet given")
	}
}

func TestPoolIPRange(t *testing.T) {
	p := newPool(netip.MustParsePrefix("10.9.0.0/24"), netip.MustParsePrefix("10.9.0.128/25"), netip.MustParseAddr("10.9.0.1"), nil)
	a, err := p.allocate("a")
	if err != nil || a.String() != "10.9.0.128" {
		t.Fatalf("%v %v", a, err)
	}
	// --ip may still pick outside the dynamic range, inside the subnet.
	if err := p.request(netip.MustParseAddr("10.9.0.20"), "b"); err != nil {
		t.Fatal(err)
	}
}

func TestPoolIPv6(t *testing.T) {
	p := newPool(netip.MustParsePrefix("fd00:b5e7::/126"), netip.Prefix{}, netip.MustParseAddr("fd00:b5e7::1"), nil)
	// Usable: ::2 and ::3 (network ::0 and gateway ::1 are not; IPv6 has
	// no broadcast, so the last address is given, as by Docker's IPAM).
	var got []string
	for _, h := range []string{"a", "b"} {
		a, err := p.allocate(h)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, a.String())
	}
	if strings.Join(got, ",") != "fd00:b5e7::2,fd00:b5e7::3" {
		t.Fatalf("allocation order %v", got)
	}
	if _, err := p.allocate("x"); err == nil || !strings.Contains(err.Error(), "no available IPv6 addresses") {
		t.Fatalf("full pool: %v", err)
	}
	for _, a := range []string{"fd00:b5e7::", "fd00:b5e7::4", "10.0.0.2"} {
		if p.usable(netip.MustParseAddr(a)) {
			t.Errorf("%s is usable", a)
		}
	}
	if err := p.request(netip.MustParseAddr("fd00:b5e7::1"), "z"); err == nil {
		t.Fatal("gateway given away")
	}
	// A /64: serial from ::2, --ip6 anywhere in the subnet.
	p = newPool(netip.MustParsePrefix("fd00:b5e7:1::/64"), netip.MustParsePrefix("fd00:b5e7:1::100/120"), netip.MustParseAddr("fd00:b5e7:1::1"), nil)
	if a, err := p.allocate("a"); err != nil || a.String() != "fd00:b5e7:1::100" {
		t.Fatalf("%v %v", a, err)
	}
	if err := p.request(netip.MustParseAddr("fd00:b5e7:1:0:ffff:ffff:ffff:ffff"), "b"); err != nil {
		t.Fatal(err)
	}
	if err := p.request(netip.MustParseAddr("fd00:b5e7:1:0:ffff:ffff:ffff:ffff"), "c"); err == nil {
		t.Fatal("double allocation")
	}
}

func TestLastAddr(t *testing.T) {
	for in, want := range map[string]string{
		"10.9.0.0/24": "10.9.0.255", "10.9.0.0/30": "10.9.0.3", "10.0.0.0/8": "10.255.255.255",
		"fd00::/64": "fd00::ffff:ffff:ffff:ffff", "fd00:1:2::/126": "fd00:1:2::3", "fd00::/7": "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	} {
		if got := lastAddr(netip.MustParsePrefix(in)).String(); got != want {
			t.Errorf("lastAddr(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestParseIPAMConfIPv6(t *testing.T) {
	for _, c := range []struct {
		in  IPAMConfigRequest
		err string
	}{
		{IPAMConfigRequest{Subnet: "fd00:b5e7::/64", Gateway: "fd00:b5e7::fe", IPRange: "fd00:b5e7::/80"}, ""},
		{IPAMConfigRequest{Subnet: "fd00:b5e7::/200"}, "invalid CIDR address: fd00:b5e7::/200"},
		{IPAMConfigRequest{Subnet: "fd00:b5e7::/127"}, "invalid subnet fd00:b5e7::/127: too small for containers"},
		{IPAMConfigRequest{Subnet: "fd00:b5e7::/64", Gateway: "fd00:b5e8::1"}, "failed to allocate gateway (fd00:b5e8::1): Requested address is out of range"},
		{IPAMConfigRequest{Subnet: "fd00:b5e7::/64", Gateway: "10.1.0.1"}, "failed to allocate gateway (10.1.0.1): Requested address is out of range"},
		{IPAMConfigRequest{Subnet: "fd00:b5e7::/64", IPRange: "fd00:b5e8::/80"}, "invalid ip-range fd00:b5e8::/80: it must be inside the subnet"},
	} {
		_, err := parseIPAMConf(c.in)
		if got := ""; err != nil {
			got = err.Error()
			if got != c.err {
				t.Errorf("%+v: %q, want %q", c.in, got, c.err)
			}
		} else if c.err != "" {
			t.Errorf("%+v: no error, want %q", c.in, c.err)
		}
	}
}

func TestMACLikeDocker(t *testing.T) {
	if m := macFor(netip.MustParseAddr("172.17.0.2")); m != "02:42:ac:11:00:02" {
		t.Fatal(m)
	}
}

func TestChooseSubnetAvoidsRoutes(t *testing.T) {
	taken := []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/0"),     // a default route takes nothing
		netip.MustParsePrefix("172.18.0.0/16"), // another bridge
		netip.MustParsePrefix("172.19.5.0/24"), // a route inside a pool
		netip.MustParsePrefix("172.16.0.0/12"), // no: a route covering all 172.x pools
	}
	p, ok := chooseSubnet(defaultPools(), taken[:3])
	if !ok || p.String() != "172.20.0.0/16" {
		t.Fatalf("got %v %v", p, ok)
	}
	p, ok = chooseSubnet(defaultPools(), taken)
	if !ok || p.String() != "192.168.0.0/20" {
		t.Fatalf("got %v %v", p, ok)
	}
	for _, pool := range defaultPools() {
		if pool.String() == "172.17.0.0/16" {
			t.Fatal("172.17.0.0/16 is docker0's")
		}
	}
	all := defaultPools()
	if _, ok := chooseSubnet(all, all); ok {
		t.Fatal("no pool should be free")
	}
}

func TestPortSpecParse(t *testing.T) {
	exp, b, err := portspec.Parse([]string{"8080:80", "127.0.0.1:9000:90/udp", "7000-7001:70-71", "5000", "[::1]:6000:60", "8000-8010:443"})
	if err != nil {
		t.Fatal(err)
	}
	if len(exp) != 7 {
		t.Fatalf("exposed %v", exp)
	}
	check := func(port, ip, hp string) {
		t.Helper()
		bs := b[network.MustParsePort(port)]
		if len(bs) != 1 || bs[0].HostPort != hp || (ip == "" && bs[0].HostIP.IsValid()) || (ip != "" && bs[0].HostIP.String() != ip) {
			t.Fatalf("%s: %+v", port, bs)
		}
	}
	check("80/tcp", "", "8080")
	check("90/udp", "127.0.0.1", "9000")
	check("70/tcp", "", "7000")
	check("71/tcp", "", "7001")
	check("5000/tcp", "", "")
	check("60/tcp", "::1", "6000")
	check("443/tcp", "", "8000-8010")

	for spec, want := range map[string]string{
		"99999:80":      "invalid hostPort: 99999",
		"abc":           "invalid containerPort: abc",
		"80:abc":        "invalid containerPort: abc",
		"8080:80/xyz":   "invalid proto: xyz",
		"1.2.3:8080:80": "invalid IP address: 1.2.3",
		"1-3:80-81":     "invalid ranges specified for container and host Ports: 80-81 and 1-3",
		"a:b:c:d":       "invalid port format for --publish: a:b:c:d",
		"8080:0":        "invalid containerPort: 0",
	} {
		if _, _, err := portspec.Parse([]string{spec}); err == nil || err.Error() != want {
			t.Errorf("%s: got %v, want %q", spec, err, want)
		}
	}
}

func TestCheckBindings(t *testing.T) {
	bad := network.PortMap{network.MustParsePort("80/tcp"): {{HostPort: "99999"}}}
	if err := portspec.CheckBindings(bad); err == nil || err.Error() != `invalid port specification: "99999"` {
		t.Fatal(err)
	}
	bad = network.PortMap{network.MustParsePort("80/tcp"): {{HostPort: "abc"}}}
	if err := portspec.CheckBindings(bad); err == nil {
		t.Fatal("abc accepted")
	}
	ok := network.PortMap{network.MustParsePort("80/tcp"): {{HostPort: "8000-8010"}, {HostPort: ""}}}
	if err := portspec.CheckBindings(ok); err != nil {
		t.Fatal(err)
	}
}

func TestPortTableClash(t *testing.T) {
	pt := newPortTable()
	pt.add("tcp", netip.MustParseAddr("127.0.0.1"), 8080, "a")
	if !pt.clash("tcp", netip.IPv4Unspecified(), 8080) {
		t.Fatal("wildcard must clash with a specific address")
	}
	if pt.clash("udp", netip.IPv4Unspecified(), 8080) || pt.clash("tcp", netip.MustParseAddr("127.0.0.2"), 8080) || pt.clash("tcp", netip.IPv6Unspecified(), 8080) {
		t.Fatal("false clash")
	}
	pt.remove("a")
	if pt.clash("tcp", netip.IPv4Unspecified(), 8080) {
		t.Fatal("not removed")
	}
}

// readDir removes the temporaries of atomic writes a crash cut short (a
// kill -9 during a sandbox's save left one in the crash loop), and reads
// the records beside them.
func TestReadDirRemovesTemps(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, ".abc.json.123.tmp")
	for p, b := range map[string]string{tmp: "{", filepath.Join(dir, "abc.json"): "{}"} {
		if err := os.WriteFile(p, []byte(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var read, bad int
	_ = readDir(dir, func([]byte) error { read++; return nil }, func(string, error) { bad++ })
	if read != 1 || bad != 0 {
		t.Errorf("read %d records, %d unreadable; want 1, 0", read, bad)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("temporary left: %v", err)
	}
}
