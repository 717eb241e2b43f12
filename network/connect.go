package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func (s *Service) lookupContainer(ctx context.Context, ref string) (ContainerInfo, error) {
	if s.lookup == nil {
		return ContainerInfo{}, cerrdefs.ErrUnavailable.WithMessage("network service has no container lookup")
	}
	return s.lookup(ctx, ref)
}

// checkAttachable rejects containers whose mode forbids other networks.
func checkAttachable(mode string) error {
	switch {
	case mode == "host" || strings.HasPrefix(mode, "container:"):
		return cerrdefs.ErrInvalidArgument.WithMessage("container sharing network namespace with another container or host cannot be connected to any other network")
	case mode == "none":
		return cerrdefs.ErrInvalidArgument.WithMessage("container cannot be connected to multiple networks with one of the networks in private (none) mode")
	}
	return nil
}

// sandboxFor returns the container's sandbox, making its record from the
// container's create request if it has none yet.
func (s *Service) sandboxFor(info ContainerInfo) (*sandbox, error) {
	if sb := s.sandboxes[info.ID]; sb != nil {
		return sb, nil
	}
	eps, err := s.membership(Request{
		ContainerID: info.ID, Name: info.Name,
		HostConfig: hostConfigWithMode(info.NetworkMode),
		Networking: &network.NetworkingConfig{EndpointsConfig: info.Endpoints},
	})
	if err != nil {
		return nil, err
	}
	return &sandbox{ContainerID: info.ID, Name: info.Name, Endpoints: eps}, nil
}

// Connect attaches a container to a network (POST /networks/{id}/connect):
// a stopped container joins it at its next start, a running one gets a new
// interface at once.
func (s *Service) Connect(ctx context.Context, netRef, ctrRef string, es *network.EndpointSettings) error {
	info, err := s.lookupContainer(ctx, ctrRef)
	if err != nil {
		return err
	}
	if err := checkAttachable(info.NetworkMode); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waitSetupLocked(info.ID)
	n, err := s.find(netRef)
	if err != nil {
		return err
	}
	if n.Driver != "bridge" {
		return cerrdefs.ErrInvalidArgument.WithMessage("container cannot be disconnected from host network or connected to host network")
	}
	sb, err := s.sandboxFor(info)
	if err != nil {
		return err
	}
	for _, ep := range sb.Endpoints {
		if ep.NetworkID == n.ID {
			return cerrdefs.ErrPermissionDenied.WithMessage(fmt.Sprintf("endpoint with name %s already exists in network %s", info.Name, n.Name))
		}
	}
	ep := &endpoint{NetworkID: n.ID}
	if err := s.applyEndpointConfig(ep, n, es); err != nil {
		return err
	}
	if sb.NetNS != "" {
		if err := s.hotplug(sb, ep); err != nil {
			return err
		}
	} else {
		sb.Endpoints = append(sb.Endpoints, ep)
	}
	s.sandboxes[sb.ContainerID] = sb
	return s.saveSandbox(sb)
}

// hotplug plugs ep into a running sandbox, all or nothing.
func (s *Service) hotplug(sb *sandbox, ep *endpoint) (retErr error) {
	nsh, err := netns.GetFromPath(sb.NetNS)
	if err != nil {
		return err
	}
	defer nsh.Close()
	nlh, err := netlink.NewHandleAt(nsh, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer nlh.Close()
	sb.Endpoints = append(sb.Endpoints, ep)
	defer func() {
		if retErr != nil {
			_ = s.unplug(sb, ep)
			sb.Endpoints = sb.Endpoints[:len(sb.Endpoints)-1]
		}
	}()
	if err := s.plug(sb, ep, nsh, nlh, nil); err != nil {
		return err
	}
	rt := s.running[sb.ContainerID]
	if rt == nil {
		rt = &runtimeState{}
		s.running[sb.ContainerID] = rt
	}
	return s.startDNS(sb, rt)
}

// Disconnect detaches a container from a network.
func (s *Service) Disconnect(ctx context.Context, netRef, ctrRef string, force bool) error {
	info, err := s.lookupContainer(ctx, ctrRef)
	if err != nil {
		if force && cerrdefs.IsNotFound(err) {
			return nil
		}
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waitSetupLocked(info.ID)
	n, err := s.find(netRef)
	if err != nil {
		return err
	}
	if n.Driver == "host" || strings.HasPrefix(info.NetworkMode, "container:") || info.NetworkMode == "host" {
		return cerrdefs.ErrInvalidArgument.WithMessage("container cannot be disconnected from host network or connected to host network")
	}
	sb, err := s.sandboxFor(info)
	if err != nil {
		return err
	}
	idx := -1
	for i, ep := range sb.Endpoints {
		if ep.NetworkID == n.ID {
			idx = i
		}
	}
	if idx < 0 {
		return cerrdefs.ErrPermissionDenied.WithMessage(fmt.Sprintf("container %s is not connected to network %s", info.ID, n.Name))
	}
	ep := sb.Endpoints[idx]
	var errs []error
	if sb.NetNS != "" {
		wasPrimary := false
		if ip, _ := s.primary(sb); ip.IsValid() && ip == ep.IP {
			wasPrimary = true
		}
		if wasPrimary && len(sb.Ports) > 0 {
			// Published ports lead to this address: they go with it.
			if rt := s.running[sb.ContainerID]; rt != nil {
				for _, p := range rt.proxies {
					p.close()
				}
				rt.proxies = nil
			}
			errs = append(errs, s.fw.removePorts(sb.ContainerID))
			s.ports.remove(sb.ContainerID)
			sb.Ports = nil
		}
		errs = append(errs, s.unplug(sb, ep))
	}
	sb.Endpoints = append(sb.Endpoints[:idx], sb.Endpoints[idx+1:]...)
	if sb.NetNS != "" {
		errs = append(errs, s.fixDefaultRoute(sb))
		if rt := s.running[sb.ContainerID]; rt != nil && rt.dns != nil && s.resolvConfLocked(sb) == nil {
			rt.dns.close()
			rt.dns = nil
		}
	}
	s.sandboxes[sb.ContainerID] = sb
	errs = append(errs, s.saveSandbox(sb))
	return errors.Join(errs...)
}

// resolvConfLocked is ResolvConf for a sandbox, with s.mu held.
func (s *Service) resolvConfLocked(sb *sandbox) []string {
	for _, ep := range sb.Endpoints {
		if n := s.networks[ep.NetworkID]; n != nil && !n.Predefined {
			return []string{dnsAddr}
		}
	}
	return nil
}

// fixDefaultRoute gives a running sandbox a default route through its
// first remaining network with a gateway, if it lost its own.
func (s *Service) fixDefaultRoute(sb *sandbox) error {
	nsh, err := netns.GetFromPath(sb.NetNS)
	if err != nil {
		return err
	}
	defer nsh.Close()
	nlh, err := netlink.NewHandleAt(nsh, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer nlh.Close()
	for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
		if err := s.fixDefaultRouteFamily(sb, nlh, fam); err != nil {
			return err
		}
	}
	return nil
}

// fixDefaultRouteFamily is fixDefaultRoute for one address family.
func (s *Service) fixDefaultRouteFamily(sb *sandbox, nlh *netlink.Handle, fam int) error {
	routes, err := nlh.RouteList(nil, fam)
	if err != nil {
		return err
	}
	for _, r := range routes {
		if r.Gw != nil && (r.Dst == nil || r.Dst.IP.IsUnspecified()) {
			return nil // still has a default route
		}
	}
	for _, ep := range sb.Endpoints {
		n := s.networks[ep.NetworkID]
		if n == nil || n.Internal || !ep.IP.IsValid() {
			continue
		}
		gw := n.Gateway
		if fam == unix.AF_INET6 {
			if !ep.IP6.IsValid() {
				continue
			}
			gw = n.Gateway6
		}
		if !gw.IsValid() {
			continue
		}
		link, err := nlh.LinkByName(ep.IfName)
		if err != nil {
			return err
		}
		return nlh.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: net.IP(gw.AsSlice())})
	}
	return nil
}
