package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// cliTimeout bounds every CLI invocation (a hung CLI fails its test).
const cliTimeout = 90 * time.Second

// cliNames are the two CLIs every scenario runs through.
var cliNames = []string{"berth", "docker"}

// CLI runs one command-line client against a daemon, with its own empty
// configuration directory (credentials never leak between tests).
type CLI struct {
	t      *testing.T
	name   string // "berth" or "docker"
	bin    string
	prefix []string // arguments before the command
	env    []string
	cfgDir string
}

// result is what a CLI invocation produced.
type result struct {
	Args    []string
	Stdout  string
	Stderr  string
	Code    int
	Elapsed time.Duration
}

// cli returns the CLI called name ("berth" or "docker") aimed at the
// daemon under test.
func cli(t *testing.T, name string) *CLI {
	return cliFor(t, name, requireEnv(t))
}

// cliFor returns the CLI called name aimed at d.
func cliFor(t *testing.T, name string, d *daemon) *CLI {
	t.Helper()
	c := &CLI{t: t, name: name, cfgDir: t.TempDir()}
	home := t.TempDir()
	c.env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "LANG=C.UTF-8", "TERM=dumb"}
	switch name {
	case "berth":
		c.bin = env.berthBin
		c.prefix = []string{"-H", "unix://" + d.sock}
		c.env = append(c.env, "BERTH_CONFIG="+c.cfgDir)
	case "docker":
		c.bin = env.dockerBin
		c.env = append(c.env, "DOCKER_HOST=unix://"+d.sock, "DOCKER_CONFIG="+c.cfgDir, "DOCKER_CLI_HINTS=false")
	default:
		t.Fatalf("unknown CLI %q", name)
	}
	return c
}

// eachCLI runs fn as a subtest per CLI, one after the other (they share
// the daemon's image store).
func eachCLI(t *testing.T, fn func(t *testing.T, c *CLI)) {
	t.Helper()
	requireEnv(t)
	for _, name := range cliNames {
		t.Run(name, func(t *testing.T) { fn(t, cli(t, name)) })
	}
}

// run runs the CLI with args and returns what it printed and its exit code.
func (c *CLI) run(args ...string) result { return c.runStdin(nil, args...) }

// runStdin runs the CLI with stdin as its standard input.
func (c *CLI) runStdin(stdin []byte, args ...string) result {
	c.t.Helper()
	return c.runTimeout(cliTimeout, stdin, args...)
}

// runTimeout is runStdin with its own bound.
func (c *CLI) runTimeout(timeout time.Duration, stdin []byte, args ...string) result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, append(append([]string{}, c.prefix...), args...)...)
	cmd.Env = c.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	start := time.Now()
	err := cmd.Run()
	r := result{Args: args, Stdout: stdout.String(), Stderr: stderr.String(), Elapsed: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	default:
		c.t.Fatalf("%s %s: %v", c.name, strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		c.t.Fatalf("%s %s: did not finish within %s\nstdout: %s\nstderr: %s", c.name, strings.Join(args, " "), timeout, clip(r.Stdout), clip(r.Stderr))
	}
	c.t.Logf("$ %s %s  # exit %d in %s\n%s%s", c.name, strings.Join(args, " "), r.Code, r.Elapsed.Round(time.Millisecond), indent("out| ", clip(r.Stdout)), indent("err| ", clip(r.Stderr)))
	return r
}

// ok runs the CLI and fails the test unless it exits 0.
func (c *CLI) ok(args ...string) result {
	c.t.Helper()
	r := c.run(args...)
	if r.Code != 0 {
		c.t.Fatalf("%s %s: exit %d, want 0\nstdout: %s\nstderr: %s", c.name, strings.Join(args, " "), r.Code, clip(r.Stdout), clip(r.Stderr))
	}
	return r
}

// fail runs the CLI and fails the test unless it exits non-zero with every
// one of parts in its stderr.
func (c *CLI) fail(args []string, parts ...string) result {
	c.t.Helper()
	r := c.run(args...)
	r.wantFailure(c.t, c.name, parts...)
	return r
}

// wantFailure checks a failed invocation: exit code 1 (what docker uses
// for daemon errors) and the stderr parts.
func (r result) wantFailure(t *testing.T, name string, parts ...string) {
	t.Helper()
	if r.Code != 1 {
		t.Errorf("%s %s: exit %d, want 1\nstdout: %s\nstderr: %s", name, strings.Join(r.Args, " "), r.Code, clip(r.Stdout), clip(r.Stderr))
	}
	for _, p := range parts {
		if !strings.Contains(r.Stderr, p) {
			t.Errorf("%s %s: stderr does not contain %q\nstderr: %s", name, strings.Join(r.Args, " "), p, clip(r.Stderr))
		}
	}
}

// lines splits output into its non-empty lines, without trailing spaces.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimRight(l, " \r\t")
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	l := lines(s)
	if len(l) == 0 {
		return ""
	}
	return l[len(l)-1]
}

func clip(s string) string {
	if strings.ContainsRune(s, 0) || !utf8.ValidString(s) {
		return fmt.Sprintf("<%d bytes of binary data>", len(s))
	}
	if len(s) > 4000 {
		return s[:2000] + "\n…\n" + s[len(s)-2000:]
	}
	return s
}

func indent(prefix, s string) string {
	if s == "" {
		return ""
	}
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString(prefix + l + "\n")
	}
	return b.String()
}

// writeFile is os.WriteFile for tests.
func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
