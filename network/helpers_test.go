package network

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"golang.org/x/sys/unix"
)

// needRoot skips tests that change the kernel's networking unless they
// run as root with network namespaces available.
func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		t.Skip("no network namespaces")
	}
}

func randHex(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// newTestService starts a service with its own prefix (table, bridges),
// directories and cleanup that removes everything it made.
func newTestService(t testing.TB) *Service {
	t.Helper()
	needRoot(t)
	root, exec := t.TempDir(), t.TempDir()
	s, err := New(Config{Root: root, ExecRoot: exec, Prefix: "bt" + randHex(4), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { destroyService(t, s) })
	return s
}

// destroyService removes everything s made in the kernel.
func destroyService(t testing.TB, s *Service) {
	ctx := context.Background()
	s.mu.RLock()
	var ids []string
	for id := range s.sandboxes {
		ids = append(ids, id)
	}
	var nets []*netRecord
	for _, n := range s.networks {
		nets = append(nets, n)
	}
	s.mu.RUnlock()
	for _, id := range ids {
		if err := s.Release(ctx, id); err != nil {
			t.Errorf("release %s: %v", id, err)
		}
	}
	for _, n := range nets {
		if n.Bridge != "" {
			_ = deleteBridge(n.Bridge)
		}
	}
	_ = s.Close()
	if err := s.fw.destroy(); err != nil {
		t.Errorf("destroy table: %v", err)
	}
	if err := s.fw.removeGate(); err != nil {
		t.Errorf("remove gate: %v", err)
	}
	_ = unix.Unmount(netnsDir(s.cfg.ExecRoot), unix.MNT_DETACH)
}

func containerID() string { return randHex(64) }

// req builds a Request like the container service's.
func req(id, name string, mode string, ports map[string][]network.PortBinding) Request {
	hc := &container.HostConfig{NetworkMode: container.NetworkMode(mode), PortBindings: network.PortMap{}}
	cfg := &container.Config{ExposedPorts: network.PortSet{}}
	for p, bs := range ports {
		pp := network.MustParsePort(p)
		hc.PortBindings[pp] = bs
		cfg.ExposedPorts[pp] = struct{}{}
	}
	return Request{ContainerID: id, Name: name, Hostname: id[:12], Config: cfg, HostConfig: hc}
}

// serveIn runs a TCP server inside the namespace at path answering every
// connection with reply then closing; it stops with the test.
func serveIn(t testing.TB, path, addr, reply string) {
	t.Helper()
	var ln net.Listener
	if err := inNetNS(path, func() error {
		var err error
		ln, err = net.Listen("tcp4", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = c.Write([]byte(reply))
			}()
		}
	}()
}

// serveUDPIn runs a UDP echo server inside the namespace at path.
func serveUDPIn(t testing.TB, path, addr string) {
	t.Helper()
	var pc net.PacketConn
	if err := inNetNS(path, func() error {
		var err error
		pc, err = net.ListenPacket("udp4", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(append([]byte("echo:"), buf[:n]...), from)
		}
	}()
}

// fetch connects to addr (from the namespace at path, or the host if
// path is "") and returns what it reads.
func fetch(path, addr string) (string, error) {
	var out string
	do := func() error {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		b, err := io.ReadAll(bufio.NewReader(c))
		out = string(b)
		return err
	}
	if path == "" {
		return out, do()
	}
	return out, inNetNS(path, do)
}

func mustFetch(t testing.TB, path, addr, want string) {
	t.Helper()
	got, err := fetch(path, addr)
	if err != nil {
		t.Fatalf("fetch %s from %q: %v", addr, path, err)
	}
	if got != want {
		t.Fatalf("fetch %s from %q = %q, want %q", addr, path, got, want)
	}
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func hostPort(t testing.TB, s *Service, id string, proto string, ctr uint16, v6 bool) uint16 {
	t.Helper()
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, b := range s.sandboxes[id].Ports {
		if b.Proto == proto && b.CtrPort == ctr && b.HostIP.Is6() == v6 {
			return b.HostPort
		}
	}
	t.Fatalf("no %s binding for %d", proto, ctr)
	return 0
}

func fmtAddr(ip string, port uint16) string { return net.JoinHostPort(ip, fmt.Sprint(port)) }

func randByte() byte {
	b := make([]byte, 1)
	_, _ = rand.Read(b)
	return b[0]
}

func canBind(p uint16) bool {
	l, err := net.Listen("tcp", fmt.Sprintf(":%d", p))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

type netipAddr = netip.Addr

func mustParseAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// ourLinks lists s's bridges and the veths on them.
func ourLinks(t testing.TB, s *Service) string {
	var keep []string
	for _, l := range strings.Split(run(t, "ip", "-o", "link"), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		if strings.HasPrefix(f[1], s.cfg.Prefix) || strings.Contains(l, " master "+s.cfg.Prefix) {
			keep = append(keep, f[1])
		}
	}
	return strings.Join(keep, " ")
}

// eventually polls cond for up to 5 s: the kernel destroys namespaces,
// and the veths in them, asynchronously.
func eventually(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	var last string
	for i := 0; i < 100; i++ {
		ok, msg := cond()
		if ok {
			return
		}
		last = msg
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: %s", what, last)
}
