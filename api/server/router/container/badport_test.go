package container

import "testing"

// TestBadPortKey: the port a create body's decoding failed on is found
// from the body's keys (issue 8 item 7: not from the error's text).
func TestBadPortKey(t *testing.T) {
	for _, c := range []struct {
		body, port string
		ok         bool
	}{
		{body: `{"ExposedPorts":{"abc/tcp":{}}}`, port: "abc", ok: true},
		{body: `{"HostConfig":{"PortBindings":{"80/tcp":[],"99999/udp":[{"HostPort":"1"}]}}}`, port: "99999", ok: true},
		{body: `{"ExposedPorts":{"/tcp":{}}}`, port: "", ok: true},
		{body: `{"ExposedPorts":{"80/tcp":{}},"HostConfig":{"PortBindings":{"443":[]}}}`},
		{body: `{"ExposedPorts":{"":{}}}`},
		{body: `not json`},
	} {
		port, ok := badPortKey([]byte(c.body))
		if port != c.port || ok != c.ok {
			t.Errorf("%s: %q, %v; want %q, %v", c.body, port, ok, c.port, c.ok)
		}
	}
}
