package clients

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// daemon is the berthd or dockerd under test, inside the sandbox, with
// all its state in one temporary directory.
type daemon struct {
	kind, dir, sock, logPath string
	cmd, containerd          *exec.Cmd
	exited, ctdExited        chan struct{}
}

// startDaemon starts a daemon of kind with its networking on (it is alone
// in the sandbox) and the test registry as its docker.io mirror.
func startDaemon(kind string) (*daemon, error) {
	dir, err := os.MkdirTemp("", "berth-clients-"+kind+"-")
	if err != nil {
		return nil, err
	}
	d := &daemon{kind: kind, dir: dir, sock: filepath.Join(dir, "api.sock"), logPath: filepath.Join(dir, "daemon.log")}
	cfg := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(cfg, []byte("{}"), 0o644); err != nil {
		return nil, err
	}
	args := []string{
		"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"-H", "unix://" + d.sock, "--pidfile", filepath.Join(dir, "daemon.pid"), "--config-file", cfg,
		"--registry-mirror", "http://" + registryAddr,
	}
	var bin string
	switch kind {
	case "berth":
		bin = filepath.Join(env.repoRoot, "bin", "berthd")
		if _, err := os.Stat(bin); err != nil {
			return nil, fmt.Errorf("%s is missing: run `make build`", bin)
		}
	case "docker":
		bin = "dockerd"
		ctd, err := d.startContainerd()
		if err != nil {
			return nil, err
		}
		args = append(args, "--containerd", ctd)
	}
	logf, err := os.Create(d.logPath)
	if err != nil {
		return nil, err
	}
	d.cmd = exec.Command(bin, args...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(dir, "dockercfg"))
	if err := d.cmd.Start(); err != nil {
		logf.Close()
		d.stop()
		return nil, err
	}
	d.exited = make(chan struct{})
	go func() { d.cmd.Wait(); logf.Close(); close(d.exited) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if r, err := d.api().do(context.Background(), "GET", "/_ping", nil); err == nil && r.status == 200 {
			return d, nil
		}
		select {
		case <-d.exited:
			return nil, fmt.Errorf("%s exited:\n%s", kind, d.logTail(30))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			d.stop()
			return nil, fmt.Errorf("%s did not answer /_ping:\n%s", kind, d.logTail(30))
		}
	}
}

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
	d.containerd = exec.Command("containerd", "--config", conf, "--root", filepath.Join(d.dir, "containerd-root"), "--state", filepath.Join(d.dir, "containerd-state"))
	d.containerd.Stdout, d.containerd.Stderr = logf, logf
	if err := d.containerd.Start(); err != nil {
		logf.Close()
		d.containerd = nil
		return "", err
	}
	d.ctdExited = make(chan struct{})
	go func() { d.containerd.Wait(); logf.Close(); close(d.ctdExited) }()
	for i := 0; i < 600; i++ {
		if _, err := os.Stat(sock); err == nil {
			return sock, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", errors.New("containerd did not start")
}

// stop stops the daemon (and containerd) and removes its directory.
func (d *daemon) stop() error {
	var err error
	for _, p := range []struct {
		cmd  *exec.Cmd
		done chan struct{}
	}{{d.cmd, d.exited}, {d.containerd, d.ctdExited}} {
		if p.cmd == nil || p.done == nil {
			continue
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			err = fmt.Errorf("%s ignored SIGTERM; killed", p.cmd.Path)
			p.cmd.Process.Kill()
			<-p.done
		}
	}
	unmountUnder(d.dir)
	return errors.Join(err, os.RemoveAll(d.dir))
}

func unmountUnder(dir string) {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			points = append(points, f[4])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		syscall.Unmount(points[i], syscall.MNT_DETACH)
	}
}

func (d *daemon) logTail(n int) string {
	b, _ := os.ReadFile(d.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// host is the daemon's address for DOCKER_HOST.
func (d *daemon) host() string { return "unix://" + d.sock }

// --- a tiny Engine API client ---

type apiClient struct{ hc *http.Client }

type apiResp struct {
	status int
	body   []byte
}

func (d *daemon) api() *apiClient {
	return &apiClient{hc: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var nd net.Dialer
			return nd.DialContext(ctx, "unix", d.sock)
		},
		DisableKeepAlives: true,
	}}}
}

func (a *apiClient) do(ctx context.Context, method, path string, body io.Reader) (*apiResp, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://docker/v1.41"+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		ct := "application/x-tar" // an import or an archive
		if strings.HasSuffix(strings.SplitN(path, "?", 2)[0], "/create") && !strings.HasPrefix(path, "/images/") {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return &apiResp{status: resp.StatusCode, body: b}, err
}

// images the scenarios use, pulled once through the mirror.
var baseImages = []string{"busybox:latest", "alpine:3.18", "nginx:alpine", "python:3.11-slim"}

// ryukImage is the reaper image testcontainers (Go 0.45 and node 11.9)
// starts; here it is test/clients/ryuk, imported into the daemon.
const ryukImage = "testcontainers/ryuk:0.14.0"

func prepareImages(d *daemon) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	a := d.api()
	for _, ref := range baseImages {
		name, tag, _ := strings.Cut(ref, ":")
		r, err := a.do(ctx, "POST", "/images/create?"+url.Values{"fromImage": {name}, "tag": {tag}}.Encode(), nil)
		if err != nil {
			return fmt.Errorf("pull %s: %w", ref, err)
		}
		if r.status != 200 || bytes.Contains(r.body, []byte(`"error"`)) {
			return fmt.Errorf("pull %s: %d %s", ref, r.status, r.body)
		}
	}
	bin := filepath.Join(env.cache, "ryuk")
	exe, err := os.ReadFile(bin)
	if err != nil {
		return fmt.Errorf("the ryuk stand-in is not built (%v): run hack/clients-deps.sh", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "ryuk", Mode: 0o755, Size: int64(len(exe)), Typeflag: tar.TypeReg})
	tw.Write(exe)
	tw.WriteHeader(&tar.Header{Name: "tmp/", Mode: 0o1777, Typeflag: tar.TypeDir})
	tw.Close()
	repo, tag, _ := strings.Cut(ryukImage, ":")
	q := url.Values{"fromSrc": {"-"}, "repo": {repo}, "tag": {tag}, "changes": {`ENTRYPOINT ["/ryuk"]`, "EXPOSE 8080"}}
	r, err := a.do(ctx, "POST", "/images/create?"+q.Encode(), &buf)
	if err != nil {
		return fmt.Errorf("import %s: %w", ryukImage, err)
	}
	if r.status != 200 || bytes.Contains(r.body, []byte(`"error"`)) {
		return fmt.Errorf("import %s: %d %s", ryukImage, r.status, r.body)
	}
	return nil
}
