package network

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/osutil"
)

// Damage at rest (issue 13 item 9): a record the service cannot read. It
// starts anyway, keeps what it can rebuild from the kernel, and never
// hands out what a running container holds:
//
//   - the default bridge's record: made again with its ID (the damaged
//     file's name, or the one the sandboxes point to) and the subnet its
//     bridge still has, so its containers keep their addresses;
//   - a user network's record: the network is left out (its name and
//     options are lost); its bridge, while it exists, keeps its subnet
//     from being given to another network; the file stays for whoever
//     repairs it;
//   - a running container's sandbox: rebuilt from its namespace (address,
//     MAC, interface of each network) and from its port rules in
//     nftables, so its address and host ports stay taken; a stopped
//     container's is dropped (its next start sets it up from the
//     container's own record).
//
// A rebuilt record keeps the damaged one beside it (<file>.damaged). Each
// case is reported by Damage, naming the file.

// damagedSuffix names the copy of a damaged record kept beside its rebuilt
// one.
const damagedSuffix = ".damaged"

// Damage describes the records New found damaged, each naming its file
// (for the daemon's log and /info's warnings).
func (s *Service) Damage() []string { return append([]string(nil), s.damage...) }

// keepDamaged copies a damaged record beside itself before it is replaced.
func keepDamaged(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return osutil.WriteFileAtomic(path+damagedSuffix, b)
}

// rebuildDefaultBridge makes the default bridge's record again after its
// record was found damaged: damaged maps the IDs of the unreadable network
// records to their files. It returns nil when there is nothing to rebuild
// from (no damaged record, no bridge left in the kernel): the bridge is
// then made as on a first start.
func (s *Service) rebuildDefaultBridge(damaged map[string]string) *netRecord {
	if len(damaged) == 0 {
		return nil
	}
	var subnet netip.Prefix
	var gw netip.Addr
	if link, err := s.nl.LinkByName(s.defaultBridge()); err == nil {
		if addrs, err := s.nl.AddrList(link, unix.AF_INET); err == nil {
			for _, a := range addrs {
				if p, ok := ipnetPrefix(a.IPNet); ok {
					subnet, gw = p.Masked(), p.Addr()
					break
				}
			}
		}
	}
	// Its ID: the damaged record the sandboxes' endpoints in its subnet
	// point to, else the only damaged record without a bridge of its own
	// (a user network's bridge is named after its ID).
	id := ""
	for _, sb := range s.sandboxes {
		for _, ep := range sb.Endpoints {
			if _, ok := damaged[ep.NetworkID]; ok && ep.IP.IsValid() && subnet.IsValid() && subnet.Contains(ep.IP) {
				id = ep.NetworkID
			}
		}
	}
	if id == "" {
		var candidates []string
		for cand := range damaged {
			if _, err := s.nl.LinkByName(s.bridgeName(cand)); err != nil {
				candidates = append(candidates, cand)
			}
		}
		if len(candidates) == 1 {
			id = candidates[0]
		}
	}
	if id == "" && !subnet.IsValid() {
		return nil
	}
	if id == "" {
		id = newID()
	}
	if !subnet.IsValid() {
		var err error
		if subnet, err = s.pickDefaultSubnet(); err != nil {
			return nil
		}
		gw = subnet.Addr().Next()
	}
	return &netRecord{
		ID: id, Name: "bridge", Driver: "bridge", Scope: "local", Created: timeNow(), Predefined: true,
		Subnet: subnet, Gateway: gw, Bridge: s.defaultBridge(), IPAMDriver: "default",
		Options: defaultBridgeOptions(s.defaultBridge()),
	}
}

// rebuildSandbox makes the record of a running container's networking
// again from its namespace and its port rules (see the package's notes on
// damage). It returns nil when the container has no namespace (it does
// not run).
func (s *Service) rebuildSandbox(containerID string) (*sandbox, error) {
	path := s.nsPath(containerID)
	if !isNetNS(path) {
		return nil, nil
	}
	nsh, err := netns.GetFromPath(path)
	if err != nil {
		return nil, err
	}
	defer nsh.Close()
	nlh, err := netlink.NewHandleAt(nsh, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	defer nlh.Close()
	links, err := nlh.LinkList()
	if err != nil {
		return nil, err
	}
	sb := &sandbox{ContainerID: containerID, NetNS: path}
	for _, l := range links {
		attrs := l.Attrs()
		if attrs.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := nlh.AddrList(l, unix.AF_INET)
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			p, ok := ipnetPrefix(a.IPNet)
			if !ok {
				continue
			}
			n := s.networkOf(p.Addr())
			if n == nil {
				continue
			}
			ep := &endpoint{NetworkID: n.ID, IfName: attrs.Name, IP: p.Addr(), MAC: attrs.HardwareAddr.String(), EndpointID: newID()}
			if n.hasIPv6() {
				// Its IPv6 address on the network, too.
				addrs6, err := nlh.AddrList(l, unix.AF_INET6)
				if err != nil {
					return nil, err
				}
				for _, a6 := range addrs6 {
					if p6, ok := ipnetPrefix(a6.IPNet); ok && n.Subnet6.Contains(p6.Addr()) {
						ep.IP6 = p6.Addr()
					}
				}
			}
			// The host end of the veth is the link's peer, named after
			// the endpoint when it was made.
			if attrs.ParentIndex > 0 {
				if host, err := s.nl.LinkByIndex(attrs.ParentIndex); err == nil {
					ep.HostVeth = host.Attrs().Name
					if id, ok := strings.CutPrefix(ep.HostVeth, "veth"); ok && len(id) <= len(ep.EndpointID) {
						ep.EndpointID = id + ep.EndpointID[len(id):]
					}
				}
			}
			sb.Endpoints = append(sb.Endpoints, ep)
			if sb.Mode == "" {
				sb.Mode = n.Name
			}
		}
	}
	if ports, err := s.fw.portBindings(); err == nil {
		sb.Ports = ports[containerID]
	}
	return sb, nil
}

// networkOf is the bridge network whose subnet holds a.
func (s *Service) networkOf(a netip.Addr) *netRecord {
	for _, n := range s.networks {
		if n.Driver == "bridge" && n.Subnet.IsValid() && n.Subnet.Contains(a) {
			return n
		}
	}
	return nil
}

// loadDamagedSandbox handles the unreadable sandbox record of
// containerID at path.
func (s *Service) loadDamagedSandbox(containerID, path string, cause error) {
	sb, err := s.rebuildSandbox(containerID)
	if err == nil && sb != nil {
		if err = keepDamaged(path); err == nil {
			err = s.saveSandbox(sb)
		}
		if err == nil {
			s.sandboxes[containerID] = sb
			s.damage = append(s.damage, fmt.Sprintf("network: the record %s of container %s's networking was damaged (%v): rebuilt from its network namespace and port rules (%d networks, %d published ports; DNS names and loopback-only ports are lost); the damaged record is kept as %s",
				path, containerID, cause, len(sb.Endpoints), len(sb.Ports), path+damagedSuffix))
			return
		}
	}
	if err == nil {
		// Not running: nothing holds anything; the next start sets its
		// networking up from the container's record.
		if err = keepDamaged(path); err == nil {
			err = os.Remove(path)
		}
		if err == nil {
			s.damage = append(s.damage, fmt.Sprintf("network: the record %s of container %s's networking was damaged (%v): dropped (the container does not run; its next start sets its networking up again); the damaged record is kept as %s",
				path, containerID, cause, path+damagedSuffix))
			return
		}
	}
	s.damage = append(s.damage, fmt.Sprintf("network: the record %s of container %s's networking is damaged (%v) and could not be rebuilt: %v", path, containerID, cause, err))
}

// portBindings reads the published ports of every container from berth's
// nftables rules (their comment names the owner): what a damaged sandbox
// record lost. Ports published on loopback only have no rule.
func (fw *firewall) portBindings() (map[string][]binding, error) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	c, err := fw.conn()
	if err != nil {
		return nil, err
	}
	rules, err := c.GetRules(fw.table, fw.chains[chPorts])
	if err != nil {
		return nil, err
	}
	out := map[string][]binding{}
	for _, r := range rules {
		owner, ok := strings.CutPrefix(ruleComment(r), "c:")
		if !ok {
			continue
		}
		if b, ok := parsePortRule(r); ok {
			out[owner] = append(out[owner], b)
		}
	}
	return out, nil
}

// parsePortRule reads back a rule addPortRule made.
func parsePortRule(r *nftables.Rule) (binding, bool) {
	b := binding{HostIP: netip.IPv4Unspecified()}
	var what string // what the next comparison is about
	haveProto, havePort, haveCtr := false, false, false
	for _, e := range r.Exprs {
		switch e := e.(type) {
		case *expr.Payload:
			switch {
			case e.Base == expr.PayloadBaseNetworkHeader && e.Offset == 16 && e.Len == 4:
				what = "daddr"
			case e.Base == expr.PayloadBaseTransportHeader && e.Offset == 2 && e.Len == 2:
				what = "dport"
			default:
				what = ""
			}
		case *expr.Meta:
			what = ""
			if e.Key == expr.MetaKeyL4PROTO {
				what = "proto"
			}
		case *expr.Cmp:
			switch what {
			case "daddr":
				if a, ok := netip.AddrFromSlice(e.Data); ok && len(e.Data) == 4 {
					b.HostIP = a
				}
			case "dport":
				if len(e.Data) == 2 {
					b.HostPort, havePort = binary.BigEndian.Uint16(e.Data), true
				}
			case "proto":
				if len(e.Data) == 1 {
					b.Proto, haveProto = "tcp", true
					if e.Data[0] == unix.IPPROTO_UDP {
						b.Proto = "udp"
					}
				}
			}
			what = ""
		case *expr.Immediate:
			if e.Register == 2 && len(e.Data) == 2 {
				b.CtrPort, haveCtr = binary.BigEndian.Uint16(e.Data), true
			}
		}
	}
	return b, haveProto && havePort && haveCtr
}

// errNoRecord is the cause of a record file that is empty.
var errNoRecord = errors.New("empty file")

// unreadable explains why a record file could not be read.
func unreadable(dir, name string, err error) (string, error) {
	path := filepath.Join(dir, name)
	if fi, serr := os.Stat(path); serr == nil && fi.Size() == 0 {
		return path, errNoRecord
	}
	return path, err
}

// orphanBridges are the bridges named like berth's user networks' bridges
// (<prefix>-...) that no network record names: the bridge of a network
// whose record was damaged, or removed while berthd was down. With
// withPorts false, only those no interface is attached to.
func (s *Service) orphanBridges(withPorts bool) []string {
	links, err := s.nl.LinkList()
	if err != nil {
		return nil
	}
	known := map[string]bool{}
	for _, n := range s.networks {
		if n.Bridge != "" {
			known[n.Bridge] = true
		}
	}
	used := map[int]bool{}
	for _, l := range links {
		if m := l.Attrs().MasterIndex; m > 0 {
			used[m] = true
		}
	}
	var out []string
	for _, l := range links {
		name := l.Attrs().Name
		if _, ok := l.(*netlink.Bridge); !ok || known[name] || !strings.HasPrefix(name, s.cfg.Prefix+"-") {
			continue
		}
		if withPorts || !used[l.Attrs().Index] {
			out = append(out, name)
		}
	}
	return out
}

// removeOrphanBridges deletes orphanBridges(withPorts).
func (s *Service) removeOrphanBridges(withPorts bool) {
	for _, br := range s.orphanBridges(withPorts) {
		if err := deleteBridge(br); err != nil {
			s.log.Warn("network: remove a bridge no network owns", "bridge", br, "err", err)
		}
	}
}
