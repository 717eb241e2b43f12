package e2e

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

var (
	flagTarget = flag.String("target", "", `daemon under test: "berth" (bin/berthd) or "docker" (Debian's dockerd); default $BERTH_E2E_TARGET`)
	flagKeep   = flag.Bool("keep", false, "keep the daemons' directories and logs after the run")
)

// The test registries (test/registry/start.sh, `make registries`).
const (
	mirrorURL     = "http://127.0.0.1:5000"
	plainRegistry = "127.0.0.1:5000"
	authRegistry  = "127.0.0.1:5001"
	authUser      = "printfchamp"
	authPassword  = "secret123"
)

// suite is the state TestMain sets up for every test.
type suite struct {
	target    string // "berth" or "docker"
	repoRoot  string
	berthBin  string // bin/berth
	berthdBin string // bin/berthd
	dockerBin string // the official docker CLI
	dockerd   string // Debian's dockerd
	d         *daemon
	skip      string // when set, every test skips with this reason
}

var env suite

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	env.target = *flagTarget
	if env.target == "" {
		env.target = os.Getenv("BERTH_E2E_TARGET")
	}
	switch {
	case env.target == "":
		env.skip = "no target: run `make e2e` or `go test ./test/e2e/ -args -target=berth|docker`"
	case os.Geteuid() != 0:
		env.skip = "the e2e suite needs root (it runs daemons, mounts and registries)"
	}
	if env.skip != "" {
		return m.Run() // every test skips
	}
	if env.target != "berth" && env.target != "docker" {
		fmt.Fprintf(os.Stderr, "e2e: -target must be berth or docker, not %q\n", env.target)
		return 2
	}
	if err := findTools(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if err := checkRegistries(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: the test registries are not ready: %v\n  run `make registries` first (test/registry/start.sh)\n", err)
		return 1
	}
	start := time.Now()
	d, err := startDaemon(env.target, daemonOpts{mirror: true})
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: cannot start the %s daemon: %v\n", env.target, err)
		return 1
	}
	env.d = d
	fmt.Fprintf(os.Stderr, "e2e: target %s: daemon pid %d on %s ready in %s\n", env.target, d.pid(), d.sock, time.Since(start).Round(time.Millisecond))
	code := m.Run()
	if left := suiteLeftovers(d); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "e2e: the suite left things behind on the %s daemon:\n  %s\n", env.target, strings.Join(left, "\n  "))
		code = 1
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "e2e: last lines of the %s daemon log (%s):\n%s\n", env.target, d.logPath, d.logTail(40))
	}
	if err := d.cleanup(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: cleanup:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// findTools locates the binaries the suite runs.
func findTools() error {
	_, file, _, _ := runtime.Caller(0)
	env.repoRoot = filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	env.berthBin = filepath.Join(env.repoRoot, "bin", "berth")
	env.berthdBin = filepath.Join(env.repoRoot, "bin", "berthd")
	if env.target == "berth" {
		if _, err := os.Stat(env.berthdBin); err != nil {
			return fmt.Errorf("%s is missing: run `make build` first", env.berthdBin)
		}
	}
	if _, err := os.Stat(env.berthBin); err != nil {
		return fmt.Errorf("%s is missing: run `make build` first (the berth CLI runs against both targets)", env.berthBin)
	}
	for _, p := range []string{"/usr/local/bin/docker", "/usr/bin/docker"} {
		if _, err := os.Stat(p); err == nil {
			env.dockerBin = p
			break
		}
	}
	if env.dockerBin == "" {
		return fmt.Errorf("the docker CLI is missing (/usr/local/bin/docker or /usr/bin/docker)")
	}
	if p, err := exec.LookPath("dockerd"); err == nil {
		env.dockerd = p
	} else if env.target == "docker" {
		return fmt.Errorf("dockerd is missing: apt-get install docker.io (make deps)")
	}
	return nil
}

// checkRegistries makes sure both test registries answer and hold the
// images the suite pulls.
func checkRegistries() error {
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get("http://" + plainRegistry + "/v2/")
	if err != nil {
		return fmt.Errorf("plain registry %s: %v", plainRegistry, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("plain registry %s: GET /v2/ answered %s", plainRegistry, resp.Status)
	}
	resp, err = hc.Get("http://" + authRegistry + "/v2/")
	if err != nil {
		return fmt.Errorf("auth registry %s: %v", authRegistry, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		return fmt.Errorf("auth registry %s: GET /v2/ without credentials answered %s, want 401", authRegistry, resp.Status)
	}
	for _, ref := range []string{"library/busybox:latest", "library/busybox:multi", "library/busybox:zstd", "library/busybox:layers",
		"library/alpine:3.18", "library/nginx:alpine", "library/debian:bookworm", "bench/big:latest"} {
		repo, tag, _ := strings.Cut(ref, ":")
		if _, _, err := headManifest(plainRegistry, repo, tag, ""); err != nil {
			return fmt.Errorf("%s/%s: %v", plainRegistry, ref, err)
		}
	}
	if _, _, err := headManifest(authRegistry, "printfchamp/busybox", "latest", authUser+":"+authPassword); err != nil {
		return fmt.Errorf("%s/printfchamp/busybox:latest: %v", authRegistry, err)
	}
	return nil
}

// requireEnv skips the test when the suite is not set up (no target, not
// root) and returns the daemon under test.
func requireEnv(t *testing.T) *daemon {
	t.Helper()
	if env.skip != "" {
		t.Skip(env.skip)
	}
	return env.d
}

// onlyBerth marks an assertion on behaviour where berth deliberately
// differs from (does better than) Docker: it skips the rest of the test
// when the target is dockerd. why says what Docker does instead.
func onlyBerth(t *testing.T, why string) {
	t.Helper()
	if env.target != "berth" {
		t.Skipf("berth only: %s", why)
	}
}
