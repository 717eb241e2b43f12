package network

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// firewall owns berth's nftables table ("table ip <prefix>") and the two
// "gate" rules berth keeps in the iptables filter FORWARD chain when one
// exists (see ensureGate).
//
//	table ip berth {
//	  chain prerouting  { type nat hook prerouting priority dstnat; fib daddr type local jump ports }
//	  chain output      { type nat hook output priority dstnat; ip daddr != 127.0.0.0/8 fib daddr type local jump ports }
//	  chain ports       { per published port: iifname != <bridge> [ip daddr <hostip>] <proto> dport <p> dnat to <ctr>:<p> }
//	  chain postrouting { type nat hook postrouting priority srcnat; per network: ip saddr <subnet> oifname != <bridge> masquerade }
//	  chain forward     { type filter hook forward priority filter; per network isolation drops }
//	  chain input       { type filter hook input priority filter; per --internal network:
//	                      iifname <bridge> ct state not established,related drop }
//	}
//
// Networks with IPv6 have the same network rules for IPv6 in a second
// table, "table ip6 <prefix>" (chains postrouting, forward and input, as
// above, for the network's IPv6 subnet), which exists only while such a
// network does. IPv6 has no DNAT rules: published ports reach containers
// over IPv6 through the userland proxy, as with dockerd 20.10.
//
// Rules carry a comment naming their owner ("c:<container id>" for ports,
// "n:<network id>" for network rules) so they are found and removed by
// owner, even after a restart.
type firewall struct {
	mu      sync.Mutex
	prefix  string
	table   *nftables.Table
	chains  map[string]*nftables.Chain
	table6  *nftables.Table
	chains6 map[string]*nftables.Chain // postrouting, forward, input
	c       *nftables.Conn
}

const (
	chPrerouting  = "prerouting"
	chOutput      = "output"
	chPorts       = "ports"
	chPostrouting = "postrouting"
	chForward     = "forward"
	chInput       = "input"
)

func newFirewall(prefix string) *firewall {
	t := &nftables.Table{Name: prefix, Family: nftables.TableFamilyIPv4}
	fw := &firewall{prefix: prefix, table: t, chains: map[string]*nftables.Chain{}}
	accept := nftables.ChainPolicyAccept
	fw.chains[chPrerouting] = &nftables.Chain{Name: chPrerouting, Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest}
	fw.chains[chOutput] = &nftables.Chain{Name: chOutput, Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest}
	fw.chains[chPorts] = &nftables.Chain{Name: chPorts, Table: t}
	fw.chains[chPostrouting] = &nftables.Chain{Name: chPostrouting, Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource}
	fw.chains[chForward] = &nftables.Chain{Name: chForward, Table: t, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept}
	fw.chains[chInput] = &nftables.Chain{Name: chInput, Table: t, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &accept}
	t6 := &nftables.Table{Name: prefix, Family: nftables.TableFamilyIPv6}
	fw.table6 = t6
	fw.chains6 = map[string]*nftables.Chain{
		chPostrouting: {Name: chPostrouting, Table: t6, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource},
		chForward:     {Name: chForward, Table: t6, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept},
		chInput:       {Name: chInput, Table: t6, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &accept},
	}
	return fw
}

// addTable6 queues the creation of the IPv6 table and its chains (a no-op
// for what exists).
func (fw *firewall) addTable6(c *nftables.Conn) {
	c.AddTable(fw.table6)
	for _, name := range []string{chPostrouting, chForward, chInput} {
		c.AddChain(fw.chains6[name])
	}
}

// delTable6 queues the removal of the IPv6 table (missing is fine).
func (fw *firewall) delTable6(c *nftables.Conn) {
	c.AddTable(fw.table6)
	c.DelTable(fw.table6)
}

// conn returns berth's netlink connection to nftables, kept open (one
// socket, not one per transaction). Call with fw.mu held.
func (fw *firewall) conn() (*nftables.Conn, error) {
	if fw.c == nil {
		c, err := nftables.New(nftables.AsLasting())
		if err != nil {
			return nil, err
		}
		fw.c = c
	}
	return fw.c, nil
}

func comment(s string) []byte { return userdata.AppendString(nil, userdata.TypeComment, s) }

func ruleComment(r *nftables.Rule) string {
	s, _ := userdata.GetString(r.UserData, userdata.TypeComment)
	return s
}

// reset replaces berth's table in one transaction with a fresh one holding
// the base rules, the given network rules and port rules. Traffic of
// running containers never sees a moment without rules.
func (fw *firewall) reset(nets []*netRecord, ports map[string][]portRule) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	c, err := fw.conn()
	if err != nil {
		return err
	}
	c.AddTable(fw.table)
	c.DelTable(fw.table)
	c.AddTable(fw.table)
	for _, name := range []string{chPorts, chPrerouting, chOutput, chPostrouting, chForward, chInput} {
		c.AddChain(fw.chains[name])
	}
	// prerouting: fib daddr type local jump ports
	c.AddRule(&nftables.Rule{Table: fw.table, Chain: fw.chains[chPrerouting], Exprs: append(fibLocal(), jump(chPorts))})
	// output: ip daddr != 127.0.0.0/8 fib daddr type local jump ports
	ex := []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: []byte{255, 0, 0, 0}, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{127, 0, 0, 0}},
	}
	ex = append(ex, fibLocal()...)
	c.AddRule(&nftables.Rule{Table: fw.table, Chain: fw.chains[chOutput], Exprs: append(ex, jump(chPorts))})
	fw.delTable6(c)
	for _, n := range nets {
		if n.hasIPv6() {
			fw.addTable6(c)
			break
		}
	}
	for _, n := range nets {
		fw.addNetworkRules(c, n)
	}
	for owner, rs := range ports {
		for _, r := range rs {
			fw.addPortRule(c, owner, r)
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: set up table %s: %w", fw.prefix, err)
	}
	return nil
}

// destroy removes berth's table (tests, and a daemon told to clean up).
func (fw *firewall) destroy() error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	c, err := fw.conn()
	if err != nil {
		return err
	}
	c.AddTable(fw.table)
	c.DelTable(fw.table)
	fw.delTable6(c)
	return c.Flush()
}

func fibLocal() []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.NativeEndian.AppendUint32(nil, unix.RTN_LOCAL)},
	}
}

func jump(chain string) expr.Any {
	return &expr.Verdict{Kind: expr.VerdictJump, Chain: chain}
}

// ifname matches an interface name exactly (op Eq/Neq).
func ifname(key expr.MetaKey, op expr.CmpOp, name string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: append([]byte(name), 0)},
	}
}

// saddrIn matches a source address in p, in a table of p's family.
func saddrIn(p netip.Prefix) []expr.Any {
	a := p.Masked().Addr().AsSlice()
	off, n := uint32(12), uint32(4) // IPv4 header: saddr
	if len(a) == 16 {
		off, n = 8, 16 // IPv6 header: saddr
	}
	mask := make([]byte, n)
	for i := range mask {
		switch bits := p.Bits() - 8*i; {
		case bits >= 8:
			mask[i] = 0xff
		case bits > 0:
			mask[i] = ^byte(0) << (8 - bits)
		}
	}
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: mask, Xor: make([]byte, n)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a},
	}
}

// ctNotEstablished: ct state & (established|related) == 0
func ctNotEstablished() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binary.NativeEndian.AppendUint32(nil, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: make([]byte, 4)},
	}
}

// ctNotDNAT: ct status & dnat == 0
func ctNotDNAT() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binary.NativeEndian.AppendUint32(nil, ipsDstNAT), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: make([]byte, 4)},
	}
}

// ipsDstNAT is conntrack's IPS_DST_NAT status bit.
const ipsDstNAT = 1 << 5

func verdict(k expr.VerdictKind) expr.Any { return &expr.Verdict{Kind: k} }

func cat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// addNetworkRules queues the masquerade and isolation rules of network n:
// for IPv4, and for IPv6 too if it has IPv6 (the IPv6 table must exist:
// see addTable6).
func (fw *firewall) addNetworkRules(c *nftables.Conn, n *netRecord) {
	if n.Bridge == "" || !n.Subnet.IsValid() {
		return
	}
	fw.addFamilyRules(c, n, fw.table, fw.chains, n.Subnet)
	if n.hasIPv6() {
		fw.addFamilyRules(c, n, fw.table6, fw.chains6, n.Subnet6)
	}
}

// addFamilyRules queues n's rules for one family: its table, chains and
// subnet.
func (fw *firewall) addFamilyRules(c *nftables.Conn, n *netRecord, table *nftables.Table, chains map[string]*nftables.Chain, subnet netip.Prefix) {
	ud := comment("n:" + n.ID)
	fwd := chains[chForward]
	if n.iccOff() {
		// Between two containers of the network by way of the host (a
		// frame to the gateway's MAC for a peer's address, or any bridged
		// packet when br_netfilter hands those to this hook): the bridge's
		// isolated ports stop the direct way (isolatePort).
		c.AddRule(&nftables.Rule{Table: table, Chain: fwd, UserData: ud, Exprs: cat(
			ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, n.Bridge), ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq, n.Bridge),
			[]expr.Any{verdict(expr.VerdictDrop)})})
	}
	if n.Internal {
		// Nothing in, nothing out: only traffic within the bridge.
		c.AddRule(&nftables.Rule{Table: table, Chain: fwd, UserData: ud, Exprs: cat(
			ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, n.Bridge), ifname(expr.MetaKeyOIFNAME, expr.CmpOpNeq, n.Bridge),
			[]expr.Any{verdict(expr.VerdictDrop)})})
		c.AddRule(&nftables.Rule{Table: table, Chain: fwd, UserData: ud, Exprs: cat(
			ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq, n.Bridge), ifname(expr.MetaKeyIIFNAME, expr.CmpOpNeq, n.Bridge),
			[]expr.Any{verdict(expr.VerdictDrop)})})
		// Nor to the host itself (its address on the bridge or any other):
		// only answers to what the host started. The embedded DNS lives in
		// each container's own namespace and needs nothing here.
		c.AddRule(&nftables.Rule{Table: table, Chain: chains[chInput], UserData: ud, Exprs: cat(
			ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, n.Bridge), ctNotEstablished(),
			[]expr.Any{verdict(expr.VerdictDrop)})})
		return
	}
	// Into the bridge from elsewhere: only replies and published ports
	// (DNATed); a container is not reachable by its address from outside,
	// nor from another network.
	c.AddRule(&nftables.Rule{Table: table, Chain: fwd, UserData: ud, Exprs: cat(
		ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq, n.Bridge), ifname(expr.MetaKeyIIFNAME, expr.CmpOpNeq, n.Bridge),
		ctNotEstablished(), ctNotDNAT(), []expr.Any{verdict(expr.VerdictDrop)})})
	// Out of the subnet, not to the bridge itself: masquerade.
	c.AddRule(&nftables.Rule{Table: table, Chain: chains[chPostrouting], UserData: ud, Exprs: cat(
		saddrIn(subnet), ifname(expr.MetaKeyOIFNAME, expr.CmpOpNeq, n.Bridge),
		[]expr.Any{&expr.Masq{}})})
}

// portRule is one DNAT: traffic for hostIP (any local address if
// unspecified):hostPort/proto, not arriving from bridge, goes to ctr:ctrPort.
type portRule struct {
	Proto    string
	HostIP   netip.Addr
	HostPort uint16
	Ctr      netip.Addr
	CtrPort  uint16
	Bridge   string
}

func protoNum(p string) byte {
	if p == "udp" {
		return unix.IPPROTO_UDP
	}
	return unix.IPPROTO_TCP
}

func (fw *firewall) addPortRule(c *nftables.Conn, owner string, r portRule) {
	c.AddRule(&nftables.Rule{Table: fw.table, Chain: fw.chains[chPorts], Exprs: portRuleExprs(r), UserData: comment("c:" + owner)})
}

// portRuleExprs are the expressions of a published port's DNAT rule
// (parsePortRule reads them back).
func portRuleExprs(r portRule) []expr.Any {
	ex := ifname(expr.MetaKeyIIFNAME, expr.CmpOpNeq, r.Bridge)
	if r.HostIP.IsValid() && !r.HostIP.IsUnspecified() {
		a := r.HostIP.As4()
		ex = append(ex,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:]})
	}
	ctr := r.Ctr.As4()
	ex = append(ex,
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{protoNum(r.Proto)}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, r.HostPort)},
		&expr.Immediate{Register: 1, Data: ctr[:]},
		&expr.Immediate{Register: 2, Data: binary.BigEndian.AppendUint16(nil, r.CtrPort)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	)
	return ex
}

// addPorts installs the DNAT rules of one container in one transaction.
func (fw *firewall) addPorts(owner string, rules []portRule) error {
	if len(rules) == 0 {
		return nil
	}
	fw.mu.Lock()
	defer fw.mu.Unlock()
	c, err := fw.conn()
	if err != nil {
		return err
	}
	for _, r := range rules {
		fw.addPortRule(c, owner, r)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: publish ports: %w", err)
	}
	return nil
}

// removeOwned deletes the rules of chains (of the IPv4 table) whose
// comment is tag.
func (fw *firewall) removeOwned(chains []string, tag string) error {
	return fw.removeOwnedIn(fw.table, fw.chains, chains, tag)
}

// removeOwned6 is removeOwned for the IPv6 table (missing is fine).
func (fw *firewall) removeOwned6(chains []string, tag string) error {
	return fw.removeOwnedIn(fw.table6, fw.chains6, chains, tag)
}

func (fw *firewall) removeOwnedIn(table *nftables.Table, all map[string]*nftables.Chain, chains []string, tag string) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	c, err := fw.conn()
	if err != nil {
		return err
	}
	n := 0
	for _, name := range chains {
		rules, err := c.GetRules(table, all[name])
		if err != nil {
			if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOENT) {
				continue
			}
			return fmt.Errorf("nftables: list %s: %w", name, err)
		}
		for _, r := range rules {
			if ruleComment(r) == tag {
				r.Table, r.Chain = table, all[name]
				if err := c.DelRule(r); err != nil {
					return err
				}
				n++
			}
		}
	}
	if n == 0 {
		return nil
	}
	return c.Flush()
}

func (fw *firewall) removePorts(owner string) error {
	return fw.removeOwned([]string{chPorts}, "c:"+owner)
}

func (fw *firewall) addNetwork(n *netRecord) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	c, err := fw.conn()
	if err != nil {
		return err
	}
	if n.hasIPv6() {
		fw.addTable6(c)
	}
	fw.addNetworkRules(c, n)
	return c.Flush()
}

// removeNetwork removes network id's rules; without IPv6 networks left
// (anyIPv6 false) the IPv6 table goes too.
func (fw *firewall) removeNetwork(id string, anyIPv6 bool) error {
	if err := fw.removeOwned([]string{chForward, chPostrouting, chInput}, "n:"+id); err != nil {
		return err
	}
	if err := fw.removeOwned6([]string{chForward, chPostrouting, chInput}, "n:"+id); err != nil {
		return err
	}
	if anyIPv6 {
		return nil
	}
	fw.mu.Lock()
	defer fw.mu.Unlock()
	c, err := fw.conn()
	if err != nil {
		return err
	}
	fw.delTable6(c)
	return c.Flush()
}

// ensureGate lets berth's bridges through the iptables filter FORWARD
// chain, when there is one (Docker creates it, with policy DROP).
//
// A packet crossing the forward hook must be accepted by every base chain
// there: an accept in berth's own table cannot undo a drop in "ip filter".
// So when that chain exists, berth adds (at its end, once) two rules of its
// own, "iifname <prefix>* accept" and "oifname <prefix>* accept", marked
// with a comment, and touches nothing else: not the policy, not Docker's
// DOCKER* chains or the jumps to them (which stay first, so DOCKER-USER
// still sees berth's traffic). berth's own policy (isolation, --internal,
// no unsolicited inbound) is enforced by drops in its own forward chain,
// which no accept elsewhere can override. With br_netfilter loaded
// (bridge-nf-call-iptables=1, as Docker leaves it), even traffic between
// two containers on the same bridge crosses this hook, so the gate covers
// it too. If the filter table appears later (dockerd started after
// berthd), the next Setup adds the gate.
//
// ip6tables' filter FORWARD chain (table ip6 filter) gets the same gate.
func (fw *firewall) ensureGate() error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	c, err := fw.conn()
	if err != nil {
		return err
	}
	added := false
	for _, fam := range []nftables.TableFamily{nftables.TableFamilyIPv4, nftables.TableFamilyIPv6} {
		added = fw.queueGate(c, fam) || added
	}
	if !added {
		return nil
	}
	return c.Flush()
}

// queueGate queues the gate rules missing in family fam's filter FORWARD
// chain, if there is one; it reports whether it queued any.
func (fw *firewall) queueGate(c *nftables.Conn, fam nftables.TableFamily) bool {
	ft := &nftables.Table{Name: "filter", Family: fam}
	ch, err := c.ListChain(ft, "FORWARD")
	if err != nil {
		return false // no iptables filter FORWARD chain: nothing blocks us
	}
	ch.Table = ft
	rules, err := c.GetRules(ft, ch)
	if err != nil {
		return false
	}
	tag := fw.prefix + ":gate"
	have := map[expr.MetaKey]bool{}
	for _, r := range rules {
		if ruleComment(r) == tag {
			for _, e := range r.Exprs {
				if m, ok := e.(*expr.Meta); ok {
					have[m.Key] = true
				}
			}
		}
	}
	added := false
	for _, key := range []expr.MetaKey{expr.MetaKeyIIFNAME, expr.MetaKeyOIFNAME} {
		if have[key] {
			continue
		}
		c.AddRule(&nftables.Rule{Table: ft, Chain: ch, UserData: comment(tag), Exprs: []expr.Any{
			&expr.Meta{Key: key, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte(fw.prefix)}, // prefix match: "<prefix>*"
			&expr.Counter{},
			&expr.Verdict{Kind: expr.VerdictAccept},
		}})
		added = true
	}
	return added
}

// removeGate takes berth's gate rules out of the filter FORWARD chains.
func (fw *firewall) removeGate() error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	c, err := fw.conn()
	if err != nil {
		return err
	}
	n := 0
	for _, fam := range []nftables.TableFamily{nftables.TableFamilyIPv4, nftables.TableFamilyIPv6} {
		ft := &nftables.Table{Name: "filter", Family: fam}
		ch, err := c.ListChain(ft, "FORWARD")
		if err != nil {
			continue
		}
		ch.Table = ft
		rules, err := c.GetRules(ft, ch)
		if err != nil {
			continue
		}
		for _, r := range rules {
			if ruleComment(r) == fw.prefix+":gate" {
				r.Table, r.Chain = ft, ch
				if err := c.DelRule(r); err != nil {
					return err
				}
				n++
			}
		}
	}
	if n == 0 {
		return nil
	}
	return c.Flush()
}

// portRulesOwned lists the owners of rules in the ports chain (tests,
// reconcile).
func (fw *firewall) portOwners() (map[string]int, error) {
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
	out := map[string]int{}
	for _, r := range rules {
		if s := ruleComment(r); strings.HasPrefix(s, "c:") {
			out[s[2:]]++
		}
	}
	return out, nil
}
