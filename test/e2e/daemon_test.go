package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	readyTimeout = 60 * time.Second // daemon start until /_ping answers
	stopTimeout  = 30 * time.Second // SIGTERM until exit
)

// daemonOpts says how to start a daemon.
type daemonOpts struct {
	// mirror passes --registry-mirror http://127.0.0.1:5000.
	mirror bool
	// dataRoot, when set, is used instead of a fresh directory (and is not
	// removed by cleanup).
	dataRoot string
	// execRoot, when set, is used instead of a fresh directory (a restart
	// finds its containers' shims and runtime state there).
	execRoot string
	// config is the content of the --config-file (default "{}"), so the
	// machine's /etc/docker/daemon.json or /etc/berth/daemon.json is never read.
	config string
	// args are extra daemon flags.
	args []string
}

// daemon is a berthd or dockerd the suite started, with all its state in
// one temporary directory.
type daemon struct {
	kind       string // "berth" or "docker"
	dir        string
	dataRoot   string
	execRoot   string
	sock       string
	pidfile    string
	configFile string
	logPath    string

	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error

	containerd       *exec.Cmd // dockerd only: its own containerd
	containerdExited chan struct{}
}

// startDaemon starts a daemon of the given kind and waits until it answers
// /_ping.
func startDaemon(kind string, o daemonOpts) (*daemon, error) {
	d, err := spawnDaemon(kind, o)
	if err != nil {
		return nil, err
	}
	if err := d.waitReady(readyTimeout); err != nil {
		d.cleanup()
		return nil, err
	}
	return d, nil
}

// startTestDaemon starts a daemon for one test and stops and removes it
// when the test ends.
func startTestDaemon(t *testing.T, kind string, o daemonOpts) *daemon {
	t.Helper()
	d, err := startDaemon(kind, o)
	if err != nil {
		t.Fatalf("start %s daemon: %v", kind, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last lines of the %s daemon log:\n%s", kind, d.logTail(30))
		}
		if err := d.cleanup(); err != nil {
			t.Errorf("cleanup %s daemon: %v", kind, err)
		}
	})
	return d
}

// spawnDaemon starts the daemon process without waiting for it.
func spawnDaemon(kind string, o daemonOpts) (*daemon, error) {
	dir, err := os.MkdirTemp("", "berth-e2e-"+kind+"-")
	if err != nil {
		return nil, err
	}
	d := &daemon{
		kind:       kind,
		dir:        dir,
		dataRoot:   o.dataRoot,
		execRoot:   filepath.Join(dir, "exec"),
		sock:       filepath.Join(dir, "api.sock"),
		pidfile:    filepath.Join(dir, "daemon.pid"),
		configFile: filepath.Join(dir, "daemon.json"),
		logPath:    filepath.Join(dir, "daemon.log"),
	}
	if d.dataRoot == "" {
		d.dataRoot = filepath.Join(dir, "data")
	}
	if o.execRoot != "" {
		d.execRoot = o.execRoot
	}
	cfg := o.config
	if cfg == "" {
		cfg = "{}"
	}
	if err := os.WriteFile(d.configFile, []byte(cfg), 0o644); err != nil {
		d.removeDir()
		return nil, err
	}
	args := []string{
		"--data-root", d.dataRoot,
		"--exec-root", d.execRoot,
		"-H", "unix://" + d.sock,
		"--pidfile", d.pidfile,
		"--config-file", d.configFile,
	}
	if o.mirror {
		args = append(args, "--registry-mirror", mirrorURL)
	}
	var bin string
	switch kind {
	case "berth":
		bin = env.berthdBin
		args = append(args, "--log-level", "debug")
	case "docker":
		if env.dockerd == "" {
			d.removeDir()
			return nil, errors.New("dockerd is not installed")
		}
		bin = env.dockerd
		ctdSock, err := d.startContainerd()
		if err != nil {
			d.removeDir()
			return nil, err
		}
		// Side by side with other daemons: its own containerd, no bridge,
		// no iptables rules.
		args = append(args, "--containerd", ctdSock,
			"--bridge=none", "--iptables=false", "--ip-masq=false", "--log-level", "info")
	default:
		d.removeDir()
		return nil, fmt.Errorf("unknown daemon kind %q", kind)
	}
	args = append(args, o.args...)
	logf, err := os.Create(d.logPath)
	if err != nil {
		d.cleanup()
		return nil, err
	}
	d.cmd = exec.Command(bin, args...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(dir, "dockercfg"))
	if err := d.cmd.Start(); err != nil {
		logf.Close()
		d.cleanup()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	d.exited = make(chan struct{})
	go func() {
		d.waitErr = d.cmd.Wait()
		logf.Close()
		close(d.exited)
	}()
	return d, nil
}

// startContainerd starts the containerd dockerd talks to, with every path
// under d.dir (20.10 would otherwise pick up a system containerd when one
// runs on /run/containerd/containerd.sock). The CRI plugin is off.
func (d *daemon) startContainerd() (string, error) {
	sock := filepath.Join(d.dir, "ctd.sock")
	conf := filepath.Join(d.dir, "containerd.toml")
	toml := fmt.Sprintf("version = 2\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = %q\n[debug]\n  address = \"\"\n[metrics]\n  address = \"\"\n", sock)
	if err := os.WriteFile(conf, []byte(toml), 0o644); err != nil {
		return "", err
	}
	logf, err := os.Create(filepath.Join(d.dir, "containerd.log"))
	if err != nil {
		return "", err
	}
	d.containerd = exec.Command("containerd", "--config", conf,
		"--root", filepath.Join(d.dir, "containerd-root"), "--state", filepath.Join(d.dir, "containerd-state"))
	d.containerd.Stdout, d.containerd.Stderr = logf, logf
	if err := d.containerd.Start(); err != nil {
		logf.Close()
		d.containerd = nil
		return "", fmt.Errorf("start containerd: %w", err)
	}
	d.containerdExited = make(chan struct{})
	go func() {
		d.containerd.Wait()
		logf.Close()
		close(d.containerdExited)
	}()
	deadline := time.Now().Add(readyTimeout)
	for {
		if _, err := os.Stat(sock); err == nil {
			return sock, nil
		}
		select {
		case <-d.containerdExited:
			b, _ := os.ReadFile(filepath.Join(d.dir, "containerd.log"))
			return "", fmt.Errorf("containerd exited: %s", tail(string(b), 20))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("containerd did not create %s within %s", sock, readyTimeout)
		}
	}
}

func (d *daemon) pid() int {
	if d.cmd == nil || d.cmd.Process == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

// waitReady polls /_ping until it answers 200, the process exits, or the
// timeout passes.
func (d *daemon) waitReady(timeout time.Duration) error {
	api := newAPI(d.sock)
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		r, err := api.do(ctx, "GET", "/_ping", nil, nil)
		cancel()
		if err == nil && r.Status == 200 {
			return nil
		}
		select {
		case <-d.exited:
			return fmt.Errorf("%s exited before answering /_ping (%v):\n%s", d.kind, d.waitErr, d.logTail(30))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer /_ping on %s within %s (last error: %v):\n%s", d.kind, d.sock, timeout, err, d.logTail(30))
		}
	}
}

// waitExit waits at most timeout for the daemon process to exit.
func (d *daemon) waitExit(timeout time.Duration) bool {
	select {
	case <-d.exited:
		return true
	case <-time.After(timeout):
		return false
	}
}

// exitCode is the daemon's exit status once it has exited.
func (d *daemon) exitCode() int {
	var ee *exec.ExitError
	if errors.As(d.waitErr, &ee) {
		return ee.ExitCode()
	}
	if d.waitErr != nil {
		return -1
	}
	return 0
}

// stop sends SIGTERM and waits; SIGKILL if it does not exit in time.
func (d *daemon) stop() error {
	var err error
	if d.cmd != nil && d.exited != nil {
		select {
		case <-d.exited:
		default:
			_ = d.cmd.Process.Signal(syscall.SIGTERM)
			if !d.waitExit(stopTimeout) {
				err = fmt.Errorf("%s (pid %d) ignored SIGTERM for %s; killed", d.kind, d.pid(), stopTimeout)
				_ = d.cmd.Process.Kill()
				<-d.exited
			}
		}
	}
	if d.containerd != nil {
		select {
		case <-d.containerdExited:
		default:
			_ = d.containerd.Process.Signal(syscall.SIGTERM)
			select {
			case <-d.containerdExited:
			case <-time.After(stopTimeout):
				_ = d.containerd.Process.Kill()
				<-d.containerdExited
			}
		}
	}
	return err
}

// kill9 kills the daemon with SIGKILL and waits for it.
func (d *daemon) kill9() {
	_ = d.cmd.Process.Kill()
	<-d.exited
}

// cleanup stops the daemon, unmounts whatever is left under its
// directories and removes them (unless -keep).
func (d *daemon) cleanup() error {
	err := d.stop()
	if ld := os.Getenv("BERTH_E2E_LOGDIR"); ld != "" {
		if b, rerr := os.ReadFile(d.logPath); rerr == nil {
			_ = os.WriteFile(filepath.Join(ld, filepath.Base(d.dir)+".log"), b, 0o644)
		}
	}
	if *flagKeep {
		fmt.Fprintf(os.Stderr, "e2e: kept %s daemon directory %s\n", d.kind, d.dir)
		return err
	}
	// A shared data root (daemonOpts.dataRoot) lives in its owner's
	// directory and goes with it.
	return errors.Join(err, d.removeDir())
}

func (d *daemon) removeDir() error {
	if err := unmountUnder(d.dir); err != nil {
		return err
	}
	return os.RemoveAll(d.dir)
}

// restart starts a new daemon process on the same data and exec roots
// (for crash tests). The caller has stopped or killed the old one.
func (d *daemon) restart(o daemonOpts) (*daemon, error) {
	o.dataRoot = d.dataRoot
	o.execRoot = d.execRoot
	return startDaemon(d.kind, o)
}

// restartT is restart for a test: the test fails if the daemon does not
// come back, and the new daemon is cleaned up when the test ends, with the
// last lines of its log if the test failed. Cleanups the caller registers
// after it run first (the restarted daemon is still up for them).
func (d *daemon) restartT(t *testing.T, o daemonOpts) *daemon {
	t.Helper()
	d2, err := d.restart(o)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last lines of the restarted %s daemon's log:\n%s", d2.kind, d2.logTail(30))
		}
		if err := d2.cleanup(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return d2
}

func (d *daemon) logTail(n int) string {
	b, err := os.ReadFile(d.logPath)
	if err != nil {
		return err.Error()
	}
	return tail(string(b), n)
}

func (d *daemon) api() *apiClient { return newAPI(d.sock) }

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// unmountUnder lazily unmounts every mount point at or below dir, deepest
// first.
func unmountUnder(dir string) error {
	dir = filepath.Clean(dir)
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		p := unescapeMountPath(fields[4])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			points = append(points, p)
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	var errs []error
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// unescapeMountPath decodes mountinfo's octal escapes (\040 for a space).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
