package network

import (
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

func parseMAC(s string) network.HardwareAddr {
	if s == "" {
		return nil
	}
	m, err := net.ParseMAC(s)
	if err != nil {
		return nil
	}
	return network.HardwareAddr(m)
}

// FillInspect fills NetworkSettings of a container's inspect answer as
// Docker shapes it: Networks by name (addresses only while running),
// Ports with every exposed port (null when not published) while running.
func (s *Service) FillInspect(containerID string, resp *container.InspectResponse) {
	if resp.NetworkSettings == nil {
		resp.NetworkSettings = &container.NetworkSettings{}
	}
	ns := resp.NetworkSettings
	if ns.Networks == nil {
		ns.Networks = map[string]*network.EndpointSettings{}
	}
	if ns.Ports == nil {
		ns.Ports = network.PortMap{}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	sb := s.sandboxes[containerID]
	mode := ""
	if resp.HostConfig != nil {
		mode = string(resp.HostConfig.NetworkMode)
	}
	if sb == nil {
		switch {
		case strings.HasPrefix(mode, "container:"):
			return
		}
		if n, err := s.find(modeNetwork(mode)); err == nil {
			ns.Networks[n.Name] = &network.EndpointSettings{NetworkID: n.ID}
			if mode == "host" && resp.State != nil && resp.State.Running {
				ns.SandboxKey = "/var/run/docker/netns/default"
			}
		}
		return
	}
	for _, ep := range sb.Endpoints {
		n := s.networks[ep.NetworkID]
		if n == nil {
			continue
		}
		ns.Networks[n.Name] = s.endpointSettings(sb, ep, n)
	}
	if sb.NetNS == "" {
		return
	}
	ns.SandboxID = containerID
	ns.SandboxKey = sb.NetNS
	for _, e := range sb.Exposed {
		if p, err := network.ParsePort(e); err == nil {
			if _, ok := ns.Ports[p]; !ok {
				ns.Ports[p] = nil
			}
		}
	}
	for _, b := range sb.Ports {
		p, ok := network.PortFrom(b.CtrPort, network.IPProtocol(b.Proto))
		if !ok {
			continue
		}
		ns.Ports[p] = append(ns.Ports[p], network.PortBinding{HostIP: b.HostIP, HostPort: itoa(int(b.HostPort))})
	}
}

func (s *Service) endpointSettings(sb *sandbox, ep *endpoint, n *netRecord) *network.EndpointSettings {
	es := &network.EndpointSettings{NetworkID: n.ID}
	if len(ep.Aliases) > 0 {
		es.Aliases = append([]string(nil), ep.Aliases...)
	}
	if ep.RequestedIP.IsValid() || ep.RequestedIP6.IsValid() || len(ep.LinkLocalIPs) > 0 {
		es.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: ep.RequestedIP, IPv6Address: ep.RequestedIP6, LinkLocalIPs: slices.Clone(ep.LinkLocalIPs)}
	}
	if len(ep.DriverOpts) > 0 {
		es.DriverOpts = maps.Clone(ep.DriverOpts)
	}
	if !n.Predefined {
		// Docker's order: name, aliases, short ID, hostname; no repeats.
		names := append([]string{sb.Name}, ep.Aliases...)
		if len(sb.ContainerID) >= 12 {
			names = append(names, sb.ContainerID[:12])
		}
		if sb.Hostname != "" {
			names = append(names, sb.Hostname)
		}
		for _, nm := range names {
			if nm != "" && !slices.Contains(es.DNSNames, nm) {
				es.DNSNames = append(es.DNSNames, nm)
			}
		}
	}
	if ep.IP.IsValid() {
		es.EndpointID = ep.EndpointID
		es.IPAddress = ep.IP
		es.IPPrefixLen = n.Subnet.Bits()
		es.MacAddress = parseMAC(ep.MAC)
		if !n.Internal || n.Gateway.IsValid() {
			es.Gateway = n.Gateway
		}
	}
	if ep.IP6.IsValid() {
		es.GlobalIPv6Address = ep.IP6
		es.GlobalIPv6PrefixLen = n.Subnet6.Bits()
		es.IPv6Gateway = n.Gateway6
	}
	return es
}

// FillSummary fills the Ports column and NetworkSettings of ps.
func (s *Service) FillSummary(containerID string, sum *container.Summary) {
	if sum.NetworkSettings == nil {
		sum.NetworkSettings = &container.NetworkSettingsSummary{}
	}
	if sum.NetworkSettings.Networks == nil {
		sum.NetworkSettings.Networks = map[string]*network.EndpointSettings{}
	}
	if sum.Ports == nil {
		sum.Ports = []container.PortSummary{}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	sb := s.sandboxes[containerID]
	if sb == nil {
		if n, err := s.find(modeNetwork(sum.HostConfig.NetworkMode)); err == nil && !strings.HasPrefix(sum.HostConfig.NetworkMode, "container:") {
			sum.NetworkSettings.Networks[n.Name] = &network.EndpointSettings{NetworkID: n.ID}
		}
		return
	}
	for _, ep := range sb.Endpoints {
		if n := s.networks[ep.NetworkID]; n != nil {
			sum.NetworkSettings.Networks[n.Name] = s.endpointSettings(sb, ep, n)
		}
	}
	if sb.NetNS == "" {
		return
	}
	published := map[string]bool{}
	for _, b := range sb.Ports {
		published[itoa(int(b.CtrPort))+"/"+b.Proto] = true
		sum.Ports = append(sum.Ports, container.PortSummary{IP: b.HostIP, PrivatePort: b.CtrPort, PublicPort: b.HostPort, Type: b.Proto})
	}
	for _, e := range sb.Exposed {
		if published[e] {
			continue
		}
		if p, err := network.ParsePort(e); err == nil {
			sum.Ports = append(sum.Ports, container.PortSummary{PrivatePort: p.Num(), Type: string(p.Proto())})
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
