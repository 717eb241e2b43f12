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
// Rules carry a comment naming their owner ("c:<container id>" for ports,
// "n:<network id>" for network rules) so they are found and removed by
// owner, even after a restart.
type firewall struct {
	mu     sync.Mutex
	prefix string
	table  *nftables.Table
	chains map[string]*nftables.Chain
	c      *nftables.Conn
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
	return fw
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

func saddrIn(p netip.Prefix) []expr.Any {
	mask := net4Mask(p.Bits())
	a := p.Masked().Addr().As4()
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:]},
	}
}

func net4Mask(bits int) []byte {
	m := ^uint32(0) << (32 - bits)
	if bits == 0 {
		m = 0
	}
	return binary.BigEndian.AppendUint32(nil, m)
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

// addNetworkRules queues the masquerade and isolation rules of network n.
func (fw *firewall) addNetworkRules(c *nftables.Conn, n *netRecord) {
	if n.Bridge == "" || !n.Subnet.IsValid() {
		return
	}
	ud := comment("n:" + n.ID)
	fwd := fw.chains[chForward]
	if n.iccOff() {
		// Between two containers of the network by way of the host (a
		// frame to the gateway's MAC for a peer's address, or any bridged
		// packet when br_netfilter hands those to this hook): the bridge's
		// isolated ports stop the direct way (isolatePort).
		c.AddRule(&nftables.Rule{Table: fw.table, Chain: fwd, UserData: ud, Exprs: cat(
			ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, n.Bridge), ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq, n.Bridge),
			[]expr.Any{verdict(expr.VerdictDrop)})})
	}
	if n.Internal {
		// Nothing in, nothing out: only traffic within the bridge.
		c.AddRule(&nftables.Rule{Table: fw.table, Chain: fwd, UserData: ud, Exprs: cat(
			ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, n.Bridge), ifname(expr.MetaKeyOIFNAME, expr.CmpOpNeq, n.Bridge),
			[]expr.Any{verdict(expr.VerdictDrop)})})
		c.AddRule(&nftables.Rule{Table: fw.table, Chain: fwd, UserData: ud, Exprs: cat(
			ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq, n.Bridge), ifname(expr.MetaKeyIIFNAME, expr.CmpOpNeq, n.Bridge),
			[]expr.Any{verdict(expr.VerdictDrop)})})
		// Nor to the host itself (its address on the bridge or any other):
		// only answers to what the host started. The embedded DNS lives in
		// each container's own namespace and needs nothing here.
		c.AddRule(&nftables.Rule{Table: fw.table, Chain: fw.chains[chInput], UserData: ud, Exprs: cat(
			ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, n.Bridge), ctNotEstablished(),
			[]expr.Any{verdict(expr.VerdictDrop)})})
		return
	}
	// Into the bridge from elsewhere: only replies and published ports
	// (DNATed); a container is not reachable by its address from outside,
	// nor from another network.
	c.AddRule(&nftables.Rule{Table: fw.table, Chain: fwd, UserData: ud, Exprs: cat(
		ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq, n.Bridge), ifname(expr.MetaKeyIIFNAME, expr.CmpOpNeq, n.Bridge),
		ctNotEstablished(), ctNotDNAT(), []expr.Any{verdict(expr.VerdictDrop)})})
	// Out of the subnet, not to the bridge itself: masquerade.
	c.AddRule(&nftables.Rule{Table: fw.table, Chain: fw.chains[chPostrouting], UserData: ud, Exprs: cat(
		saddrIn(n.Subnet), ifname(expr.MetaKeyOIFNAME, expr.CmpOpNeq, n.Bridge),
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

// removeOwned deletes the rules of chain whose comment is tag.
func (fw *firewall) removeOwned(chains []string, tag string) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	c, err := fw.conn()
	if err != nil {
		return err
	}
	n := 0
	for _, name := range chains {
		rules, err := c.GetRules(fw.table, fw.chains[name])
		if err != nil {
			if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOENT) {
				continue
			}
			return fmt.Errorf("nftables: list %s: %w", name, err)
		}
		for _, r := range rules {
			if ruleComment(r) == tag {
				r.Table, r.Chain = fw.table, fw.chains[name]
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
	fw.addNetworkRules(c, n)
	return c.Flush()
}

func (fw *firewall) removeNetwork(id string) error {
	return fw.removeOwned([]string{chForward, chPostrouting, chInput}, "n:"+id)
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
func (fw *firewall) ensureGate() error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	c, err := fw.conn()
	if err != nil {
		return err
	}
	ft := &nftables.Table{Name: "filter", Family: nftables.TableFamilyIPv4}
	ch, err := c.ListChain(ft, "FORWARD")
	if err != nil {
		return nil // no iptables filter FORWARD chain: nothing blocks us
	}
	ch.Table = ft
	rules, err := c.GetRules(ft, ch)
	if err != nil {
		return nil
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
	if !added {
		return nil
	}
	return c.Flush()
}

// removeGate takes berth's gate rules out of the filter FORWARD chain.
func (fw *firewall) removeGate() error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	c, err := fw.conn()
	if err != nil {
		return err
	}
	ft := &nftables.Table{Name: "filter", Family: nftables.TableFamilyIPv4}
	ch, err := c.ListChain(ft, "FORWARD")
	if err != nil {
		return nil
	}
	ch.Table = ft
	rules, err := c.GetRules(ft, ch)
	if err != nil {
		return nil
	}
	n := 0
	for _, r := range rules {
		if ruleComment(r) == fw.prefix+":gate" {
			r.Table, r.Chain = ft, ch
			if err := c.DelRule(r); err != nil {
				return err
			}
			n++
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
