package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestAlongsideDockerd (issue 4, item 5): with Debian's dockerd running
// WITH its networking on the same host (its FORWARD policy DROP, its
// DOCKER* chains), berth's containers still reach each other, the host and
// the outside, published ports still work, Docker's own container still
// works, and berth never changes Docker's chains. Both daemons run in one
// sandbox (see net_fixture_test.go), so the real host's iptables are never
// touched. berth only: it is about berthd living beside dockerd.
func TestAlongsideDockerd(t *testing.T) {
	requireEnv(t)
	onlyBerth(t, "berthd beside a networking dockerd")
	if env.dockerd == "" {
		t.Skip("dockerd is not installed")
	}
	sb := newNetSandbox(t)
	dk := startNetDaemon(t, sb, "docker")
	// dockerd sets FORWARD's policy to DROP when it is the one to turn
	// ip_forward on, as on a fresh Debian host; a new namespace may have it
	// on already, so the policy is set as Debian's dockerd leaves it.
	if fw := sb.sh("iptables", "-S", "FORWARD"); !strings.Contains(fw, "-P FORWARD DROP") {
		sb.sh("iptables", "-P", "FORWARD", "DROP")
	}
	chains := func() string {
		var b strings.Builder
		for _, args := range [][]string{
			{"-S", "DOCKER"}, {"-S", "DOCKER-USER"}, {"-S", "DOCKER-ISOLATION-STAGE-1"}, {"-S", "DOCKER-ISOLATION-STAGE-2"},
			{"-t", "nat", "-S", "DOCKER"}, {"-t", "nat", "-S", "POSTROUTING"},
		} {
			b.WriteString(sb.sh(append([]string{"iptables"}, args...)...))
		}
		return b.String()
	}
	// Docker's own container with a published port, before berthd starts.
	docker := cliFor(t, "docker", dk.daemon)
	docker.ok("run", "-d", "--name", "docker-web", "-p", "8081:80", "nginx:alpine")
	waitHTTP(t, sb.clientPath, "http://"+sbHostAddr+":8081/", nginxWelcome, 30*time.Second)
	dockerChains := chains()
	t.Logf("Docker's chains:\n%s", dockerChains)

	nd := startNetDaemon(t, sb, "berth")
	a := nd.api()
	tool := sb.tool()
	serveHost(t, sb, "18080")
	serveOutside(t, sb, "18090")

	for _, name := range cliNames {
		t.Run(name, func(t *testing.T) {
			c := cliFor(t, name, nd.daemon)
			web := netName("web")
			nd.rmLater(t, web)
			c.ok("run", "--name", web, "-d", "-p", "8080:80", "nginx:alpine")
			// Published port: loopback (proxy), the host's address, another machine.
			waitHTTP(t, sb.path, "http://127.0.0.1:8080/", nginxWelcome, 30*time.Second)
			waitHTTP(t, sb.path, "http://"+sbHostAddr+":8080/", nginxWelcome, 10*time.Second)
			waitHTTP(t, sb.clientPath, "http://"+sbHostAddr+":8080/", nginxWelcome, 10*time.Second)
			ip := netCtrIP(t, a, web, "bridge")
			// Container to container, to the host, to the outside (forwarded:
			// Docker's DROP policy applies), to a published port.
			r := c.run("run", "--rm", "-v", tool+":/nettool:ro", "busybox", "sh", "-c",
				"/nettool get http://"+ip+"/ && /nettool get http://"+sbHostAddr+":18080/ && /nettool get http://"+sbClientAddr+":18090/ && /nettool get http://"+sbHostAddr+":8080/")
			for _, want := range []string{nginxWelcome, "host-says-hi", "outside-says-hi"} {
				if !strings.Contains(r.Stdout, want) {
					t.Errorf("from a berth container on the default bridge: no %q in %q (stderr %q)", want, r.Stdout, r.Stderr)
				}
			}
			// A user-defined network, the same.
			n := netName("beside")
			c.ok("network", "create", "--subnet", "10.123.0.0/24", n)
			nd.rmNetLater(t, n)
			uweb := netName("uweb")
			nd.rmLater(t, uweb)
			c.ok(append([]string{"run", "-d", "--name", uweb, "--network", n, "-p", "8082:80", "busybox"}, webCmd("uweb")...)...)
			waitHTTP(t, sb.clientPath, "http://"+sbHostAddr+":8082/", "hi-from-uweb", 30*time.Second)
			r = c.run("run", "--rm", "--network", n, "-v", tool+":/nettool:ro", "busybox", "sh", "-c",
				"/nettool get http://"+uweb+"/ && /nettool get http://"+sbHostAddr+":18080/ && /nettool get http://"+sbClientAddr+":18090/")
			for _, want := range []string{"hi-from-uweb", "host-says-hi", "outside-says-hi"} {
				if !strings.Contains(r.Stdout, want) {
					t.Errorf("from a berth container on a user network: no %q in %q (stderr %q)", want, r.Stdout, r.Stderr)
				}
			}
			// Docker's container is unaffected.
			waitHTTP(t, sb.clientPath, "http://"+sbHostAddr+":8081/", nginxWelcome, 5*time.Second)
			if got := chains(); got != dockerChains {
				t.Errorf("Docker's chains changed while berth ran containers:\nbefore:\n%s\nafter:\n%s", dockerChains, got)
			}
			c.ok("rm", "-f", web, uweb)
			c.ok("network", "rm", n)
		})
	}
	if got := chains(); got != dockerChains {
		t.Errorf("Docker's chains changed:\nbefore:\n%s\nafter:\n%s", dockerChains, got)
	}
	waitHTTP(t, sb.clientPath, "http://"+sbHostAddr+":8081/", nginxWelcome, 5*time.Second)
	t.Logf("FORWARD with both engines:\n%s", sb.sh("iptables", "-S", "FORWARD"))
}
