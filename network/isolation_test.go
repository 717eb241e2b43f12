package network

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
)

func TestParseICC(t *testing.T) {
	for v, want := range map[string]bool{"false": false, "0": false, "FALSE": false, "true": true, "1": true} {
		got, err := parseICC(map[string]string{iccOption: v})
		if err != nil || got != want {
			t.Errorf("%s=%q: %v %v, want %v", iccOption, v, got, err, want)
		}
	}
	if on, err := parseICC(nil); !on || err != nil {
		t.Errorf("no option: %v %v, want on", on, err)
	}
	if _, err := parseICC(map[string]string{iccOption: "maybe"}); err == nil {
		t.Error(`enable_icc="maybe" accepted`)
	}
}

// rulesOf lists the comments of berth's rules in chain.
func rulesOf(t *testing.T, s *Service, chain string) []string {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	rules, err := c.GetRules(s.fw.table, s.fw.chains[chain])
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rules {
		out = append(out, ruleComment(r))
	}
	return out
}

// TestBridgeHardening (issue 12, items 3-5): every bridge ignores router
// advertisements and has IPv6 off; an --internal network gets an input
// drop (the host refuses its containers), an enable_icc=false network a
// forward drop and isolated ports; removing them removes their rules.
func TestBridgeHardening(t *testing.T) {
	s := newTestService(t)
	ctx := context.Background()
	in, err := s.Create(ctx, CreateRequest{Name: "in", Internal: true, IPAM: &IPAMRequest{Config: []IPAMConfigRequest{{Subnet: "10.235.0.0/24"}}}})
	if err != nil {
		t.Fatal(err)
	}
	noicc, err := s.Create(ctx, CreateRequest{Name: "noicc", Options: map[string]string{iccOption: "false"}, IPAM: &IPAMRequest{Config: []IPAMConfigRequest{{Subnet: "10.236.0.0/24"}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{in.ID, noicc.ID} {
		br := s.bridgeName(id)
		for file, want := range map[string]string{"accept_ra": "0", "disable_ipv6": "1"} {
			b, err := os.ReadFile("/proc/sys/net/ipv6/conf/" + br + "/" + file)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(string(b)); got != want {
				t.Errorf("bridge %s: %s=%s, want %s", br, file, got, want)
			}
		}
	}
	if got := rulesOf(t, s, chInput); len(got) != 1 || got[0] != "n:"+in.ID {
		t.Errorf("input chain: %q, want one rule of the internal network", got)
	}
	fwd := strings.Join(rulesOf(t, s, chForward), " ")
	if strings.Count(fwd, "n:"+noicc.ID) != 2 { // the icc drop, and the usual inbound drop
		t.Errorf("forward chain: %s, want two rules of the enable_icc=false network", fwd)
	}

	// A container on the icc=false network: its veth is an isolated port.
	id := containerID()
	if _, err := s.Setup(ctx, req(id, "c", "noicc", nil)); err != nil {
		t.Fatal(err)
	}
	s.mu.RLock()
	veth := s.sandboxes[id].Endpoints[0].HostVeth
	s.mu.RUnlock()
	link, err := netlink.LinkByName(veth)
	if err != nil {
		t.Fatal(err)
	}
	pi, err := netlink.LinkGetProtinfo(link)
	if err != nil {
		t.Fatal(err)
	}
	if !pi.Isolated {
		t.Errorf("the veth %s of a container on an enable_icc=false network is not an isolated bridge port", link.Attrs().Name)
	}
	if err := s.Release(ctx, id); err != nil {
		t.Fatal(err)
	}

	for _, n := range []string{"in", "noicc"} {
		if err := s.Remove(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if got := rulesOf(t, s, chInput); len(got) != 0 {
		t.Errorf("input chain after the networks' removal: %q", got)
	}
	if fwd := strings.Join(rulesOf(t, s, chForward), " "); strings.Contains(fwd, noicc.ID) || strings.Contains(fwd, in.ID) {
		t.Errorf("forward chain after the networks' removal: %s", fwd)
	}
}

func isMountPoint(t *testing.T, dir string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

// TestCloseIdleReleasesNetnsMount (issue 12, item 11): a berthd stopping
// with no container running unmounts <exec-root>/netns; one whose
// container still runs (its namespace pinned there) keeps it.
func TestCloseIdleReleasesNetnsMount(t *testing.T) {
	s := newTestService(t)
	ctx := context.Background()
	dir := netnsDir(s.cfg.ExecRoot)
	if !isMountPoint(t, dir) {
		t.Fatalf("%s is not a mount point after New", dir)
	}
	id := containerID()
	if _, err := s.Setup(ctx, req(id, "c", "bridge", nil)); err != nil {
		t.Fatal(err)
	}
	if err := s.CloseIdle(); err != nil {
		t.Fatal(err)
	}
	if !isMountPoint(t, dir) {
		t.Errorf("%s was unmounted under a running container's namespace", dir)
	}
	if err := s.Release(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := s.CloseIdle(); err != nil {
		t.Fatal(err)
	}
	if isMountPoint(t, dir) {
		t.Errorf("%s is still mounted after CloseIdle with no container", dir)
	}
}

// TestFirewallIPv6Table: a network with IPv6 has its masquerade and
// isolation rules for its IPv6 subnet in "table ip6 <prefix>", which
// exists only while such a network does (and is rebuilt by reset, removed
// by destroy). Rules name interfaces only, so no bridge is needed.
func TestFirewallIPv6Table(t *testing.T) {
	needRoot(t)
	prefix := "bt" + randHex(4)
	fw := newFirewall(prefix)
	t.Cleanup(func() { _ = fw.destroy() })
	list := func(fam string) (string, bool) {
		out, err := exec.Command("nft", "list", "table", fam, prefix).CombinedOutput()
		return string(out), err == nil
	}
	if err := fw.reset(nil, nil); err != nil {
		t.Fatal(err)
	}
	if out, ok := list("ip6"); ok {
		t.Fatalf("an IPv6 table with no IPv6 network:\n%s", out)
	}
	n4 := &netRecord{ID: randHex(64), Bridge: prefix + "-a", Subnet: netip.MustParsePrefix("10.234.0.0/24")}
	n6 := &netRecord{ID: randHex(64), Bridge: prefix + "-b", Subnet: netip.MustParsePrefix("10.235.0.0/24"),
		EnableIPv6: true, Subnet6: netip.MustParsePrefix("fd00:b5e7:7::/64")}
	for _, n := range []*netRecord{n4, n6} {
		if err := fw.addNetwork(n); err != nil {
			t.Fatal(err)
		}
	}
	check := func(when string) {
		t.Helper()
		out, ok := list("ip6")
		if !ok {
			t.Fatalf("%s: no IPv6 table: %s", when, out)
		}
		for _, want := range []string{"ip6 saddr fd00:b5e7:7::/64 oifname != \"" + n6.Bridge + "\"", "masquerade", "oifname \"" + n6.Bridge + "\" iifname != \"" + n6.Bridge + "\""} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: the IPv6 table has no %q:\n%s", when, want, out)
			}
		}
		if strings.Contains(out, n4.Bridge) {
			t.Errorf("%s: the IPv6 table has rules of an IPv4-only network:\n%s", when, out)
		}
		if v4, _ := list("ip"); !strings.Contains(v4, "ip saddr 10.235.0.0/24") || !strings.Contains(v4, "ip saddr 10.234.0.0/24") {
			t.Errorf("%s: the IPv4 table lacks a network's masquerade:\n%s", when, v4)
		}
	}
	check("after create")
	if err := fw.reset([]*netRecord{n4, n6}, nil); err != nil {
		t.Fatal(err)
	}
	check("after reset")
	if err := fw.removeNetwork(n6.ID, false); err != nil {
		t.Fatal(err)
	}
	if out, ok := list("ip6"); ok {
		t.Errorf("the IPv6 table outlived the last IPv6 network:\n%s", out)
	}
	if v4, _ := list("ip"); strings.Contains(v4, "10.235.0.0/24") || !strings.Contains(v4, "10.234.0.0/24") {
		t.Errorf("after removing the IPv6 network, the IPv4 table:\n%s", v4)
	}
	if err := fw.addNetwork(n6); err != nil {
		t.Fatal(err)
	}
	if err := fw.destroy(); err != nil {
		t.Fatal(err)
	}
	for _, fam := range []string{"ip", "ip6"} {
		if out, ok := list(fam); ok {
			t.Errorf("destroy left table %s %s:\n%s", fam, prefix, out)
		}
	}
}
