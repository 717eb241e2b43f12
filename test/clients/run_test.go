package clients

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// result is what a client command printed and its exit code.
type result struct {
	out, err string
	code     int
}

// clientEnv is the environment every client runs with: the daemon under
// test, a private docker config (with the Compose plugin), no proxies.
func clientEnv(t *testing.T, extra ...string) []string {
	t.Helper()
	cfg := t.TempDir()
	plugins := filepath.Join(cfg, "cli-plugins")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	if p := filepath.Join(env.cache, "docker-compose"); fileExists(p) {
		if err := os.Symlink(p, filepath.Join(plugins, "docker-compose")); err != nil {
			t.Fatal(err)
		}
	}
	e := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "LANG=C.UTF-8", "TERM=dumb",
		"DOCKER_HOST=" + env.d.host(), "DOCKER_CONFIG=" + cfg, "DOCKER_CLI_HINTS=false",
		"BERTH_CLIENTS_TARGET=" + env.target,
	}
	return append(e, extra...)
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// runIn runs a client command in dir with env and a time bound, logging
// what it printed.
func runIn(t *testing.T, dir string, e []string, timeout time.Duration, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, e
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{out: stdout.String(), err: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	t.Logf("$ %s %s  # exit %d in %s\n%s%s", filepath.Base(name), strings.Join(args, " "), r.code, time.Since(start).Round(time.Millisecond), indent("out| ", r.out), indent("err| ", r.err))
	if ctx.Err() != nil {
		t.Fatalf("%s %s did not finish within %s", name, strings.Join(args, " "), timeout)
	}
	return r
}

func indent(p, s string) string {
	if s == "" {
		return ""
	}
	if len(s) > 6000 {
		s = s[:3000] + "\n...\n" + s[len(s)-3000:]
	}
	return p + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+p) + "\n"
}

// bgCmd is a client command running in the background (logs -f).
type bgCmd struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan struct{}
}

func (b *bgCmd) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *bgCmd) output() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startIn(t *testing.T, dir string, e []string, name string, args ...string) *bgCmd {
	t.Helper()
	b := &bgCmd{done: make(chan struct{})}
	b.cmd = exec.Command(name, args...)
	b.cmd.Dir, b.cmd.Env = dir, e
	b.cmd.Stdout, b.cmd.Stderr = b, b
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { b.cmd.Wait(); close(b.done) }()
	t.Cleanup(func() {
		select {
		case <-b.done:
		default:
			b.cmd.Process.Kill()
			<-b.done
		}
	})
	return b
}

// poll calls fn until it is true or timeout passes.
func poll(timeout time.Duration, fn func() bool) bool {
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

// httpGet fetches url (in the sandbox) and returns the body.
func httpGet(url string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return string(b), errors.New(resp.Status)
	}
	return string(b), err
}

// copyTree copies a testdata directory into a fresh temporary one.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}
