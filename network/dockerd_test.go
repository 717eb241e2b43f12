package network

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
)

// TestAlongsideDockerd checks that berth's containers reach each other,
// the host and the outside, and that published ports work, while a real
// dockerd with iptables enabled (FORWARD policy DROP) runs on the same
// host. To leave the machine untouched, the test runs itself again inside
// a network namespace of its own with its own dockerd there: everything
// Docker and berth make (docker0, iptables chains, berth's table) goes
// with that namespace.
func TestAlongsideDockerd(t *testing.T) {
	needRoot(t)
	if testing.Short() {
		t.Skip("starts a dockerd")
	}
	for _, bin := range []string{"dockerd", "containerd", "iptables", "ip", "unshare", "nsenter"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed", bin)
		}
	}
	if os.Getenv("BERTH_NET_TEST_INNER") != "1" {
		// unshare(1) --net: a fresh network namespace that dies with the
		// test process, same mounts (dockerd needs the cgroup mounts).
		cmd := exec.Command("unshare", "--net", os.Args[0], "-test.run", "^TestAlongsideDockerd$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "BERTH_NET_TEST_INNER=1")
		out, err := cmd.CombinedOutput()
		t.Logf("inside a network namespace of its own:\n%s", out)
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	run(t, "ip", "link", "set", "lo", "up")
	stop := startDockerd(t)
	defer stop()

	// dockerd sets FORWARD's policy to DROP when it is the one to turn
	// ip_forward on, as on a fresh Debian host; in this namespace it may
	// find it on already, so the policy is set as Debian's dockerd leaves it.
	if fw := run(t, "iptables", "-S", "FORWARD"); !strings.Contains(fw, "-P FORWARD DROP") {
		run(t, "iptables", "-P", "FORWARD", "DROP")
	}
	// An "outside" host: a namespace routed through this one.
	ext := filepath.Join(t.TempDir(), "ext")
	h, err := newNetNSHandle()
	if err != nil {
		t.Fatal(err)
	}
	if err := pinNetNS(h, ext); err != nil {
		t.Fatal(err)
	}
	h.Close()
	defer removeNetNS(ext)
	run(t, "ip", "link", "add", "extveth", "type", "veth", "peer", "name", "eth0", "netns", ext)
	run(t, "ip", "addr", "add", "10.250.0.1/30", "dev", "extveth")
	run(t, "ip", "link", "set", "extveth", "up")
	run(t, "nsenter", "--net="+ext, "ip", "link", "set", "lo", "up")
	run(t, "nsenter", "--net="+ext, "ip", "addr", "add", "10.250.0.2/30", "dev", "eth0")
	run(t, "nsenter", "--net="+ext, "ip", "link", "set", "eth0", "up")
	run(t, "nsenter", "--net="+ext, "ip", "route", "add", "default", "via", "10.250.0.1")
	serveIn(t, ext, ":8000", "outside")

	s := newTestService(t)
	ctx := context.Background()
	a, b := containerID(), containerID()
	port := freePort(t)
	apath, err := s.Setup(ctx, req(a, "a", "bridge", map[string][]network.PortBinding{"80/tcp": {{HostPort: itoa(int(port))}}}))
	if err != nil {
		t.Fatal(err)
	}
	serveIn(t, apath, ":80", "from a")
	bpath, err := s.Setup(ctx, req(b, "b", "bridge", nil))
	if err != nil {
		t.Fatal(err)
	}
	gw := s.networks[s.sandboxes[a].Endpoints[0].NetworkID].Gateway.String()
	check := func() {
		t.Helper()
		mustFetch(t, bpath, fmtAddr(s.ContainerIP(a), 80), "from a") // container to container (bridged, br_netfilter)
		mustFetch(t, "", fmtAddr("127.0.0.1", port), "from a")       // host, loopback: proxy
		mustFetch(t, "", fmtAddr(gw, port), "from a")                // host address: DNAT in output
		mustFetch(t, bpath, fmtAddr(gw, port), "from a")             // container to published port
		mustFetch(t, ext, fmtAddr("10.250.0.1", port), "from a")     // outside to published port: DNAT + FORWARD
		mustFetch(t, apath, fmtAddr("10.250.0.2", 8000), "outside")  // container to outside: FORWARD + masquerade
		mustFetch(t, bpath, fmtAddr("10.250.0.2", 8000), "outside")
	}
	check()
	// iptables still reads its tables with berth's rules in them.
	fwd := run(t, "iptables", "-S", "FORWARD")
	gate := ` -m comment --comment "` + s.cfg.Prefix + `:gate" -j ACCEPT`
	if !strings.Contains(fwd, "-A FORWARD -i "+s.cfg.Prefix+"+"+gate) || !strings.Contains(fwd, "-A FORWARD -o "+s.cfg.Prefix+"+"+gate) {
		t.Fatalf("gate rules not seen by iptables:\n%s", fwd)
	}
	if !strings.Contains(fwd, "-A FORWARD -j DOCKER-USER") {
		t.Fatalf("Docker's rules disturbed:\n%s", fwd)
	}
	run(t, "iptables-save")
	// Without the gate Docker's policy drops berth's traffic: the gate is
	// what makes it work.
	if err := s.fw.removeGate(); err != nil {
		t.Fatal(err)
	}
	if _, err := fetch(apath, fmtAddr("10.250.0.2", 8000)); err == nil {
		t.Fatal("traffic flowed without the gate: the test proves nothing")
	}
	s.gateAt = time.Time{}
	c := containerID()
	if _, err := s.Setup(ctx, req(c, "c", "bridge", nil)); err != nil { // re-opens the gate
		t.Fatal(err)
	}
	check()
	// Outside cannot reach a container's address directly.
	if _, err := fetch(ext, fmtAddr(s.ContainerIP(a), 80)); err == nil {
		t.Fatal("container reachable from outside without a published port")
	}
}

// startDockerd runs dockerd with iptables on, in the test's namespace and
// directories, and returns its stopper (SIGTERM to its PID, then wait).
func startDockerd(t *testing.T) func() {
	t.Helper()
	dir, err := os.MkdirTemp("", "berth-dockerd-")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "docker.sock")
	cmd := exec.Command("dockerd",
		"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"-H", "unix://"+sock, "--pidfile", filepath.Join(dir, "pid"),
		"--iptables=true", "--storage-driver=vfs", "--userland-proxy=true")
	logf, _ := os.Create(filepath.Join(dir, "dockerd.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
		_ = os.RemoveAll(dir)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			out, _ := exec.Command("iptables", "-S", "FORWARD").CombinedOutput()
			if strings.Contains(string(out), "DOCKER-USER") {
				break
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
			stop()
			t.Fatalf("dockerd did not start:\n%s", b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return stop
}
