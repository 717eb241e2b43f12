package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// rawAPI sends one request over a fresh connection to d's socket exactly
// as given (no Content-Type unless ct is set; "-" sends none) and returns
// the answer.
func rawAPI(t *testing.T, sock, method, path, ct, body string) (int, string) {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: api\r\nConnection: close\r\n", method, path)
	if ct != "-" {
		fmt.Fprintf(&b, "Content-Type: %s\r\n", ct)
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	// A daemon may answer (and hang up) before the body is all sent: the
	// answer is what counts.
	_, werr := io.WriteString(c, b.String())
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil && werr != nil {
		t.Fatalf("%s %s: %v (writing: %v)", method, path, err, werr)
	}
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(rb))
}

// TestJSONContentType (issue 12, item 9): on the endpoints where dockerd
// insists on JSON, a body with another Content-Type, or with none, is
// refused with dockerd's 400 before anything happens; a JSON type with
// parameters is fine.
func TestJSONContentType(t *testing.T) {
	d := requireEnv(t)
	busybox(t)
	a := d.api()
	_, id := runDetached(t, a, "ctype", nil, "sleep", "300")
	var ex struct{ Id string }
	a.call(t, "POST", "/containers/"+id+"/exec", []byte(`{"Cmd":["true"]}`), nil).wantStatus(t, 201).decode(t, &ex)
	before := a.call(t, "GET", "/containers/json?all=1", nil, nil).Body
	for _, ep := range []struct{ path, body string }{
		{"/containers/create", `{"Image":"busybox","Cmd":["true"]}`},
		{"/containers/" + id + "/exec", `{"Cmd":["true"]}`},
		{"/exec/" + ex.Id + "/start", `{"Detach":true}`},
		{"/containers/" + id + "/update", `{"CpuShares":512}`},
		{"/commit?container=" + id, `{}`},
		{"/networks/create", `{"Name":"e2e-ctype"}`},
		{"/networks/e2e-no-such-net/connect", `{"Container":"x"}`},
		{"/networks/e2e-no-such-net/disconnect", `{"Container":"x"}`},
		{"/volumes/create", `{"Name":"e2e-ctype"}`},
	} {
		for _, ct := range []string{"text/plain", "-", "application/x-www-form-urlencoded"} {
			st, body := rawAPI(t, d.sock, "POST", "/v1.41"+ep.path, ct, ep.body)
			shown := ct
			if ct == "-" {
				shown = ""
			}
			if want := fmt.Sprintf("Content-Type specified (%s) must be 'application/json'", shown); st != 400 || !strings.Contains(body, want) {
				t.Errorf("POST %s with Content-Type %q: %d %s; want 400 %q", ep.path, shown, st, body, want)
			}
		}
	}
	if after := a.call(t, "GET", "/containers/json?all=1", nil, nil).Body; string(after) != string(before) {
		t.Errorf("refused requests changed the containers:\nbefore %s\nafter  %s", before, after)
	}
	a.call(t, "GET", "/volumes/e2e-ctype", nil, nil).wantStatus(t, 404)
	// What clients send: JSON with a charset.
	st, body := rawAPI(t, d.sock, "POST", "/v1.41/containers/"+id+"/exec", "application/json; charset=utf-8", `{"Cmd":["true"]}`)
	if st != 201 {
		t.Errorf("exec create with application/json; charset=utf-8: %d %s", st, body)
	}
	// No body, no type: the check lets it by (what follows is the
	// endpoint's own business).
	if st, body := rawAPI(t, d.sock, "POST", "/v1.41/containers/"+id+"/update", "-", ""); strings.Contains(body, "Content-Type") {
		t.Errorf("update with neither a body nor a Content-Type: %d %s; the Content-Type check applies to bodies only", st, body)
	}
}

// TestRequestBodyLimits (issue 12, item 9): a JSON body over 10 MiB is
// refused with 413; a body that trickles in (a byte a second) is cut
// instead of holding its connection; neither changes anything. dockerd
// 20.10 reads any body, at any pace.
func TestRequestBodyLimits(t *testing.T) {
	d := requireEnv(t)
	onlyBerth(t, "dockerd 20.10 has no limit on a JSON body's size or pace")
	a := d.api()
	before := a.call(t, "GET", "/containers/json?all=1", nil, nil).Body
	big := `{"Image":"busybox","Labels":{"x":"` + strings.Repeat("a", 11<<20) + `"}}`
	if st, body := rawAPI(t, d.sock, "POST", "/v1.50/containers/create", "application/json", big); st != 413 || !strings.Contains(body, "request body too large") {
		t.Errorf("create with an 11 MiB body: %d %.200s; want 413", st, body)
	}

	c, err := net.Dial("unix", d.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := `{"Image":"busybox","Cmd":["true"]}`
	fmt.Fprintf(c, "POST /v1.50/containers/create HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
	start := time.Now()
	answered := make(chan string, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			answered <- "connection: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		answered <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	var got string
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for i := 0; got == ""; i++ {
		select {
		case got = <-answered:
		case <-tick.C:
			if i < len(body) {
				c.Write([]byte{body[i]}) // errors once the daemon hangs up: fine
			}
			if time.Since(start) > 90*time.Second {
				t.Fatalf("a body sent at a byte a second is still being read after %s", time.Since(start).Round(time.Second))
			}
		}
	}
	t.Logf("a byte a second: cut after %s: %s", time.Since(start).Round(time.Second), got)
	if !strings.HasPrefix(got, "408 ") || time.Since(start) > 45*time.Second {
		t.Errorf("a body sent at a byte a second: %q after %s; want 408 within 45 s", got, time.Since(start).Round(time.Second))
	}
	if after := a.call(t, "GET", "/containers/json?all=1", nil, nil).Body; string(after) != string(before) {
		t.Errorf("refused requests changed the containers:\nbefore %s\nafter  %s", before, after)
	}
}

// TestArchiveBadPath (issue 12, item 9): a path with a NUL byte, or too
// long for a file system, is the client's mistake: 400, with nothing of
// the host's paths in the answer. dockerd answers 500 and names its
// overlay directories.
func TestArchiveBadPath(t *testing.T) {
	d := requireEnv(t)
	onlyBerth(t, "dockerd 20.10 answers 500 (lstat <its merged dir>/...: invalid argument / file name too long)")
	busybox(t)
	a := d.api()
	_, id := runDetached(t, a, "badpath", nil, "sleep", "300")
	for _, p := range []string{"/etc/a\x00b", "/" + strings.Repeat("a", 300), "/tmp/" + strings.Repeat("abcdefgh/", 600)} {
		for _, m := range []string{"HEAD", "GET", "PUT"} {
			var body []byte
			if m == "PUT" {
				body = []byte{}
			}
			r := a.call(t, m, "/containers/"+id+"/archive?path="+url.QueryEscape(p), body, http.Header{"Content-Type": {"application/x-tar"}})
			if r.Status != 400 || strings.Contains(string(r.Body), d.dataRoot) || strings.Contains(string(r.Body), d.execRoot) {
				t.Errorf("%s archive?path=<%d bytes, NUL %v>: %d %.200s; want 400 naming no host path", m, len(p), strings.ContainsRune(p, 0), r.Status, r.Body)
			}
		}
	}
}

// TestExecStartErrorInStream (issue 12, item 9): an exec that cannot start
// reports why in its stream, framed as the client reads it, and exits 126,
// as with dockerd: a working directory that is missing (runc's refusal), or
// (berth's own refusal, after the stream is open) one that leads into /proc
// through a symlink, the CVE-2024-21626 way out. The docker CLI never sees
// a bare message where a frame header belongs ("Unrecognized input header:
// 116", the "t" of "the working directory...").
func TestExecStartErrorInStream(t *testing.T) {
	requireEnv(t)
	busybox(t)
	eachCLI(t, func(t *testing.T, c *CLI) {
		name := ctrName(t, "execcwd")
		c.ok("run", "-d", "--name", name, "busybox", "sh", "-c", "ln -s /proc/self/fd /pfd && exec sleep 300")
		if !poll(cliTimeout, func() bool { return c.run("exec", name, "test", "-L", "/pfd").Code == 0 }) {
			t.Fatalf("the symlink never appeared in %s", name)
		}
		r := c.run("exec", "-w", "/no/such/dir", name, "true")
		if out := r.Stdout + r.Stderr; strings.Contains(out, "Unrecognized input header") || !strings.Contains(out, "no such file or directory") || r.Code != 126 {
			t.Errorf("%s exec -w /no/such/dir: exit %d, stdout %q, stderr %q; want 126 and the reason", c.name, r.Code, r.Stdout, r.Stderr)
		}
		if env.target != "berth" {
			return // dockerd's runc 1.1.5 lets the exec run in the container's /proc/self/fd
		}
		r = c.run("exec", "-w", "/pfd", name, "true")
		if out := r.Stdout + r.Stderr; strings.Contains(out, "Unrecognized input header") || !strings.Contains(out, "the working directory '/pfd' is invalid") || r.Code != 126 {
			t.Errorf("%s exec -w /pfd (a symlink into /proc): exit %d, stdout %q, stderr %q; want 126 and the reason", c.name, r.Code, r.Stdout, r.Stderr)
		}
	})
}

// TestNetworkNameWithSlash (issue 12, item 9): a network whose name holds
// "/" can be inspected and removed by name, through the docker CLI (which
// sends the name as is) and through the API with the name escaped.
func TestNetworkNameWithSlash(t *testing.T) {
	_, nd := newNetTarget(t)
	a := nd.api()
	c := cliFor(t, "docker", nd.daemon)
	for i, how := range []string{"cli", "escaped"} {
		name := "e2e/slash-" + randSuffix()
		c.ok("network", "create", name)
		nd.rmNetLater(t, url.PathEscape(name))
		c.ok("network", "inspect", "--format", "{{.Name}}", name).wantOut(t, c.name, name)
		if i == 0 {
			c.ok("network", "rm", name).wantOut(t, c.name, name)
		} else {
			a.call(t, "DELETE", "/networks/"+url.PathEscape(name), nil, nil).wantStatus(t, 204)
		}
		a.call(t, "GET", "/networks/"+url.PathEscape(name), nil, nil).wantStatus(t, 404)
		if ls := c.ok("network", "ls", "--format", "{{.Name}}").Stdout; strings.Contains(ls, name) {
			t.Errorf("removed (%s) but still listed: %s", how, ls)
		}
	}
}
