package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Logs (issue 3, item 7): json-file, stdout/stderr kept apart, -f,
// --tail, --since/--until, -t, raw TTY logs, rotation.

var tsLineRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z (.*)$`)

// TestLogs: stdout and stderr separation, --tail, -t, --since, --until.
func TestLogs(t *testing.T) {
	busybox(t)
	a := env.d.api()
	eachCLI(t, func(t *testing.T, c *CLI) {
		name := ctrName(t, "logs")
		c.run("run", "--name", name, "busybox", "sh", "-c", "echo out1; echo err1 >&2; echo out2; echo err2 >&2; exit 1").wantCode(t, c.name, 1)
		r := c.ok("logs", name)
		if strings.Join(lines(r.Stdout), ",") != "out1,out2" || strings.Join(lines(r.Stderr), ",") != "err1,err2" {
			t.Errorf("%s logs: stdout %q stderr %q, want out1,out2 on stdout and err1,err2 on stderr", c.name, r.Stdout, r.Stderr)
		}
		all := append(lines(r.Stdout), lines(r.Stderr)...)

		r = c.ok("logs", "--tail", "1", name)
		if n := len(lines(r.Stdout)) + len(lines(r.Stderr)); n != 1 {
			t.Errorf("%s logs --tail 1: %d lines (stdout %q stderr %q), want 1", c.name, n, r.Stdout, r.Stderr)
		}
		r = c.ok("logs", "--tail", "0", name)
		if r.Stdout+r.Stderr != "" {
			t.Errorf("%s logs --tail 0: %q %q, want nothing", c.name, r.Stdout, r.Stderr)
		}
		r = c.ok("logs", "--tail", "3", name)
		if n := len(lines(r.Stdout)) + len(lines(r.Stderr)); n != 3 {
			t.Errorf("%s logs --tail 3: %d lines, want 3", c.name, n)
		}

		r = c.ok("logs", "-t", name)
		var got []string
		for _, l := range append(lines(r.Stdout), lines(r.Stderr)...) {
			m := tsLineRE.FindStringSubmatch(l)
			if m == nil {
				t.Errorf("%s logs -t: line %q does not start with an RFC 3339 nano timestamp", c.name, l)
				continue
			}
			got = append(got, m[1])
		}
		if strings.Join(got, ",") != strings.Join(all, ",") {
			t.Errorf("%s logs -t: lines %q, want %q", c.name, got, all)
		}

		future := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
		if r := c.ok("logs", "--since", future, name); r.Stdout+r.Stderr != "" {
			t.Errorf("%s logs --since <in an hour>: %q %q, want nothing", c.name, r.Stdout, r.Stderr)
		}
		if r := c.ok("logs", "--since", "2000-01-01T00:00:00Z", name); len(lines(r.Stdout))+len(lines(r.Stderr)) != 4 {
			t.Errorf("%s logs --since 2000-01-01: stdout %q stderr %q, want all 4 lines", c.name, r.Stdout, r.Stderr)
		}
		if r := c.ok("logs", "--since", "10m", name); len(lines(r.Stdout))+len(lines(r.Stderr)) != 4 {
			t.Errorf("%s logs --since 10m: stdout %q stderr %q, want all 4 lines", c.name, r.Stdout, r.Stderr)
		}
		if r := c.ok("logs", "--until", "2000-01-01T00:00:00Z", name); r.Stdout+r.Stderr != "" {
			t.Errorf("%s logs --until 2000-01-01: %q %q, want nothing", c.name, r.Stdout, r.Stderr)
		}
		missing := "e2e-missing-" + uniq()
		c.fail([]string{"logs", missing}, "No such container: "+missing)
	})

	// The API: stdcopy frames inside the body, one stream at a time.
	name := ctrName(t, "logsapi")
	id := createCtr(t, a, name, map[string]any{"Image": "busybox:latest", "Cmd": []string{"sh", "-c", "echo out1; echo err1 >&2"}})
	startCtr(t, a, id)
	waitExited(t, a, id, 30*time.Second)
	for _, tc := range []struct{ q, out, err string }{
		{"stdout=1&stderr=1", "out1\n", "err1\n"},
		{"stdout=1", "out1\n", ""},
		{"stderr=1", "", "err1\n"},
	} {
		r := a.call(t, "GET", "/containers/"+id+"/logs?"+tc.q, nil, nil).wantStatus(t, 200)
		o, e, err := demux(r.Body)
		if err != nil || o != tc.out || e != tc.err {
			t.Errorf("logs?%s: stdout %q stderr %q (%v), want %q %q in stdcopy frames", tc.q, o, e, err, tc.out, tc.err)
		}
	}
	// dockerd: 400 Bad parameters: you must choose at least one stream
	a.call(t, "GET", "/containers/"+id+"/logs", nil, nil).wantError(t, 400, "Bad parameters: you must choose at least one stream")
}

// TestLogsFollow: -f prints lines as they come and returns when the
// container exits.
func TestLogsFollow(t *testing.T) {
	busybox(t)
	eachCLI(t, func(t *testing.T, c *CLI) {
		name := ctrName(t, "follow")
		gate := t.TempDir() // the test lets the container go on by creating a file
		c.ok("run", "-d", "--name", name, "-v", gate+":/gate", "busybox", "sh", "-c",
			`echo first; while [ ! -e /gate/go ]; do sleep 0.1; done; echo second; echo second-err >&2; sleep 0.5; echo third`)
		f := c.start("logs", "-f", name)
		if !f.waitOutput("first", 20*time.Second) {
			t.Fatalf("%s logs -f: no \"first\" within 20s: %q", c.name, f.output())
		}
		if f.exited(300 * time.Millisecond) {
			t.Fatalf("%s logs -f exited while the container runs: %q", c.name, f.output())
		}
		writeFile(t, gate, "go", nil)
		if !f.exited(30 * time.Second) {
			t.Fatalf("%s logs -f did not return after the container exited: %q", c.name, f.output())
		}
		if f.exitCode() != 0 {
			t.Errorf("%s logs -f: exit %d", c.name, f.exitCode())
		}
		out := f.output()
		for _, s := range []string{"first", "second", "second-err", "third"} {
			if !strings.Contains(out, s+"\n") {
				t.Errorf("%s logs -f: output %q lacks %q", c.name, out, s)
			}
		}
		// -f on an exited container returns at once with everything.
		r := c.ok("logs", "-f", "--tail", "1", name)
		if r.Stdout != "third\n" {
			t.Errorf("%s logs -f --tail 1 of an exited container: %q, want third", c.name, r.Stdout)
		}
	})
}

// TestLogsTTY: a TTY container's log is the raw terminal stream (CRLF,
// stderr merged into stdout), not framed.
func TestLogsTTY(t *testing.T) {
	busybox(t)
	a := env.d.api()
	eachCLI(t, func(t *testing.T, c *CLI) {
		name := ctrName(t, "logstty")
		c.ok("run", "-d", "-t", "--name", name, "busybox", "sh", "-c", "echo tty-out; echo tty-err >&2")
		waitExited(t, a, name, 30*time.Second)
		r := c.ok("logs", name)
		if r.Stdout != "tty-out\r\ntty-err\r\n" || r.Stderr != "" {
			t.Errorf("%s logs of a TTY container: stdout %q stderr %q, want \"tty-out\\r\\ntty-err\\r\\n\" on stdout", c.name, r.Stdout, r.Stderr)
		}
		body := a.call(t, "GET", "/containers/"+name+"/logs?stdout=1&stderr=1", nil, nil).wantStatus(t, 200).Body
		if string(body) != "tty-out\r\ntty-err\r\n" {
			t.Errorf("API logs of a TTY container: %q, want the raw bytes without frames", body)
		}
	})
}

// TestLogRotation: --log-opt max-size/max-file bound the files on disk;
// logs still reads what is kept, oldest first.
func TestLogRotation(t *testing.T) {
	busybox(t)
	a := env.d.api()
	eachCLI(t, func(t *testing.T, c *CLI) {
		name := ctrName(t, "rotate")
		c.ok("run", "--name", name, "--log-opt", "max-size=1k", "--log-opt", "max-file=2", "busybox", "sh", "-c",
			`i=0; while [ $i -lt 200 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done`)
		ci := inspectCtr(t, a, name)
		if ci.HostConfig.LogConfig.Type != "json-file" || ci.HostConfig.LogConfig.Config["max-size"] != "1k" || ci.HostConfig.LogConfig.Config["max-file"] != "2" {
			t.Errorf("inspect LogConfig %+v, want json-file with max-size 1k and max-file 2", ci.HostConfig.LogConfig)
		}
		r := c.ok("logs", name)
		ls := lines(r.Stdout)
		if len(ls) < 5 || len(ls) >= 200 {
			t.Fatalf("%s logs after rotation: %d lines, want the last few (max-size=1k, max-file=2)", c.name, len(ls))
		}
		first := -1
		for i, l := range ls {
			var n int
			if _, err := fmt.Sscanf(l, "line-%d-", &n); err != nil {
				t.Fatalf("%s logs after rotation: line %q is damaged", c.name, l)
			}
			if i == 0 {
				first = n
			} else if n != first+i {
				t.Fatalf("%s logs after rotation: lines are not consecutive at %q (first %d)", c.name, l, first)
			}
		}
		if !strings.HasPrefix(ls[len(ls)-1], "line-199-") {
			t.Errorf("%s logs after rotation: last line %q, want line-199", c.name, ls[len(ls)-1])
		}
		files, _ := filepath.Glob(ci.LogPath + "*")
		var total int64
		for _, f := range files {
			if f != ci.LogPath && f != ci.LogPath+".1" {
				t.Errorf("rotation with max-file=2 left %s", f)
			}
			if st, err := os.Stat(f); err == nil {
				total += st.Size()
				if st.Size() > 1024+512 {
					t.Errorf("log file %s is %d bytes, want about max-size=1k", f, st.Size())
				}
			}
		}
		if total > 2*(1024+512) {
			t.Errorf("log files total %d bytes, want at most about 2 x 1k", total)
		}
	})
}
