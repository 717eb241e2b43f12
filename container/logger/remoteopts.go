package logger

import (
	"compress/flate"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
)

// isTransportURL says whether an address names its transport, as
// dockerd's urlutil.IsTransportURL.
func isTransportURL(s string) bool {
	for _, p := range []string{"tcp://", "tcp+tls://", "udp://", "unix://", "unixgram://"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// lacksPort says whether hostport, which net.SplitHostPort refused, is
// a host without a port (dockerd then adds the default port): it is when
// the host with a port appended splits. This asks the parser, not the
// wording of its error.
func lacksPort(hostport string) bool {
	_, _, err := net.SplitHostPort(hostport + ":0")
	return err == nil
}

// Endpoint is where a remote driver sends: Network is tcp, tcp+tls, udp,
// unix or unixgram; Addr is host:port or a socket path.
type Endpoint struct {
	Network string `json:"network"`
	Addr    string `json:"addr"`
}

// ParseSyslogAddress reads syslog-address (proto://address; the port
// defaults to 514; a unix socket must exist) with dockerd's errors. The
// zero Endpoint means the host's own syslog socket.
func ParseSyslogAddress(address string) (Endpoint, error) {
	if address == "" {
		return Endpoint{}, nil
	}
	if !isTransportURL(address) {
		return Endpoint{}, fmt.Errorf("syslog-address should be in form proto://address, got %v", address)
	}
	u, err := url.Parse(address)
	if err != nil {
		return Endpoint{}, err
	}
	if u.Scheme == "unix" || u.Scheme == "unixgram" {
		if _, err := os.Stat(u.Path); err != nil {
			return Endpoint{}, err
		}
		return Endpoint{Network: u.Scheme, Addr: u.Path}, nil
	}
	host := u.Host
	if _, _, err := net.SplitHostPort(host); err != nil {
		if !lacksPort(host) {
			return Endpoint{}, err
		}
		host += ":514"
	}
	return Endpoint{Network: u.Scheme, Addr: host}, nil
}

var syslogFacilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
	"uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// SyslogFacility reads syslog-facility (a name or 0-23; default daemon)
// and returns the facility's code (not yet shifted into a priority).
func SyslogFacility(f string) (int, error) {
	if f == "" {
		return syslogFacilities["daemon"], nil
	}
	if n, ok := syslogFacilities[f]; ok {
		return n, nil
	}
	if n, err := strconv.Atoi(f); err == nil && n >= 0 && n <= 23 {
		return n, nil
	}
	return 0, errors.New("invalid syslog facility")
}

// FluentdConfig is the fluentd driver's parsed options, with dockerd's
// defaults (127.0.0.1:24224 over TCP, a 1 MiB buffer, a retry each
// second, practically forever).
type FluentdConfig struct {
	Endpoint           Endpoint      `json:"endpoint"`
	BufferLimit        int64         `json:"bufferLimit"`
	RetryWait          time.Duration `json:"retryWait"`
	MaxRetries         int           `json:"maxRetries"`
	Async              bool          `json:"async"`
	SubSecondPrecision bool          `json:"subSecondPrecision"`
	RequestAck         bool          `json:"requestAck"`
}

// ParseFluentd reads the fluentd driver's options with dockerd's errors.
func ParseFluentd(opts map[string]string) (FluentdConfig, error) {
	c := FluentdConfig{BufferLimit: 1024 * 1024, RetryWait: time.Second, MaxRetries: math.MaxInt32}
	ep, err := parseFluentdAddress(opts["fluentd-address"])
	if err != nil {
		return c, err
	}
	c.Endpoint = ep
	if v := opts["fluentd-buffer-limit"]; v != "" {
		n, err := units.RAMInBytes(v)
		if err != nil {
			return c, err
		}
		c.BufferLimit = n
	}
	if v := opts["fluentd-retry-wait"]; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return c, err
		}
		c.RetryWait = d
	}
	if v := opts["fluentd-max-retries"]; v != "" {
		n, err := strconv.ParseUint(v, 10, strconv.IntSize)
		if err != nil {
			return c, err
		}
		c.MaxRetries = int(min(n, math.MaxInt32))
	}
	if opts["fluentd-async"] != "" && opts["fluentd-async-connect"] != "" {
		return c, fmt.Errorf("conflicting options: cannot specify both '%s' and '%s", "fluentd-async", "fluentd-async-connect")
	}
	for _, k := range []string{"fluentd-async", "fluentd-async-connect", "fluentd-sub-second-precision", "fluentd-request-ack"} {
		v := opts[k]
		if v == "" {
			continue
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return c, err
		}
		switch k {
		case "fluentd-async", "fluentd-async-connect":
			c.Async = b
		case "fluentd-sub-second-precision":
			c.SubSecondPrecision = b
		case "fluentd-request-ack":
			c.RequestAck = b
		}
	}
	return c, nil
}

func parseFluentdAddress(address string) (Endpoint, error) {
	if address == "" {
		return Endpoint{Network: "tcp", Addr: "127.0.0.1:24224"}, nil
	}
	network := "tcp"
	given := address
	if isTransportURL(address) {
		u, err := url.Parse(address)
		if err != nil {
			return Endpoint{}, fmt.Errorf("invalid fluentd-address %s: %w", given, err)
		}
		if u.Scheme == "unix" || u.Scheme == "unixgram" {
			return Endpoint{Network: u.Scheme, Addr: u.Path}, nil
		}
		network = u.Scheme
		address = u.Host
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		if !lacksPort(address) {
			return Endpoint{}, fmt.Errorf("invalid fluentd-address %s: %w", given, err)
		}
		return Endpoint{Network: network, Addr: net.JoinHostPort(address, "24224")}, nil
	}
	if _, err := strconv.Atoi(port); err != nil {
		return Endpoint{}, fmt.Errorf("invalid fluentd-address %s: %w", given, err)
	}
	return Endpoint{Network: network, Addr: net.JoinHostPort(host, port)}, nil
}

// ParseGelfAddress reads gelf-address (udp:// or tcp://host:port, needed)
// with dockerd's errors.
func ParseGelfAddress(address string) (Endpoint, error) {
	if address == "" {
		return Endpoint{}, errors.New("gelf-address is a required parameter")
	}
	if !isTransportURL(address) {
		return Endpoint{}, fmt.Errorf("gelf-address should be in form proto://address, got %v", address)
	}
	u, err := url.Parse(address)
	if err != nil {
		return Endpoint{}, err
	}
	if u.Scheme != "udp" && u.Scheme != "tcp" {
		return Endpoint{}, errors.New("gelf: endpoint needs to be TCP or UDP")
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		return Endpoint{}, errors.New("gelf: please provide gelf-address as proto://host:port")
	}
	return Endpoint{Network: u.Scheme, Addr: u.Host}, nil
}

// validateGelf checks the gelf driver's options in dockerd's order: the
// address first, then each option (keys sorted, without the built-in
// ones).
func validateGelf(keys []string, opts map[string]string) error {
	ep, err := ParseGelfAddress(opts["gelf-address"])
	if err != nil {
		return err
	}
	for _, k := range keys {
		v := opts[k]
		switch k {
		case "gelf-address", "tag", "labels", "labels-regex", "env", "env-regex":
		case "gelf-compression-level":
			if ep.Network != "udp" {
				return errors.New("compression is only supported on UDP")
			}
			if i, err := strconv.Atoi(v); err != nil || i < flate.DefaultCompression || i > flate.BestCompression {
				return fmt.Errorf("unknown value %q for log opt %q for gelf log driver", v, k)
			}
		case "gelf-compression-type":
			if ep.Network != "udp" {
				return errors.New("compression is only supported on UDP")
			}
			switch v {
			case "gzip", "zlib", "none":
			default:
				return fmt.Errorf("unknown value %q for log opt %q for gelf log driver", v, k)
			}
		case "gelf-tcp-max-reconnect", "gelf-tcp-reconnect-delay":
			if ep.Network != "tcp" {
				return fmt.Errorf("%q is only valid for TCP", k)
			}
			if i, err := strconv.Atoi(v); err != nil || i < 0 {
				return fmt.Errorf("%q must be a positive integer", k)
			}
		default:
			return fmt.Errorf("unknown log opt %q for gelf log driver", k)
		}
	}
	return nil
}
