// Package network is berth's network service: Linux bridges with NAT,
// per-container network namespaces joined by veth pairs, published ports
// (nftables DNAT plus an in-process userland proxy), user-defined networks
// with an embedded DNS server, and the /networks API behind them.
//
// Lifecycle of a container's networking, as the container service drives
// it (see container.Network):
//
//	Validate  at create: checks mode, networks and port specs; changes nothing
//	Setup     before runc starts: netns pinned at <exec-root>/netns/<id>,
//	          one veth per network, addresses from IPAM, ports bound and
//	          DNATed, embedded DNS started; all or nothing
//	Teardown  after the container stopped: everything Setup made is undone,
//	          the container keeps its network memberships (connect/disconnect
//	          change them, also while stopped)
//	Release   at rm: the container is forgotten
//
// At startup New restores what still exists (netns of containers that kept
// running while berthd was down); Reconcile, called once the container
// service knows which containers run, removes the rest.
package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/filters"
)

// Config configures the network service.
type Config struct {
	// Root holds persistent state (<data-root>/network).
	Root string
	// ExecRoot holds runtime state; network namespaces are pinned under
	// <ExecRoot>/netns.
	ExecRoot string
	Logger   *slog.Logger
	// Prefix names berth's kernel objects: the nftables table, the default
	// bridge (<Prefix>0) and user networks' bridges (<Prefix>-<id>).
	// "berth" if empty. At most 8 characters. Tests use their own.
	Prefix string
	// DefaultSubnet forces the default bridge's subnet at first start
	// (otherwise the first free one of Docker's pools, 172.17 excepted).
	DefaultSubnet string
	// ResolvConf is the file naming the resolvers the embedded DNS server
	// forwards to; /etc/resolv.conf if empty.
	ResolvConf string
	// DefaultIPv6 and DefaultFixedCIDRv6 are dockerd's --ipv6 and
	// --fixed-cidr-v6 (daemon.json "ipv6", "fixed-cidr-v6"): IPv6 on the
	// default bridge, applied at each start (see applyDefaultIPv6).
	DefaultIPv6        bool
	DefaultFixedCIDRv6 string
	// Containers resolves connect's and disconnect's container; nil:
	// they answer 503 (tests without containers).
	Containers ContainerLookup
}

// ContainerInfo is what connect and disconnect need to know about a
// container; see Config.Containers.
type ContainerInfo struct {
	ID          string
	Name        string // without the leading slash
	Running     bool
	NetworkMode string
	Endpoints   map[string]*network.EndpointSettings // the create request's EndpointsConfig
}

// ContainerLookup resolves a container name or ID (404 if unknown).
type ContainerLookup func(ctx context.Context, nameOrID string) (ContainerInfo, error)

// Service is the network service.
type Service struct {
	cfg    Config
	log    *slog.Logger
	fw     *firewall
	lookup ContainerLookup

	// Lock order (issue 8 item 6), each taken only while holding those
	// above it:
	//
	//  1. The container service's locks (its Store.mu, then one
	//     Container.mu: see container.Service): Setup, Teardown and
	//     Release may be called under a Container.mu.
	//  2. mu (this one). Never held while calling out: the container
	//     lookup (Config.Containers) runs before it is taken.
	//  3. Leaves, holding nothing else: firewall.mu (one nftables
	//     connection), proxy.mu and a UDP proxy's session lock.
	//
	// mu guards the maps below and the records in them. It is not held
	// while a setup makes a container's namespace and interfaces (that
	// plumbing is the container's alone): Setup reserves under mu, plumbs
	// without it, and registers under it again, so parallel starts
	// overlap. A setup under way is in pending (its addresses reserved;
	// setupDone is signalled when it ends); connect, disconnect, teardown
	// and release of that container wait for it.
	mu        sync.RWMutex
	setupDone *sync.Cond            // on mu
	pending   map[string]*sandbox   // by container ID: setups under way
	networks  map[string]*netRecord // by ID
	pools     map[string]*pool      // by network ID (bridge networks)
	pools6    map[string]*pool      // by network ID (networks with IPv6)
	sandboxes map[string]*sandbox   // by container ID
	ports     *portTable
	running   map[string]*runtimeState // proxies and DNS of set-up sandboxes

	upstreams []string // tests: resolvers with ports, instead of resolv.conf's
	// plumbHook (tests) runs in Setup while it plumbs, without mu.
	plumbHook func(containerID string)

	nl        *netlink.Handle   // host namespace, sockets kept open
	brIndex   map[string][2]int // bridge name → ifindex and MTU (cache)
	spares    chan *spare
	refilling chan struct{}
	bg        sync.WaitGroup
	gateAt    time.Time // last ensureGate
	damage    []string  // damaged records New found (Damage)
}

// runtimeState is what lives only in berthd's memory for a set-up sandbox.
type runtimeState struct {
	proxies []*proxy
	dns     *dnsServer
}

// New starts the network service: it loads the persisted networks (making
// the predefined ones on first start, with a default bridge subnet that
// collides with nothing), recreates bridges and berth's nftables table,
// enables forwarding and restores the proxies and DNS servers of
// containers whose namespaces are still there.
func New(cfg Config) (*Service, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "berth"
	}
	if len(cfg.Prefix) > 8 {
		return nil, fmt.Errorf("network prefix %q is longer than 8 characters", cfg.Prefix)
	}
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = "/etc/resolv.conf"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	for _, d := range []string{filepath.Join(cfg.Root, "networks"), filepath.Join(cfg.Root, "sandboxes")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	if err := ensureSharedDir(netnsDir(cfg.ExecRoot)); err != nil {
		return nil, err
	}
	s := &Service{
		cfg:       cfg,
		log:       cfg.Logger,
		lookup:    cfg.Containers,
		fw:        newFirewall(cfg.Prefix),
		networks:  map[string]*netRecord{},
		pools:     map[string]*pool{},
		pools6:    map[string]*pool{},
		sandboxes: map[string]*sandbox{},
		pending:   map[string]*sandbox{},
		ports:     newPortTable(),
		running:   map[string]*runtimeState{},
		brIndex:   map[string][2]int{},
		spares:    make(chan *spare, 1),
		refilling: make(chan struct{}, 1),
	}
	s.setupDone = sync.NewCond(&s.mu)
	nl, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	s.nl = nl
	if err := s.load(); err != nil {
		return nil, err
	}
	if err := enableForwarding(); err != nil {
		return nil, fmt.Errorf("enable ip_forward: %w", err)
	}
	if err := s.restore(); err != nil {
		return nil, err
	}
	s.refill()
	return s, nil
}

func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Service) netPath(id string) string {
	return filepath.Join(s.cfg.Root, "networks", id+".json")
}

func (s *Service) sbPath(id string) string {
	return filepath.Join(s.cfg.Root, "sandboxes", id+".json")
}

func (s *Service) nsPath(id string) string { return filepath.Join(netnsDir(s.cfg.ExecRoot), id) }

func (s *Service) defaultBridge() string { return s.cfg.Prefix + "0" }

func (s *Service) bridgeName(id string) string {
	n := 15 - len(s.cfg.Prefix) - 1
	return s.cfg.Prefix + "-" + id[:n]
}

// load reads networks and sandboxes, creating the predefined networks on
// first start.
func (s *Service) load() error {
	// Unreadable records: see damage.go.
	netDir, sbDir := filepath.Join(s.cfg.Root, "networks"), filepath.Join(s.cfg.Root, "sandboxes")
	damagedNets := map[string]string{} // network ID → file
	netCauses := map[string]error{}    // network ID → why
	damagedSbs := map[string]error{}   // container ID → why
	_ = readDir(netDir, func(b []byte) error {
		var n netRecord
		if err := json.Unmarshal(b, &n); err != nil {
			return err
		}
		s.networks[n.ID] = &n
		return nil
	}, func(name string, err error) {
		path, err := unreadable(netDir, name, err)
		id := strings.TrimSuffix(name, ".json")
		damagedNets[id], netCauses[id] = path, err
	})
	_ = readDir(sbDir, func(b []byte) error {
		var sb sandbox
		if err := json.Unmarshal(b, &sb); err != nil {
			return err
		}
		s.sandboxes[sb.ContainerID] = &sb
		return nil
	}, func(name string, err error) {
		_, err = unreadable(sbDir, name, err)
		damagedSbs[strings.TrimSuffix(name, ".json")] = err
	})
	have := map[string]bool{}
	for _, n := range s.networks {
		if n.Predefined {
			have[n.Name] = true
		}
	}
	now := time.Now().UTC()
	if !have["none"] {
		if err := s.saveNetwork(&netRecord{ID: newID(), Name: "none", Driver: "null", Scope: "local", Created: now, Predefined: true, IPAMDriver: "default"}); err != nil {
			return err
		}
	}
	if !have["host"] {
		if err := s.saveNetwork(&netRecord{ID: newID(), Name: "host", Driver: "host", Scope: "local", Created: now, Predefined: true, IPAMDriver: "default"}); err != nil {
			return err
		}
	}
	if !have["bridge"] {
		if n := s.rebuildDefaultBridge(damagedNets); n != nil {
			file := s.netPath(n.ID)
			if _, ok := damagedNets[n.ID]; ok {
				if err := keepDamaged(file); err != nil {
					return err
				}
				s.damage = append(s.damage, fmt.Sprintf("network: the record %s of the default bridge was damaged (%v): rebuilt with its ID and the subnet %s its bridge %s has; the damaged record is kept as %s",
					file, netCauses[n.ID], n.Subnet, n.Bridge, file+damagedSuffix))
				delete(damagedNets, n.ID)
			}
			if err := s.saveNetwork(n); err != nil {
				return err
			}
		} else {
			subnet, err := s.pickDefaultSubnet()
			if err != nil {
				return err
			}
			n := &netRecord{
				ID: newID(), Name: "bridge", Driver: "bridge", Scope: "local", Created: now, Predefined: true,
				Subnet: subnet, Gateway: subnet.Addr().Next(), Bridge: s.defaultBridge(), IPAMDriver: "default",
				Options: defaultBridgeOptions(s.defaultBridge()),
			}
			if err := s.saveNetwork(n); err != nil {
				return err
			}
		}
	}
	for _, n := range s.networks {
		if n.Predefined && n.Name == "bridge" {
			if err := s.applyDefaultIPv6(n); err != nil {
				return err
			}
		}
	}
	for _, n := range s.networks {
		if n.Driver == "bridge" {
			s.addPools(n)
		}
	}
	for id, path := range damagedNets {
		s.damage = append(s.damage, fmt.Sprintf("network: the record %s is damaged (%v): the network is left out, its containers lose it; the file is left in place for repair (remove it to drop the network)", path, netCauses[id]))
	}
	for id, why := range damagedSbs {
		s.loadDamagedSandbox(id, s.sbPath(id), why)
	}
	for _, msg := range s.damage {
		s.log.Warn(msg)
	}
	return nil
}

func timeNow() time.Time { return time.Now().UTC() }

// defaultBridgeOptions are the default bridge's options, as dockerd's.
func defaultBridgeOptions(bridge string) map[string]string {
	return map[string]string{
		"com.docker.network.bridge.default_bridge":       "true",
		"com.docker.network.bridge.enable_icc":           "true",
		"com.docker.network.bridge.enable_ip_masquerade": "true",
		"com.docker.network.bridge.host_binding_ipv4":    "0.0.0.0",
		"com.docker.network.bridge.name":                 bridge,
		"com.docker.network.driver.mtu":                  "1500",
	}
}

func (s *Service) pickDefaultSubnet() (netip.Prefix, error) {
	if s.cfg.DefaultSubnet != "" {
		p, err := netip.ParsePrefix(s.cfg.DefaultSubnet)
		if err != nil || !p.Addr().Is4() || p.Bits() > 30 {
			return netip.Prefix{}, fmt.Errorf("invalid default subnet %q", s.cfg.DefaultSubnet)
		}
		return p.Masked(), nil
	}
	taken, err := hostPrefixes()
	if err != nil {
		return netip.Prefix{}, err
	}
	for _, n := range s.networks {
		if n.Subnet.IsValid() {
			taken = append(taken, n.Subnet)
		}
	}
	p, ok := chooseSubnet(defaultPools(), taken)
	if !ok {
		return netip.Prefix{}, errors.New("could not find a free subnet for the default bridge")
	}
	return p, nil
}

func (s *Service) saveNetwork(n *netRecord) error {
	if err := writeJSON(s.netPath(n.ID), n, true); err != nil {
		return err
	}
	s.networks[n.ID] = n
	return nil
}

func (s *Service) saveSandbox(sb *sandbox) error {
	return writeJSON(s.sbPath(sb.ContainerID), sb, false)
}

// restore brings the kernel and berthd's memory in line with the records:
// bridges and the nftables table are (re)made; sandboxes whose namespace
// is gone are torn down, the others keep their addresses, rules, proxies
// and DNS servers.
func (s *Service) restore() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var nets []*netRecord
	for _, n := range s.networks {
		if n.Driver == "bridge" {
			if err := ensureBridge(n); err != nil {
				return err
			}
			nets = append(nets, n)
		}
	}
	// Bridges of networks that are gone, once no container uses them.
	s.removeOrphanBridges(false)
	sort.Slice(nets, func(i, j int) bool { return nets[i].Created.Before(nets[j].Created) })
	ports := map[string][]portRule{}
	for id, sb := range s.sandboxes {
		if sb.NetNS == "" {
			continue
		}
		if !isNetNS(sb.NetNS) {
			s.clearRuntime(sb)
			_ = s.saveSandbox(sb)
			continue
		}
		for _, ep := range sb.Endpoints {
			if p := s.pools[ep.NetworkID]; p != nil && ep.IP.IsValid() {
				_ = p.request(ep.IP, id)
			}
			if p := s.pools6[ep.NetworkID]; p != nil && ep.IP6.IsValid() {
				_ = p.request(ep.IP6, id)
			}
		}
		ports[id] = s.portRules(sb)
	}
	if err := s.fw.reset(nets, ports); err != nil {
		return err
	}
	if err := s.fw.ensureGate(); err != nil {
		s.log.Warn("network: cannot open the iptables FORWARD chain to berth's bridges", "err", err)
	}
	for id, sb := range s.sandboxes {
		if sb.NetNS == "" {
			continue
		}
		rt := &runtimeState{}
		s.running[id] = rt
		for _, b := range sb.Ports {
			s.ports.add(b.Proto, b.HostIP, b.HostPort, id)
		}
		if err := s.startRuntime(sb, rt); err != nil {
			s.log.Warn("network: restoring proxies and DNS", "container", id, "err", err)
		}
	}
	return nil
}

// Reconcile is called once at startup, when the container service knows
// its containers: containers maps every existing container's ID to whether
// it is running. Sandboxes of containers that no longer run are torn down,
// those of removed containers released, and namespaces left in
// <exec-root>/netns by a crash are removed.
func (s *Service) Reconcile(ctx context.Context, containers map[string]bool) error {
	s.mu.RLock()
	var ids []string
	for id := range s.sandboxes {
		ids = append(ids, id)
	}
	s.mu.RUnlock()
	var errs []error
	for _, id := range ids {
		running, known := containers[id]
		switch {
		case !known:
			errs = append(errs, s.Release(ctx, id))
		case !running:
			errs = append(errs, s.Teardown(ctx, id))
		}
	}
	// Namespaces and port rules nobody owns (a crash in the middle of
	// Setup). A setup under way owns its own: a restart policy's start
	// may already be setting up (restore applied the policies), its
	// namespace pinned, its record not yet swapped in.
	s.mu.Lock()
	ents, _ := os.ReadDir(netnsDir(s.cfg.ExecRoot))
	for _, e := range ents {
		id := e.Name()
		if sb := s.sandboxes[id]; (sb != nil && sb.NetNS != "") || s.pending[id] != nil {
			continue
		}
		errs = append(errs, removeNetNS(s.nsPath(id)))
		errs = append(errs, s.fw.removePorts(id))
	}
	if owners, err := s.fw.portOwners(); err == nil {
		for id := range owners {
			if sb := s.sandboxes[id]; (sb == nil || sb.NetNS == "") && s.pending[id] == nil {
				errs = append(errs, s.fw.removePorts(id))
			}
		}
	}
	errs = append(errs, s.removeUnnamedPortsLocked())
	s.mu.Unlock()
	return errors.Join(errs...)
}

// removeUnnamedPortsLocked removes the veths on berth's bridges that no
// sandbox record names and whose other end is in the namespace of a
// container set up (not a setup under way): a connect of a running
// container cut short between plugging its interface and saving its
// record (crash loop finding: a bridge port no sandbox names, and in the
// container an interface with an address IPAM did not hold, free to be
// given again). The connect did not happen; removing the host end
// removes the container's end too. Call with s.mu held.
func (s *Service) removeUnnamedPortsLocked() error {
	named := map[string]bool{}
	for _, sbs := range []map[string]*sandbox{s.sandboxes, s.pending} {
		for _, sb := range sbs {
			for _, ep := range sb.Endpoints {
				if ep.HostVeth != "" {
					named[ep.HostVeth] = true
				}
			}
		}
	}
	owners := map[int]string{} // the namespace's ID here → its container
	for id, sb := range s.sandboxes {
		if sb.NetNS == "" || s.pending[id] != nil {
			continue
		}
		h, err := netns.GetFromPath(sb.NetNS)
		if err != nil {
			continue
		}
		if nsid, err := s.nl.GetNetNsIdByFd(int(h)); err == nil && nsid >= 0 {
			owners[nsid] = id
		}
		h.Close()
	}
	if len(owners) == 0 {
		return nil
	}
	bridges := map[int]string{}
	for _, n := range s.networks {
		if n.Driver != "bridge" || n.Bridge == "" {
			continue
		}
		if br, err := s.nl.LinkByName(n.Bridge); err == nil {
			bridges[br.Attrs().Index] = n.Name
		}
	}
	links, err := s.nl.LinkList()
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range links {
		a := l.Attrs()
		netName, onBridge := bridges[a.MasterIndex]
		if !onBridge || l.Type() != "veth" || named[a.Name] || a.NetNsID < 0 {
			continue
		}
		id, ok := owners[a.NetNsID]
		if !ok {
			continue
		}
		s.log.Info("network restore: removing the interface of a connect cut short", "container", id, "network", netName, "veth", a.Name)
		errs = append(errs, s.nl.LinkDel(l))
	}
	return errors.Join(errs...)
}

// Close stops proxies and DNS servers (the kernel's objects stay: running
// containers keep their network while berthd is down).
func (s *Service) Close() error {
	s.drainSpares()
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, rt := range s.running {
		rt.stop()
		delete(s.running, id)
	}
	return nil
}

// --- network lookup -------------------------------------------------------

// find resolves a network by full ID, name, or unique ID prefix.
func (s *Service) find(ref string) (*netRecord, error) {
	if n, ok := s.networks[ref]; ok {
		return n, nil
	}
	for _, n := range s.networks {
		if n.Name == ref {
			return n, nil
		}
	}
	var match *netRecord
	if ref != "" {
		for _, n := range s.networks {
			if strings.HasPrefix(n.ID, ref) {
				if match != nil {
					return nil, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("network %s is ambiguous (%d matches found based on ID prefix)", ref, 2))
				}
				match = n
			}
		}
	}
	if match == nil {
		return nil, cerrdefs.ErrNotFound.WithMessage(fmt.Sprintf("network %s not found", ref))
	}
	return match, nil
}

// networkFor maps a NetworkMode to the network's name.
func modeNetwork(mode string) string {
	switch mode {
	case "", "default":
		return "bridge"
	}
	return mode
}

// --- the /networks API ------------------------------------------------------

// CreateRequest is POST /networks/create's body with addresses still as
// text, so that bad ones get clear errors.
type CreateRequest struct {
	Name       string
	Driver     string
	Internal   bool
	Attachable bool
	EnableIPv6 *bool
	IPAM       *IPAMRequest
	Options    map[string]string
	Labels     map[string]string
}

// IPAMRequest is the IPAM part of a CreateRequest.
type IPAMRequest struct {
	Driver  string
	Options map[string]string
	Config  []IPAMConfigRequest
}

// IPAMConfigRequest is one IPAM pool of a CreateRequest.
type IPAMConfigRequest struct {
	Subnet     string
	IPRange    string
	Gateway    string
	AuxAddress map[string]string `json:"AuxiliaryAddresses"`
}

// Create makes a user-defined bridge network.
func (s *Service) Create(ctx context.Context, req CreateRequest) (*network.CreateResponse, error) {
	if req.Name == "" {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage("network name is required")
	}
	switch req.Driver {
	case "", "bridge":
	case "host", "null":
		return nil, cerrdefs.ErrPermissionDenied.WithMessage(fmt.Sprintf("only one instance of \"%s\" network is allowed", req.Driver))
	default:
		return nil, cerrdefs.ErrNotFound.WithMessage(fmt.Sprintf("plugin %q not found", req.Driver))
	}
	if _, err := parseICC(req.Options); err != nil {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	enable6 := req.EnableIPv6 != nil && *req.EnableIPv6
	var v4, v6 ipamConf
	ipamDriver := "default"
	var ipamOpts map[string]string
	if req.IPAM != nil {
		if req.IPAM.Driver != "" && req.IPAM.Driver != "default" {
			return nil, cerrdefs.ErrNotFound.WithMessage(fmt.Sprintf("plugin %q not found", req.IPAM.Driver))
		}
		ipamOpts = req.IPAM.Options
		n4, n6 := 0, 0
		for _, c := range req.IPAM.Config {
			conf, err := parseIPAMConf(c)
			if err != nil {
				return nil, err
			}
			if conf.subnet.IsValid() && !conf.subnet.Addr().Is4() {
				v6 = conf
				n6++
			} else {
				v4 = conf
				n4++
			}
		}
		if n4 > 1 || n6 > 1 {
			return nil, cerrdefs.ErrPermissionDenied.WithMessage("bridge driver doesn't support multiple subnets")
		}
	}
	if enable6 && !v6.subnet.IsValid() {
		// dockerd 20.10 has no default IPv6 pool.
		return nil, cerrdefs.ErrNotFound.WithMessage("could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network")
	}
	subnet, iprange, gw, aux := v4.subnet, v4.iprange, v4.gw, v4.aux
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.networks {
		if n.Name == req.Name {
			if n.Predefined {
				return nil, cerrdefs.ErrPermissionDenied.WithMessage(fmt.Sprintf("%s is a pre-defined network and cannot be created", req.Name))
			}
			return nil, cerrdefs.ErrConflict.WithMessage(fmt.Sprintf("network with name %s already exists", req.Name))
		}
	}
	if enable6 {
		for _, n := range s.networks {
			if n.hasIPv6() && overlaps(n.Subnet6, v6.subnet) {
				return nil, cerrdefs.ErrPermissionDenied.WithMessage("Pool overlaps with other one on this address space")
			}
		}
	}
	if subnet.IsValid() {
		for _, n := range s.networks {
			if n.Subnet.IsValid() && overlaps(n.Subnet, subnet) {
				return nil, cerrdefs.ErrPermissionDenied.WithMessage("Pool overlaps with other one on this address space")
			}
		}
	} else {
		taken, err := hostPrefixes()
		if err != nil {
			return nil, err
		}
		for _, n := range s.networks {
			if n.Subnet.IsValid() {
				taken = append(taken, n.Subnet)
			}
		}
		p, ok := chooseSubnet(defaultPools(), taken)
		if !ok {
			return nil, cerrdefs.ErrUnavailable.WithMessage("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")
		}
		subnet = p
	}
	if !gw.IsValid() {
		gw = subnet.Addr().Next()
	}
	id := newID()
	n := &netRecord{
		ID: id, Name: req.Name, Driver: "bridge", Scope: "local", Created: time.Now().UTC(),
		Subnet: subnet, IPRange: iprange, Gateway: gw, Internal: req.Internal, Attachable: req.Attachable,
		Labels: req.Labels, Options: req.Options, IPAMDriver: ipamDriver, IPAMOptions: ipamOpts,
		Bridge: s.bridgeName(id), AuxAddresses: aux,
		EnableIPv6: enable6, Subnet6: v6.subnet, IPRange6: v6.iprange, Gateway6: v6.gw, Gateway6Given: v6.gw.IsValid(),
		AuxAddresses6: v6.aux,
	}
	if enable6 && !n.Gateway6.IsValid() {
		n.Gateway6 = v6.subnet.Addr().Next()
	}
	if err := ensureBridge(n); err != nil {
		_ = deleteBridge(n.Bridge)
		return nil, err
	}
	if err := s.fw.addNetwork(n); err != nil {
		_ = deleteBridge(n.Bridge)
		return nil, err
	}
	if err := s.saveNetwork(n); err != nil {
		_ = s.fw.removeNetwork(n.ID, s.anyIPv6(n.ID))
		_ = deleteBridge(n.Bridge)
		return nil, err
	}
	s.addPools(n)
	return &network.CreateResponse{ID: id}, nil
}

// addPools makes the address pools of bridge network n.
func (s *Service) addPools(n *netRecord) {
	s.pools[n.ID] = newPool(n.Subnet, n.IPRange, n.Gateway, n.AuxAddresses)
	if n.hasIPv6() {
		s.pools6[n.ID] = newPool(n.Subnet6, n.IPRange6, n.Gateway6, n.AuxAddresses6)
	}
}

// ipamConf is one checked IPAM config of a create request.
type ipamConf struct {
	subnet, iprange netip.Prefix
	gw              netip.Addr
	aux             map[string]netip.Addr
}

// parseIPAMConf checks one IPAM config (IPv4 or IPv6, by its subnet).
func parseIPAMConf(c IPAMConfigRequest) (ipamConf, error) {
	var out ipamConf
	var err error
	if c.Subnet != "" {
		if out.subnet, err = netip.ParsePrefix(c.Subnet); err != nil {
			return out, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid CIDR address: %s", c.Subnet))
		}
		smallest := 30 // at least two addresses besides the network's own
		if !out.subnet.Addr().Is4() {
			smallest = 126
		}
		if out.subnet.Bits() > smallest {
			return out, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid subnet %s: too small for containers", c.Subnet))
		}
		out.subnet = out.subnet.Masked()
	}
	subnet := out.subnet
	if c.IPRange != "" {
		if out.iprange, err = netip.ParsePrefix(c.IPRange); err != nil {
			return out, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid CIDR address: %s", c.IPRange))
		}
		if !subnet.IsValid() || !subnet.Contains(out.iprange.Addr()) || out.iprange.Bits() < subnet.Bits() {
			return out, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid ip-range %s: it must be inside the subnet", c.IPRange))
		}
	}
	if c.Gateway != "" {
		gw, err := netip.ParseAddr(c.Gateway)
		if err != nil {
			return out, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid gateway address %s in Ipam configuration", c.Gateway))
		}
		if !subnet.IsValid() {
			return out, cerrdefs.ErrInvalidArgument.WithMessage("gateway requires a subnet")
		}
		if !subnet.Contains(gw) || gw == subnet.Addr() || (gw.Is4() && gw == lastAddr(subnet)) {
			return out, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("failed to allocate gateway (%s): Requested address is out of range", c.Gateway))
		}
		out.gw = gw
	}
	for name, v := range c.AuxAddress {
		a, err := netip.ParseAddr(v)
		if err != nil || !subnet.IsValid() || !subnet.Contains(a) {
			return out, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid auxiliary address %s=%s: it must be an address of the subnet", name, v))
		}
		if out.aux == nil {
			out.aux = map[string]netip.Addr{}
		}
		out.aux[name] = a
	}
	return out, nil
}

// Inspect answers GET /networks/{id}.
func (s *Service) Inspect(ctx context.Context, ref string) (*network.Inspect, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, err := s.find(ref)
	if err != nil {
		return nil, err
	}
	out := &network.Inspect{Network: s.describe(n), Containers: map[string]network.EndpointResource{}}
	for _, sb := range s.sandboxes {
		for _, ep := range sb.Endpoints {
			if ep.NetworkID != n.ID || !ep.IP.IsValid() {
				continue
			}
			p := s.pools[n.ID]
			er := network.EndpointResource{
				Name: sb.Name, EndpointID: ep.EndpointID, MacAddress: parseMAC(ep.MAC),
				IPv4Address: netip.PrefixFrom(ep.IP, p.subnet.Bits()),
			}
			if ep.IP6.IsValid() {
				er.IPv6Address = netip.PrefixFrom(ep.IP6, n.Subnet6.Bits())
			}
			out.Containers[sb.ContainerID] = er
		}
	}
	return out, nil
}

func (s *Service) describe(n *netRecord) network.Network {
	out := network.Network{
		Name: n.Name, ID: n.ID, Created: n.Created, Scope: n.Scope, Driver: n.Driver,
		EnableIPv4: n.Driver == "bridge", EnableIPv6: n.EnableIPv6, Internal: n.Internal, Attachable: n.Attachable,
		IPAM:    network.IPAM{Driver: n.IPAMDriver, Options: n.IPAMOptions, Config: []network.IPAMConfig{}},
		Options: n.Options, Labels: n.Labels,
	}
	if out.IPAM.Driver == "" {
		out.IPAM.Driver = "default"
	}
	if n.Subnet.IsValid() {
		out.IPAM.Config = append(out.IPAM.Config, network.IPAMConfig{Subnet: n.Subnet, IPRange: n.IPRange, Gateway: n.Gateway, AuxAddress: n.AuxAddresses})
	}
	if n.Subnet6.IsValid() {
		// As dockerd: the IPv6 config as asked (a gateway only if given).
		c := network.IPAMConfig{Subnet: n.Subnet6, IPRange: n.IPRange6, AuxAddress: n.AuxAddresses6}
		if n.Gateway6Given {
			c.Gateway = n.Gateway6
		}
		out.IPAM.Config = append(out.IPAM.Config, c)
	}
	if out.Options == nil {
		out.Options = map[string]string{}
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	return out
}

// List answers GET /networks.
func (s *Service) List(ctx context.Context, args filters.Args) ([]network.Summary, error) {
	if err := args.Validate("dangling", "driver", "id", "label", "name", "scope", "type"); err != nil {
		return nil, err
	}
	for _, t := range args.Get("type") {
		if t != "custom" && t != "builtin" {
			return nil, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter: 'type'='%s'", t))
		}
	}
	dangling, hasDangling, err := args.Bool("dangling")
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []network.Summary{}
	for _, n := range s.networks {
		if !s.matches(n, args) {
			continue
		}
		if hasDangling {
			if n.Predefined || s.activeEndpoints(n.ID) > 0 {
				if dangling {
					continue
				}
			} else if !dangling {
				continue
			}
		}
		out = append(out, network.Summary{Network: s.describe(n)})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

func (s *Service) matches(n *netRecord, args filters.Args) bool {
	anyOf := func(key string, ok func(v string) bool) bool {
		vs := args.Get(key)
		if len(vs) == 0 {
			return true
		}
		for _, v := range vs {
			if ok(v) {
				return true
			}
		}
		return false
	}
	return anyOf("name", func(v string) bool { return strings.Contains(n.Name, v) }) &&
		anyOf("id", func(v string) bool { return strings.HasPrefix(n.ID, v) }) &&
		anyOf("driver", func(v string) bool { return n.Driver == v }) &&
		anyOf("scope", func(v string) bool { return n.Scope == v }) &&
		anyOf("type", func(v string) bool { return (v == "builtin") == n.Predefined }) &&
		args.MatchLabels("label", n.Labels)
}

// activeEndpoints counts the set-up containers on network id.
func (s *Service) activeEndpoints(id string) int {
	c := 0
	for _, sb := range s.pending {
		for _, ep := range sb.Endpoints {
			if ep.NetworkID == id && ep.IP.IsValid() {
				c++
			}
		}
	}
	for _, sb := range s.sandboxes {
		for _, ep := range sb.Endpoints {
			if ep.NetworkID == id && ep.IP.IsValid() {
				c++
			}
		}
	}
	return c
}

// Remove answers DELETE /networks/{id}.
func (s *Service) Remove(ctx context.Context, ref string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.find(ref)
	if err != nil {
		return err
	}
	return s.removeLocked(n)
}

func (s *Service) removeLocked(n *netRecord) error {
	if n.Predefined {
		return cerrdefs.ErrPermissionDenied.WithMessage(fmt.Sprintf("%s is a pre-defined network and cannot be removed", n.Name))
	}
	if s.activeEndpoints(n.ID) > 0 {
		return cerrdefs.ErrPermissionDenied.WithMessage(fmt.Sprintf("error while removing network: network %s id %s has active endpoints", n.Name, n.ID))
	}
	if err := s.fw.removeNetwork(n.ID, s.anyIPv6(n.ID)); err != nil {
		return err
	}
	if err := deleteBridge(n.Bridge); err != nil {
		return err
	}
	if err := os.Remove(s.netPath(n.ID)); err != nil && !os.IsNotExist(err) {
		return err
	}
	delete(s.networks, n.ID)
	delete(s.pools, n.ID)
	delete(s.pools6, n.ID)
	// Stopped containers forget it too, as Docker's do at next start.
	for _, sb := range s.sandboxes {
		kept := sb.Endpoints[:0]
		changed := false
		for _, ep := range sb.Endpoints {
			if ep.NetworkID == n.ID {
				changed = true
				continue
			}
			kept = append(kept, ep)
		}
		if changed {
			sb.Endpoints = kept
			_ = s.saveSandbox(sb)
		}
	}
	return nil
}

// anyIPv6 reports whether a network other than except has IPv6.
func (s *Service) anyIPv6(except string) bool {
	for _, n := range s.networks {
		if n.ID != except && n.hasIPv6() {
			return true
		}
	}
	return false
}

// Prune answers POST /networks/prune: custom networks without running
// containers go.
func (s *Service) Prune(ctx context.Context, args filters.Args) (*network.PruneReport, error) {
	if err := args.Validate("until", "label", "label!"); err != nil {
		return nil, err
	}
	until, err := args.Until(time.Now())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rep := &network.PruneReport{NetworksDeleted: []string{}}
	var list []*netRecord
	for _, n := range s.networks {
		list = append(list, n)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	for _, n := range list {
		if n.Predefined || s.activeEndpoints(n.ID) > 0 {
			continue
		}
		if !until.IsZero() && n.Created.After(until) {
			continue
		}
		if !args.MatchLabels("label", n.Labels) {
			continue
		}
		if neg := args.Get("label!"); len(neg) > 0 && (filters.Args{"label": neg}).MatchLabels("label", n.Labels) {
			continue
		}
		if err := s.removeLocked(n); err != nil {
			s.log.Warn("network prune", "network", n.Name, "err", err)
			continue
		}
		rep.NetworksDeleted = append(rep.NetworksDeleted, n.Name)
	}
	return rep, nil
}

// CloseIdle is Close for a berthd none of whose containers runs: it
// unmounts the namespaces' directory, and when no container has a network
// sandbox it also takes down berth's bridges and firewall rules, so a
// stopped berthd with no containers leaves the host as it found it. The records stay: the next
// start recreates everything with the same subnets.
func (s *Service) CloseIdle() error {
	if err := s.Close(); err != nil {
		return err
	}
	// No container runs: unless one left its namespace pinned, the
	// namespaces' mount goes too.
	if err := releaseSharedDir(netnsDir(s.cfg.ExecRoot)); err != nil {
		s.log.Warn("network: release the namespaces' mount", "err", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sandboxes) > 0 {
		return nil
	}
	for _, n := range s.networks {
		if n.Bridge != "" {
			if err := deleteBridge(n.Bridge); err != nil {
				s.log.Warn("network: remove bridge", "bridge", n.Bridge, "err", err)
			}
		}
	}
	s.removeOrphanBridges(true)
	_ = s.fw.removeGate()
	return s.fw.destroy()
}
