package container

import "testing"

// TestMakeResolvConf: dockerd's resolv.conf for each case (libnetwork's
// FilterResolvDNS, Build and the embedded DNS rebuild).
func TestMakeResolvConf(t *testing.T) {
	host := []byte("# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nnameserver fd00::53\nsearch corp.example\noptions edns0 trust-ad\n")
	for _, c := range []struct {
		name              string
		host              []byte
		dns, search, opts []string
		embedded          string
		want              string
	}{
		{name: "host file without its loopback resolvers, comments kept", host: host,
			want: "# generated\nnameserver 10.0.0.2\nnameserver fd00::53\nsearch corp.example\noptions edns0 trust-ad\n"},
		{name: "only loopback resolvers: Google's", host: []byte("nameserver 127.0.0.1\n"),
			want: "\nnameserver 8.8.8.8\nnameserver 8.8.4.4\nnameserver 2001:4860:4860::8888\nnameserver 2001:4860:4860::8844"},
		{name: "flags: search, nameserver, options", host: host, dns: []string{"1.1.1.1"}, search: []string{"a.example", "b.example"}, opts: []string{"ndots:3"},
			want: "search a.example b.example\nnameserver 1.1.1.1\noptions ndots:3\n"},
		{name: "one flag: the rest from the host file, loopback included", host: host, search: []string{"a.example"},
			want: "search a.example\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nnameserver fd00::53\noptions edns0 trust-ad\n"},
		{name: "--dns-search . means no search line", host: host, dns: []string{"1.1.1.1"}, search: []string{"."},
			want: "nameserver 1.1.1.1\noptions edns0 trust-ad\n"},
		{name: "embedded: its address, the IPv6 resolvers, options then ndots:0", host: host, embedded: "127.0.0.11",
			want: "search corp.example\nnameserver 127.0.0.11\nnameserver fd00::53\noptions edns0 trust-ad ndots:0\n"},
		{name: "embedded, the user's ndots wins", host: host, opts: []string{"ndots:2", "timeout:1"}, embedded: "127.0.0.11",
			want: "search corp.example\nnameserver 127.0.0.11\nnameserver fd00::53\noptions ndots:2 timeout:1\n"},
		{name: "embedded with --dns: the servers are the embedded one's upstreams", host: host, dns: []string{"1.1.1.1"}, embedded: "127.0.0.11",
			want: "search corp.example\nnameserver 127.0.0.11\noptions edns0 trust-ad ndots:0\n"},
	} {
		if got := string(makeResolvConf(c.host, c.dns, c.search, c.opts, c.embedded)); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}
