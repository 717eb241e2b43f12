package e2e

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Bad input (issue 3, "Bad input"): each refusal with Docker's status and
// wording, and the abuse cases that must not hurt the daemon.

// TestNoSuchContainer: every container command on a missing name is a 404
// "No such container: <name>".
func TestNoSuchContainer(t *testing.T) {
	requireEnv(t)
	eachCLI(t, func(t *testing.T, c *CLI) {
		missing := "e2e-missing-" + uniq()
		for _, args := range [][]string{
			{"start", missing}, {"stop", missing}, {"kill", missing}, {"restart", missing}, {"pause", missing},
			{"unpause", missing}, {"rm", missing}, {"logs", missing}, {"wait", missing}, {"exec", missing, "true"},
			{"container", "inspect", missing}, {"attach", missing}, {"rename", missing, missing + "-new"},
		} {
			// Docker: Error response from daemon: No such container: <name>
			c.fail(args, "No such container: "+missing)
		}
	})
}

// TestCreateRefusals: what POST /containers/create refuses, with Docker's
// status and message, and the CLI's exit code 125.
func TestCreateRefusals(t *testing.T) {
	busybox(t)
	a := env.d.api()
	for _, tc := range []struct {
		what, body string
		status     int
		msg        string
	}{
		// dockerd 20.10 answers these with these exact messages.
		{"unknown capability (add)", `{"Image":"busybox:latest","HostConfig":{"CapAdd":["BOGUS"]}}`, 400, `invalid CapAdd: unknown capability: "CAP_BOGUS"`},
		{"unknown capability (drop)", `{"Image":"busybox:latest","HostConfig":{"CapDrop":["CAP_BOGUS"]}}`, 400, `invalid CapDrop: unknown capability: "CAP_BOGUS"`},
		{"unknown mount type", `{"Image":"busybox:latest","HostConfig":{"Mounts":[{"Type":"foo","Target":"/x"}]}}`, 400, `invalid mount config for type "foo": mount type unknown`},
		{"relative mount target", `{"Image":"busybox:latest","HostConfig":{"Mounts":[{"Type":"volume","Target":"x"}]}}`, 400, `invalid mount config for type "volume": invalid mount path: 'x' mount path must be absolute`},
		{"bind without source", `{"Image":"busybox:latest","HostConfig":{"Mounts":[{"Type":"bind","Target":"/x"}]}}`, 400, `invalid mount config for type "bind": field Source must not be empty`},
		{"host port out of range", `{"Image":"busybox:latest","ExposedPorts":{"80/tcp":{}},"HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"99999"}]}}}`, 400, `invalid port specification: "99999"`},
		{"container port not a number", `{"Image":"busybox:latest","HostConfig":{"PortBindings":{"abc/tcp":[{"HostPort":"80"}]}}}`, 400, `invalid port specification: "abc"`},
		{"memory below 6MB", `{"Image":"busybox:latest","HostConfig":{"Memory":4000000}}`, 400, "Minimum memory limit allowed is 6MB"},
		{"bad restart policy", `{"Image":"busybox:latest","HostConfig":{"RestartPolicy":{"Name":"bogus"}}}`, 400, "invalid restart policy 'bogus'"},
	} {
		t.Run(strings.ReplaceAll(tc.what, " ", "_"), func(t *testing.T) {
			r := a.call(t, "POST", "/containers/create", []byte(tc.body), nil)
			if r.Status == 201 {
				var out struct{ Id string }
				r.decode(t, &out)
				rmCtr(t, a, out.Id)
			}
			r.wantError(t, tc.status, tc.msg)
		})
	}

	// An invalid Binds entry: the same message everywhere; dockerd 20.10
	// answers it with a 500 (a daemon bug, fixed in later Docker), berth
	// with the 400 it is.
	r := a.call(t, "POST", "/containers/create", []byte(`{"Image":"busybox:latest","HostConfig":{"Binds":["/a:b"]}}`), nil)
	if r.Status == 201 {
		var out struct{ Id string }
		r.decode(t, &out)
		rmCtr(t, a, out.Id)
	}
	status := 400
	if env.target == "docker" {
		status = 500
	}
	r.wantError(t, status, `invalid volume specification: '/a:b'`, "mount path must be absolute")

	eachCLI(t, func(t *testing.T, c *CLI) {
		name := ctrName(t, "refused")
		// Docker: docker: Error response from daemon: invalid CapAdd: unknown capability: "CAP_BOGUS"
		c.run("run", "--name", name, "--cap-add", "BOGUS", "busybox", "true").wantCode(t, c.name, 125, `invalid CapAdd: unknown capability: "CAP_BOGUS"`)
		c.run("run", "--name", name, "-v", "/a:b", "busybox", "true").wantCode(t, c.name, 125, "invalid volume specification: '/a:b'")
		c.run("run", "--name", name, "--mount", "type=foo,dst=/x", "busybox", "true").wantCode(t, c.name, 125, `invalid mount config for type "foo": mount type unknown`)
		// The CLI checks -p itself: docker: invalid hostPort: 99999
		c.run("run", "--name", name, "-p", "99999:80", "busybox", "true").wantCode(t, c.name, 125, "invalid hostPort: 99999")
		if ctrExists(t, a, name) {
			t.Errorf("%s: a refused run left the container %s", c.name, name)
		}
	})
}

// fdMark is printed by a process that was allowed to start.
const fdMark = "E2E-STARTED"

// TestWorkdirProcSelfFd: a working directory of /proc/self/fd/N (the
// runc CVE-2024-21626 pattern) never leaves a process outside the
// container's root, whether it comes from -w, exec -w or the image.
// dockerd 20.10 with Debian's runc 1.1.5+ds1-1+deb12u1 (patched): create
// answers 201, start answers 400 "failed to create shim task: OCI runtime
// create failed: … error during container init: mkdir /proc/self/fd/7: not
// a directory" (or "no such file or directory"), State stays "created"
// with ExitCode 127; exec create answers 201 and the start fails: "OCI
// runtime exec failed: … chdir to cwd ("/proc/self/fd/N") set in
// config.json failed", exit 126. The process never runs. berth refuses
// the create (and the exec create) with a 400.
func TestWorkdirProcSelfFd(t *testing.T) {
	busybox(t)
	a := env.d.api()
	cmd := []string{"sh", "-c", "echo " + fdMark + "; pwd; ls ../../../"}

	// -w through the API, N = 3..20.
	for n := 3; n <= 20; n++ {
		wd := "/proc/self/fd/" + strconv.Itoa(n)
		name := ctrName(t, "fdwd")
		body := fmt.Sprintf(`{"Image":"busybox:latest","WorkingDir":%q,"Cmd":["sh","-c","echo %s; pwd; ls ../../../"]}`, wd, fdMark)
		r := a.call(t, "POST", "/containers/create?name="+name, []byte(body), nil)
		switch {
		case r.Status == 400:
			continue // refused up front (berth)
		case r.Status != 201:
			t.Errorf("create with WorkingDir %s: %s, want 400 or 201", wd, r)
			continue
		}
		if env.target == "berth" {
			t.Errorf("berth: create with WorkingDir %s: %s, want a 400", wd, r)
		}
		s := a.call(t, "POST", "/containers/"+name+"/start", nil, nil)
		if s.Status == 204 {
			waitExited(t, a, name, 30*time.Second)
		}
		if logs := a.call(t, "GET", "/containers/"+name+"/logs?stdout=1&stderr=1", nil, nil); strings.Contains(string(logs.Body), fdMark) {
			t.Errorf("WorkingDir %s: the process ran (start %d): %q", wd, s.Status, clip(string(logs.Body)))
		}
	}

	// exec -w through the API on a running container.
	_, id := runDetached(t, a, "fdexec", nil, "sleep", "300")
	waitRunning(t, a, id)
	for n := 3; n <= 20; n++ {
		wd := "/proc/self/fd/" + strconv.Itoa(n)
		body := fmt.Sprintf(`{"AttachStdout":true,"AttachStderr":true,"WorkingDir":%q,"Cmd":["sh","-c","echo %s; pwd; ls ../../../"]}`, wd, fdMark)
		r := a.call(t, "POST", "/containers/"+id+"/exec", []byte(body), nil)
		if r.Status == 400 {
			continue
		}
		if r.Status != 201 {
			t.Errorf("exec create with WorkingDir %s: %s, want 400 or 201", wd, r)
			continue
		}
		if env.target == "berth" {
			t.Errorf("berth: exec create with WorkingDir %s: %s, want a 400", wd, r)
		}
		var e struct{ Id string }
		r.decode(t, &e)
		h := a.hijack(t, "POST", "/exec/"+e.Id+"/start", []byte(`{"Detach":false,"Tty":false}`))
		h.SetReadDeadline(time.Now().Add(30 * time.Second))
		out, _ := io.ReadAll(h)
		h.Close()
		if strings.Contains(string(out), fdMark) {
			t.Errorf("exec WorkingDir %s: the process ran: %q", wd, clip(string(out)))
		}
	}

	// The image's WORKDIR.
	img := "e2e/fdworkdir:" + uniq()
	imageWithConfig(t, a, "busybox:latest", img, func(c map[string]any) { c["WorkingDir"] = "/proc/self/fd/7" })

	eachCLI(t, func(t *testing.T, c *CLI) {
		for _, n := range []string{"3", "7", "8"} {
			r := c.run(append([]string{"run", "--name", ctrName(t, "fdcli"), "-w", "/proc/self/fd/" + n, "busybox"}, cmd...)...)
			r.wantCode(t, c.name, 125)
			if strings.Contains(r.Stdout, fdMark) {
				t.Errorf("%s run -w /proc/self/fd/%s: the process ran: %q", c.name, n, r.Stdout)
			}
			r = c.run(append([]string{"exec", "-w", "/proc/self/fd/" + n, id}, cmd...)...)
			if r.Code == 0 || strings.Contains(r.Stdout, fdMark) {
				t.Errorf("%s exec -w /proc/self/fd/%s: exit %d, output %q; the process must not run", c.name, n, r.Code, r.Stdout)
			}
		}
		r := c.run(append([]string{"run", "--name", ctrName(t, "fdimg"), img}, cmd...)...)
		r.wantCode(t, c.name, 125)
		if strings.Contains(r.Stdout, fdMark) {
			t.Errorf("%s run of an image with WORKDIR /proc/self/fd/7: the process ran: %q", c.name, r.Stdout)
		}
	})
	onlyBerth(t, "dockerd accepts the create and fails at start (400 with runc's mkdir error); berth refuses at create")
	for _, body := range []string{
		`{"Image":"busybox:latest","WorkingDir":"/proc/self/fd/7"}`,
		`{"Image":"busybox:latest","WorkingDir":"/proc/self/fd/12/"}`,
		`{"Image":"busybox:latest","WorkingDir":"/proc/thread-self/fd/9"}`,
		`{"Image":"` + img + `"}`,
	} {
		r := a.call(t, "POST", "/containers/create", []byte(body), nil)
		if r.Status == 201 {
			var out struct{ Id string }
			r.decode(t, &out)
			rmCtr(t, a, out.Id)
		}
		r.wantError(t, 400)
	}
}

// TestAttachClientGone: an attach client killed mid-stream leaves the
// container running, its log advancing, and the daemon answering.
func TestAttachClientGone(t *testing.T) {
	busybox(t)
	a := env.d.api()
	c := cli(t, "docker")
	name, _ := runDetached(t, a, "chatty", nil, "sh", "-c", "i=0; while :; do echo line-$i; i=$((i+1)); sleep 0.02; done")
	waitLog(t, a, name, "line-1\n")
	at := c.start("attach", name)
	if !at.waitOutput("line-", 20*time.Second) {
		t.Fatalf("attach shows nothing: %q", at.output())
	}
	at.kill()
	n0 := lastLogLine(t, a, name)
	if !poll(10*time.Second, func() bool { return lastLogLine(t, a, name) > n0+10 }) {
		t.Errorf("after the attach client was killed the log stopped at line-%d", n0)
	}
	if ci := inspectCtr(t, a, name); !ci.State.Running {
		t.Errorf("after the attach client was killed the container is %s", ci.State.Status)
	}
	// A raw client that closes its socket mid-stream, five times.
	for i := 0; i < 5; i++ {
		h := a.hijack(t, "POST", "/containers/"+name+"/attach?stream=1&stdout=1&stderr=1", nil)
		buf := make([]byte, 64)
		h.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(h, buf); err != nil {
			t.Fatalf("raw attach: %v", err)
		}
		h.Close()
	}
	n1 := lastLogLine(t, a, name)
	if !poll(10*time.Second, func() bool { return lastLogLine(t, a, name) > n1+10 }) {
		t.Errorf("after raw attach clients went away the log stopped at line-%d", n1)
	}
	c.ok("stop", "-t", "1", name)
}

var logLineRE = regexp.MustCompile(`(?:flood|line)-(\d+)`)

// lastLogLine is the number in the last "line-N"/"flood-N" of the log.
func lastLogLine(t *testing.T, a *apiClient, ref string) int {
	t.Helper()
	r := a.call(t, "GET", "/containers/"+ref+"/logs?stdout=1&tail=1", nil, nil)
	m := logLineRE.FindAllSubmatch(r.Body, -1)
	if len(m) == 0 {
		return -1
	}
	n, _ := strconv.Atoi(string(m[len(m)-1][1]))
	return n
}

// TestFloodNonReadingClient: a container flooding its output with an
// attached client that never reads: the daemon keeps answering (and, on
// berth, the container is not held up).
func TestFloodNonReadingClient(t *testing.T) {
	busybox(t)
	a := env.d.api()
	name, _ := runDetached(t, a, "flood", map[string]any{"HostConfig": map[string]any{"LogConfig": map[string]any{"Type": "json-file", "Config": map[string]string{"max-size": "1m", "max-file": "2"}}}},
		"sh", "-c", "i=0; while :; do echo flood-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done")
	waitLog(t, a, name, "flood-1")
	for i := 0; i < 3; i++ {
		a.hijack(t, "POST", "/containers/"+name+"/attach?stream=1&stdout=1&stderr=1", nil) // never read
	}
	n0 := lastLogLine(t, a, name)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		for _, p := range []string{"/_ping", "/containers/json", "/containers/" + name + "/json", "/containers/" + name + "/logs?stdout=1&tail=1", "/info"} {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			start := time.Now()
			r, err := a.do(ctx, "GET", p, nil, nil)
			cancel()
			if err != nil || r.Status != 200 {
				t.Fatalf("GET %s with a non-reading attach client: %v %v after %s", p, r, err, time.Since(start))
			}
		}
	}
	onlyBerth(t, "dockerd 20.10 stalls the container's output while an attached client does not read (its log stops advancing)")
	if !poll(10*time.Second, func() bool { return lastLogLine(t, a, name) > n0+1000 }) {
		t.Errorf("with a non-reading attach client the container's log stopped at flood-%d", n0)
	}
}
