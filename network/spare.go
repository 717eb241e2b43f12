package network

import (
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// A spare is a network namespace made ahead of time with a veth pair: its
// container end "eth0" inside (down, no address), its host end outside
// (down, on no bridge), and a netlink handle inside. Making these costs
// about 2.5 ms; taking a spare costs one bind mount. One spare is kept
// ready, made again in the background after each Setup. A spare is held by
// file descriptors only, so a crash leaves none behind.
type spare struct {
	ns        netns.NsHandle
	nlh       *netlink.Handle
	hostVeth  string
	hostIndex int
}

func (s *Service) makeSpare() (*spare, error) {
	ns, err := newNetNSHandle()
	if err != nil {
		return nil, err
	}
	sp := &spare{ns: ns}
	if sp.nlh, err = netlink.NewHandleAt(ns, unix.NETLINK_ROUTE); err != nil {
		sp.destroy()
		return nil, err
	}
	if err := sp.nlh.LinkSetUp(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: "lo", Index: 1}}); err != nil {
		sp.destroy()
		return nil, err
	}
	name := "veth" + newID()[:7]
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(ns))}
	if err := s.nl.LinkAdd(veth); err != nil {
		sp.destroy()
		return nil, fmt.Errorf("create veth: %w", err)
	}
	sp.hostVeth, sp.hostIndex = name, veth.Attrs().Index
	return sp, nil
}

// destroy drops the spare's handles: unless its namespace was pinned,
// the kernel destroys it and the veth pair with it.
func (sp *spare) destroy() {
	if sp.nlh != nil {
		sp.nlh.Close()
		sp.nlh = nil
	}
	if sp.ns >= 0 {
		sp.ns.Close()
		sp.ns = -1
	}
}

// takeSpare returns a ready spare (or makes one now). The caller calls
// refill once it is done: making the next one meanwhile would compete for
// the kernel's rtnl lock with the setup it is waiting for.
func (s *Service) takeSpare() (*spare, error) {
	select {
	case sp := <-s.spares:
		return sp, nil
	default:
	}
	return s.makeSpare()
}

// refill makes one spare in the background unless one is being made or
// ready.
func (s *Service) refill() {
	if len(s.spares) > 0 {
		return
	}
	select {
	case s.refilling <- struct{}{}:
	default:
		return
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		defer func() { <-s.refilling }()
		sp, err := s.makeSpare()
		if err != nil {
			s.log.Debug("network: making a spare namespace", "err", err)
			return
		}
		select {
		case s.spares <- sp:
		default:
			sp.destroy()
		}
	}()
}

// drainSpares destroys the ready spares (Close).
func (s *Service) drainSpares() {
	s.bg.Wait()
	for {
		select {
		case sp := <-s.spares:
			sp.destroy()
		default:
			return
		}
	}
}

// setUpHostEnd puts a spare's host veth on bridge brIndex and up.
func (s *Service) setUpHostEnd(sp *spare, brIndex int, mtu int) error {
	l := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: sp.hostVeth, Index: sp.hostIndex}}
	if mtu > 0 && mtu != 1500 {
		if err := s.nl.LinkSetMTU(l, mtu); err != nil {
			return err
		}
	}
	if err := s.nl.LinkSetMasterByIndex(l, brIndex); err != nil {
		return err
	}
	return s.nl.LinkSetUp(l)
}
