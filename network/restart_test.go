package network

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"golang.org/x/net/dns/dnsmessage"
)

// TestRestartRestoresAndReconciles simulates kill -9 of berthd: the
// service goes away without tearing anything down, a new one starts on
// the same state, restores the running container's proxy and DNS, keeps
// its address, and Reconcile removes the stopped container's leftovers.
func TestRestartRestoresAndReconciles(t *testing.T) {
	s := newTestService(t)
	ctx := context.Background()
	if _, err := s.Create(ctx, CreateRequest{Name: "rnet"}); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	keep, gone, removed := containerID(), containerID(), containerID()
	kpath, err := s.Setup(ctx, req(keep, "keep", "rnet", map[string][]network.PortBinding{"80/tcp": {{HostPort: itoa(int(port))}}}))
	if err != nil {
		t.Fatal(err)
	}
	serveIn(t, kpath, ":80", "still here")
	if _, err := s.Setup(ctx, req(gone, "gone", "rnet", nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Setup(ctx, req(removed, "removed", "bridge", nil)); err != nil {
		t.Fatal(err)
	}
	keepIP := s.ContainerIP(keep)
	// "kill -9": memory state and sockets vanish, the kernel's objects stay.
	_ = s.Close()
	if _, err := fetch("", fmtAddr("127.0.0.1", port)); err == nil {
		t.Fatal("proxy survived Close")
	}

	s2, err := New(Config{Root: s.cfg.Root, ExecRoot: s.cfg.ExecRoot, Prefix: s.cfg.Prefix, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { destroyService(t, s2) })
	mustFetch(t, "", fmtAddr("127.0.0.1", port), "still here")
	if got := s2.ContainerIP(keep); got != keepIP {
		t.Fatalf("address changed across restart: %s -> %s", keepIP, got)
	}
	// DNS restored inside the running container.
	if rc, ips := query(t, kpath, "keep", dnsmessage.TypeA, "udp"); rc != dnsmessage.RCodeSuccess || len(ips) != 1 || ips[0].String() != keepIP {
		t.Fatalf("dns after restart: %v %v", rc, ips)
	}
	// Its address is not handed out again.
	n, _ := s2.find("rnet")
	if err := s2.pools[n.ID].request(netip.MustParseAddr(keepIP), "someone"); !cerrdefs.IsConflict(err) {
		t.Fatalf("address of a running container given again: %v", err)
	}
	// A crash mid-setup left a pinned namespace nobody owns.
	orphan := containerID()
	h, err := newNetNSHandle()
	if err != nil {
		t.Fatal(err)
	}
	if err := pinNetNS(h, s2.nsPath(orphan)); err != nil {
		t.Fatal(err)
	}
	h.Close()

	if err := s2.Reconcile(ctx, map[string]bool{keep: true, gone: false}); err != nil {
		t.Fatal(err)
	}
	mustFetch(t, "", fmtAddr("127.0.0.1", port), "still here")
	ents, _ := os.ReadDir(netnsDir(s2.cfg.ExecRoot))
	if len(ents) != 1 || ents[0].Name() != keep {
		t.Fatalf("netns left: %v", ents)
	}
	if _, err := os.Stat(s2.sbPath(removed)); !os.IsNotExist(err) {
		t.Fatal("record of a removed container kept")
	}
	if s2.sandboxes[gone] == nil || s2.sandboxes[gone].NetNS != "" {
		t.Fatal("stopped container must keep its record, torn down")
	}
	if owners, _ := s2.fw.portOwners(); len(owners) != 1 || owners[keep] != 1 {
		t.Fatalf("port rules: %v", owners)
	}
}

func TestConnectDisconnectRunning(t *testing.T) {
	s := newTestService(t)
	ctx := context.Background()
	if _, err := s.Create(ctx, CreateRequest{Name: "back"}); err != nil {
		t.Fatal(err)
	}
	web, db := containerID(), containerID()
	infos := map[string]ContainerInfo{
		"web": {ID: web, Name: "web", Running: true, NetworkMode: "bridge"},
		"db":  {ID: db, Name: "db", Running: true, NetworkMode: "back"},
	}
	s.lookup = func(ctx context.Context, ref string) (ContainerInfo, error) {
		if i, ok := infos[ref]; ok {
			return i, nil
		}
		return ContainerInfo{}, cerrdefs.ErrNotFound.WithMessage("No such container: " + ref)
	}
	wpath, err := s.Setup(ctx, req(web, "web", "bridge", nil))
	if err != nil {
		t.Fatal(err)
	}
	dpath, err := s.Setup(ctx, req(db, "db", "back", nil))
	if err != nil {
		t.Fatal(err)
	}
	serveIn(t, dpath, ":6379", "PONG")
	dbIP := s.ContainerIP(db)
	if _, err := fetch(wpath, fmtAddr(dbIP, 6379)); err == nil {
		t.Fatal("reached db before connect")
	}
	ip := netip.MustParseAddr(strings.TrimSuffix(dbIP, "2") + "77")
	err = s.Connect(ctx, "back", "web", &network.EndpointSettings{Aliases: []string{"frontend"}, IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: ip}})
	if err != nil {
		t.Fatal(err)
	}
	out := run(t, "nsenter", "--net="+wpath, "ip", "-o", "addr", "show", "eth1")
	if !strings.Contains(out, ip.String()+"/") {
		t.Fatalf("eth1: %s", out)
	}
	mustFetch(t, wpath, fmtAddr(dbIP, 6379), "PONG")
	if rc, ips := query(t, dpath, "frontend", dnsmessage.TypeA, "udp"); rc != dnsmessage.RCodeSuccess || len(ips) != 1 || ips[0] != ip {
		t.Fatalf("alias: %v %v", rc, ips)
	}
	if rc := s.ResolvConf(web); len(rc) != 1 {
		t.Fatalf("resolv.conf after connect: %v", rc)
	}
	if err := s.Connect(ctx, "back", "web", nil); err == nil || !strings.Contains(err.Error(), "already exists in network back") {
		t.Fatal(err)
	}
	if err := s.Connect(ctx, "nope", "web", nil); !cerrdefs.IsNotFound(err) {
		t.Fatal(err)
	}
	if err := s.Connect(ctx, "back", "ghost", nil); !cerrdefs.IsNotFound(err) {
		t.Fatal(err)
	}
	if err := s.Disconnect(ctx, "back", "web", false); err != nil {
		t.Fatal(err)
	}
	if _, err := fetch(wpath, fmtAddr(dbIP, 6379)); err == nil {
		t.Fatal("reached db after disconnect")
	}
	if strings.Contains(run(t, "nsenter", "--net="+wpath, "ip", "-o", "link"), "eth1") {
		t.Fatal("eth1 left after disconnect")
	}
	if !strings.Contains(run(t, "nsenter", "--net="+wpath, "ip", "route"), "default via") {
		t.Fatal("default route lost")
	}
	// Stopped container: connect is remembered for the next start.
	if err := s.Teardown(ctx, web); err != nil {
		t.Fatal(err)
	}
	if err := s.Connect(ctx, "back", "web", nil); err != nil {
		t.Fatal(err)
	}
	wpath, err = s.Setup(ctx, req(web, "web", "bridge", nil))
	if err != nil {
		t.Fatal(err)
	}
	mustFetch(t, wpath, fmtAddr(dbIP, 6379), "PONG")
}
