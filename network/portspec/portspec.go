// Package portspec parses and checks published-port specifications: the
// CLI's -p/--publish strings ("[ip:][hostPort:]containerPort[/proto]", with
// ranges) and the HostConfig.PortBindings that reach the daemon. It has no
// dependencies beyond the API types so that the CLI can use it too. Error
// texts are Docker's.
package portspec

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/network"
)

// Range is an inclusive port range; a single port has Start == End.
type Range struct{ Start, End uint16 }

// Len is the number of ports in r.
func (r Range) Len() int { return int(r.End) - int(r.Start) + 1 }

// ParseRange parses "80" or "8000-8010". Port 0 is allowed (it means "any").
func ParseRange(s string) (Range, error) {
	if s == "" {
		return Range{}, fmt.Errorf("empty string specified for ports")
	}
	lo, hi, isRange := strings.Cut(s, "-")
	start, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return Range{}, err
	}
	if !isRange {
		return Range{uint16(start), uint16(start)}, nil
	}
	end, err := strconv.ParseUint(hi, 10, 16)
	if err != nil {
		return Range{}, err
	}
	if end < start {
		return Range{}, fmt.Errorf("invalid range specified for port: %s", s)
	}
	return Range{uint16(start), uint16(end)}, nil
}

// ValidProto reports whether proto is one berth publishes.
func ValidProto(proto string) bool {
	switch strings.ToLower(proto) {
	case "tcp", "udp", "sctp":
		return true
	}
	return false
}

// Parse turns the CLI's -p values into the ExposedPorts set and the
// PortBindings map of a create request, as the docker CLI does.
func Parse(specs []string) (network.PortSet, network.PortMap, error) {
	exposed := network.PortSet{}
	bindings := network.PortMap{}
	for _, spec := range specs {
		if err := parseOne(spec, exposed, bindings); err != nil {
			return nil, nil, err
		}
	}
	return exposed, bindings, nil
}

func parseOne(raw string, exposed network.PortSet, bindings network.PortMap) error {
	spec, proto, hasProto := strings.Cut(raw, "/")
	if hasProto {
		if proto == "" || !ValidProto(proto) {
			return fmt.Errorf("invalid proto: %s", proto)
		}
		proto = strings.ToLower(proto)
	} else {
		proto = "tcp"
	}
	var ip, hostPort, containerPort string
	// An IPv6 address is given in brackets: [::1]:8080:80.
	if strings.HasPrefix(spec, "[") {
		end := strings.Index(spec, "]")
		if end < 0 {
			return fmt.Errorf("invalid IP address: %s", spec)
		}
		ip = spec[1:end]
		rest := strings.TrimPrefix(spec[end+1:], ":")
		parts := strings.Split(rest, ":")
		if len(parts) != 2 {
			return fmt.Errorf("invalid port format for --expose: %s", raw)
		}
		hostPort, containerPort = parts[0], parts[1]
	} else {
		parts := strings.Split(spec, ":")
		switch len(parts) {
		case 1:
			containerPort = parts[0]
		case 2:
			hostPort, containerPort = parts[0], parts[1]
		case 3:
			ip, hostPort, containerPort = parts[0], parts[1], parts[2]
		default:
			return fmt.Errorf("invalid port format for --publish: %s", raw)
		}
	}
	var hostIP netip.Addr
	if ip != "" {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return fmt.Errorf("invalid IP address: %s", ip)
		}
		hostIP = a
	}
	if containerPort == "" {
		return fmt.Errorf("no port specified: %s<empty>", raw)
	}
	cr, err := ParseRange(containerPort)
	if err != nil || cr.Start == 0 {
		return fmt.Errorf("invalid containerPort: %s", containerPort)
	}
	var hr Range
	if hostPort != "" {
		hr, err = ParseRange(hostPort)
		if err != nil {
			return fmt.Errorf("invalid hostPort: %s", hostPort)
		}
		if hr.Len() != cr.Len() && cr.Len() != 1 {
			return fmt.Errorf("invalid ranges specified for container and host Ports: %s and %s", containerPort, hostPort)
		}
	}
	for i := 0; i < cr.Len(); i++ {
		p, _ := network.PortFrom(cr.Start+uint16(i), network.IPProtocol(proto))
		exposed[p] = struct{}{}
		b := network.PortBinding{HostIP: hostIP}
		switch {
		case hostPort == "":
		case cr.Len() == 1 && hr.Len() > 1:
			b.HostPort = hostPort // any free port of the range
		default:
			b.HostPort = strconv.Itoa(int(hr.Start) + i)
		}
		bindings[p] = append(bindings[p], b)
	}
	return nil
}

// CheckBindings validates PortBindings as the daemon receives them, with
// Docker's wording ("invalid port specification: \"99999\"").
func CheckBindings(m network.PortMap) error {
	for p, bs := range m {
		if !p.IsValid() || p.Num() == 0 {
			return fmt.Errorf("invalid port specification: %q", p.String())
		}
		if !ValidProto(string(p.Proto())) {
			return fmt.Errorf("invalid proto: %s", p.Proto())
		}
		for _, b := range bs {
			if b.HostPort == "" {
				continue
			}
			if _, err := ParseRange(b.HostPort); err != nil {
				return fmt.Errorf("invalid port specification: %q", b.HostPort)
			}
		}
	}
	return nil
}
