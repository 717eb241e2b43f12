package e2e

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Published ports (issue 4, items 2 and 8). Each test runs its own daemon
// inside a network namespace of its own (see net_fixture_test.go): port
// 8080 and friends are the sandbox's, not the shared host's.

const nginxWelcome = "Welcome to nginx!"

// newNetTarget starts a sandbox and the daemon under test inside it.
func newNetTarget(t *testing.T) (*netSandbox, *netDaemon) {
	t.Helper()
	sb := newNetSandbox(t)
	return sb, startNetDaemon(t, sb, env.target)
}

// TestWalkthroughPublishedPort is the tutorial's networking step, command
// for command: run -d -p 8080:80 nginx:alpine, then curl
// http://localhost:8080 answers with nginx's page; port, ps and inspect
// show the mapping as Docker does.
func TestWalkthroughPublishedPort(t *testing.T) {
	sb, nd := newNetTarget(t)
	a := nd.api()
	bridge := inspectNet(t, a, "bridge")
	if len(bridge.IPAM.Config) == 0 {
		t.Fatalf("network bridge has no IPAM config: %+v", bridge)
	}
	subnet := netip.MustParsePrefix(bridge.IPAM.Config[0].Subnet)
	nd.eachCLI(t, func(t *testing.T, c *CLI) {
		nd.rmLater(t, "demo-nginx")
		id := strings.TrimSpace(c.ok("run", "--name", "demo-nginx", "-d", "-p", "8080:80", "nginx:alpine").Stdout)
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
			t.Errorf("run -d printed %q, want the container ID", id)
		}
		// curl http://localhost:8080, polled until nginx answers.
		waitHTTP(t, sb.path, "http://127.0.0.1:8080/", nginxWelcome, 30*time.Second)
		out, err := sb.try("curl", "-sS", "-m", "5", "http://localhost:8080")
		if err != nil || !strings.Contains(out, nginxWelcome) {
			t.Errorf("curl http://localhost:8080 in the sandbox: %v\n%s", err, out)
		}
		// The host's own (non-loopback) address, from the host and from
		// another machine on its network.
		waitHTTP(t, sb.path, "http://"+sbHostAddr+":8080/", nginxWelcome, 10*time.Second)
		waitHTTP(t, sb.clientPath, "http://"+sbHostAddr+":8080/", nginxWelcome, 10*time.Second)

		// docker port: Docker 20.10 publishes on IPv4 and IPv6.
		c.ok("port", "demo-nginx").wantOut(t, c.name, "80/tcp -> 0.0.0.0:8080\n80/tcp -> [::]:8080")
		c.ok("port", "demo-nginx", "80").wantOut(t, c.name, "0.0.0.0:8080\n[::]:8080")
		c.ok("port", "demo-nginx", "80/tcp").wantOut(t, c.name, "0.0.0.0:8080\n[::]:8080")

		// ps: the PORTS column.
		const ports = "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"
		c.ok("ps", "--filter", "name=demo-nginx", "--format", "{{.Ports}}").wantOut(t, c.name, ports)
		ps := c.ok("ps").Stdout
		if !strings.Contains(ps, ports) || !strings.Contains(ps, "demo-nginx") {
			t.Errorf("%s ps: no row with PORTS %q:\n%s", c.name, ports, ps)
		}
		if hdr := lines(ps)[0]; !strings.Contains(hdr, "PORTS") {
			t.Errorf("%s ps header %q has no PORTS column", c.name, hdr)
		}

		// inspect: NetworkSettings.
		ci := inspectNetCtr(t, a, "demo-nginx")
		wantBindings(t, ci.NetworkSettings.Ports, "80/tcp", "0.0.0.0:8080", ":::8080")
		ep := ci.NetworkSettings.Networks["bridge"]
		if ep == nil {
			t.Fatalf("NetworkSettings.Networks has no bridge: %+v", ci.NetworkSettings.Networks)
		}
		ip, err := netip.ParseAddr(ep.IPAddress)
		if err != nil || !subnet.Contains(ip) {
			t.Errorf("Networks.bridge.IPAddress %q is not in the bridge's subnet %s", ep.IPAddress, subnet)
		}
		// dockerd 20.10 leaves the default bridge's IPAM Gateway empty.
		if gw, err := netip.ParseAddr(ep.Gateway); err != nil || !subnet.Contains(gw) || gw == ip ||
			(bridge.IPAM.Config[0].Gateway != "" && ep.Gateway != bridge.IPAM.Config[0].Gateway) {
			t.Errorf("Networks.bridge.Gateway %q: want the bridge's address in %s (IPAM gateway %q)", ep.Gateway, subnet, bridge.IPAM.Config[0].Gateway)
		}
		if ep.IPPrefixLen != subnet.Bits() {
			t.Errorf("Networks.bridge.IPPrefixLen %d, want %d", ep.IPPrefixLen, subnet.Bits())
		}
		if !regexp.MustCompile(`^[0-9a-f]{2}(:[0-9a-f]{2}){5}$`).MatchString(ep.MacAddress) {
			t.Errorf("Networks.bridge.MacAddress %q is not a MAC address", ep.MacAddress)
		}
		if ep.NetworkID != bridge.ID || ep.EndpointID == "" {
			t.Errorf("Networks.bridge: NetworkID %q (bridge is %q), EndpointID %q", ep.NetworkID, bridge.ID, ep.EndpointID)
		}
		// The legacy top-level fields tutorials read.
		ns := ci.NetworkSettings
		if ns.IPAddress != ep.IPAddress || ns.Gateway != ep.Gateway || ns.MacAddress != ep.MacAddress || ns.IPPrefixLen != ep.IPPrefixLen {
			t.Errorf("NetworkSettings top level (%s %s %s /%d) differs from Networks.bridge (%s %s %s /%d)",
				ns.IPAddress, ns.Gateway, ns.MacAddress, ns.IPPrefixLen, ep.IPAddress, ep.Gateway, ep.MacAddress, ep.IPPrefixLen)
		}
		if ns.SandboxKey == "" {
			t.Errorf("NetworkSettings.SandboxKey is empty")
		}
		// What the container itself sees.
		in := c.ok("exec", "demo-nginx", "sh", "-c", "cat /sys/class/net/eth0/address; ip -4 -o addr show eth0; ip route").Stdout
		if !strings.Contains(in, ep.MacAddress) || !strings.Contains(in, ep.IPAddress+"/"+strconv.Itoa(subnet.Bits())) || !strings.Contains(in, "default via "+ep.Gateway) {
			t.Errorf("inside the container:\n%s\nwant MAC %s, address %s/%d, default via %s", in, ep.MacAddress, ep.IPAddress, subnet.Bits(), ep.Gateway)
		}
		// The CLI's inspect --format, as tutorials use it.
		c.ok("inspect", "--format", "{{.NetworkSettings.IPAddress}}", "demo-nginx").wantOut(t, c.name, ep.IPAddress)
		c.ok("inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "demo-nginx").wantOut(t, c.name, ep.IPAddress)

		c.ok("stop", "demo-nginx")
		if ok, how := nsUnreachable(sb.path, "127.0.0.1:8080"); !ok {
			t.Errorf("after stop, 127.0.0.1:8080 %s", how)
		}
		c.ok("rm", "demo-nginx")
	})
}

// wantBindings checks NetworkSettings.Ports[port] is exactly want
// ("hostip:hostport" each, in order).
func wantBindings(t *testing.T, ports map[string][]netPortBinding, port string, want ...string) {
	t.Helper()
	var got []string
	for _, b := range ports[port] {
		got = append(got, b.HostIP+":"+b.HostPort)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("NetworkSettings.Ports[%q] = %q, want %q (all: %+v)", port, got, want, ports)
	}
}

// TestPublishedPorts: host IP, UDP, ranges, -P, random ports, conflicts and
// bad specs.
func TestPublishedPorts(t *testing.T) {
	sb, nd := newNetTarget(t)
	a := nd.api()

	t.Run("loopback-only", func(t *testing.T) {
		nd.eachCLI(t, func(t *testing.T, c *CLI) {
			name := netName("lo")
			nd.rmLater(t, name)
			c.ok("run", "-d", "--name", name, "-p", "127.0.0.1:8081:80", "nginx:alpine")
			waitHTTP(t, sb.path, "http://127.0.0.1:8081/", nginxWelcome, 30*time.Second)
			// Not at the host's other addresses, not from another machine.
			for _, p := range []string{sb.path, sb.clientPath} {
				if ok, how := nsUnreachable(p, sbHostAddr+":8081"); !ok {
					t.Errorf("%s:8081 from %s: %s; a port bound to 127.0.0.1 must answer on loopback only", sbHostAddr, nsLabel(p), how)
				}
			}
			c.ok("port", name).wantOut(t, c.name, "80/tcp -> 127.0.0.1:8081")
			c.ok("ps", "--filter", "name="+name, "--format", "{{.Ports}}").wantOut(t, c.name, "127.0.0.1:8081->80/tcp")
			wantBindings(t, inspectNetCtr(t, a, name).NetworkSettings.Ports, "80/tcp", "127.0.0.1:8081")
		})
	})

	t.Run("host-address-only", func(t *testing.T) {
		nd.eachCLI(t, func(t *testing.T, c *CLI) {
			name := netName("hostip")
			nd.rmLater(t, name)
			c.ok("run", "-d", "--name", name, "-p", sbHostAddr+":8086:80", "nginx:alpine")
			waitHTTP(t, sb.clientPath, "http://"+sbHostAddr+":8086/", nginxWelcome, 30*time.Second)
			waitHTTP(t, sb.path, "http://"+sbHostAddr+":8086/", nginxWelcome, 10*time.Second)
			if ok, how := nsUnreachable(sb.path, "127.0.0.1:8086"); !ok {
				t.Errorf("127.0.0.1:8086: %s; the port is bound to %s only", how, sbHostAddr)
			}
			c.ok("port", name).wantOut(t, c.name, "80/tcp -> "+sbHostAddr+":8086")
		})
	})

	t.Run("udp", func(t *testing.T) {
		tool := sb.tool()
		nd.eachCLI(t, func(t *testing.T, c *CLI) {
			name := netName("udp")
			nd.rmLater(t, name)
			c.ok("run", "-d", "--name", name, "-p", "8082:80/udp", "-v", tool+":/nettool:ro", "busybox", "/nettool", "udpecho", "80")
			for _, tc := range []struct{ from, dst string }{
				{sb.path, "127.0.0.1"},      // the host, loopback
				{sb.path, sbHostAddr},       // the host, its own address
				{sb.clientPath, sbHostAddr}, // another machine
			} {
				msg := "hello-udp-" + randSuffix()
				var got string
				ok := netPoll(20*time.Second, func() bool {
					got = udpRoundTrip(tc.from, net.JoinHostPort(tc.dst, "8082"), msg)
					return got == "echo:"+msg
				})
				if !ok {
					t.Errorf("UDP %s:8082 from %s: answer %q, want %q (container saw: %q)", tc.dst, nsLabel(tc.from), got, "echo:"+msg, c.run("logs", name).Stdout)
				}
			}
			c.ok("port", name).wantOut(t, c.name, "80/udp -> 0.0.0.0:8082\n80/udp -> [::]:8082")
			c.ok("ps", "--filter", "name="+name, "--format", "{{.Ports}}").wantOut(t, c.name, "0.0.0.0:8082->80/udp, [::]:8082->80/udp")
			wantBindings(t, inspectNetCtr(t, a, name).NetworkSettings.Ports, "80/udp", "0.0.0.0:8082", ":::8082")
		})
	})

	t.Run("range", func(t *testing.T) {
		nd.eachCLI(t, func(t *testing.T, c *CLI) {
			name := netName("range")
			nd.rmLater(t, name)
			c.ok("run", "-d", "--name", name, "-p", "8090-8091:8090-8091", "busybox", "sh", "-c",
				"mkdir /www && echo served-by-httpd > /www/index.html && httpd -p 8090 -h /www && exec httpd -f -p 8091 -h /www")
			for _, port := range []string{"8090", "8091"} {
				waitHTTP(t, sb.path, "http://127.0.0.1:"+port+"/", "served-by-httpd", 30*time.Second)
				waitHTTP(t, sb.clientPath, "http://"+sbHostAddr+":"+port+"/", "served-by-httpd", 10*time.Second)
			}
			c.ok("port", name).wantOut(t, c.name, "8090/tcp -> 0.0.0.0:8090\n8090/tcp -> [::]:8090\n8091/tcp -> 0.0.0.0:8091\n8091/tcp -> [::]:8091")
			c.ok("ps", "--filter", "name="+name, "--format", "{{.Ports}}").wantOut(t, c.name, "0.0.0.0:8090-8091->8090-8091/tcp, [::]:8090-8091->8090-8091/tcp")
			ci := inspectNetCtr(t, a, name)
			wantBindings(t, ci.NetworkSettings.Ports, "8090/tcp", "0.0.0.0:8090", ":::8090")
			wantBindings(t, ci.NetworkSettings.Ports, "8091/tcp", "0.0.0.0:8091", ":::8091")
		})
	})

	lo, hi := localPortRange(t, sb)
	random := func(t *testing.T, c *CLI, args ...string) {
		name := netName("rand")
		nd.rmLater(t, name)
		c.ok(append(append([]string{"run", "-d", "--name", name}, args...), "nginx:alpine")...)
		ci := waitNetCtr(t, a, name, "running with its ports", func(c netCtr) bool { return c.State.Running && len(c.NetworkSettings.Ports["80/tcp"]) > 0 })
		bs := ci.NetworkSettings.Ports["80/tcp"]
		hp := bs[0].HostPort
		n, err := strconv.Atoi(hp)
		if err != nil || n < lo || n > hi {
			t.Fatalf("NetworkSettings.Ports[80/tcp] = %+v: host port %q is not in the ephemeral range %d-%d", bs, hp, lo, hi)
		}
		wantBindings(t, ci.NetworkSettings.Ports, "80/tcp", "0.0.0.0:"+hp, ":::"+hp)
		if hb := inspectNetCtr(t, a, name).HostConfig.PortBindings; len(hb) > 0 && len(hb["80/tcp"]) > 0 && hb["80/tcp"][0].HostPort != "" {
			t.Errorf("HostConfig.PortBindings %+v: the requested binding must keep its empty HostPort", hb)
		}
		waitHTTP(t, sb.path, "http://127.0.0.1:"+hp+"/", nginxWelcome, 30*time.Second)
		waitHTTP(t, sb.clientPath, "http://"+sbHostAddr+":"+hp+"/", nginxWelcome, 10*time.Second)
		c.ok("port", name, "80").wantOut(t, c.name, "0.0.0.0:"+hp+"\n[::]:"+hp)
	}
	t.Run("publish-all", func(t *testing.T) {
		// nginx:alpine EXPOSEs 80.
		nd.eachCLI(t, func(t *testing.T, c *CLI) { random(t, c, "-P") })
	})
	t.Run("random-host-port", func(t *testing.T) {
		nd.eachCLI(t, func(t *testing.T, c *CLI) { random(t, c, "-p", "80") })
	})

	t.Run("allocated-by-another-container", func(t *testing.T) {
		nd.eachCLI(t, func(t *testing.T, c *CLI) {
			first, second := netName("holder"), netName("second")
			nd.rmLater(t, first)
			nd.rmLater(t, second)
			c.ok("run", "-d", "--name", first, "-p", "8084:80", "nginx:alpine")
			waitHTTP(t, sb.path, "http://127.0.0.1:8084/", nginxWelcome, 30*time.Second)
			r := c.run("run", "-d", "--name", second, "-p", "8084:80", "nginx:alpine")
			// Docker: "driver failed programming external connectivity on
			// endpoint <name> (<id>): Bind for 0.0.0.0:8084 failed: port is
			// already allocated", exit 125.
			r.wantCode(t, c.name, 125, "port is already allocated", "0.0.0.0:8084")
			if st := inspectNetCtr(t, a, second).State.Status; st != "created" {
				t.Errorf("the refused container is %q, want created", st)
			}
			// The first one is untouched.
			waitHTTP(t, sb.path, "http://127.0.0.1:8084/", nginxWelcome, 5*time.Second)
			waitHTTP(t, sb.clientPath, "http://"+sbHostAddr+":8084/", nginxWelcome, 5*time.Second)
			// Through the API: start answers 500 with the same message.
			msg := a.call(t, "POST", "/containers/"+second+"/start", nil, nil).wantError(t, 500, "port is already allocated")
			t.Logf("dockerd's words: %s", msg)
			// Once the first is gone the port is free.
			c.ok("rm", "-f", first)
			c.ok("start", second)
			waitHTTP(t, sb.path, "http://127.0.0.1:8084/", nginxWelcome, 30*time.Second)
		})
	})

	t.Run("used-by-a-host-process", func(t *testing.T) {
		nd.eachCLI(t, func(t *testing.T, c *CLI) {
			l, err := listenIn(sb.path, "tcp4", "0.0.0.0:8085")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			name := netName("busy")
			nd.rmLater(t, name)
			r := c.run("run", "-d", "--name", name, "-p", "8085:80", "nginx:alpine")
			// Docker: "driver failed programming external connectivity on
			// endpoint <name> (<id>): Error starting userland proxy: listen
			// tcp4 0.0.0.0:8085: bind: address already in use", exit 125.
			r.wantCode(t, c.name, 125, "address already in use")
			if st := inspectNetCtr(t, a, name).State.Status; st != "created" {
				t.Errorf("the refused container is %q, want created", st)
			}
			l.Close()
			c.ok("start", name)
			waitHTTP(t, sb.path, "http://127.0.0.1:8085/", nginxWelcome, 30*time.Second)
		})
	})

	t.Run("bad-specs", func(t *testing.T) {
		before := netCtrNames(t, a)
		nd.eachCLI(t, func(t *testing.T, c *CLI) {
			for _, tc := range []struct {
				spec string
				want []string
			}{
				// docker 28's CLI: "invalid hostPort: 99999", "invalid
				// containerPort: abc"; exit 125 before anything is sent.
				{"99999:80", []string{"99999"}},
				{"abc", []string{"abc"}},
				{"80:99999", []string{"99999"}},
				{"8080:80/sctpx", []string{"sctpx"}},
			} {
				name := netName("bad")
				r := c.run("run", "-d", "--name", name, "-p", tc.spec, "busybox", "true")
				r.wantCode(t, c.name, 125, tc.want...)
				if strings.TrimSpace(r.Stderr) == "" {
					t.Errorf("-p %s: no error message", tc.spec)
				}
			}
		})
		if after := netCtrNames(t, a); after != before {
			t.Errorf("bad -p specs created containers: before %q, after %q", before, after)
		}
		// The same through the API, with no CLI to catch them: dockerd
		// answers 400 `invalid port specification: "99999"` at create.
		// (It takes a HostIp that is no IP address, "not-an-ip", without a
		// word, so that case is not tested.)
		for _, tc := range []struct{ bindings, want string }{
			{`{"80/tcp":[{"HostPort":"99999"}]}`, `invalid port specification: "99999"`},
			{`{"80/tcp":[{"HostPort":"abc"}]}`, `invalid port specification: "abc"`},
			{`{"abc/tcp":[{"HostPort":"8080"}]}`, `invalid port specification: "abc"`},
		} {
			body := fmt.Sprintf(`{"Image":"busybox:latest","Cmd":["true"],"HostConfig":{"PortBindings":%s}}`, tc.bindings)
			name := netName("badapi")
			nd.rmLater(t, name)
			a.call(t, "POST", "/containers/create?name="+name, []byte(body), nil).wantError(t, 400, tc.want)
		}
		if after := netCtrNames(t, a); after != before {
			t.Errorf("bad port bindings created containers: before %q, after %q", before, after)
		}
	})
}

// udpRoundTrip sends msg to addr from the namespace at path and returns
// the answer ("" if none within a second).
func udpRoundTrip(path, addr, msg string) string {
	var c net.Conn
	if err := inNetns(path, func() error {
		var err error
		c, err = net.Dial("udp4", addr)
		return err
	}); err != nil {
		return ""
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		return ""
	}
	buf := make([]byte, 1500)
	n, _ := c.Read(buf)
	return string(buf[:n])
}

// localPortRange is the sandbox's ephemeral port range, where random host
// ports come from.
func localPortRange(t *testing.T, sb *netSandbox) (int, int) {
	t.Helper()
	f := strings.Fields(sb.sh("cat", "/proc/sys/net/ipv4/ip_local_port_range"))
	if len(f) != 2 {
		t.Fatalf("ip_local_port_range: %q", f)
	}
	lo, _ := strconv.Atoi(f[0])
	hi, _ := strconv.Atoi(f[1])
	return lo, hi
}

// netCtrNames lists every container's name, sorted, as one string.
func netCtrNames(t *testing.T, a *apiClient) string {
	t.Helper()
	var cs []struct{ Names []string }
	a.call(t, "GET", "/containers/json?all=1", nil, nil).wantStatus(t, 200).decode(t, &cs)
	var ns []string
	for _, c := range cs {
		ns = append(ns, c.Names...)
	}
	return fmt.Sprint(netSorted(ns))
}

func netSorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// TestBridgeKeepsItsMAC: a network's bridge keeps its MAC address while
// containers' veths join and leave it (dockerd gives its bridges a MAC of
// their own). Left to the kernel, a bridge takes the lowest MAC of its
// ports: a running container that learned the gateway's MAC while such a
// port was there (a container refused a port, whose namespace the kernel
// destroys a moment later) sent its packets to a MAC the bridge no longer
// had, until its ARP entry expired (15-45 s): TestPublishedPorts/
// allocated-by-another-container's holder answered nothing for seconds.
// Here the port with the lowest MAC is a veth of the test's own.
func TestBridgeKeepsItsMAC(t *testing.T) {
	sb, nd := newNetTarget(t)
	tool := sb.tool()
	a := nd.api()
	c := cliFor(t, "docker", nd.daemon)
	bridge := inspectNet(t, a, "bridge")
	br := bridge.Options["com.docker.network.bridge.name"]
	if br == "" || len(bridge.IPAM.Config) == 0 {
		t.Fatalf("default bridge network: no bridge name or subnet in %+v", bridge)
	}
	gw := bridge.IPAM.Config[0].Gateway
	if gw == "" {
		// dockerd 20.10 shows none for its default bridge: the subnet's first address.
		gw = netip.MustParsePrefix(bridge.IPAM.Config[0].Subnet).Addr().Next().String()
	}
	// The host answers on the gateway's address.
	l, err := listenIn(sb.path, "tcp4", net.JoinHostPort(gw, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "the host answers") })}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	url := "http://" + l.Addr().String() + "/"

	name := netName("mac")
	nd.rmLater(t, name)
	c.ok("run", "-d", "--name", name, "-v", tool+":/nettool:ro", "busybox", "sleep", "300")
	get := func(when string) {
		t.Helper()
		if r := c.run("exec", name, "/nettool", "get", "-once", "-t", "3", url); r.Code != 0 || !strings.Contains(r.Stdout, "the host answers") {
			t.Fatalf("%s: the container's GET %s: exit %d %q %q", when, url, r.Code, r.Stdout, r.Stderr)
		}
	}
	get("before")
	mac := func() string {
		// (ip, not /sys: nsenter enters the sandbox's network namespace
		// only, /sys stays the host's.)
		out := sb.sh("ip", "-o", "link", "show", "dev", br)
		f := strings.Fields(out)
		for i := range f {
			if f[i] == "link/ether" && i+1 < len(f) {
				return f[i+1]
			}
		}
		t.Fatalf("no MAC of %s in %q", br, out)
		return ""
	}
	mac0 := mac()
	veth := "e2elow" + randSuffix()[:4]
	sb.sh("ip", "link", "add", veth, "address", "00:00:00:00:00:01", "type", "veth", "peer", "name", veth+"p")
	t.Cleanup(func() { _, _ = sb.try("ip", "link", "del", veth) })
	sb.sh("ip", "link", "set", veth, "master", br, "up")
	if got := mac(); got != mac0 {
		t.Errorf("bridge %s's MAC is %s once a port with a lower MAC joined, want %s", br, got, mac0)
	}
	// The container learns the gateway's MAC again (the host asks its).
	get("with the port of the lowest MAC")
	sb.sh("ip", "link", "del", veth)
	if got := mac(); got != mac0 {
		t.Errorf("bridge %s's MAC is %s once that port left, want %s", br, got, mac0)
	}
	get("after the port of the lowest MAC left")
}
