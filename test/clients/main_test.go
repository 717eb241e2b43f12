// Package clients is berth's real-client tier: Compose v5 and Debian's
// docker-compose 1.29, testcontainers-go, dockerode and testcontainers-node,
// and Debian's python3-docker each drive a scenario against a daemon, and
// the same assertions hold on berthd and on Debian's dockerd.
//
// Run it with `make test-clients` (which installs the clients first, see
// hack/clients-deps.sh), or `go test ./... -args -target=berth|docker` in
// this directory as root. Each run lives in a network namespace of its own
// (the "sandbox"): the daemon, its bridges, iptables or nftables rules and
// published ports, and every client process. Nothing of the host's network
// is touched; the daemon reaches the test registry (the docker.io mirror on
// 127.0.0.1:5000) through a forwarder this process runs across the
// namespace boundary.
package clients

import (
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

var (
	flagTarget = flag.String("target", "", `daemon under test: "berth" or "docker"; default $BERTH_CLIENTS_TARGET`)
	flagQuick  = flag.Bool("quick", false, "run the quick part only (what `make test` runs)")
)

const (
	registryAddr = "127.0.0.1:5000" // the plain test registry, docker.io mirror
	innerEnv     = "BERTH_CLIENTS_INNER"
	fwdEnv       = "BERTH_CLIENTS_REGISTRY_SOCK"
)

// env is what every test sees.
var env struct {
	target   string
	repoRoot string
	cache    string // BERTH_TEST_CACHE/clients: the installed clients
	d        *daemon
	skip     string
}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	env.target = *flagTarget
	if env.target == "" {
		env.target = os.Getenv("BERTH_CLIENTS_TARGET")
	}
	_, file, _, _ := runtime.Caller(0)
	env.repoRoot = filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	cache := os.Getenv("BERTH_TEST_CACHE")
	if cache == "" {
		cache = "/var/cache/berth-test"
	}
	env.cache = filepath.Join(cache, "clients")
	switch {
	case env.target == "":
		env.skip = "no target: run `make test-clients` or `go test ./... -args -target=berth|docker`"
	case env.target != "berth" && env.target != "docker":
		fmt.Fprintf(os.Stderr, "clients: -target must be berth or docker, not %q\n", env.target)
		return 2
	case os.Geteuid() != 0:
		env.skip = "the client tier needs root (it runs daemons in a network namespace)"
	}
	if env.skip != "" {
		return m.Run()
	}
	if os.Getenv(innerEnv) == "" {
		return outer()
	}
	return inner(m)
}

// outer makes the sandbox and runs this test binary again inside it.
func outer() int {
	ns := "berth-clients-" + randHex(4)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "clients: ip netns add: %v: %s\n", err, out)
		return 1
	}
	defer exec.Command("ip", "netns", "delete", ns).Run()
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "clients: lo up: %v: %s\n", err, out)
		return 1
	}
	dir, err := os.MkdirTemp("", "berth-clients-fwd-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "clients:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "registry.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		fmt.Fprintln(os.Stderr, "clients:", err)
		return 1
	}
	defer l.Close()
	go forward(l, func() (net.Conn, error) { return net.DialTimeout("tcp", registryAddr, 5*time.Second) })
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "clients:", err)
		return 1
	}
	// nsenter --net, not `ip netns exec`: that one also makes a mount
	// namespace with a fresh /sys, where the cgroup mounts are gone.
	cmd := exec.Command("nsenter", append([]string{"--net=/run/netns/" + ns, "--", self}, os.Args[1:]...)...)
	cmd.Env = append(os.Environ(), innerEnv+"=1", fwdEnv+"="+sock, "BERTH_CLIENTS_TARGET="+env.target)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "clients:", err)
		return 1
	}
	return 0
}

// inner runs in the sandbox: the registry forwarder, the daemon, the tests.
func inner(m *testing.M) int {
	if os.Getenv("BERTH_CLIENTS_RYUK_CHILD") != "" {
		// A child of TestTestcontainersRyuk: the daemon is its parent's.
		env.d = &daemon{kind: env.target, sock: strings.TrimPrefix(os.Getenv("DOCKER_HOST"), "unix://")}
		return m.Run()
	}
	l, err := net.Listen("tcp", registryAddr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "clients: registry forwarder:", err)
		return 1
	}
	defer l.Close()
	sock := os.Getenv(fwdEnv)
	go forward(l, func() (net.Conn, error) { return net.DialTimeout("unix", sock, 5*time.Second) })

	start := time.Now()
	d, err := startDaemon(env.target)
	if err != nil {
		fmt.Fprintf(os.Stderr, "clients: start %s: %v\n", env.target, err)
		return 1
	}
	env.d = d
	// testcontainers-go (in this process) and every client find it here.
	os.Setenv("DOCKER_HOST", d.host())
	fmt.Fprintf(os.Stderr, "clients: target %s ready on %s in %s\n", env.target, d.sock, time.Since(start).Round(time.Millisecond))
	code := 1
	if err := prepareImages(d); err != nil {
		fmt.Fprintln(os.Stderr, "clients: images:", err)
	} else {
		code = m.Run()
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "clients: last lines of the %s daemon log:\n%s\n", env.target, d.logTail(40))
	}
	if err := d.stop(); err != nil {
		fmt.Fprintln(os.Stderr, "clients: stop daemon:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// forward copies connections accepted on l to what dial opens.
func forward(l net.Listener, dial func() (net.Conn, error)) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			up, err := dial()
			if err != nil {
				return
			}
			defer up.Close()
			done := make(chan struct{}, 2)
			go func() { io.Copy(up, c); done <- struct{}{} }()
			go func() { io.Copy(c, up); done <- struct{}{} }()
			<-done
		}()
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// requireEnv skips when the tier is not set up and returns the daemon.
func requireEnv(t *testing.T) *daemon {
	t.Helper()
	if env.skip != "" {
		t.Skip(env.skip)
	}
	return env.d
}

// slow marks a scenario that `make test` leaves to `make test-clients`.
func slow(t *testing.T) {
	t.Helper()
	if *flagQuick {
		t.Skip("not in the quick part: `make test-clients` runs it")
	}
}

// tool returns the path of an installed client; a missing one fails the
// test: `make test-clients` installs every one of them.
func tool(t *testing.T, path, what string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s is not installed at %s: run hack/clients-deps.sh (make test-clients does)", what, path)
	}
	return path
}
