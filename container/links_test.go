package container

import (
	"slices"
	"testing"

	"github.com/moby/moby/api/types/network"
)

func TestParseLink(t *testing.T) {
	for _, tc := range []struct{ in, name, alias string }{
		{"db", "db", "db"},
		{"db:x", "db", "x"},
		{"/db:/web/x", "db", "x"},
	} {
		n, a, err := parseLink(tc.in)
		if err != nil || n != tc.name || a != tc.alias {
			t.Errorf("parseLink(%q) = %q %q %v, want %q %q", tc.in, n, a, err, tc.name, tc.alias)
		}
	}
	for _, bad := range []string{"", "a:b:c"} {
		if _, _, err := parseLink(bad); err == nil {
			t.Errorf("parseLink(%q): no error", bad)
		}
	}
}

// TestLinkEnv: dockerd's variables, a run of consecutive ports as a range.
func TestLinkEnv(t *testing.T) {
	ports := network.PortSet{}
	for _, p := range []string{"6379/tcp", "6380/tcp", "6381/tcp", "53/udp"} {
		ports[network.MustParsePort(p)] = struct{}{}
	}
	got := linkEnv(linkedChild{name: "/web/my-db", alias: "my-db", ip: "172.17.0.2", ports: ports,
		env: []string{"PATH=/bin", "HOME=/root", "PASSWORD=x=y", "NOVALUE"}})
	want := []string{
		"MY_DB_PORT=udp://172.17.0.2:53",
		"MY_DB_PORT_6379_TCP_START=tcp://172.17.0.2:6379",
		"MY_DB_PORT_6379_TCP_ADDR=172.17.0.2",
		"MY_DB_PORT_6379_TCP_PROTO=tcp",
		"MY_DB_PORT_6379_TCP_PORT_START=6379",
		"MY_DB_PORT_6379_TCP_END=tcp://172.17.0.2:6381",
		"MY_DB_PORT_6379_TCP_PORT_END=6381",
		"MY_DB_PORT_53_UDP=udp://172.17.0.2:53",
		"MY_DB_PORT_53_UDP_ADDR=172.17.0.2",
		"MY_DB_PORT_53_UDP_PORT=53",
		"MY_DB_PORT_53_UDP_PROTO=udp",
		"MY_DB_PORT_6379_TCP=tcp://172.17.0.2:6379",
		"MY_DB_PORT_6379_TCP_ADDR=172.17.0.2",
		"MY_DB_PORT_6379_TCP_PORT=6379",
		"MY_DB_PORT_6379_TCP_PROTO=tcp",
		"MY_DB_PORT_6380_TCP=tcp://172.17.0.2:6380",
		"MY_DB_PORT_6380_TCP_ADDR=172.17.0.2",
		"MY_DB_PORT_6380_TCP_PORT=6380",
		"MY_DB_PORT_6380_TCP_PROTO=tcp",
		"MY_DB_PORT_6381_TCP=tcp://172.17.0.2:6381",
		"MY_DB_PORT_6381_TCP_ADDR=172.17.0.2",
		"MY_DB_PORT_6381_TCP_PORT=6381",
		"MY_DB_PORT_6381_TCP_PROTO=tcp",
		"MY_DB_NAME=/web/my-db",
		"MY_DB_ENV_PASSWORD=x=y",
	}
	if !slices.Equal(got, want) {
		t.Errorf("linkEnv:\n got %q\nwant %q", got, want)
	}
}
