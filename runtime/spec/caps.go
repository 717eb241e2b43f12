package spec

import (
	"fmt"
	"slices"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
)

// capNames lists the Linux capabilities by bit number.
var capNames = [...]string{
	"CAP_CHOWN",              // 0
	"CAP_DAC_OVERRIDE",       // 1
	"CAP_DAC_READ_SEARCH",    // 2
	"CAP_FOWNER",             // 3
	"CAP_FSETID",             // 4
	"CAP_KILL",               // 5
	"CAP_SETGID",             // 6
	"CAP_SETUID",             // 7
	"CAP_SETPCAP",            // 8
	"CAP_LINUX_IMMUTABLE",    // 9
	"CAP_NET_BIND_SERVICE",   // 10
	"CAP_NET_BROADCAST",      // 11
	"CAP_NET_ADMIN",          // 12
	"CAP_NET_RAW",            // 13
	"CAP_IPC_LOCK",           // 14
	"CAP_IPC_OWNER",          // 15
	"CAP_SYS_MODULE",         // 16
	"CAP_SYS_RAWIO",          // 17
	"CAP_SYS_CHROOT",         // 18
	"CAP_SYS_PTRACE",         // 19
	"CAP_SYS_PACCT",          // 20
	"CAP_SYS_ADMIN",          // 21
	"CAP_SYS_BOOT",           // 22
	"CAP_SYS_NICE",           // 23
	"CAP_SYS_RESOURCE",       // 24
	"CAP_SYS_TIME",           // 25
	"CAP_SYS_TTY_CONFIG",     // 26
	"CAP_MKNOD",              // 27
	"CAP_LEASE",              // 28
	"CAP_AUDIT_WRITE",        // 29
	"CAP_AUDIT_CONTROL",      // 30
	"CAP_SETFCAP",            // 31
	"CAP_MAC_OVERRIDE",       // 32
	"CAP_MAC_ADMIN",          // 33
	"CAP_SYSLOG",             // 34
	"CAP_WAKE_ALARM",         // 35
	"CAP_BLOCK_SUSPEND",      // 36
	"CAP_AUDIT_READ",         // 37
	"CAP_PERFMON",            // 38
	"CAP_BPF",                // 39
	"CAP_CHECKPOINT_RESTORE", // 40
}

// capBit maps a CAP_* name to its bit.
var capBit = func() map[string]uint {
	m := make(map[string]uint, len(capNames))
	for i, n := range capNames {
		m[n] = uint(i)
	}
	return m
}()

// DefaultCaps are the 14 capabilities Docker grants a container, in
// Docker's order.
var DefaultCaps = []string{
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_FSETID",
	"CAP_FOWNER",
	"CAP_MKNOD",
	"CAP_NET_RAW",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETFCAP",
	"CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT",
	"CAP_KILL",
	"CAP_AUDIT_WRITE",
}

// defaultCapMask is DefaultCaps as a bit mask: 0xa80425fb.
var defaultCapMask = capMask(DefaultCaps)

func capMask(caps []string) uint64 {
	var m uint64
	for _, c := range caps {
		if b, ok := capBit[c]; ok {
			m |= 1 << b
		}
	}
	return m
}

func capsFromMask(m uint64) []string {
	var out []string
	for i, n := range capNames {
		if m&(1<<uint(i)) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// normalizeCaps turns --cap-add/--cap-drop values into CAP_* names:
// case-insensitive, with or without the CAP_ prefix; "ALL" stays "ALL".
func normalizeCaps(in []string, field string) ([]string, error) {
	out := make([]string, 0, len(in))
	for _, c := range in {
		c = strings.ToUpper(strings.TrimSpace(c))
		if c == "ALL" {
			out = append(out, c)
			continue
		}
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		if _, ok := capBit[c]; !ok {
			return nil, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid %s: unknown capability: %q", field, c))
		}
		out = append(out, c)
	}
	return out, nil
}

// computeCaps applies Docker's rules: privileged gets everything the host
// has; otherwise start from the defaults, drop, then add. "ALL" in add means
// every host capability except the dropped ones; "ALL" in drop means only
// the added ones. A default the host lacks is left out quietly (runc could
// not grant it); an explicitly added one the host lacks is an error here
// rather than runc's "unable to apply caps".
func computeCaps(host *Host, add, drop []string, privileged bool) ([]string, error) {
	hostMask := capMask(host.Caps)
	if privileged {
		return append([]string(nil), host.Caps...), nil
	}
	if len(add) == 0 && len(drop) == 0 {
		if hostMask&defaultCapMask == defaultCapMask {
			return append([]string(nil), DefaultCaps...), nil
		}
		return filterCaps(DefaultCaps, hostMask), nil
	}
	adds, err := normalizeCaps(add, "CapAdd")
	if err != nil {
		return nil, err
	}
	drops, err := normalizeCaps(drop, "CapDrop")
	if err != nil {
		return nil, err
	}
	dropMask := capMask(drops)
	if slices.Contains(adds, "ALL") {
		return filterCaps(host.Caps, hostMask&^dropMask), nil
	}
	var caps []string
	if !slices.Contains(drops, "ALL") {
		caps = filterCaps(DefaultCaps, hostMask&^dropMask)
	}
	have := capMask(caps)
	for _, c := range adds {
		b := uint64(1) << capBit[c]
		if have&b != 0 {
			continue
		}
		if hostMask&b == 0 {
			return nil, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("capability %s is not available on this host", c))
		}
		have |= b
		caps = append(caps, c)
	}
	return caps, nil
}

// filterCaps returns the capabilities of list whose bit is in mask, in
// list's order.
func filterCaps(list []string, mask uint64) []string {
	out := make([]string, 0, len(list))
	for _, c := range list {
		if mask&(1<<capBit[c]) != 0 {
			out = append(out, c)
		}
	}
	return out
}
