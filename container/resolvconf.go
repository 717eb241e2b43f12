package container

import (
	"bytes"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// The container's resolv.conf, made as dockerd 20.10 (libnetwork) makes it.
//
//   - No --dns, --dns-search or --dns-option: the host's file as it is,
//     comments and all, without its loopback nameservers (unreachable from
//     the container's network); if none is left, Google's public resolvers.
//   - Any of them: "search", "nameserver" and "options" lines, in that
//     order, each from the flag or else from the host's file.
//   - On a user-defined network (the embedded DNS server): the file above
//     rebuilt with the embedded server first, then the IPv6 nameservers of
//     that file, its search domains, and its options followed by ndots:0
//     unless they set ndots themselves.

// hostResolvConfPath is the resolv.conf the host's resolvers are read
// from: /etc/resolv.conf, or systemd-resolved's list of the real upstream
// servers when /etc/resolv.conf names only its local stub (127.0.0.53).
func hostResolvConfPath() string {
	const etc, resolved = "/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"
	b, err := os.ReadFile(etc)
	if err != nil {
		return etc
	}
	ns := rcNameservers(b, false)
	if len(ns) == 1 && ns[0] == "127.0.0.53" {
		if _, err := os.Stat(resolved); err == nil {
			return resolved
		}
	}
	return etc
}

var (
	rcLocalhostNS = regexp.MustCompile(`(?m)^nameserver\s+((127\.([0-9]{1,3}\.){2}[0-9]{1,3})|(::1))\s*\n*`)
	rcDefaultDNS  = []string{"8.8.8.8", "8.8.4.4", "2001:4860:4860::8888", "2001:4860:4860::8844"}
)

// rcLines are the lines of a resolv.conf without comments (# or ;) and
// surrounding blanks; empty lines are dropped.
func rcLines(b []byte) [][]string {
	var out [][]string
	for _, l := range strings.Split(string(b), "\n") {
		if i := strings.IndexAny(l, "#;"); i >= 0 {
			l = l[:i]
		}
		if f := strings.Fields(l); len(f) > 0 {
			out = append(out, f)
		}
	}
	return out
}

// rcNameservers lists the nameservers of a resolv.conf (only the IPv6 ones
// if v6only).
func rcNameservers(b []byte, v6only bool) []string {
	var out []string
	for _, f := range rcLines(b) {
		if f[0] != "nameserver" || len(f) != 2 {
			continue
		}
		a, err := netip.ParseAddr(f[1])
		if err != nil || (v6only && !a.Is6()) {
			continue
		}
		out = append(out, f[1])
	}
	return out
}

// rcLast returns the fields after the last line starting with key
// ("search", "options").
func rcLast(b []byte, key string) []string {
	var out []string
	for _, f := range rcLines(b) {
		if f[0] == key {
			out = f[1:]
		}
	}
	return out
}

// buildResolvConf writes the search, nameserver and options lines, in
// dockerd's order; a search list of just "." means none.
func buildResolvConf(dns, search, opts []string) []byte {
	var b bytes.Buffer
	if len(search) > 0 && strings.TrimSpace(strings.Join(search, " ")) != "." {
		b.WriteString("search " + strings.Join(search, " ") + "\n")
	}
	for _, ns := range dns {
		b.WriteString("nameserver " + ns + "\n")
	}
	if len(opts) > 0 && strings.TrimSpace(strings.Join(opts, " ")) != "" {
		b.WriteString("options " + strings.Join(opts, " ") + "\n")
	}
	return b.Bytes()
}

// makeResolvConf builds a container's resolv.conf from the host's (host),
// the --dns, --dns-search and --dns-option values, and the embedded DNS
// server's address when the container is on a user-defined network ("" if
// not).
func makeResolvConf(host []byte, dns, search, opts []string, embedded string) []byte {
	var rc []byte
	if len(dns) > 0 || len(search) > 0 || len(opts) > 0 {
		d, s, o := rcNameservers(host, false), rcLast(host, "search"), rcLast(host, "options")
		if len(dns) > 0 {
			d = dns
		}
		if len(search) > 0 {
			s = search
		}
		if len(opts) > 0 {
			o = opts
		}
		rc = buildResolvConf(d, s, o)
	} else {
		rc = rcLocalhostNS.ReplaceAll(host, nil)
		if len(rcNameservers(rc, false)) == 0 {
			rc = append(rc, []byte("\nnameserver "+strings.Join(rcDefaultDNS, "\nnameserver "))...)
		}
	}
	if embedded == "" {
		return rc
	}
	o := rcLast(rc, "options")
	userNdots := false
	for _, opt := range o {
		if v, ok := strings.CutPrefix(opt, "ndots:"); ok {
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				userNdots = true
			}
		}
	}
	if !userNdots {
		o = append(o, "ndots:0")
	}
	return buildResolvConf(append([]string{embedded}, rcNameservers(rc, true)...), rcLast(rc, "search"), o)
}
