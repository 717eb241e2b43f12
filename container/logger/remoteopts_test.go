package logger

import "testing"

// TestRemoteAddressDefaultPort: a syslog or fluentd address without a
// port gets the driver's default one (dockerd's), one that is malformed
// otherwise is refused; decided without matching error text (issue 8
// item 7).
func TestRemoteAddressDefaultPort(t *testing.T) {
	for _, c := range []struct {
		syslog, want string
		bad          bool
	}{
		{syslog: "tcp://logs.example", want: "logs.example:514"},
		{syslog: "udp://10.0.0.1:1514", want: "10.0.0.1:1514"},
		{syslog: "tcp://[::1]", want: "[::1]:514"},
		{syslog: "tcp://[::1]:600", want: "[::1]:600"},
		{syslog: "tcp://[::1", bad: true},
		{syslog: "tcp://a:b:c", bad: true},
	} {
		ep, err := ParseSyslogAddress(c.syslog)
		if c.bad {
			if err == nil {
				t.Errorf("syslog-address %q: accepted as %+v", c.syslog, ep)
			}
			continue
		}
		if err != nil || ep.Addr != c.want {
			t.Errorf("syslog-address %q: %+v, %v; want %s", c.syslog, ep, err, c.want)
		}
	}
	for _, c := range []struct {
		fluentd, want string
		bad           bool
	}{
		{fluentd: "fluent.example", want: "fluent.example:24224"},
		{fluentd: "fluent.example:9880", want: "fluent.example:9880"},
		{fluentd: "a:b:c", bad: true},
		{fluentd: "host:port", bad: true},
	} {
		ep, err := parseFluentdAddress(c.fluentd)
		if c.bad {
			if err == nil {
				t.Errorf("fluentd-address %q: accepted as %+v", c.fluentd, ep)
			}
			continue
		}
		if err != nil || ep.Addr != c.want {
			t.Errorf("fluentd-address %q: %+v, %v; want %s", c.fluentd, ep, err, c.want)
		}
	}
}
