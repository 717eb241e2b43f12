package network

import (
	"context"
	"os"
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
