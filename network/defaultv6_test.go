package network

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
)

func TestMacIPv6(t *testing.T) {
	for _, tc := range []struct {
		prefix, mac, want string
	}{
		{"2001:db8:1::/64", "02:42:ac:11:00:02", "2001:db8:1::242:ac11:2"},
		{"fd00:b5e7:d::/80", "02:42:ac:11:00:0a", "fd00:b5e7:d::242:ac11:a"},
		{"fd00:b5e7:d::/96", "02:42:ac:11:00:0a", ""}, // fewer than 48 host bits
	} {
		got, ok := macIPv6(netip.MustParsePrefix(tc.prefix), tc.mac)
		if (tc.want == "") != !ok || (ok && got.String() != tc.want) {
			t.Errorf("macIPv6(%s, %s) = %v %v, want %q", tc.prefix, tc.mac, got, ok, tc.want)
		}
	}
}

// TestDefaultBridgeIPv6: --ipv6 --fixed-cidr-v6 give the default bridge
// IPv6 (containers get the prefix plus their MAC, dockerd's address, and
// a default IPv6 route through the prefix's first address); a restart
// without them takes it away again.
func TestDefaultBridgeIPv6(t *testing.T) {
	needRoot(t)
	root, exec := t.TempDir(), t.TempDir()
	cfg := Config{Root: root, ExecRoot: exec, Prefix: "bt" + randHex(4), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		DefaultIPv6: true, DefaultFixedCIDRv6: "fd00:b5e7:d::/64"}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { destroyService(t, s) })
	ctx := context.Background()
	id := containerID()
	path, err := s.Setup(ctx, req(id, "v6", "bridge", nil))
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr(s.ContainerIP(id))
	a4 := ip.As4()
	want := netip.AddrFrom16([16]byte{0xfd, 0x00, 0xb5, 0xe7, 0x00, 0x0d, 10: 0x02, 11: 0x42, 12: a4[0], 13: a4[1], 14: a4[2], 15: a4[3]})
	out := run(t, "nsenter", "--net="+path, "ip", "-6", "-o", "addr", "show", "dev", "eth0")
	if !strings.Contains(out, "inet6 "+want.String()+"/64") {
		t.Errorf("eth0 has no %s/64:\n%s", want, out)
	}
	if rt := run(t, "nsenter", "--net="+path, "ip", "-6", "route"); !strings.Contains(rt, "default via fd00:b5e7:d::1") {
		t.Errorf("no default IPv6 route via fd00:b5e7:d::1:\n%s", rt)
	}
	if br := run(t, "ip", "-6", "-o", "addr", "show", "dev", s.defaultBridge()); !strings.Contains(br, "fd00:b5e7:d::1/64") {
		t.Errorf("the bridge has no fd00:b5e7:d::1/64:\n%s", br)
	}
	if err := s.Release(ctx, id); err != nil {
		t.Fatal(err)
	}
	s.Close()

	cfg.DefaultIPv6, cfg.DefaultFixedCIDRv6 = false, ""
	s2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { destroyService(t, s2) })
	id2 := containerID()
	path2, err := s2.Setup(ctx, req(id2, "v4", "bridge", nil))
	if err != nil {
		t.Fatal(err)
	}
	if out := run(t, "nsenter", "--net="+path2, "ip", "-6", "-o", "addr", "show", "dev", "eth0"); strings.Contains(out, "fd00:b5e7:d:") {
		t.Errorf("without --ipv6 the container still has an address of the old prefix:\n%s", out)
	}
	if br := run(t, "ip", "-6", "-o", "addr", "show", "dev", s2.defaultBridge()); strings.Contains(br, "fd00:b5e7:d:") {
		t.Errorf("without --ipv6 the bridge keeps the old prefix:\n%s", br)
	}
}
