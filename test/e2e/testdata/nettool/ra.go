package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

// sendRA sends an IPv6 router advertisement out of ifname, as a router on
// the link would: from the interface's link-local address (derived from
// its MAC) to all nodes (ff02::1), hop limit 255, with a router lifetime
// (a default route for whoever accepts it) and an autonomous on-link
// prefix (an address for whoever accepts it). It is written as a whole
// Ethernet frame on a packet socket (NET_RAW, a default capability), so it
// needs no IPv6 in the container.
func sendRA(ifname, prefix string, count int) error {
	pfx, err := netip.ParsePrefix(prefix)
	if err != nil || !pfx.Addr().Is6() || pfx.Bits() != 64 {
		return fmt.Errorf("prefix %q: want an IPv6 /64", prefix)
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return err
	}
	mac := ifi.HardwareAddr
	if len(mac) != 6 {
		return fmt.Errorf("%s has no Ethernet address", ifname)
	}
	// fe80::/64 + modified EUI-64 of the MAC.
	var src [16]byte
	src[0], src[1] = 0xfe, 0x80
	copy(src[8:], []byte{mac[0] ^ 0x02, mac[1], mac[2], 0xff, 0xfe, mac[3], mac[4], mac[5]})
	dst := [16]byte{0xff, 0x02, 15: 0x01}

	// ICMPv6 router advertisement (RFC 4861 4.2) with a source link-layer
	// address option and a prefix information option (L and A set).
	icmp := []byte{134, 0, 0, 0, 64, 0}
	icmp = binary.BigEndian.AppendUint16(icmp, 1800) // router lifetime, seconds
	icmp = binary.BigEndian.AppendUint32(icmp, 0)    // reachable time
	icmp = binary.BigEndian.AppendUint32(icmp, 0)    // retrans timer
	icmp = append(icmp, 1, 1)
	icmp = append(icmp, mac...)
	icmp = append(icmp, 3, 4, 64, 0xc0)
	icmp = binary.BigEndian.AppendUint32(icmp, 86400) // valid lifetime
	icmp = binary.BigEndian.AppendUint32(icmp, 14400) // preferred lifetime
	icmp = binary.BigEndian.AppendUint32(icmp, 0)
	p16 := pfx.Addr().As16()
	icmp = append(icmp, p16[:]...)

	// Checksum over the pseudo-header and the message.
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(src[:])
	add(dst[:])
	add(binary.BigEndian.AppendUint32(nil, uint32(len(icmp))))
	add([]byte{0, 0, 0, 58})
	add(icmp)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(icmp[2:], ^uint16(sum))

	ip6 := []byte{0x60, 0, 0, 0}
	ip6 = binary.BigEndian.AppendUint16(ip6, uint16(len(icmp)))
	ip6 = append(ip6, 58, 255)
	ip6 = append(ip6, src[:]...)
	ip6 = append(ip6, dst[:]...)
	dstMAC := []byte{0x33, 0x33, 0, 0, 0, 1}
	frame := append(append(append(append([]byte{}, dstMAC...), mac...), 0x86, 0xdd), ip6...)
	frame = append(frame, icmp...)

	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		return fmt.Errorf("packet socket: %w", err)
	}
	defer unix.Close(fd)
	to := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6, Protocol: 0xdd86} // htons(ETH_P_IPV6)
	copy(to.Addr[:], dstMAC)
	for i := 0; i < count; i++ {
		if err := unix.Sendto(fd, frame, 0, to); err != nil {
			return fmt.Errorf("send: %w", err)
		}
	}
	fmt.Fprintf(os.Stdout, "sent %d router advertisements for %s from %s on %s\n", count, pfx, netip.AddrFrom16(src), ifname)
	return nil
}
