package network

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/network/portspec"
)

// Request describes a container's networking needs (the container
// service's NetworkRequest, field for field).
type Request struct {
	ContainerID string
	Name        string // without the leading slash
	Hostname    string
	Config      *container.Config
	HostConfig  *container.HostConfig
	Networking  *network.NetworkingConfig
}

func (r Request) mode() string {
	if r.HostConfig == nil {
		return "default"
	}
	return string(r.HostConfig.NetworkMode)
}

func hostConfigWithMode(mode string) *container.HostConfig {
	return &container.HostConfig{NetworkMode: container.NetworkMode(mode)}
}

func (r Request) endpointsConfig() map[string]*network.EndpointSettings {
	if r.Networking == nil {
		return nil
	}
	return r.Networking.EndpointsConfig
}

// Validate checks a create request's network settings without changing
// anything.
func (s *Service) Validate(ctx context.Context, req Request) error {
	mode := req.mode()
	if req.HostConfig != nil {
		if err := portspec.CheckBindings(req.HostConfig.PortBindings); err != nil {
			return cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
		for p := range req.HostConfig.PortBindings {
			if p.Proto() == network.SCTP {
				return cerrdefs.ErrNotImplemented.WithMessage("publishing sctp ports is not supported by berth")
			}
		}
	}
	switch {
	case mode == "host" || strings.HasPrefix(mode, "container:"):
		return nil
	case mode == "none":
		for name := range req.endpointsConfig() {
			if name != "none" {
				return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Container cannot be connected to network endpoints: none, %s", name))
			}
		}
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, err := s.membership(req)
	return err
}

// membership resolves the networks a new sandbox joins: its mode's
// network, then the other networks of EndpointsConfig (API >= 1.44).
func (s *Service) membership(req Request) ([]*endpoint, error) {
	primary, err := s.find(modeNetwork(req.mode()))
	if err != nil {
		return nil, err
	}
	if primary.Driver != "bridge" {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("network %s cannot be used as a container's network mode here", primary.Name))
	}
	cfgs := req.endpointsConfig()
	names := make([]string, 0, len(cfgs))
	for k := range cfgs {
		names = append(names, k)
	}
	sort.Strings(names)
	eps := []*endpoint{{NetworkID: primary.ID}}
	for _, name := range names {
		n, err := s.find(name)
		if err != nil {
			return nil, err
		}
		var ep *endpoint
		for _, e := range eps {
			if e.NetworkID == n.ID {
				ep = e
			}
		}
		if ep == nil {
			if n.Driver != "bridge" {
				return nil, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("container cannot be connected to network %s and %s at once", primary.Name, n.Name))
			}
			ep = &endpoint{NetworkID: n.ID}
			eps = append(eps, ep)
		}
		if err := s.applyEndpointConfig(ep, n, cfgs[name]); err != nil {
			return nil, err
		}
	}
	return eps, nil
}

func (s *Service) applyEndpointConfig(ep *endpoint, n *netRecord, es *network.EndpointSettings) error {
	if es == nil {
		return nil
	}
	if len(es.Aliases) > 0 {
		if n.Predefined {
			return cerrdefs.ErrInvalidArgument.WithMessage("network-scoped alias is supported only for containers in user defined networks")
		}
		ep.Aliases = append([]string(nil), es.Aliases...)
	}
	if es.IPAMConfig != nil && es.IPAMConfig.IPv4Address.IsValid() {
		ip := es.IPAMConfig.IPv4Address
		if n.Predefined {
			return cerrdefs.ErrInvalidArgument.WithMessage("user specified IP address is supported on user defined networks only")
		}
		if p := s.pools[n.ID]; p == nil || !p.usable(ip) {
			return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Invalid address %s: It does not belong to any of this network's subnets", ip))
		}
		ep.RequestedIP = ip
	}
	if es.IPAMConfig != nil && es.IPAMConfig.IPv6Address.IsValid() {
		ip := es.IPAMConfig.IPv6Address
		if n.Predefined {
			return cerrdefs.ErrInvalidArgument.WithMessage("user specified IP address is supported on user defined networks only")
		}
		if !n.Subnet6.IsValid() {
			return cerrdefs.ErrInvalidArgument.WithMessage("user specified IP address is supported only when connecting to networks with user configured subnets")
		}
		// On a network with an IPv6 subnet but no --ipv6, dockerd keeps
		// the address asked and gives none: so does berth.
		if p := s.pools6[n.ID]; p != nil && !p.usable(ip) {
			return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Invalid address %s: It does not belong to any of this network's subnets", ip))
		}
		ep.RequestedIP6 = ip
	}
	if es.IPAMConfig != nil && len(es.IPAMConfig.LinkLocalIPs) > 0 {
		ep.LinkLocalIPs = slices.Clone(es.IPAMConfig.LinkLocalIPs)
	}
	if len(es.MacAddress) > 0 {
		ep.RequestedMAC = es.MacAddress.String()
	}
	if len(es.DriverOpts) > 0 {
		ep.DriverOpts = maps.Clone(es.DriverOpts)
	}
	return nil
}

// Setup prepares a container's networking before it starts and returns
// the namespace path runc joins: "host" for --network host, "" for none
// (runc makes a namespace with loopback only) and container:<id> (the
// container service resolves that one). On error nothing is left behind.
func (s *Service) Setup(ctx context.Context, req Request) (_ string, retErr error) {
	mode := req.mode()
	switch {
	case mode == "host":
		return "host", nil
	case mode == "none", strings.HasPrefix(mode, "container:"):
		return "", nil
	}
	id := req.ContainerID
	if id == "" {
		return "", cerrdefs.ErrInvalidArgument.WithMessage("network setup: container ID missing")
	}
	defer s.refill()
	// Under the lock: what the sandbox joins and its addresses, reserved.
	// Its namespace and interfaces are made without the lock (they are
	// this container's alone), so parallel starts overlap.
	sb, old, plans, err := s.reserveSandbox(req)
	if err != nil {
		return "", err
	}
	rt := &runtimeState{}
	defer func() {
		if retErr != nil {
			s.mu.Lock()
			rt.stop()
			s.teardownLocked(sb)
			if old != nil {
				_ = s.saveSandbox(old)
			}
			s.endSetupLocked(id)
			s.mu.Unlock()
		}
	}()
	path := s.nsPath(id)
	_ = removeNetNS(path)
	sp, err := s.takeSpare()
	if err != nil {
		return "", err
	}
	defer sp.destroy() // once pinned, the namespace stays
	if err := pinNetNS(sp.ns, path); err != nil {
		return "", err
	}
	sb.NetNS = path
	if s.plumbHook != nil {
		s.plumbHook(id)
	}
	for i, ep := range sb.Endpoints {
		var use *spare
		if i == 0 {
			use = sp
		}
		if err := s.plumb(ep, plans[i], sp.ns, sp.nlh, use, s.refreshBridge); err != nil {
			return "", err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.publish(sb, req, rt); err != nil {
		return "", err
	}
	if err := s.fw.addPorts(id, s.portRules(sb)); err != nil {
		return "", err
	}
	if err := s.startDNS(sb, rt); err != nil {
		return "", err
	}
	if err := s.saveSandbox(sb); err != nil {
		return "", err
	}
	s.sandboxes[id] = sb
	s.running[id] = rt
	s.endSetupLocked(id)
	return path, nil
}

// reserveSandbox is Setup's first step, under s.mu: it waits out another
// setup of the same container, tears down a stale one, and returns the
// sandbox to set up (a copy of the container's record, if it has one:
// readers see the record until Setup swaps the copy in) with an address
// reserved on each of its networks, the plan to plumb each, and the
// record it copied. The sandbox is pending until endSetupLocked.
func (s *Service) reserveSandbox(req Request) (sb, old *sandbox, plans []plugPlan, err error) {
	id := req.ContainerID
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waitSetupLocked(id)
	if time.Since(s.gateAt) > time.Second {
		// dockerd may have started since: open its FORWARD chain to us.
		s.gateAt = time.Now()
		if err := s.fw.ensureGate(); err != nil {
			s.log.Warn("network: cannot open the iptables FORWARD chain to berth's bridges", "err", err)
		}
	}
	old = s.sandboxes[id]
	if old != nil && old.NetNS != "" {
		s.teardownLocked(old) // a stale setup: start afresh
	}
	if old == nil {
		eps, err := s.membership(req)
		if err != nil {
			return nil, nil, nil, err
		}
		sb = &sandbox{ContainerID: id, Endpoints: eps}
	} else {
		sb = old.clone()
	}
	sb.Name, sb.Hostname, sb.Mode = req.Name, req.Hostname, req.mode()
	sb.DNS = nil
	if req.HostConfig != nil {
		for _, a := range req.HostConfig.DNS {
			sb.DNS = append(sb.DNS, a.String())
		}
	}
	fail := func(err error) (*sandbox, *sandbox, []plugPlan, error) {
		for _, ep := range sb.Endpoints {
			_ = s.unplug(sb, ep) // releases the addresses reserved
		}
		if old != nil {
			_ = s.saveSandbox(old)
		}
		return nil, nil, nil, err
	}
	for _, ep := range sb.Endpoints {
		if _, ok := s.networks[ep.NetworkID]; !ok {
			return fail(cerrdefs.ErrNotFound.WithMessage(fmt.Sprintf("network %s not found", ep.NetworkID)))
		}
	}
	for i, ep := range sb.Endpoints {
		plan, err := s.reserveEndpoint(sb, ep, i == 0)
		if err != nil {
			return fail(err)
		}
		plans = append(plans, plan)
	}
	s.pending[id] = sb
	return sb, old, plans, nil
}

// waitSetupLocked waits (releasing s.mu meanwhile) until no setup of the
// container is under way.
func (s *Service) waitSetupLocked(id string) {
	for s.pending[id] != nil {
		s.setupDone.Wait()
	}
}

// endSetupLocked ends the container's pending setup.
func (s *Service) endSetupLocked(id string) {
	delete(s.pending, id)
	s.setupDone.Broadcast()
}

// clone copies a sandbox record, its endpoints included.
func (sb *sandbox) clone() *sandbox {
	c := *sb
	c.Endpoints = make([]*endpoint, len(sb.Endpoints))
	for i, ep := range sb.Endpoints {
		e := *ep
		e.Aliases = slices.Clone(ep.Aliases)
		e.DriverOpts = maps.Clone(ep.DriverOpts)
		e.LinkLocalIPs = slices.Clone(ep.LinkLocalIPs)
		c.Endpoints[i] = &e
	}
	c.Ports = slices.Clone(sb.Ports)
	c.Exposed = slices.Clone(sb.Exposed)
	c.DNS = slices.Clone(sb.DNS)
	return &c
}

// plugPlan is what plumbing an endpoint needs, decided under s.mu.
type plugPlan struct {
	n            *netRecord
	brIndex, mtu int
	route        bool // the default route goes through n's gateway
	route6       bool // the IPv6 default route goes through n's gateway
	isolate      bool // icc off: the port is isolated on the bridge
}

// reserveEndpoint takes an address for ep on its network and decides the
// rest of its plumbing (the interface is the spare's eth0 when spare is
// set). Call with s.mu held; unplug undoes it.
func (s *Service) reserveEndpoint(sb *sandbox, ep *endpoint, spare bool) (plugPlan, error) {
	n := s.networks[ep.NetworkID]
	if n == nil {
		return plugPlan{}, cerrdefs.ErrNotFound.WithMessage(fmt.Sprintf("network %s not found", ep.NetworkID))
	}
	p := s.pools[n.ID]
	var ip netip.Addr
	var err error
	if ep.RequestedIP.IsValid() {
		ip, err = ep.RequestedIP, p.request(ep.RequestedIP, sb.ContainerID)
	} else {
		ip, err = p.allocate(sb.ContainerID)
	}
	if err != nil {
		return plugPlan{}, err
	}
	ep.IP = ip
	ep.MAC = macFor(ip)
	if ep.RequestedMAC != "" {
		ep.MAC = ep.RequestedMAC
	}
	if p6 := s.pools6[n.ID]; p6 != nil {
		var ip6 netip.Addr
		if ep.RequestedIP6.IsValid() {
			ip6, err = ep.RequestedIP6, p6.request(ep.RequestedIP6, sb.ContainerID)
		} else if a, ok := macIPv6(n.Subnet6, ep.MAC); ok && n.Predefined {
			// The default bridge with --fixed-cidr-v6: dockerd's
			// address made of the MAC.
			ip6, err = a, p6.request(a, sb.ContainerID)
		} else {
			ip6, err = p6.allocate(sb.ContainerID)
		}
		if err != nil {
			return plugPlan{}, err
		}
		ep.IP6 = ip6
	}
	ep.EndpointID = newID()
	brIndex, mtu, err := s.bridgeIndex(n)
	if err != nil {
		return plugPlan{}, err
	}
	if spare {
		ep.IfName = "eth0" // the spare's (its host end is set at plumbing)
	} else {
		ep.IfName = s.nextIfName(sb)
		ep.HostVeth = "veth" + ep.EndpointID[:7]
	}
	return plugPlan{
		n: n, brIndex: brIndex, mtu: mtu, isolate: n.iccOff(),
		route:  !n.Internal && n.Gateway.IsValid() && !s.hasGateway(sb, ep),
		route6: ep.IP6.IsValid() && !n.Internal && !s.hasGateway6(sb, ep),
	}, nil
}

// refreshBridge forgets n's cached bridge index and looks it up again
// (making the bridge again if it went away). It takes s.mu.
func (s *Service) refreshBridge(n *netRecord) (int, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshBridgeLocked(n)
}

func (s *Service) refreshBridgeLocked(n *netRecord) (int, int, error) {
	delete(s.brIndex, n.Bridge)
	return s.bridgeIndex(n)
}

// plug attaches the sandbox to one network: an address, a veth pair whose
// container end is ethN inside the namespace, and the default route if
// this is the first network with a gateway. Call with s.mu held.
func (s *Service) plug(sb *sandbox, ep *endpoint, nsh netns.NsHandle, nlh *netlink.Handle, sp *spare) error {
	plan, err := s.reserveEndpoint(sb, ep, sp != nil)
	if err != nil {
		return err
	}
	return s.plumb(ep, plan, nsh, nlh, sp, s.refreshBridgeLocked)
}

// plumb makes ep's interfaces as reserveEndpoint planned: the host end
// on the bridge, the container end (in the namespace of nsh/nlh) with
// its MAC, address and route. It touches only the container's own links
// and s.nl (safe for concurrent use), so it needs no lock; refresh looks
// the bridge up again when it went away.
func (s *Service) plumb(ep *endpoint, plan plugPlan, nsh netns.NsHandle, nlh *netlink.Handle, sp *spare, refresh func(*netRecord) (int, int, error)) error {
	n := plan.n
	mac, _ := net.ParseMAC(ep.MAC)
	if sp != nil {
		ep.IfName, ep.HostVeth = "eth0", sp.hostVeth
		if err := s.setUpHostEnd(sp, plan.brIndex, plan.mtu); err != nil {
			// The bridge may have been deleted and made again.
			brIndex, mtu, err := refresh(n)
			if err == nil {
				err = s.setUpHostEnd(sp, brIndex, mtu)
			}
			if err != nil {
				return fmt.Errorf("attach veth to %s: %w", n.Bridge, err)
			}
		}
	} else {
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: ep.HostVeth, MasterIndex: plan.brIndex, Flags: net.FlagUp, MTU: plan.mtu},
			PeerName:      ep.IfName,
			PeerNamespace: netlink.NsFd(int(nsh)),
		}
		if err := s.nl.LinkAdd(veth); err != nil {
			ep.HostVeth = ""
			return fmt.Errorf("create veth for %s: %w", n.Name, err)
		}
	}
	if plan.isolate {
		if err := isolatePort(s.nl, ep.HostVeth); err != nil {
			return err
		}
	}
	link, err := nlh.LinkByName(ep.IfName)
	if err != nil {
		return err
	}
	if err := nlh.LinkSetHardwareAddr(link, mac); err != nil {
		return fmt.Errorf("set mac of %s: %w", ep.IfName, err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: net.IP(ep.IP.AsSlice()), Mask: net.CIDRMask(n.Subnet.Bits(), 32)}}
	if err := nlh.AddrAdd(link, addr); err != nil {
		return fmt.Errorf("address %s: %w", ep.IfName, err)
	}
	if ep.IP6.IsValid() {
		// No duplicate address detection: IPAM made it unique, and a
		// tentative address could not be used for a second after start.
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: net.IP(ep.IP6.AsSlice()), Mask: net.CIDRMask(n.Subnet6.Bits(), 128)}, Flags: unix.IFA_F_NODAD}
		if err := nlh.AddrAdd(link, addr); err != nil {
			return fmt.Errorf("IPv6 address %s: %w", ep.IfName, err)
		}
	}
	// --link-local-ip: on the interface as dockerd's (/16 for IPv4, /64
	// for IPv6), beside the addresses IPAM gave.
	for _, ll := range ep.LinkLocalIPs {
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: net.IP(ll.AsSlice()), Mask: net.CIDRMask(16, 32)}}
		if !ll.Is4() {
			addr.Mask, addr.Flags = net.CIDRMask(64, 128), unix.IFA_F_NODAD
		}
		if err := nlh.AddrAdd(link, addr); err != nil {
			return fmt.Errorf("link-local address %s on %s: %w", ll, ep.IfName, err)
		}
	}
	if err := nlh.LinkSetUp(link); err != nil {
		return err
	}
	if plan.route {
		r := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: net.IP(n.Gateway.AsSlice())}
		if err := nlh.RouteAdd(r); err != nil {
			return fmt.Errorf("default route: %w", err)
		}
	}
	if plan.route6 {
		r := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: net.IP(n.Gateway6.AsSlice())}
		if err := nlh.RouteAdd(r); err != nil {
			return fmt.Errorf("default IPv6 route: %w", err)
		}
	}
	return nil
}

// hasGateway6 is hasGateway for IPv6.
func (s *Service) hasGateway6(sb *sandbox, except *endpoint) bool {
	for _, ep := range sb.Endpoints {
		if ep == except || !ep.IP6.IsValid() {
			continue
		}
		if n := s.networks[ep.NetworkID]; n != nil && !n.Internal {
			return true
		}
	}
	return false
}

// hasGateway reports whether another set-up endpoint of sb already gave
// it its default route.
func (s *Service) hasGateway(sb *sandbox, except *endpoint) bool {
	for _, ep := range sb.Endpoints {
		if ep == except || !ep.IP.IsValid() {
			continue
		}
		if n := s.networks[ep.NetworkID]; n != nil && !n.Internal && n.Gateway.IsValid() {
			return true
		}
	}
	return false
}

func (s *Service) nextIfName(sb *sandbox) string {
	used := map[string]bool{}
	for _, ep := range sb.Endpoints {
		used[ep.IfName] = true
	}
	for i := 0; ; i++ {
		if n := fmt.Sprintf("eth%d", i); !used[n] {
			return n
		}
	}
}

// unplug undoes plug; safe on a half-made endpoint.
func (s *Service) unplug(sb *sandbox, ep *endpoint) error {
	var err error
	if ep.HostVeth != "" {
		if l, lerr := s.nl.LinkByName(ep.HostVeth); lerr == nil {
			err = s.nl.LinkDel(l)
		}
	}
	s.releaseAddrs(sb, ep)
	return err
}

// releaseAddrs gives ep's addresses back to their pools and forgets what
// only a plugged endpoint has.
func (s *Service) releaseAddrs(sb *sandbox, ep *endpoint) {
	if p := s.pools[ep.NetworkID]; p != nil && ep.IP.IsValid() {
		p.release(ep.IP, sb.ContainerID)
	}
	if p := s.pools6[ep.NetworkID]; p != nil && ep.IP6.IsValid() {
		p.release(ep.IP6, sb.ContainerID)
	}
	ep.IP, ep.IP6, ep.MAC, ep.EndpointID, ep.IfName, ep.HostVeth = netip.Addr{}, netip.Addr{}, "", "", "", ""
}

// primary is the address published ports lead to: the first set-up
// endpoint's, and its network.
func (s *Service) primary(sb *sandbox) (netip.Addr, *netRecord) {
	for _, ep := range sb.Endpoints {
		if ep.IP.IsValid() {
			return ep.IP, s.networks[ep.NetworkID]
		}
	}
	return netip.Addr{}, nil
}

// primary6 is the IPv6 address of the primary endpoint, if it has one.
func (s *Service) primary6(sb *sandbox) netip.Addr {
	for _, ep := range sb.Endpoints {
		if ep.IP.IsValid() {
			return ep.IP6
		}
	}
	return netip.Addr{}
}

// portRules lists the DNAT rules of sb's bindings.
func (s *Service) portRules(sb *sandbox) []portRule {
	ip, n := s.primary(sb)
	if !ip.IsValid() || n == nil {
		return nil
	}
	var out []portRule
	for _, b := range sb.Ports {
		if !b.HostIP.Is4() || b.HostIP.IsLoopback() {
			continue // IPv6 and loopback go through the proxy only
		}
		out = append(out, portRule{Proto: b.Proto, HostIP: b.HostIP, HostPort: b.HostPort, Ctr: ip, CtrPort: b.CtrPort, Bridge: n.Bridge})
	}
	return out
}

// Teardown undoes Setup: proxies, DNS, port rules, veths, addresses, the
// namespace. The sandbox keeps its memberships. Idempotent.
func (s *Service) Teardown(ctx context.Context, containerID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waitSetupLocked(containerID)
	sb := s.sandboxes[containerID]
	if sb == nil || sb.NetNS == "" {
		return nil
	}
	err := s.teardownLocked(sb)
	if serr := s.saveSandbox(sb); err == nil {
		err = serr
	}
	return err
}

func (s *Service) teardownLocked(sb *sandbox) error {
	var errs []error
	if rt := s.running[sb.ContainerID]; rt != nil {
		rt.stop()
		delete(s.running, sb.ContainerID)
	}
	errs = append(errs, s.fw.removePorts(sb.ContainerID))
	// The veths are not deleted one by one: deleting a device waits for
	// an RCU grace period (tens of milliseconds). Unpinning the namespace
	// lets the kernel destroy it, and the veth pairs with it, in its
	// cleanup worker, batched. Without a pinned namespace (a half-made
	// setup) the veths are deleted here.
	if sb.NetNS != "" && isNetNS(sb.NetNS) {
		errs = append(errs, removeNetNS(sb.NetNS))
	} else {
		for _, ep := range sb.Endpoints {
			errs = append(errs, s.unplug(sb, ep))
		}
	}
	s.clearRuntime(sb)
	return errors.Join(errs...)
}

// clearRuntime forgets what only a running sandbox has.
func (s *Service) clearRuntime(sb *sandbox) {
	s.ports.remove(sb.ContainerID)
	for _, ep := range sb.Endpoints {
		s.releaseAddrs(sb, ep)
	}
	sb.NetNS = ""
	sb.Ports = nil
	sb.Exposed = nil
}

// Release forgets a removed container for good (tearing it down first if
// needed). Idempotent.
func (s *Service) Release(ctx context.Context, containerID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waitSetupLocked(containerID)
	var err error
	if sb := s.sandboxes[containerID]; sb != nil {
		err = s.teardownLocked(sb)
	}
	delete(s.sandboxes, containerID)
	if rerr := os.Remove(s.sbPath(containerID)); rerr != nil && !os.IsNotExist(rerr) && err == nil {
		err = rerr
	}
	return err
}

// ResolvConf returns the nameservers of the container's resolv.conf: the
// embedded DNS server's address on user-defined networks, nil otherwise
// (the host's resolvers, as on Docker's default bridge).
func (s *Service) ResolvConf(containerID string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sb := s.sandboxes[containerID]
	if sb == nil {
		return nil
	}
	return s.resolvConfLocked(sb)
}

// ContainerIP is the container's primary address, for /etc/hosts.
func (s *Service) ContainerIP(containerID string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sb := s.sandboxes[containerID]
	if sb == nil {
		return ""
	}
	if ip, _ := s.primary(sb); ip.IsValid() {
		return ip.String()
	}
	return ""
}

// bridgeIndex returns a network's bridge ifindex and MTU (cached; the
// bridge is made again if it went away).
func (s *Service) bridgeIndex(n *netRecord) (int, int, error) {
	if b, ok := s.brIndex[n.Bridge]; ok {
		return b[0], b[1], nil
	}
	l, err := s.nl.LinkByName(n.Bridge)
	if err != nil {
		if err := ensureBridge(n); err != nil {
			return 0, 0, err
		}
		if l, err = s.nl.LinkByName(n.Bridge); err != nil {
			return 0, 0, err
		}
	}
	s.brIndex[n.Bridge] = [2]int{l.Attrs().Index, l.Attrs().MTU}
	return l.Attrs().Index, l.Attrs().MTU, nil
}
