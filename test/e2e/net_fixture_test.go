package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"
)

// The networking tests (issue 4) need a daemon WITH its networking: the
// suite's dockerd runs with --bridge=none --iptables=false, and on a shared
// host berthd's bridge, nftables table and well-known ports (8080) are
// shared with whatever else runs there. So each networking test starts its
// own daemon, berthd or a dockerd with its bridge, iptables and userland
// proxy on, inside a network namespace of its own: the "sandbox", which plays
// the host. Everything either engine makes in the kernel (docker0, berth0,
// veths, iptables chains, the nftables table, proxies' sockets) lives and
// dies with the sandbox; the real host's networking is never touched, and no
// packet leaves the sandbox (it has no route out).
//
//	sandbox netns ("the host")             client netns ("another machine")
//	  lo 127.0.0.1 ── registry forwarder     eth0 10.231.7.2/24
//	  h0 10.231.7.1/24 ───────── veth ──────┘
//	  lo <the host's nameservers>/32: a fake upstream resolver
//	  daemon (berthd | dockerd) + its bridges and containers
//
// The daemon reaches the test registry through a forwarder the test process
// listens with on the sandbox's 127.0.0.1:5000. The CLIs talk to the daemon
// over its unix socket, as usual; the tests' own connections to published
// ports are made from inside the sandbox (or the client namespace).

const (
	sbHostAddr   = "10.231.7.1" // the sandbox's address on its veth to the client namespace
	sbClientAddr = "10.231.7.2"
	// upstreamDomain: names under it are answered by the fake upstream
	// resolver (sbUpstreamIP), so the tests see whether a daemon's DNS
	// forwards a query.
	upstreamDomain = "e2e-upstream.test"
	upstreamIP     = "10.99.0.7"
)

// netSandbox is a network namespace playing the host, and another one
// playing a second machine on its network.
type netSandbox struct {
	t          *testing.T
	name       string // under /run/netns
	path       string
	clientName string
	clientPath string
	resolvers  []string // the host's nameservers, answered inside the sandbox
	dns        *fakeDNS
	dir        string // files bind-mounted into containers; removed last
	toolPath   string
}

func randSuffix() string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// newNetSandbox creates the sandbox and the client namespace; both are
// removed when the test ends.
func newNetSandbox(t *testing.T) *netSandbox {
	t.Helper()
	requireEnv(t)
	for _, bin := range []string{"ip", "nsenter", "nft"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is needed for the networking tests: %v", bin, err)
		}
	}
	sfx := randSuffix()
	sb := &netSandbox{t: t, name: "berth-e2e-" + sfx, clientName: "berth-e2e-" + sfx + "-c"}
	sb.path = "/run/netns/" + sb.name
	dir, err := os.MkdirTemp("", "berth-e2e-sandbox-")
	if err != nil {
		t.Fatal(err)
	}
	sb.dir = dir
	t.Cleanup(func() { os.RemoveAll(dir) })
	sb.clientPath = "/run/netns/" + sb.clientName
	netRun(t, "ip", "netns", "add", sb.name)
	t.Cleanup(func() { delNetns(t, sb.name) })
	netRun(t, "ip", "netns", "add", sb.clientName)
	t.Cleanup(func() { delNetns(t, sb.clientName) })
	netRun(t, "ip", "-n", sb.name, "link", "set", "lo", "up")
	netRun(t, "ip", "-n", sb.clientName, "link", "set", "lo", "up")
	netRun(t, "ip", "-n", sb.name, "link", "add", "h0", "type", "veth", "peer", "name", "eth0", "netns", sb.clientName)
	netRun(t, "ip", "-n", sb.name, "addr", "add", sbHostAddr+"/24", "dev", "h0")
	netRun(t, "ip", "-n", sb.name, "link", "set", "h0", "up")
	netRun(t, "ip", "-n", sb.clientName, "addr", "add", sbClientAddr+"/24", "dev", "eth0")
	netRun(t, "ip", "-n", sb.clientName, "link", "set", "eth0", "up")

	// The registry, as the daemon sees it: 127.0.0.1:5000 in the sandbox.
	sb.forward(plainRegistry, plainRegistry)

	// The host's nameservers, as the daemons read them from
	// /etc/resolv.conf, answered by a fake resolver inside the sandbox.
	sb.resolvers = hostNameservers()
	var addrs []string
	for _, ns := range sb.resolvers {
		if ip, err := netip.ParseAddr(ns); err == nil && ip.Is4() && !ip.IsLoopback() {
			addrs = append(addrs, ns)
		}
	}
	if len(addrs) > 0 {
		for _, a := range addrs {
			netRun(t, "ip", "-n", sb.name, "addr", "add", a+"/32", "dev", "lo")
		}
		sb.dns = startFakeDNS(t, sb.path, addrs)
	}
	return sb
}

func delNetns(t *testing.T, name string) {
	if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
		t.Errorf("cleanup: ip netns del %s: %v: %s", name, err, out)
	}
}

// hostNameservers reads /etc/resolv.conf's nameservers.
func hostNameservers() []string {
	f, err := os.Open("/etc/resolv.conf")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) >= 2 && fs[0] == "nameserver" {
			out = append(out, fs[1])
		}
	}
	return out
}

func netRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// inNetns runs fn on a thread inside the namespace at path. Sockets made
// in fn stay in that namespace and may be used from anywhere. The thread
// is switched back before it is unlocked; if that fails it stays locked and
// dies with its goroutine. (Dying is not enough on its own: a goroutine
// exiting locked to the main thread wedges it for good, and the namespace
// lives as long as the test process.)
func inNetns(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer home.Close()
		f, err := os.Open(path)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", path, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- ferr // stays locked: the thread dies with this goroutine
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// dialIn connects from the namespace at path ("" is the test's own).
func dialIn(ctx context.Context, path, network, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 3 * time.Second, FallbackDelay: -1} // serial: every socket on this thread
	if path == "" {
		return d.DialContext(ctx, network, addr)
	}
	var c net.Conn
	err := inNetns(path, func() error {
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// listenIn listens in the namespace at path.
func listenIn(path, network, addr string) (net.Listener, error) {
	var l net.Listener
	err := inNetns(path, func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}

// forward makes the sandbox's from (e.g. 127.0.0.1:5000) a TCP forwarder
// to the test's own to.
func (sb *netSandbox) forward(from, to string) {
	t := sb.t
	t.Helper()
	l, err := listenIn(sb.path, "tcp4", from)
	if err != nil {
		t.Fatalf("forwarder on %s in the sandbox: %v", from, err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.DialTimeout("tcp", to, 5*time.Second)
				if err != nil {
					return
				}
				defer u.Close()
				done := make(chan struct{}, 2)
				go func() { io.Copy(u, c); u.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
				go func() { io.Copy(c, u); c.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
				<-done
				<-done
			}()
		}
	}()
}

// nsHTTPGet fetches url from the namespace at path ("" is the test's own)
// and returns the status and body.
func nsHTTPGet(path, u string) (int, string, error) {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialIn(ctx, path, network, addr)
		},
		DisableKeepAlives: true,
		Proxy:             nil,
	}
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	resp, err := hc.Get(u)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitHTTP polls url from the namespace at path until the body contains
// want, failing the test after timeout.
func waitHTTP(t *testing.T, path, u, want string, timeout time.Duration) string {
	t.Helper()
	var last string
	ok := netPoll(timeout, func() bool {
		code, body, err := nsHTTPGet(path, u)
		if err != nil {
			last = err.Error()
			return false
		}
		last = fmt.Sprintf("%d %q", code, clip(body))
		return code == 200 && strings.Contains(body, want)
	})
	if !ok {
		t.Fatalf("GET %s from %s: no %q within %s (last: %s)", u, nsLabel(path), want, timeout, last)
	}
	return last
}

// refused checks that a TCP connection to addr from path fails (is refused,
// or finds nothing within the dial timeout) or, if it connects, that
// nothing answers an HTTP request on it.
func nsUnreachable(path, addr string) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := dialIn(ctx, path, "tcp", addr)
	if err != nil {
		return true, err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.0\r\nHost: x\r\n\r\n")
	b, _ := io.ReadAll(c)
	if len(b) == 0 {
		return true, "connected, but the connection closed without an answer"
	}
	return false, fmt.Sprintf("answered %q", clip(string(b)))
}

func nsLabel(path string) string {
	if path == "" {
		return "the test's namespace"
	}
	return filepath.Base(path)
}

// sh runs a command inside the sandbox (nsenter --net) and returns its
// combined output; it fails the test on error.
func (sb *netSandbox) sh(args ...string) string {
	sb.t.Helper()
	out, err := sb.try(args...)
	if err != nil {
		sb.t.Fatalf("in the sandbox: %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (sb *netSandbox) try(args ...string) (string, error) {
	out, err := exec.Command("nsenter", append([]string{"--net=" + sb.path}, args...)...).CombinedOutput()
	return string(out), err
}

// tool builds testdata/nettool (static) into the sandbox's directory and
// returns its path, to be bind-mounted into busybox containers
// (-v <path>:/nettool:ro): the test images' busybox is a static glibc
// build whose wget segfaults and whose ping cannot resolve names.
func (sb *netSandbox) tool() string {
	t := sb.t
	t.Helper()
	if sb.toolPath != "" {
		return sb.toolPath
	}
	p := filepath.Join(sb.dir, "nettool")
	// go test puts its own GOROOT/bin first on the test's PATH: this is
	// the go that runs the suite.
	cmd := exec.Command("go", "build", "-o", p, "./testdata/nettool")
	cmd.Dir = filepath.Join(env.repoRoot, "test", "e2e")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build testdata/nettool: %v\n%s", err, out)
	}
	sb.toolPath = p
	return p
}

// --- a daemon inside the sandbox ---

// netDaemon is a daemon running inside a sandbox.
type netDaemon struct {
	*daemon
	sb *netSandbox
}

// startNetDaemon starts a daemon of kind ("berth" or "docker") inside sb,
// with its networking on (dockerd: bridge docker0, iptables, ip-masq and
// the userland proxy, Docker's defaults), makes sure busybox and
// nginx:alpine are in its store, and removes every container and the daemon
// when the test ends.
func startNetDaemon(t *testing.T, sb *netSandbox, kind string) *netDaemon {
	t.Helper()
	return startNetDaemonConfig(t, sb, kind, "{}")
}

// startNetDaemonConfig is startNetDaemon with config as the daemon's
// daemon.json.
func startNetDaemonConfig(t *testing.T, sb *netSandbox, kind, config string) *netDaemon {
	t.Helper()
	d, err := spawnNetDaemonConfig(sb, kind, "", config)
	if err != nil {
		t.Fatalf("start %s in the sandbox: %v", kind, err)
	}
	nd := &netDaemon{daemon: d, sb: sb}
	t.Cleanup(func() { nd.cleanup(t) })
	if err := d.waitReady(readyTimeout); err != nil {
		t.Fatalf("%s in the sandbox: %v", kind, err)
	}
	t.Logf("%s daemon pid %d in netns %s, socket %s", kind, d.pid(), sb.name, d.sock)
	a := d.api()
	ensureImage(t, a, "busybox:latest")
	ensureImage(t, a, "nginx:alpine")
	return nd
}

// spawnNetDaemon starts the daemon process in the sandbox; dataRoot reuses
// a previous daemon's directory (restart after kill -9).
func spawnNetDaemon(sb *netSandbox, kind, dir string) (*daemon, error) {
	return spawnNetDaemonConfig(sb, kind, dir, "{}")
}

// spawnNetDaemonConfig is spawnNetDaemon writing config as a fresh
// daemon's daemon.json.
func spawnNetDaemonConfig(sb *netSandbox, kind, dir, config string) (*daemon, error) {
	fresh := dir == ""
	if fresh {
		var err error
		if dir, err = os.MkdirTemp("", "berth-e2e-net-"+kind+"-"); err != nil {
			return nil, err
		}
	}
	d := &daemon{
		kind:       kind,
		dir:        dir,
		dataRoot:   filepath.Join(dir, "data"),
		execRoot:   filepath.Join(dir, "exec"),
		sock:       filepath.Join(dir, "api.sock"),
		pidfile:    filepath.Join(dir, "daemon.pid"),
		configFile: filepath.Join(dir, "daemon.json"),
		logPath:    filepath.Join(dir, "daemon.log"),
	}
	if fresh {
		if err := os.WriteFile(d.configFile, []byte(config), 0o644); err != nil {
			d.removeDir()
			return nil, err
		}
	}
	args := []string{
		"--data-root", d.dataRoot, "--exec-root", d.execRoot, "-H", "unix://" + d.sock,
		"--pidfile", d.pidfile, "--config-file", d.configFile, "--registry-mirror", mirrorURL,
	}
	var bin string
	switch kind {
	case "berth":
		bin = env.berthdBin
		args = append(args, "--log-level", "debug")
	case "docker":
		if env.dockerd == "" {
			return nil, errors.New("dockerd is not installed")
		}
		bin = env.dockerd
		ctd, err := d.startContainerd()
		if err != nil {
			d.removeDir()
			return nil, err
		}
		// Docker's networking defaults: docker0, iptables, ip-masq, the
		// userland proxy (all in the sandbox).
		args = append(args, "--containerd", ctd, "--log-level", "info")
	default:
		return nil, fmt.Errorf("unknown daemon kind %q", kind)
	}
	logf, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		d.stop()
		return nil, err
	}
	// nsenter execs the daemon: the PID is the daemon's.
	d.cmd = exec.Command("nsenter", append([]string{"--net=" + sb.path, bin}, args...)...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(dir, "dockercfg"))
	if err := d.cmd.Start(); err != nil {
		logf.Close()
		d.stop()
		return nil, err
	}
	d.exited = make(chan struct{})
	go func() {
		d.waitErr = d.cmd.Wait()
		logf.Close()
		close(d.exited)
	}()
	return d, nil
}

// restart starts the daemon again on the same directories, after the
// test stopped or killed it.
func (nd *netDaemon) restart(t *testing.T) {
	t.Helper()
	if nd.containerd != nil {
		// dockerd's containerd: stopped with it, started again with it.
		nd.daemon.stop()
	}
	d, err := spawnNetDaemon(nd.sb, nd.kind, nd.dir)
	if err != nil {
		t.Fatalf("restart %s: %v", nd.kind, err)
	}
	nd.daemon = d
	if err := d.waitReady(readyTimeout); err != nil {
		t.Fatalf("restart %s: %v", nd.kind, err)
	}
}

// cleanup removes every container (berthd's keep running without it), then
// stops the daemon and removes its directory.
func (nd *netDaemon) cleanup(t *testing.T) {
	if t.Failed() {
		t.Logf("last lines of the sandboxed %s log:\n%s", nd.kind, nd.logTail(40))
	}
	select {
	case <-nd.exited:
	default:
		a := nd.api()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if r, err := a.do(ctx, "GET", "/containers/json?all=1", nil, nil); err == nil && r.Status == 200 {
			var cs []struct{ Id string }
			json.Unmarshal(r.Body, &cs)
			for _, c := range cs {
				if r, err := a.do(ctx, "DELETE", "/containers/"+c.Id+"?force=1&v=1", nil, nil); err != nil || (r.Status != 204 && r.Status != 404) {
					t.Errorf("cleanup: remove container %s: %v %v", c.Id, err, r)
				}
			}
		}
	}
	if t.Failed() && nd.kind == "berth" {
		select {
		case <-nd.exited:
		default:
			// A goroutine dump in the log, for hangs.
			nd.cmd.Process.Signal(syscall.SIGQUIT)
			nd.waitExit(10 * time.Second)
		}
		keep := filepath.Join(os.TempDir(), "berth-e2e-net-"+strings.ReplaceAll(t.Name(), "/", "_")+".log")
		if b, err := os.ReadFile(nd.logPath); err == nil && os.WriteFile(keep, b, 0o644) == nil {
			t.Logf("the sandboxed berthd's whole log (with a goroutine dump) is kept in %s", keep)
		}
	}
	if err := nd.daemon.cleanup(); err != nil {
		t.Errorf("cleanup %s daemon: %v", nd.kind, err)
	}
}

// clis returns the berth CLI and the docker CLI aimed at nd, one subtest
// each.
func (nd *netDaemon) eachCLI(t *testing.T, fn func(t *testing.T, c *CLI)) {
	t.Helper()
	for _, name := range cliNames {
		t.Run(name, func(t *testing.T) { fn(t, cliFor(t, name, nd.daemon)) })
	}
}

// --- containers and networks on a sandboxed daemon ---

// netCtr is the part of a container's inspect the networking tests read.
type netCtr struct {
	ID    string `json:"Id"`
	Name  string `json:"Name"`
	State struct {
		Status  string
		Running bool
		Pid     int
		Error   string
	}
	Config struct {
		Hostname     string
		ExposedPorts map[string]struct{}
	}
	HostConfig struct {
		NetworkMode  string
		PortBindings map[string][]netPortBinding
	}
	NetworkSettings struct {
		Ports       map[string][]netPortBinding
		IPAddress   string
		Gateway     string
		MacAddress  string
		IPPrefixLen int
		SandboxKey  string
		Networks    map[string]*netEndpoint
	}
}

type netPortBinding struct {
	HostIP   string `json:"HostIp"`
	HostPort string `json:"HostPort"`
}

type netEndpoint struct {
	IPAMConfig *struct {
		IPv4Address string
	}
	Aliases     []string
	NetworkID   string
	EndpointID  string
	Gateway     string
	IPAddress   string
	IPPrefixLen int
	MacAddress  string
}

func inspectNetCtr(t *testing.T, a *apiClient, ref string) netCtr {
	t.Helper()
	var c netCtr
	a.call(t, "GET", "/containers/"+ref+"/json", nil, nil).wantStatus(t, 200).decode(t, &c)
	return c
}

// waitNetCtr polls inspect until cond holds.
func waitNetCtr(t *testing.T, a *apiClient, ref, what string, cond func(c netCtr) bool) netCtr {
	t.Helper()
	var c netCtr
	if !netPoll(30*time.Second, func() bool { c = inspectNetCtr(t, a, ref); return cond(c) }) {
		t.Fatalf("container %s: not %s within 30s (state %+v)", ref, what, c.State)
	}
	return c
}

// netJSON is the part of a network's inspect the tests read.
type netJSON struct {
	Name     string
	ID       string `json:"Id"`
	Driver   string
	Scope    string
	Internal bool
	IPAM     struct {
		Driver string
		Config []struct {
			Subnet  string
			Gateway string
		}
	}
	Containers map[string]struct {
		Name        string
		EndpointID  string
		MacAddress  string
		IPv4Address string
	}
	Labels  map[string]string
	Options map[string]string
}

func inspectNet(t *testing.T, a *apiClient, ref string) netJSON {
	t.Helper()
	var n netJSON
	a.call(t, "GET", "/networks/"+ref, nil, nil).wantStatus(t, 200).decode(t, &n)
	return n
}

// netAPICreate creates a container and returns its ID; body is the create
// request.
func netAPICreate(t *testing.T, a *apiClient, name string, body any) string {
	t.Helper()
	b, _ := json.Marshal(body)
	path := "/containers/create"
	if name != "" {
		path += "?name=" + url.QueryEscape(name)
	}
	var out struct{ Id string }
	a.call(t, "POST", path, b, nil).wantStatus(t, 201).decode(t, &out)
	return out.Id
}

// netName returns a fresh name for a container or network.
func netName(tag string) string { return "e2e-" + tag + "-" + randSuffix() }

// netCtrIP is the container's address on network (from inspect).
func netCtrIP(t *testing.T, a *apiClient, ref, network string) string {
	t.Helper()
	c := inspectNetCtr(t, a, ref)
	ep := c.NetworkSettings.Networks[network]
	if ep == nil || ep.IPAddress == "" {
		t.Fatalf("container %s has no address on %s: %+v", ref, network, c.NetworkSettings.Networks)
	}
	return ep.IPAddress
}

// --- host state (for the cleanup tests) ---

// hostState is what a daemon leaves in the sandbox's kernel: links (veths
// by the bridge they are on; berthd keeps one spare veth, on no bridge,
// ready), nftables ruleset, listening sockets, pinned namespaces.
type hostState struct {
	Links   []string
	Spares  int // veths on no bridge (berthd's spare, made ahead)
	Nft     string
	Sockets []string
	Netns   []string
}

func (sb *netSandbox) state(t *testing.T, execRoot string) hostState {
	t.Helper()
	var s hostState
	for _, l := range lines(sb.sh("ip", "-o", "link")) {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		name := strings.TrimSuffix(f[1], ":")
		if i := strings.Index(name, "@"); i >= 0 {
			name = name[:i]
		}
		master := ""
		for i := range f {
			if f[i] == "master" && i+1 < len(f) {
				master = f[i+1]
			}
		}
		switch {
		case strings.HasPrefix(name, "veth") && master == "":
			s.Spares++
		default:
			s.Links = append(s.Links, name+" master="+master)
		}
	}
	sort.Strings(s.Links)
	s.Nft = sb.sh("nft", "list", "ruleset")
	for _, l := range lines(sb.sh("ss", "-Hlntu")) {
		f := strings.Fields(l)
		if len(f) >= 5 {
			s.Sockets = append(s.Sockets, f[0]+" "+f[4])
		}
	}
	sort.Strings(s.Sockets)
	ents, _ := os.ReadDir(filepath.Join(execRoot, "netns"))
	for _, e := range ents {
		s.Netns = append(s.Netns, e.Name())
	}
	return s
}

// diff describes how s differs from before ("" if not at all). At most
// one spare veth is fine.
func (s hostState) diff(before hostState) string {
	var b strings.Builder
	if d := listDiff(before.Links, s.Links); d != "" {
		fmt.Fprintf(&b, "links: %s\n", d)
	}
	if s.Spares > 1 {
		fmt.Fprintf(&b, "%d veths on no bridge (one spare is expected)\n", s.Spares)
	}
	if d := listDiff(before.Sockets, s.Sockets); d != "" {
		fmt.Fprintf(&b, "listening sockets: %s\n", d)
	}
	if d := listDiff(before.Netns, s.Netns); d != "" {
		fmt.Fprintf(&b, "namespaces under the exec-root: %s\n", d)
	}
	if d := listDiff(lines(before.Nft), lines(s.Nft)); d != "" {
		fmt.Fprintf(&b, "nftables ruleset: %s\n", d)
	}
	return b.String()
}

// waitState polls until the sandbox is back to before (the kernel
// destroys namespaces, and the veths in them, asynchronously).
func (sb *netSandbox) waitState(t *testing.T, execRoot string, before hostState, what string) {
	t.Helper()
	var d string
	// The kernel destroys unpinned namespaces, and their veths, in a
	// background worker, one after another: after a burst of containers
	// that takes a while on a loaded machine.
	if netPoll(90*time.Second, func() bool { d = sb.state(t, execRoot).diff(before); return d == "" }) {
		t.Logf("%s: links, nftables ruleset, listening sockets and pinned namespaces as before", what)
		return
	}
	t.Errorf("%s: the host is not as before:\n%s%s", what, d, sb.strayThreads())
}

// strayThreads names the threads of the sandbox's processes (the daemon,
// its shims) that are in another network namespace: a thread left in a
// removed container's namespace keeps it, and its veth, alive.
func (sb *netSandbox) strayThreads() string {
	home, err := os.Readlink(sb.path)
	if err != nil {
		if st, serr := os.Stat(sb.path); serr == nil {
			home = fmt.Sprintf("net:[%d]", st.Sys().(*syscall.Stat_t).Ino)
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	var b strings.Builder
	for _, p := range procs {
		tasks, _ := filepath.Glob(p + "/task/*")
		var in, out []string
		for _, task := range tasks {
			ns, err := os.Readlink(task + "/ns/net")
			if err != nil {
				continue
			}
			if ns == home {
				in = append(in, task)
			} else {
				out = append(out, filepath.Base(task)+" in "+ns)
			}
		}
		if len(in) > 0 && len(out) > 0 {
			comm, _ := os.ReadFile(p + "/comm")
			fmt.Fprintf(&b, "process %s (%s): threads outside the sandbox's namespace: %s\n", filepath.Base(p), strings.TrimSpace(string(comm)), strings.Join(out, ", "))
		}
	}
	return b.String()
}

func listDiff(before, after []string) string {
	count := map[string]int{}
	for _, x := range before {
		count[x]--
	}
	for _, x := range after {
		count[x]++
	}
	var added, gone []string
	for x, n := range count {
		for ; n > 0; n-- {
			added = append(added, x)
		}
		for ; n < 0; n++ {
			gone = append(gone, x)
		}
	}
	if len(added) == 0 && len(gone) == 0 {
		return ""
	}
	sort.Strings(added)
	sort.Strings(gone)
	return fmt.Sprintf("new %q, gone %q", added, gone)
}

// --- a fake upstream resolver ---

// fakeDNS answers A queries for names under upstreamDomain with
// upstreamIP (NXDOMAIN otherwise) and counts the queries per name.
type fakeDNS struct {
	mu      sync.Mutex
	queries map[string]int
}

func startFakeDNS(t *testing.T, nsPath string, addrs []string) *fakeDNS {
	t.Helper()
	f := &fakeDNS{queries: map[string]int{}}
	for _, a := range addrs {
		var pc net.PacketConn
		if err := inNetns(nsPath, func() error {
			var err error
			pc, err = net.ListenPacket("udp4", net.JoinHostPort(a, "53"))
			return err
		}); err != nil {
			t.Fatalf("fake resolver on %s: %v", a, err)
		}
		t.Cleanup(func() { pc.Close() })
		go f.serve(pc)
	}
	return f
}

func (f *fakeDNS) serve(pc net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		var p dnsmessage.Parser
		h, err := p.Start(buf[:n])
		if err != nil {
			continue
		}
		q, err := p.Question()
		if err != nil {
			continue
		}
		name := strings.ToLower(strings.TrimSuffix(q.Name.String(), "."))
		f.mu.Lock()
		f.queries[name]++
		f.mu.Unlock()
		rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
		ours := strings.HasSuffix(name, "."+upstreamDomain)
		if !ours {
			rh.RCode = dnsmessage.RCodeNameError
		}
		b := dnsmessage.NewBuilder(nil, rh)
		b.EnableCompression()
		b.StartQuestions()
		b.Question(q)
		b.StartAnswers()
		if ours && q.Type == dnsmessage.TypeA {
			ip := netip.MustParseAddr(upstreamIP).As4()
			b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}, dnsmessage.AResource{A: ip})
		}
		out, err := b.Finish()
		if err == nil {
			pc.WriteTo(out, from)
		}
	}
}

// count is how many queries for name the resolver got.
func (f *fakeDNS) count(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.queries[strings.ToLower(name)]
}

// netPoll calls fn until it returns true or timeout passes.
func netPoll(timeout time.Duration, fn func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if fn() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rmLater removes the container ref (force) when the test ends.
func (nd *netDaemon) rmLater(t *testing.T, ref string) {
	a := nd.api()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		r, err := a.do(ctx, "DELETE", "/containers/"+ref+"?force=1&v=1", nil, nil)
		if err != nil || (r.Status != 204 && r.Status != 404) {
			t.Errorf("cleanup: remove container %s: %v %v", ref, err, r)
		}
	})
}

// rmNetLater removes the network ref when the test ends (after the
// containers removed by cleanups registered later).
func (nd *netDaemon) rmNetLater(t *testing.T, ref string) {
	a := nd.api()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		r, err := a.do(ctx, "DELETE", "/networks/"+ref, nil, nil)
		if err != nil || (r.Status != 204 && r.Status != 404) {
			t.Errorf("cleanup: remove network %s: %v %v", ref, err, r)
		}
	})
}
