package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// TestIsClosed: the DNS server's loops stop on a closed socket, known by
// net.ErrClosed through the error chain, not by the error's words.
func TestIsClosed(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc.Close()
	_, _, err = pc.ReadFrom(make([]byte, 1))
	if !isClosed(err) {
		t.Fatalf("read on a closed socket: %v not closed", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := l.Accept(); !isClosed(err) {
		t.Fatalf("accept on a closed listener: %v not closed", err)
	}
	if isClosed(nil) || isClosed(errors.New("use of closed network connection")) || isClosed(fmt.Errorf("read: %w", net.ErrWriteToConnected)) {
		t.Fatal("only net.ErrClosed is closed")
	}
}

func TestReverseName(t *testing.T) {
	for name, want := range map[string]string{
		"2.0.123.10.in-addr.arpa": "10.123.0.2",
		"0.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.7.e.5.b.0.0.d.f.ip6.arpa": "fd00:b5e7:1::50",
		"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa": "::1",
		"x.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa": "invalid IP",
		"0.0.ip6.arpa": "invalid IP", "1.2.3.in-addr.arpa": "invalid IP", "web.example": "invalid IP",
	} {
		if got := reverseName(name).String(); got != want {
			t.Errorf("reverseName(%s) = %s, want %s", name, got, want)
		}
	}
}

// TestDNSAnswersAAAA: on user-defined networks the embedded DNS answers
// AAAA with a container's IPv6 addresses, A with its IPv4 ones, NOERROR
// and no answer for AAAA of a container without IPv6 (as dockerd), and
// PTR for ip6.arpa names.
func TestDNSAnswersAAAA(t *testing.T) {
	n6 := &netRecord{ID: randHex(64), Name: "n6", Driver: "bridge", EnableIPv6: true, Subnet6: netip.MustParsePrefix("fd00:b5e7:1::/64"), Bridge: "x"}
	ep := func(ip, ip6 string) *endpoint {
		e := &endpoint{NetworkID: n6.ID, IP: netip.MustParseAddr(ip)}
		if ip6 != "" {
			e.IP6 = netip.MustParseAddr(ip6)
		}
		return e
	}
	s := &Service{
		networks: map[string]*netRecord{n6.ID: n6},
		sandboxes: map[string]*sandbox{
			"asker": {ContainerID: "asker", Name: "asker", Endpoints: []*endpoint{ep("10.1.0.2", "fd00:b5e7:1::2")}},
			"web":   {ContainerID: "web", Name: "web", Endpoints: []*endpoint{ep("10.1.0.3", "fd00:b5e7:1::50")}},
			"old":   {ContainerID: "old", Name: "old", Endpoints: []*endpoint{ep("10.1.0.4", "")}},
		},
	}
	d := &dnsServer{s: s, id: "asker"}
	ask := func(name string, qt dnsmessage.Type) (dnsmessage.RCode, []string) {
		t.Helper()
		b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 7, RecursionDesired: true})
		_ = b.StartQuestions()
		_ = b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: qt, Class: dnsmessage.ClassINET})
		q, _ := b.Finish()
		var m dnsmessage.Message
		if err := m.Unpack(d.answer(q, "udp")); err != nil {
			t.Fatalf("%s %v: %v", name, qt, err)
		}
		var out []string
		for _, a := range m.Answers {
			switch r := a.Body.(type) {
			case *dnsmessage.AResource:
				out = append(out, netip.AddrFrom4(r.A).String())
			case *dnsmessage.AAAAResource:
				out = append(out, netip.AddrFrom16(r.AAAA).String())
			case *dnsmessage.PTRResource:
				out = append(out, r.PTR.String())
			}
		}
		return m.RCode, out
	}
	for _, c := range []struct {
		name string
		qt   dnsmessage.Type
		want string
	}{
		{"web.", dnsmessage.TypeAAAA, "fd00:b5e7:1::50"},
		{"web.", dnsmessage.TypeA, "10.1.0.3"},
		{"web.n6.", dnsmessage.TypeAAAA, "fd00:b5e7:1::50"},
		{"old.", dnsmessage.TypeAAAA, ""},
		{"0.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.7.e.5.b.0.0.d.f.ip6.arpa.", dnsmessage.TypePTR, "web.n6."},
	} {
		rc, got := ask(c.name, c.qt)
		if rc != dnsmessage.RCodeSuccess || strings.Join(got, ",") != c.want {
			t.Errorf("%s %v: %v %q, want NOERROR %q", c.name, c.qt, rc, got, c.want)
		}
	}
}
