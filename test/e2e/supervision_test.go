package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Process supervision as dockerd does it (issue 13 items 6-8).

// TestKillReturnsAfterExit (issue 13 item 6): POST /containers/{id}/kill
// with SIGKILL answers once the container has exited, as dockerd's does:
// an inspect right after says not running, and a remove right after
// works.
func TestKillReturnsAfterExit(t *testing.T) {
	d := requireEnv(t)
	busybox(t)
	a := d.api()
	for i := range 10 {
		name, _ := runDetached(t, a, "killwait", nil, "sh", "-c", "sleep 1000 & sleep 1000 & wait")
		waitRunning(t, a, name)
		a.call(t, "POST", "/containers/"+name+"/kill?signal=KILL", nil, nil).wantStatus(t, 204)
		ci := inspectCtr(t, a, name)
		if ci.State.Running || ci.State.Status != "exited" || ci.State.ExitCode != 137 {
			t.Errorf("round %d: inspect right after kill: State %+v, want exited 137", i, ci.State)
		}
		if r := a.call(t, "DELETE", "/containers/"+name, nil, nil); r.Status != 204 {
			t.Errorf("round %d: remove right after kill: %s", i, r)
		}
	}
}

// TestRmForceAfterExecs (issue 13 item 6): rm -f of an -it container with
// a restart policy, after execs with a TTY that were resized, returns
// promptly and leaves no process.
func TestRmForceAfterExecs(t *testing.T) {
	d := requireEnv(t)
	busybox(t)
	a := d.api()
	c := cli(t, "docker")
	name := ctrName(t, "rmexecs")
	c.ok("run", "-dit", "--restart", "always", "--name", name, "busybox", "sh")
	pid := waitRunning(t, a, name).State.Pid
	for i := range 10 {
		var ex struct{ Id string }
		body := fmt.Sprintf(`{"AttachStdin":true,"AttachStdout":true,"AttachStderr":true,"Tty":true,"Cmd":["sh","-c","stty size; sleep 0.2; echo done-%d"]}`, i)
		a.call(t, "POST", "/containers/"+name+"/exec", []byte(body), nil).wantStatus(t, 201).decode(t, &ex)
		h := a.hijack(t, "POST", "/exec/"+ex.Id+"/start", []byte(`{"Detach":false,"Tty":true}`))
		a.call(t, "POST", fmt.Sprintf("/exec/%s/resize?h=%d&w=%d", ex.Id, 30+i, 100+i), nil, nil)
		out, _ := io.ReadAll(h)
		h.Close()
		if !strings.Contains(string(out), fmt.Sprintf("done-%d", i)) {
			t.Errorf("exec %d: output %q", i, out)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	began := time.Now()
	r, err := a.do(ctx, "DELETE", "/containers/"+name+"?force=1", nil, nil)
	if err != nil {
		t.Fatalf("rm -f did not return within 30s: %v", err)
	}
	if r.Status != 204 {
		t.Errorf("rm -f: %s", r)
	}
	t.Logf("rm -f took %s", time.Since(began))
	if !poll(10*time.Second, func() bool { return !procAlive(pid) }) {
		t.Errorf("container process %d still alive after rm -f", pid)
	}
}

// TestAttachSlowReaderGetsAll (issue 13 item 7): a client attached to a
// container's output gets all of it, however slowly it reads, also when
// the container has exited in the meantime.
func TestAttachSlowReaderGetsAll(t *testing.T) {
	d := requireEnv(t)
	busybox(t)
	a := d.api()
	// Line by line, one write each: many small frames, 4 MB in all.
	const n = 40000
	pad := strings.Repeat("x", 90)
	name := ctrName(t, "slowattach")
	id := createCtr(t, a, name, map[string]any{
		"Image": "busybox:latest", "AttachStdout": true, "AttachStderr": true,
		"Cmd": []string{"sh", "-c", fmt.Sprintf(`i=0; while [ $i -lt %d ]; do echo "%s $i"; i=$((i+1)); done; echo end-of-output >&2`, n, pad)},
	})
	h := a.hijack(t, "POST", "/containers/"+id+"/attach?stream=1&stdout=1&stderr=1", nil)
	defer h.Close()
	startCtr(t, a, id)
	// The slow reader: nothing read until the container has exited (on a
	// daemon that pushes back on the container, until a while has
	// passed), then 32 KiB every 50 ms: seconds for all of it.
	poll(3*time.Second, func() bool { return !inspectCtr(t, a, id).State.Running })
	h.SetDeadline(time.Now().Add(60 * time.Second))
	var raw []byte
	buf := make([]byte, 32*1024)
	for {
		k, err := io.ReadFull(h, buf)
		raw = append(raw, buf[:k]...)
		if err != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	stdout, stderr, err := demux(raw)
	if err != nil {
		t.Fatalf("attach stream: %v", err)
	}
	ls := lines(stdout)
	for i, l := range ls {
		if l != fmt.Sprintf("%s %d", pad, i) {
			t.Errorf("slow attached reader: line %d is %q", i, clip(l))
			break
		}
	}
	if len(ls) != n || !strings.Contains(stderr, "end-of-output") {
		t.Errorf("slow attached reader got %d of %d lines (%d bytes) of stdout and stderr %q", len(ls), n, len(stdout), clip(stderr))
	}
	waitExited(t, a, id, 30*time.Second)
}

// TestWaitWithRestartPolicy (issue 13 item 8): wait (not-running and
// next-exit) returns at the first exit of a container that its restart
// policy restarts, as dockerd's does; so does `run` in the foreground.
func TestWaitWithRestartPolicy(t *testing.T) {
	d := requireEnv(t)
	busybox(t)
	a := d.api()
	c := cli(t, "docker")
	gate := t.TempDir()
	name := ctrName(t, "waitrestart")
	c.ok("run", "-d", "--restart", "always", "--name", name, "-v", gate+":/gate", "busybox", "sh", "-c",
		"while [ ! -e /gate/go ]; do sleep 0.05; done; exit 3")
	waitRunning(t, a, name)
	type res struct {
		what string
		code int64
		err  error
	}
	results := make(chan res, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, cond := range []string{"not-running", "next-exit", ""} {
		path := "/containers/" + name + "/wait"
		if cond != "" {
			path += "?condition=" + cond
		}
		// The headers come at once (both daemons flush them): the wait
		// is in place before the exit.
		resp, err := a.stream(ctx, "POST", path, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			defer resp.Body.Close()
			var w struct{ StatusCode int64 }
			err := json.NewDecoder(resp.Body).Decode(&w)
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
			results <- res{cond, w.StatusCode, err}
		}()
	}
	writeFile(t, gate, "go", nil)
	for range 3 {
		r := <-results
		if r.err != nil || r.code != 3 {
			t.Errorf("wait (condition %q) for a container with --restart always: code %d, err %v; want 3 at the first exit", r.what, r.code, r.err)
		}
	}

	// run in the foreground, with and without -i.
	for _, args := range [][]string{
		{"run", "--restart", "always", "busybox", "sh", "-c", "exit 2"},
		{"run", "-i", "--restart", "always", "busybox", "sh", "-c", "exit 2"},
	} {
		n := ctrName(t, "fgrestart")
		args = append(args[:1], append([]string{"--name", n}, args[1:]...)...)
		r := c.runTimeout(30*time.Second, []byte{}, args...)
		if r.Code != 2 {
			t.Errorf("%s: exit %d, want 2 (the first exit)", strings.Join(args, " "), r.Code)
		}
	}
}

// TestRemoveDuringRestart: rm -f of a --restart always container while
// the restart policy's start is under way (CI flake of
// TestWaitWithRestartPolicy: its cleanup answered 500 'unlinkat
// .../containers/<id>/...', the removal deleting the directories the start
// was writing into; and the start left its shim and container running
// with no record). The removal waits that start out, then stops the
// container: 204, and nothing of it is left. The gate: the restart's
// start dials the container's syslog server over TLS, and the test holds
// that handshake until the removal is under way.
func TestRemoveDuringRestart(t *testing.T) {
	d := requireEnv(t)
	onlyBerth(t, "the gate needs inspect to answer while a start waits for its log driver; dockerd's inspect waits on the container lock its start holds")
	busybox(t)
	a := d.api()
	c := cli(t, "docker")
	port, held, release := heldTLSListener(t)
	gate := t.TempDir()
	name := ctrName(t, "rmrestart")
	id := strings.TrimSpace(c.ok("run", "-d", "--restart", "always", "--name", name, "-v", gate+":/gate",
		"--log-driver", "syslog", "--log-opt", fmt.Sprintf("syslog-address=tcp+tls://127.0.0.1:%d", port),
		"--log-opt", "syslog-tls-skip-verify=true",
		"busybox", "sh", "-c", "if [ -e /gate/ran ]; then exec sleep 3600; fi; touch /gate/ran; exit 3").Stdout)
	noteContainer(id)
	t.Cleanup(func() {
		for _, p := range shimsOf(id) {
			pid, _ := strconv.Atoi(p)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		reapContainerIDs(t, map[string]bool{id: true}, d)
	})
	// The first start's handshake is served; the container exits 3 and
	// its restart's shim dials again: that handshake is held.
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		var lines []string
		if b, err := os.ReadFile(d.logPath); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if strings.Contains(l, id) || strings.Contains(l, name) {
					lines = append(lines, l)
				}
			}
		}
		t.Fatalf("the restart's start did not dial the syslog server (state %+v); the daemon's log on it:\n%s", inspectCtr(t, a, name).State, strings.Join(lines, "\n"))
	}
	type res struct {
		r   *apiResp
		err error
	}
	removed := make(chan res, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		r, err := a.do(ctx, "DELETE", "/containers/"+name+"?force=1&v=1", nil, nil)
		removed <- res{r, err}
	}()
	waitCtr(t, a, name, "being removed", 30*time.Second, func(c ctrJSON) bool { return c.State.Status == "removing" })
	close(release)
	r := <-removed
	if r.err != nil || r.r.Status != http.StatusNoContent {
		t.Fatalf("rm -f during the restart's start: %v %v; want 204", r.r, r.err)
	}
	if ctrExists(t, a, name) {
		t.Errorf("rm -f answered 204, the container is still there")
	}
	var left []string
	poll(10*time.Second, func() bool {
		left = containerLeftovers(d, map[string]bool{id: true})
		if procs := cgroupProcs(id); len(procs) > 0 {
			left = append(left, fmt.Sprintf("processes %v in its cgroup", procs))
		}
		return len(left) == 0
	})
	if len(left) > 0 {
		t.Errorf("left by the removed container:\n%s", strings.Join(left, "\n"))
	}
}

// heldTLSListener is a TLS server on loopback (throwaway certificate) that
// completes the first connection's handshake and holds every later one's
// until release is closed; held receives when the second is accepted.
// What clients send is read and dropped.
func heldTLSListener(t *testing.T) (port int, held <-chan struct{}, release chan struct{}) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	release = make(chan struct{})
	h := make(chan struct{}, 1)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		select {
		case <-release:
		default:
			close(release)
		}
		wg.Wait()
	})
	var conns []net.Conn
	var mu sync.Mutex
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 0; ; n++ {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			if n == 1 {
				h <- struct{}{}
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if n > 0 {
					<-release
				}
				_, _ = io.Copy(io.Discard, tls.Server(conn, cfg))
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port, h, release
}

// TestRemoveRacingCreateAndStart: rm -f (DELETE ?force=1) racing a create
// and the start that follows it, round after round, at every point of the
// two: by name while the create is under way, and by ID while the start
// is. Whatever the order, the removal answers 204, the start 204, 404 or
// 409, and the removed container leaves nothing: no record, no shim, no
// process in its cgroup, no mount, no runc state, no cgroup (before
// a5c4d4e, 3 shims outlived containers removed so).
func TestRemoveRacingCreateAndStart(t *testing.T) {
	d := requireEnv(t)
	busybox(t)
	a := d.api()
	const rounds = 30
	body := []byte(`{"Image":"busybox","Cmd":["sleep","300"]}`)
	ids := map[string]bool{}
	t.Cleanup(func() { reapContainerIDs(t, ids, d) })
	for i := range rounds {
		name := ctrName(t, "rmrace")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		created := make(chan string, 1) // the ID, or "" when the create failed
		started := make(chan *apiResp, 1)
		go func() {
			r, err := a.do(ctx, "POST", "/containers/create?name="+name, body, http.Header{"Content-Type": {"application/json"}})
			if err != nil || r.Status != http.StatusCreated {
				t.Errorf("round %d: create: %v %v", i, r, err)
				created <- ""
				started <- nil
				return
			}
			var c struct{ Id string }
			_ = json.Unmarshal(r.Body, &c)
			created <- c.Id
			r, err = a.do(ctx, "POST", "/containers/"+c.Id+"/start", nil, nil)
			if err != nil {
				t.Errorf("round %d: start: %v", i, err)
			}
			started <- r
		}()
		// Odd rounds remove by name from the start (404 until the create
		// has answered); even ones by ID once the create answered,
		// racing the start.
		ref, id := name, ""
		if i%2 == 0 {
			if id = <-created; id == "" {
				cancel()
				continue
			}
			ref = id
		}
		for {
			r, err := a.do(ctx, "DELETE", "/containers/"+ref+"?force=1", nil, nil)
			if err != nil {
				t.Fatalf("round %d: rm -f: %v", i, err)
			}
			if r.Status == http.StatusNoContent {
				break
			}
			if r.Status != http.StatusNotFound || i%2 == 0 {
				t.Fatalf("round %d: rm -f: %v; want 204 (404 only before the create answered)", i, r)
			}
			select {
			case id = <-created:
				if id == "" {
					cancel()
					t.FailNow()
				}
				ref = id
			default:
			}
		}
		if id == "" {
			id = <-created
		}
		if id != "" {
			ids[id] = true
			noteContainer(id)
		}
		if r := <-started; r != nil && r.Status != http.StatusNoContent && r.Status != http.StatusNotFound && r.Status != http.StatusConflict {
			t.Errorf("round %d: start racing rm -f: %v; want 204, 404 or 409", i, r)
		}
		cancel()
		if ctrExists(t, a, name) {
			t.Errorf("round %d: rm -f answered 204, the container is still there", i)
		}
	}
	if env.target != "berth" {
		return // what dockerd leaves is not looked at
	}
	var left []string
	poll(10*time.Second, func() bool {
		left = containerLeftovers(d, ids)
		for id := range ids {
			if procs := cgroupProcs(id); len(procs) > 0 {
				left = append(left, fmt.Sprintf("processes %v in the cgroup of %s", procs, id))
			}
		}
		return len(left) == 0
	})
	if len(left) > 0 {
		t.Errorf("left by the removed containers:\n%s", strings.Join(left, "\n"))
	}
}

// TestKillPausedContainer (issue 13 crash-loop finding): docker kill of a
// paused container delivers the signal, as dockerd does (daemon/kill.go):
// after SIGKILL or the container's stop signal (any signal when it has
// none set) the container is thawed, so it gets the signal and exits;
// another signal waits, frozen, for an unpause. Before, berthd sent the
// signal to the frozen container and left it paused: kill answered after
// its 10 s wait with the container still running, paused.
func TestKillPausedContainer(t *testing.T) {
	d := requireEnv(t)
	busybox(t)
	a := d.api()
	c := cli(t, "docker")
	// The shell is the container's init: only signals it has a handler
	// for reach it (and SIGKILL).
	script := `trap "exit 5" TERM; trap "exit 6" USR1; trap "exit 7" USR2; echo ready; while :; do sleep 0.1; done`
	paused := func(tag string, runArgs ...string) string {
		t.Helper()
		name := ctrName(t, tag)
		c.ok(append(append([]string{"run", "-d", "--name", name}, runArgs...), "busybox", "sh", "-c", script)...)
		waitLog(t, a, name, "ready")
		c.ok("pause", name)
		if ci := inspectCtr(t, a, name); !ci.State.Paused || ci.State.Status != "paused" {
			t.Fatalf("%s after pause: State %+v", name, ci.State)
		}
		return name
	}
	exitsWith := func(name string, code int) {
		t.Helper()
		ci := waitCtr(t, a, name, "exited", 30*time.Second, func(c ctrJSON) bool { return c.State.Status == "exited" })
		if ci.State.ExitCode != code || ci.State.Paused || ci.State.Running {
			t.Errorf("%s: State %+v, want exited %d, not paused", name, ci.State, code)
		}
	}

	// SIGKILL (docker kill's default): the container ends at once; kill
	// answers once it has exited.
	name := paused("killpaused")
	c.ok("kill", name)
	if ci := inspectCtr(t, a, name); ci.State.Running || ci.State.Paused {
		t.Errorf("%s right after kill: State %+v, want exited", name, ci.State)
	}
	exitsWith(name, 137)

	// No stop signal set: any signal thaws it.
	name = paused("termpaused")
	c.ok("kill", "-s", "TERM", name)
	exitsWith(name, 5)

	// Its stop signal thaws it.
	name = paused("stopsigpaused", "--stop-signal", "SIGUSR2")
	c.ok("kill", "-s", "USR2", name)
	exitsWith(name, 7)

	// Another signal leaves it paused; the unpause delivers it.
	name = paused("usr1paused", "--stop-signal", "SIGUSR2")
	c.ok("kill", "-s", "USR1", name)
	if ci := inspectCtr(t, a, name); !ci.State.Paused || !ci.State.Running || ci.State.Status != "paused" {
		t.Errorf("%s after kill -s USR1: State %+v, want still paused", name, ci.State)
	}
	c.ok("unpause", name)
	exitsWith(name, 6)
}
