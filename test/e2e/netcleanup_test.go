package e2e

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Cleanup (issue 4, item 6): what networking leaves behind.

// TestIPAMNoLeak: a /29 network has 5 addresses for containers (the
// gateway takes one); a dozen create/start/rm cycles on it all succeed, then
// exactly 5 containers fit. Docker's behaviour as much as berth's.
func TestIPAMNoLeak(t *testing.T) {
	_, nd := newNetTarget(t)
	a := nd.api()
	tiny := netName("tiny")
	a.call(t, "POST", "/networks/create", []byte(`{"Name":"`+tiny+`","CheckDuplicate":true,"IPAM":{"Config":[{"Subnet":"10.125.9.0/29","Gateway":"10.125.9.1"}]}}`), nil).wantStatus(t, 201)
	nd.rmNetLater(t, tiny)
	body := map[string]any{"Image": "busybox:latest", "Cmd": []string{"sleep", "300"}, "HostConfig": map[string]any{"NetworkMode": tiny}}
	rmf := func(id string) { a.call(t, "DELETE", "/containers/"+id+"?force=1", nil, nil).wantStatus(t, 204) }
	for i := 0; i < 12; i++ {
		id := netAPICreate(t, a, "", body)
		nd.rmLater(t, id)
		a.call(t, "POST", "/containers/"+id+"/start", nil, nil).wantStatus(t, 204)
		rmf(id)
	}
	seen := map[string]bool{}
	for i := 0; i < 5; i++ {
		id := netAPICreate(t, a, "", body)
		nd.rmLater(t, id)
		a.call(t, "POST", "/containers/"+id+"/start", nil, nil).wantStatus(t, 204)
		ip := netCtrIP(t, a, id, tiny)
		if seen[ip] {
			t.Errorf("address %s handed out twice", ip)
		}
		seen[ip] = true
	}
	id := netAPICreate(t, a, "", body)
	nd.rmLater(t, id)
	r := a.call(t, "POST", "/containers/"+id+"/start", nil, nil)
	// dockerd: 500 "no available IPv4 addresses on this network's address
	// pools: <name> (<id>)".
	msg := r.wantError(t, 500, "no available IPv4 addresses on this network's address pools")
	t.Logf("the sixth container on a /29: %d %s", r.Status, msg)
}

// TestNetworkCleanup: after rm, after a failed start, after kill -9 of
// berthd and a restart, and after 200 rapid cycles, the host is exactly as
// before: links, nftables ruleset, listening sockets, pinned namespaces,
// IPAM. berth only: these are berthd's kernel objects (dockerd's are
// iptables rules and docker-proxy processes, Docker's business).
func TestNetworkCleanup(t *testing.T) {
	requireEnv(t)
	onlyBerth(t, "looks at berthd's kernel objects (nftables table, veths, pinned namespaces, proxies)")
	sb, nd := newNetTarget(t)
	a := nd.api()
	// Warm up: the first container makes the bridge and the table.
	web := map[string]any{"Image": "nginx:alpine", "ExposedPorts": map[string]any{"80/tcp": struct{}{}}}
	id := netAPICreate(t, a, "", web)
	a.call(t, "POST", "/containers/"+id+"/start", nil, nil).wantStatus(t, 204)
	a.call(t, "DELETE", "/containers/"+id+"?force=1", nil, nil).wantStatus(t, 204)
	tiny := netName("tiny")
	a.call(t, "POST", "/networks/create", []byte(`{"Name":"`+tiny+`","IPAM":{"Config":[{"Subnet":"10.125.9.0/29"}]}}`), nil).wantStatus(t, 201)
	nd.rmNetLater(t, tiny)
	var before hostState
	// The warm-up container's veth goes with its namespace, which the
	// kernel destroys in the background: wait for it before the baseline.
	netPoll(90*time.Second, func() bool {
		before = sb.state(t, nd.execRoot)
		for _, l := range before.Links {
			if strings.HasPrefix(l, "veth") && !strings.HasSuffix(l, "master=") {
				return false
			}
		}
		return before.Spares <= 1
	})
	t.Logf("baseline: links %q, %d spare veth, sockets %q, %d nft lines", before.Links, before.Spares, before.Sockets, len(lines(before.Nft)))

	published := func(name string, port int, network string) map[string]any {
		b := map[string]any{"Image": "nginx:alpine",
			"ExposedPorts": map[string]any{"80/tcp": struct{}{}, "81/udp": struct{}{}},
			"HostConfig": map[string]any{
				"PortBindings": map[string]any{
					"80/tcp": []map[string]string{{"HostPort": strconv.Itoa(port)}},
					"81/udp": []map[string]string{{"HostPort": strconv.Itoa(port)}},
				},
			}}
		if network != "" {
			b["HostConfig"].(map[string]any)["NetworkMode"] = network
		}
		return b
	}
	gone := func(port int) {
		t.Helper()
		for _, addr := range []string{"127.0.0.1", sbHostAddr} {
			if ok, how := nsUnreachable(sb.path, net.JoinHostPort(addr, strconv.Itoa(port))); !ok {
				t.Errorf("%s:%d still %s", addr, port, how)
			}
		}
	}

	t.Run("rm", func(t *testing.T) {
		var ids []string
		for i, network := range []string{"", tiny} {
			id := netAPICreate(t, a, netName("clean"), published("", 8080+i, network))
			nd.rmLater(t, id)
			a.call(t, "POST", "/containers/"+id+"/start", nil, nil).wantStatus(t, 204)
			waitHTTP(t, sb.path, fmt.Sprintf("http://127.0.0.1:%d/", 8080+i), nginxWelcome, 30*time.Second)
			waitHTTP(t, sb.clientPath, fmt.Sprintf("http://%s:%d/", sbHostAddr, 8080+i), nginxWelcome, 10*time.Second)
			ids = append(ids, id)
		}
		if d := sb.state(t, nd.execRoot).diff(before); d == "" {
			t.Fatalf("two running containers with published ports left no trace in the state: the comparison proves nothing")
		}
		for _, id := range ids {
			a.call(t, "DELETE", "/containers/"+id+"?force=1", nil, nil).wantStatus(t, 204)
		}
		gone(8080)
		gone(8081)
		sb.waitState(t, nd.execRoot, before, "after rm -f")
	})

	t.Run("failed-start", func(t *testing.T) {
		l, err := listenIn(sb.path, "tcp4", "0.0.0.0:8085")
		if err != nil {
			t.Fatal(err)
		}
		withListener := sb.state(t, nd.execRoot)
		// 8084 (tcp and udp) is set up before 8085 fails: it must be undone.
		b := published("", 8084, "")
		hc := b["HostConfig"].(map[string]any)
		hc["PortBindings"].(map[string]any)["82/tcp"] = []map[string]string{{"HostPort": "8085"}}
		b["ExposedPorts"].(map[string]any)["82/tcp"] = struct{}{}
		id := netAPICreate(t, a, netName("fail"), b)
		nd.rmLater(t, id)
		a.call(t, "POST", "/containers/"+id+"/start", nil, nil).wantError(t, 500, "address already in use")
		if st := inspectNetCtr(t, a, id).State.Status; st != "created" {
			t.Errorf("after the failed start the container is %q, want created", st)
		}
		gone(8084)
		sb.waitState(t, nd.execRoot, withListener, "after a failed start")
		l.Close()
		a.call(t, "DELETE", "/containers/"+id+"?force=1", nil, nil).wantStatus(t, 204)
		sb.waitState(t, nd.execRoot, before, "after removing the container that failed to start")
	})

	t.Run("kill-9", func(t *testing.T) {
		// survivor keeps running while berthd is dead; victim dies then.
		survivor := netAPICreate(t, a, netName("survivor"), published("", 8087, tiny))
		nd.rmLater(t, survivor)
		victim := netAPICreate(t, a, netName("victim"), published("", 8088, tiny))
		nd.rmLater(t, victim)
		for _, id := range []string{survivor, victim} {
			a.call(t, "POST", "/containers/"+id+"/start", nil, nil).wantStatus(t, 204)
		}
		waitHTTP(t, sb.path, "http://127.0.0.1:8087/", nginxWelcome, 30*time.Second)
		waitHTTP(t, sb.path, "http://127.0.0.1:8088/", nginxWelcome, 30*time.Second)
		vpid := inspectNetCtr(t, a, victim).State.Pid
		survivorIP := netCtrIP(t, a, survivor, tiny)

		nd.kill9()
		t.Logf("berthd killed with SIGKILL")
		if err := syscall.Kill(vpid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill the victim's init (pid %d): %v", vpid, err)
		}
		netPoll(10*time.Second, func() bool { return syscall.Kill(vpid, 0) != nil })
		nd.restart(t)
		a = nd.api()
		waitNetCtr(t, a, victim, "exited", func(c netCtr) bool { return c.State.Status == "exited" })
		// The survivor still serves, on the same address; the victim's
		// port, veth, rules and address are gone.
		waitHTTP(t, sb.path, "http://127.0.0.1:8087/", nginxWelcome, 30*time.Second)
		waitHTTP(t, sb.clientPath, "http://"+sbHostAddr+":8087/", nginxWelcome, 10*time.Second)
		if ip := netCtrIP(t, a, survivor, tiny); ip != survivorIP {
			t.Errorf("after the restart the survivor's address is %s, was %s", ip, survivorIP)
		}
		gone(8088)
		// IPAM: the /29 holds 5; the survivor has one, so 4 more fit.
		var extra []string
		for i := 0; i < 4; i++ {
			id := netAPICreate(t, a, "", map[string]any{"Image": "busybox:latest", "Cmd": []string{"sleep", "300"}, "HostConfig": map[string]any{"NetworkMode": tiny}})
			nd.rmLater(t, id)
			r := a.call(t, "POST", "/containers/"+id+"/start", nil, nil)
			if r.Status != 204 {
				t.Errorf("container %d of 4 on the /29 after the restart: %s (an address leaked?)", i+1, r)
			}
			extra = append(extra, id)
		}
		for _, id := range append(extra, survivor, victim) {
			a.call(t, "DELETE", "/containers/"+id+"?force=1", nil, nil).wantStatus(t, 204)
		}
		gone(8087)
		sb.waitState(t, nd.execRoot, before, "after kill -9, restart and rm")
	})

	t.Run("200-cycles", func(t *testing.T) {
		// A baseline of its own, once the kernel has finished destroying
		// the namespaces of the containers above (the state stops moving).
		var before hostState
		prev, same := "", 0
		netPoll(90*time.Second, func() bool {
			before = sb.state(t, nd.execRoot)
			cur := fmt.Sprint(before.Links, before.Spares)
			if cur == prev {
				same++
			} else {
				prev, same = cur, 0
			}
			return same >= 20 // unchanged for two seconds
		})
		start := time.Now()
		const budget = 4 * time.Minute
		for i := 0; i < 200; i++ {
			if time.Since(start) > budget {
				t.Fatalf("200 cycles did not finish within %s (%d done)", budget, i)
			}
			b := published("", 8089, "")
			b["Image"] = "busybox:latest"
			b["Cmd"] = []string{"sleep", "300"}
			id := netAPICreate(t, a, "", b)
			r := a.call(t, "POST", "/containers/"+id+"/start", nil, nil)
			if r.Status != 204 {
				a.call(t, "DELETE", "/containers/"+id+"?force=1", nil, nil)
				t.Fatalf("cycle %d: %s", i, r)
			}
			a.call(t, "DELETE", "/containers/"+id+"?force=1", nil, nil).wantStatus(t, 204)
		}
		t.Logf("200 create/start/rm cycles with -p 8089:80/tcp,8089:81/udp in %s", time.Since(start).Round(time.Millisecond))
		gone(8089)
		sb.waitState(t, nd.execRoot, before, "after 200 cycles")
		if out := sb.sh("ss", "-Htan"); strings.Contains(out, ":8089") {
			t.Errorf("sockets on 8089 remain:\n%s", out)
		}
	})
}
