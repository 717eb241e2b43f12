package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Helpers for the container tests (issue 3).

var hexIDRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// uniq is a short random suffix that keeps names apart between tests, CLIs
// and runs.
func uniq() string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// ctrName returns a fresh container name and removes the container (force,
// with its anonymous volumes) when the test ends.
func ctrName(t *testing.T, tag string) string {
	t.Helper()
	name := "e2e-" + tag + "-" + uniq()
	a := env.d.api()
	t.Cleanup(func() { rmCtr(t, a, name) })
	return name
}

// rmCtr removes a container with force and its anonymous volumes; a
// missing container is fine.
func rmCtr(t *testing.T, a *apiClient, ref string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if r, err := a.do(ctx, "GET", "/containers/"+ref+"/json", nil, nil); err == nil && r.Status == 200 {
		var c struct{ Id string }
		if json.Unmarshal(r.Body, &c) == nil {
			noteContainer(c.Id)
		}
	}
	r, err := a.do(ctx, "DELETE", "/containers/"+ref+"?force=1&v=1", nil, nil)
	if err != nil {
		t.Errorf("cleanup: remove container %s: %v", ref, err)
		return
	}
	if r.Status != 204 && r.Status != 404 {
		// A removal already in progress (--rm) answers 409 on dockerd.
		if r.Status == 409 && strings.Contains(r.message(), "already in progress") {
			waitGone(t, a, ref, 30*time.Second)
			return
		}
		t.Errorf("cleanup: %s", r)
	}
}

// seenContainers are the IDs of every container the suite removed; the
// end-of-suite check looks for their leftovers.
var seenContainers struct {
	sync.Mutex
	ids map[string]bool
}

func noteContainer(id string) {
	if !hexIDRE.MatchString(id) {
		return
	}
	seenContainers.Lock()
	defer seenContainers.Unlock()
	if seenContainers.ids == nil {
		seenContainers.ids = map[string]bool{}
	}
	seenContainers.ids[id] = true
}

// volName returns a fresh volume name and removes the volume at the end.
func volName(t *testing.T, tag string) string {
	t.Helper()
	name := "e2e-" + tag + "-" + uniq()
	a := env.d.api()
	t.Cleanup(func() { rmVolume(t, a, name) })
	return name
}

func rmVolume(t *testing.T, a *apiClient, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := a.do(ctx, "DELETE", "/volumes/"+name+"?force=1", nil, nil)
	if err != nil {
		t.Errorf("cleanup: remove volume %s: %v", name, err)
		return
	}
	if r.Status != 204 && r.Status != 404 {
		t.Errorf("cleanup: %s", r)
	}
}

// ctrJSON is the part of GET /containers/{id}/json the suite reads.
type ctrJSON struct {
	ID      string   `json:"Id"`
	Name    string   `json:"Name"`
	Created string   `json:"Created"`
	Path    string   `json:"Path"`
	Args    []string `json:"Args"`
	State   struct {
		Status     string `json:"Status"`
		Running    bool   `json:"Running"`
		Paused     bool   `json:"Paused"`
		Restarting bool   `json:"Restarting"`
		OOMKilled  bool   `json:"OOMKilled"`
		Dead       bool   `json:"Dead"`
		Pid        int    `json:"Pid"`
		ExitCode   int    `json:"ExitCode"`
		Error      string `json:"Error"`
		StartedAt  string `json:"StartedAt"`
		FinishedAt string `json:"FinishedAt"`
	} `json:"State"`
	Image        string `json:"Image"`
	LogPath      string `json:"LogPath"`
	RestartCount int    `json:"RestartCount"`
	Driver       string `json:"Driver"`
	Config       struct {
		Hostname    string            `json:"Hostname"`
		User        string            `json:"User"`
		Env         []string          `json:"Env"`
		Cmd         []string          `json:"Cmd"`
		Entrypoint  []string          `json:"Entrypoint"`
		Image       string            `json:"Image"`
		WorkingDir  string            `json:"WorkingDir"`
		Labels      map[string]string `json:"Labels"`
		Tty         bool              `json:"Tty"`
		OpenStdin   bool              `json:"OpenStdin"`
		StopSignal  string            `json:"StopSignal"`
		StopTimeout *int              `json:"StopTimeout"`
	} `json:"Config"`
	HostConfig struct {
		Binds          []string `json:"Binds"`
		AutoRemove     bool     `json:"AutoRemove"`
		Privileged     bool     `json:"Privileged"`
		ReadonlyRootfs bool     `json:"ReadonlyRootfs"`
		CapAdd         []string `json:"CapAdd"`
		CapDrop        []string `json:"CapDrop"`
		Memory         int64    `json:"Memory"`
		MemorySwap     int64    `json:"MemorySwap"`
		NanoCpus       int64    `json:"NanoCpus"`
		CpuShares      int64    `json:"CpuShares"`
		CpusetCpus     string   `json:"CpusetCpus"`
		PidsLimit      *int64   `json:"PidsLimit"`
		BlkioWeight    int      `json:"BlkioWeight"`
		RestartPolicy  struct {
			Name              string `json:"Name"`
			MaximumRetryCount int    `json:"MaximumRetryCount"`
		} `json:"RestartPolicy"`
		LogConfig struct {
			Type   string            `json:"Type"`
			Config map[string]string `json:"Config"`
		} `json:"LogConfig"`
	} `json:"HostConfig"`
	Mounts []mountPoint `json:"Mounts"`
}

type mountPoint struct {
	Type        string `json:"Type"`
	Name        string `json:"Name"`
	Source      string `json:"Source"`
	Destination string `json:"Destination"`
	Driver      string `json:"Driver"`
	Mode        string `json:"Mode"`
	RW          bool   `json:"RW"`
}

// inspectCtr returns GET /containers/{ref}/json, failing unless it is 200.
func inspectCtr(t *testing.T, a *apiClient, ref string) ctrJSON {
	t.Helper()
	var c ctrJSON
	a.call(t, "GET", "/containers/"+ref+"/json", nil, nil).wantStatus(t, 200).decode(t, &c)
	noteContainer(c.ID)
	return c
}

// ctrExists reports whether container ref exists.
func ctrExists(t *testing.T, a *apiClient, ref string) bool {
	t.Helper()
	return a.exists(t, "/containers/"+ref+"/json")
}

// waitCtr polls inspect until cond holds, failing the test after timeout.
func waitCtr(t *testing.T, a *apiClient, ref, what string, timeout time.Duration, cond func(c ctrJSON) bool) ctrJSON {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c := inspectCtr(t, a, ref)
		if cond(c) {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s: not %s within %s (state %+v, RestartCount %d)", ref, what, timeout, c.State, c.RestartCount)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitRunning(t *testing.T, a *apiClient, ref string) ctrJSON {
	t.Helper()
	return waitCtr(t, a, ref, "running", 30*time.Second, func(c ctrJSON) bool { return c.State.Running && c.State.Pid > 0 })
}

func waitExited(t *testing.T, a *apiClient, ref string, timeout time.Duration) ctrJSON {
	t.Helper()
	return waitCtr(t, a, ref, "exited", timeout, func(c ctrJSON) bool { return c.State.Status == "exited" })
}

// waitGone polls until the container no longer exists.
func waitGone(t *testing.T, a *apiClient, ref string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for ctrExists(t, a, ref) {
		if time.Now().After(deadline) {
			t.Fatalf("container %s still exists after %s", ref, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// poll calls fn until it returns true or the timeout passes.
func poll(timeout time.Duration, fn func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if fn() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// createCtr creates a container through the API (name may be "") and
// returns its ID. body is the JSON create request.
func createCtr(t *testing.T, a *apiClient, name string, body any) string {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	path := "/containers/create"
	if name != "" {
		path += "?name=" + url.QueryEscape(name)
	}
	var out struct {
		ID       string   `json:"Id"`
		Warnings []string `json:"Warnings"`
	}
	a.call(t, "POST", path, b, nil).wantStatus(t, 201).decode(t, &out)
	if !hexIDRE.MatchString(out.ID) {
		t.Fatalf("create: Id %q is not 64 hex digits", out.ID)
	}
	noteContainer(out.ID)
	if name == "" {
		t.Cleanup(func() { rmCtr(t, a, out.ID) })
	}
	return out.ID
}

// startCtr starts a container through the API (204).
func startCtr(t *testing.T, a *apiClient, ref string) {
	t.Helper()
	a.call(t, "POST", "/containers/"+ref+"/start", nil, nil).wantStatus(t, 204)
}

// runDetached creates and starts a container through the API and waits
// until it runs. cmd runs in busybox.
func runDetached(t *testing.T, a *apiClient, tag string, extra map[string]any, cmd ...string) (name, id string) {
	t.Helper()
	name = ctrName(t, tag)
	body := map[string]any{"Image": "busybox:latest", "Cmd": cmd}
	for k, v := range extra {
		body[k] = v
	}
	id = createCtr(t, a, name, body)
	startCtr(t, a, id)
	return name, id
}

// wantCode checks a CLI invocation's exit code and stderr parts.
func (r result) wantCode(t *testing.T, name string, code int, parts ...string) {
	t.Helper()
	if r.Code != code {
		t.Errorf("%s %s: exit %d, want %d\nstdout: %s\nstderr: %s", name, strings.Join(r.Args, " "), r.Code, code, clip(r.Stdout), clip(r.Stderr))
	}
	for _, p := range parts {
		if !strings.Contains(r.Stderr, p) {
			t.Errorf("%s %s: stderr does not contain %q\nstderr: %s", name, strings.Join(r.Args, " "), p, clip(r.Stderr))
		}
	}
}

// wantOut checks that stdout, trimmed, is want.
func (r result) wantOut(t *testing.T, name, want string) {
	t.Helper()
	if got := strings.TrimRight(r.Stdout, "\r\n"); got != want {
		t.Errorf("%s %s: stdout %q, want %q (stderr %q)", name, strings.Join(r.Args, " "), got, want, clip(r.Stderr))
	}
}

// busybox makes sure busybox:latest is in the daemon's store.
func busybox(t *testing.T) {
	t.Helper()
	ensureImage(t, requireEnv(t).api(), "busybox:latest")
}

// --- hijacked streams (attach, exec start) ---

// hijacked is an upgraded connection to the daemon.
type hijacked struct {
	net.Conn
	r *bufio.Reader
}

// hijack sends a request with Upgrade: tcp and returns the raw connection
// once the daemon has answered 101 (or 200, which old daemons send).
func (a *apiClient) hijack(t *testing.T, method, path string, body []byte) *hijacked {
	t.Helper()
	conn, err := net.DialTimeout("unix", a.sock, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", a.sock, err)
	}
	var req bytes.Buffer
	fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nHost: api.moby.localhost\r\nUser-Agent: e2e\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n", method, path)
	if body != nil {
		fmt.Fprintf(&req, "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
		req.Write(body)
	} else {
		req.WriteString("Content-Type: text/plain\r\nContent-Length: 0\r\n\r\n")
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := conn.Write(req.Bytes()); err != nil {
		conn.Close()
		t.Fatalf("%s %s: %v", method, path, err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		t.Fatalf("%s %s: read response: %v", method, path, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols && resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		conn.Close()
		t.Fatalf("%s %s: %s %s, want 101", method, path, resp.Status, b)
	}
	conn.SetDeadline(time.Time{})
	h := &hijacked{Conn: conn, r: br}
	t.Cleanup(func() { h.Close() })
	return h
}

func (h *hijacked) Read(p []byte) (int, error) { return h.r.Read(p) }

// demux splits a stdcopy stream into stdout and stderr. A stream that is
// not framed is an error.
func demux(data []byte) (stdout, stderr string, err error) {
	var o, e bytes.Buffer
	for len(data) > 0 {
		if len(data) < 8 {
			return o.String(), e.String(), fmt.Errorf("%d trailing bytes are not a frame header", len(data))
		}
		kind, size := data[0], binary.BigEndian.Uint32(data[4:8])
		if kind > 2 || data[1] != 0 || data[2] != 0 || data[3] != 0 {
			return o.String(), e.String(), fmt.Errorf("bad frame header % x", data[:8])
		}
		if int(size) > len(data)-8 {
			return o.String(), e.String(), fmt.Errorf("frame of %d bytes, %d left", size, len(data)-8)
		}
		payload := data[8 : 8+size]
		if kind == 2 {
			e.Write(payload)
		} else {
			o.Write(payload)
		}
		data = data[8+size:]
	}
	return o.String(), e.String(), nil
}

// --- processes ---

// bg is a CLI command running in the background.
type bg struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    bytes.Buffer
	done   chan struct{}
	err    error
	cancel context.CancelFunc
}

type lockedWriter struct{ b *bg }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.b.mu.Lock()
	defer w.b.mu.Unlock()
	return w.b.out.Write(p)
}

// start runs the CLI in the background (stdout and stderr together) and
// kills it when the test ends.
func (c *CLI) start(args ...string) *bg {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	cmd := exec.CommandContext(ctx, c.bin, append(append([]string{}, c.prefix...), args...)...)
	cmd.Env = c.env
	b := &bg{cmd: cmd, done: make(chan struct{}), cancel: cancel}
	cmd.Stdout, cmd.Stderr = lockedWriter{b}, lockedWriter{b}
	if err := cmd.Start(); err != nil {
		cancel()
		c.t.Fatalf("%s %s: %v", c.name, strings.Join(args, " "), err)
	}
	go func() { b.err = cmd.Wait(); close(b.done) }()
	c.t.Cleanup(b.kill)
	c.t.Logf("$ %s %s &  # pid %d", c.name, strings.Join(args, " "), cmd.Process.Pid)
	return b
}

func (b *bg) output() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.String()
}

func (b *bg) kill() {
	select {
	case <-b.done:
	default:
		b.cmd.Process.Kill()
		<-b.done
	}
	b.cancel()
}

func (b *bg) exited(timeout time.Duration) bool {
	select {
	case <-b.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

func (b *bg) exitCode() int {
	if b.cmd.ProcessState == nil {
		return -1
	}
	return b.cmd.ProcessState.ExitCode()
}

// waitOutput polls the background command's output for s.
func (b *bg) waitOutput(s string, timeout time.Duration) bool {
	return poll(timeout, func() bool { return strings.Contains(b.output(), s) })
}

// --- tmux: a real terminal for -it ---

// term is a private tmux server (its own -L socket; never the default
// server) running one command in a 200x50 pane.
type term struct {
	t      *testing.T
	sock   string
	rcFile string
}

// newTerm starts the CLI with args in a tmux pane. The command's exit
// code is written to a file the test polls.
func newTerm(t *testing.T, c *CLI, args ...string) *term {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatalf("tmux is needed for the -it tests: %v", err)
	}
	dir := t.TempDir()
	tm := &term{t: t, sock: "berth-e2e-" + uniq(), rcFile: filepath.Join(dir, "rc")}
	var sh strings.Builder
	sh.WriteString("env")
	for _, e := range c.env {
		if strings.HasPrefix(e, "TERM=") {
			continue
		}
		sh.WriteString(" " + shellQuote(e))
	}
	sh.WriteString(" " + shellQuote(c.bin))
	for _, a := range append(append([]string{}, c.prefix...), args...) {
		sh.WriteString(" " + shellQuote(a))
	}
	script := sh.String() + "; echo $? > " + shellQuote(tm.rcFile+".tmp") + " && mv " + shellQuote(tm.rcFile+".tmp") + " " + shellQuote(tm.rcFile) + "; sleep 600"
	cmd := exec.Command("tmux", "-L", tm.sock, "-f", "/dev/null", "new-session", "-d", "-x", "200", "-y", "50", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "TERM=xterm")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("terminal at the end:\n%s", tm.screen())
		}
		exec.Command("tmux", "-L", tm.sock, "kill-server").Run()
	})
	t.Logf("$ %s %s  # in tmux -L %s", c.name, strings.Join(args, " "), tm.sock)
	return tm
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// keys sends tmux key names (e.g. "C-p") or literal text (literal=true).
func (tm *term) send(literal bool, keys ...string) {
	tm.t.Helper()
	args := []string{"-L", tm.sock, "send-keys", "-t", "0"}
	if literal {
		args = append(args, "-l")
	}
	if out, err := exec.Command("tmux", append(args, keys...)...).CombinedOutput(); err != nil {
		tm.t.Fatalf("tmux send-keys: %v: %s", err, out)
	}
}

// typeLine types text and Enter.
func (tm *term) typeLine(text string) {
	tm.t.Helper()
	tm.send(true, text)
	tm.send(false, "Enter")
}

func (tm *term) screen() string {
	out, err := exec.Command("tmux", "-L", tm.sock, "capture-pane", "-p", "-t", "0", "-S", "-200").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("<capture-pane: %v: %s>", err, out)
	}
	return string(out)
}

// waitScreen polls the pane until re matches.
func (tm *term) waitScreen(re *regexp.Regexp, timeout time.Duration) bool {
	return poll(timeout, func() bool { return re.MatchString(tm.screen()) })
}

// exitCode waits for the command to finish and returns its exit code.
func (tm *term) exitCode(timeout time.Duration) int {
	tm.t.Helper()
	var code int
	ok := poll(timeout, func() bool {
		b, err := os.ReadFile(tm.rcFile)
		if err != nil {
			return false
		}
		_, err = fmt.Sscan(string(b), &code)
		return err == nil
	})
	if !ok {
		tm.t.Fatalf("the command in the terminal did not exit within %s; screen:\n%s", timeout, tm.screen())
	}
	return code
}

// resize changes the terminal's size (the CLI gets SIGWINCH).
func (tm *term) resize(cols, rows int) {
	tm.t.Helper()
	if out, err := exec.Command("tmux", "-L", tm.sock, "resize-window", "-t", "0", "-x", fmt.Sprint(cols), "-y", fmt.Sprint(rows)).CombinedOutput(); err != nil {
		tm.t.Fatalf("tmux resize-window: %v: %s", err, out)
	}
}

// wantSize checks that the program in the terminal sees rows x cols:
// it types stty size until the answer shows (the resize travels from
// the CLI's SIGWINCH through the daemon to the container's terminal).
func (tm *term) wantSize(what string, rows, cols int) {
	tm.t.Helper()
	want := regexp.MustCompile(fmt.Sprintf(`(?m)^%d %d\s*$`, rows, cols))
	if !poll(10*time.Second, func() bool {
		tm.typeLine("stty size")
		return tm.waitScreen(want, 700*time.Millisecond)
	}) {
		tm.t.Errorf("%s: the container's terminal never reported %d %d (stty size)", what, rows, cols)
	}
}

func contextTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
