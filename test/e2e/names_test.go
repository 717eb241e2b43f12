package e2e

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestNamesAndResolvConf (issue 14 item 9): the embedded DNS server
// resolves a container's own hostname; a hostname with a domain (whether
// in --hostname or split with --domainname) puts "fqdn short" in
// /etc/hosts; resolv.conf has dockerd's lines in dockerd's order (search,
// nameserver, options; on a user-defined network the embedded server and
// the user's options before ndots:0).
func TestNamesAndResolvConf(t *testing.T) {
	sb, nd := newNetTarget(t)
	tool := sb.tool()
	mount := []string{"-v", tool + ":/nettool:ro"}
	nd.eachCLI(t, func(t *testing.T, c *CLI) {
		run := func(args ...string) string {
			return c.ok(append(append([]string{"run", "--rm"}, mount...), args...)...).Stdout
		}
		n := netName("names")
		c.ok("network", "create", "--subnet", "10.125.0.0/24", n)
		nd.rmNetLater(t, n)

		// Its own hostname, through the embedded DNS (/etc/hosts emptied
		// first), and from a neighbour.
		host := "h" + randSuffix() + ".example.test"
		me := netName("me")
		nd.rmLater(t, me)
		c.ok("run", "-d", "--name", me, "--network", n, "--hostname", host, "-v", tool+":/nettool:ro", "busybox", "sleep", "300")
		ip := netCtrIP(t, nd.api(), me, n)
		r := c.ok("exec", me, "sh", "-c", "echo '127.0.0.1 localhost' > /etc/hosts; /nettool lookup -t 5 "+host).Stdout
		if strings.TrimSpace(r) != ip {
			t.Errorf("--hostname %s on %s: the container resolved its own hostname to %q, want %s", host, n, r, ip)
		}
		if got := strings.TrimSpace(run("--network", n, "busybox", "/nettool", "lookup", "-t", "5", host)); got != ip {
			t.Errorf("a neighbour resolved %s to %q, want %s", host, got, ip)
		}

		// /etc/hosts: "<ip>\t<fqdn> <short>".
		line := regexp.MustCompile(`(?m)^\d+\.\d+\.\d+\.\d+\tfoo\.example\.test foo$`)
		for _, args := range [][]string{{"--hostname", "foo.example.test"}, {"--hostname", "foo", "--domainname", "example.test"}} {
			out := run(append(args, "busybox", "cat", "/etc/hosts")...)
			if !line.MatchString(out) {
				t.Errorf("%v: /etc/hosts has no \"<ip>\\tfoo.example.test foo\" line:\n%s", args, out)
			}
		}

		// resolv.conf, exactly.
		flags := []string{"--dns", "10.0.0.2", "--dns-search", "a.example", "--dns-option", "ndots:2"}
		if got, want := run(append(flags, "busybox", "cat", "/etc/resolv.conf")...), "search a.example\nnameserver 10.0.0.2\noptions ndots:2\n"; got != want {
			t.Errorf("default bridge %v: resolv.conf\n%q, want\n%q", flags, got, want)
		}
		if got, want := run(append(append([]string{"--network", n}, flags...), "busybox", "cat", "/etc/resolv.conf")...), "search a.example\nnameserver 127.0.0.11\noptions ndots:2\n"; got != want {
			t.Errorf("user network %v: resolv.conf\n%q, want\n%q", flags, got, want)
		}
		flags = []string{"--dns", "10.0.0.2", "--dns-search", "a.example", "--dns-option", "timeout:1"}
		if got, want := run(append(append([]string{"--network", n}, flags...), "busybox", "cat", "/etc/resolv.conf")...), "search a.example\nnameserver 127.0.0.11\noptions timeout:1 ndots:0\n"; got != want {
			t.Errorf("user network %v: resolv.conf\n%q, want\n%q", flags, got, want)
		}
	})
}

// TestEphemeralPortsAvoidExplicitOnes (issue 14 item 9): host ports picked
// for -p 80 and -p 81 never take a port the same request names (-p
// <first ephemeral port>:8080), whatever order they come in.
func TestEphemeralPortsAvoidExplicitOnes(t *testing.T) {
	sb, nd := newNetTarget(t)
	a := nd.api()
	f := strings.Fields(sb.sh("cat", "/proc/sys/net/ipv4/ip_local_port_range"))
	lo, err := strconv.Atoi(f[0])
	if err != nil {
		t.Fatalf("ip_local_port_range %q", f)
	}
	nd.eachCLI(t, func(t *testing.T, c *CLI) {
		name := netName("eph")
		nd.rmLater(t, name)
		c.ok("run", "-d", "--name", name, "-p", "80", "-p", "81", "-p", strconv.Itoa(lo)+":8080", "-p", strconv.Itoa(lo+1)+":8081", "busybox", "sleep", "300")
		ci := inspectNetCtr(t, a, name)
		seen := map[string]string{}
		for port, bs := range ci.NetworkSettings.Ports {
			for _, b := range bs {
				if b.HostIP != "0.0.0.0" {
					continue
				}
				if other, dup := seen[b.HostPort]; dup {
					t.Errorf("host port %s given to %s and %s", b.HostPort, other, port)
				}
				seen[b.HostPort] = port
			}
		}
		if seen[strconv.Itoa(lo)] != "8080/tcp" || seen[strconv.Itoa(lo+1)] != "8081/tcp" || len(seen) != 4 {
			t.Errorf("bindings %v, want %d→8080, %d→8081 and two other ports", ci.NetworkSettings.Ports, lo, lo+1)
		}
	})
}
