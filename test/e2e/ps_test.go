package e2e

import (
	"encoding/json"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	psHeaderRE = regexp.MustCompile(`^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES$`)
	// Docker's human durations (go-units HumanDuration).
	humanDur      = `(Less than a second|1 second|\d+ seconds|About a minute|\d+ minutes)`
	statusUpRE    = regexp.MustCompile(`^Up ` + humanDur + `$`)
	statusExit3RE = regexp.MustCompile(`^Exited \(3\) ` + humanDur + ` ago$`)
	sizeRE        = regexp.MustCompile(`^[0-9.]+(B|kB|MB) \(virtual [0-9.]+(B|kB|MB)\)$`)
)

// psFixture makes three labelled containers: created, exited with 3 and
// running, in that order.
type psFixture struct {
	label                      string
	created, exited, running   string // names
	createdID, exitedID, runID string
}

func newPSFixture(t *testing.T, c *CLI) psFixture {
	t.Helper()
	a := env.d.api()
	f := psFixture{label: "e2e.ps=" + uniq(), created: ctrName(t, "pscreated"), exited: ctrName(t, "psexited"), running: ctrName(t, "psrunning")}
	c.ok("create", "-l", f.label, "--name", f.created, "busybox", "true")
	c.run("run", "-l", f.label, "--name", f.exited, "busybox", "sh", "-c", "exit 3").wantCode(t, c.name, 3)
	c.ok("run", "-d", "-l", f.label, "--name", f.running, "busybox", "sh", "-c", "dd if=/dev/zero of=/f bs=1k count=1500 2>/dev/null; echo written; sleep 300")
	waitLog(t, a, f.running, "written")
	f.createdID, f.exitedID, f.runID = inspectCtr(t, a, f.created).ID, inspectCtr(t, a, f.exited).ID, inspectCtr(t, a, f.running).ID
	return f
}

// TestPs: the table, -a, -q, -n, -l, --no-trunc, -s, filters, --format
// and Docker's status strings.
func TestPs(t *testing.T) {
	busybox(t)
	eachCLI(t, func(t *testing.T, c *CLI) {
		f := newPSFixture(t, c)
		byLabel := []string{"--filter", "label=" + f.label}
		ps := func(args ...string) []string {
			t.Helper()
			return lines(c.ok(append(append([]string{"ps"}, args...), byLabel...)...).Stdout)
		}

		// The table: only running containers without -a.
		tbl := ps()
		if len(tbl) == 0 || !psHeaderRE.MatchString(tbl[0]) {
			t.Fatalf("%s ps: first line %q, want the header CONTAINER ID IMAGE COMMAND CREATED STATUS PORTS NAMES", c.name, first1(tbl))
		}
		if len(tbl) != 2 || !strings.HasPrefix(tbl[1], f.runID[:12]+"   busybox   ") || !strings.HasSuffix(tbl[1], f.running) {
			t.Errorf("%s ps: rows %q, want only %s (%s)", c.name, tbl[1:], f.running, f.runID[:12])
		}
		all := ps("-a")
		if len(all) != 4 {
			t.Fatalf("%s ps -a: %d rows, want 3: %q", c.name, len(all)-1, all)
		}
		// Newest first; docker quotes the command and its arguments.
		for i, want := range []struct{ name, id, cmd string }{
			{f.running, f.runID, `"sh -c 'dd if=/dev/z…"`},
			{f.exited, f.exitedID, `"sh -c 'exit 3'"`},
			{f.created, f.createdID, `"true"`},
		} {
			row := all[i+1]
			if !strings.HasPrefix(row, want.id[:12]+" ") || !strings.HasSuffix(row, " "+want.name) || !strings.Contains(row, "   "+want.cmd+"   ") {
				t.Errorf("%s ps -a: row %d %q, want %s … %s … %s", c.name, i+1, row, want.id[:12], want.cmd, want.name)
			}
		}

		st := map[string]string{}
		for _, l := range ps("-a", "--format", "{{.Names}}|{{.Status}}|{{.State}}|{{.Labels}}|{{.Image}}") {
			n, rest, _ := strings.Cut(l, "|")
			st[n] = rest
		}
		if s := st[f.created]; s != "Created|created|"+f.label+"|busybox" {
			t.Errorf("%s ps --format: created container %q, want Created|created|%s|busybox", c.name, s, f.label)
		}
		if s := strings.Split(st[f.exited], "|"); len(s) != 4 || !statusExit3RE.MatchString(s[0]) || s[1] != "exited" {
			t.Errorf("%s ps --format: exited container %q, want \"Exited (3) … ago|exited\"", c.name, st[f.exited])
		}
		if s := strings.Split(st[f.running], "|"); len(s) != 4 || !statusUpRE.MatchString(s[0]) || s[1] != "running" {
			t.Errorf("%s ps --format: running container %q, want \"Up …|running\"", c.name, st[f.running])
		}

		// -q, --no-trunc, -n, -l.
		wantIDs := func(args []string, ids ...string) {
			t.Helper()
			got := ps(args...)
			if strings.Join(got, ",") != strings.Join(ids, ",") {
				t.Errorf("%s ps %s: %q, want %q", c.name, strings.Join(append(args, byLabel...), " "), got, ids)
			}
		}
		wantIDs([]string{"-q"}, f.runID[:12])
		wantIDs([]string{"-aq"}, f.runID[:12], f.exitedID[:12], f.createdID[:12])
		wantIDs([]string{"-a", "-q", "--no-trunc"}, f.runID, f.exitedID, f.createdID)
		wantIDs([]string{"-q", "-n", "2"}, f.runID[:12], f.exitedID[:12])
		wantIDs([]string{"-q", "-l"}, f.runID[:12])

		// Filters (combined with the label filter: AND across keys).
		wantIDs([]string{"-aq", "--filter", "status=exited"}, f.exitedID[:12])
		wantIDs([]string{"-aq", "--filter", "status=created"}, f.createdID[:12])
		wantIDs([]string{"-aq", "--filter", "status=running"}, f.runID[:12])
		wantIDs([]string{"-aq", "--filter", "status=created", "--filter", "status=exited"}, f.exitedID[:12], f.createdID[:12])
		wantIDs([]string{"-aq", "--filter", "exited=3"}, f.exitedID[:12])
		wantIDs([]string{"-aq", "--filter", "exited=0"})
		wantIDs([]string{"-aq", "--filter", "name=" + f.exited}, f.exitedID[:12])
		wantIDs([]string{"-aq", "--filter", "id=" + f.createdID[:10]}, f.createdID[:12])
		wantIDs([]string{"-aq", "--filter", "ancestor=busybox"}, f.runID[:12], f.exitedID[:12], f.createdID[:12])
		wantIDs([]string{"-aq", "--filter", "ancestor=alpine:3.18"})
		if got := lines(c.ok("ps", "-aq", "--filter", "label=e2e.ps=nope-"+uniq()).Stdout); len(got) != 0 {
			t.Errorf("%s ps --filter label=<no match>: %q", c.name, got)
		}
		// Docker: Error response from daemon: Invalid filter 'bogus'
		c.fail([]string{"ps", "--filter", "bogus=1"}, "Invalid filter 'bogus'")

		// -s: the writable layer's size and the virtual size.
		for _, l := range ps("-s", "--format", "{{.Size}}") {
			if !sizeRE.MatchString(l) || !strings.HasPrefix(l, "1.5") {
				t.Errorf("%s ps -s: size %q, want about 1.5MB written (virtual …)", c.name, l)
			}
		}

		// --format '{{json .}}'.
		js := ps("--format", "{{json .}}")
		if len(js) != 1 {
			t.Fatalf("%s ps --format json: %q", c.name, js)
		}
		var row map[string]any
		if err := json.Unmarshal([]byte(js[0]), &row); err != nil {
			t.Fatalf("%s ps --format '{{json .}}': %v: %s", c.name, err, js[0])
		}
		for k, v := range map[string]string{"ID": f.runID[:12], "Image": "busybox", "Names": f.running, "State": "running", "Labels": f.label} {
			if row[k] != v {
				t.Errorf("%s ps --format json: %s = %v, want %q", c.name, k, row[k], v)
			}
		}
	})
}

// psEntry is one element of GET /containers/json.
type psEntry struct {
	ID         string            `json:"Id"`
	Names      []string          `json:"Names"`
	Image      string            `json:"Image"`
	ImageID    string            `json:"ImageID"`
	Command    string            `json:"Command"`
	Created    int64             `json:"Created"`
	State      string            `json:"State"`
	Status     string            `json:"Status"`
	Labels     map[string]string `json:"Labels"`
	SizeRw     *int64            `json:"SizeRw"`
	SizeRootFs *int64            `json:"SizeRootFs"`
	Ports      []any             `json:"Ports"`
	Mounts     []any             `json:"Mounts"`
	HostConfig *struct {
		NetworkMode string
	} `json:"HostConfig"`
	NetworkSettings *struct {
		Networks map[string]any
	} `json:"NetworkSettings"`
}

// TestPsAPI: GET /containers/json fields and filters.
func TestPsAPI(t *testing.T) {
	busybox(t)
	a := env.d.api()
	f := newPSFixture(t, cli(t, "docker"))
	bb := inspectImage(t, a, "busybox:latest")
	list := func(q url.Values) []psEntry {
		t.Helper()
		var out []psEntry
		a.call(t, "GET", "/containers/json?"+q.Encode(), nil, nil).wantStatus(t, 200).decode(t, &out)
		return out
	}
	filt := func(kv ...string) string {
		m := map[string][]string{"label": {f.label}}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = append(m[kv[i]], kv[i+1])
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	got := list(url.Values{"all": {"1"}, "size": {"1"}, "filters": {filt()}})
	if len(got) != 3 {
		t.Fatalf("containers/json?all=1 with the label: %d entries, want 3", len(got))
	}
	e := got[0]
	if e.ID != f.runID || strings.Join(e.Names, ",") != "/"+f.running || e.Image != "busybox" || e.ImageID != bb.ID || e.State != "running" || !statusUpRE.MatchString(e.Status) {
		t.Errorf("newest entry %+v, want %s /%s busybox %s running Up …", e, f.runID, f.running, bb.ID)
	}
	if e.Command != "sh -c 'dd if=/dev/zero of=/f bs=1k count=1500 2>/dev/null; echo written; sleep 300'" {
		t.Errorf("Command %q, want Docker's quoting: sh -c 'dd if=… sleep 300'", e.Command)
	}
	if time.Since(time.Unix(e.Created, 0)) > 5*time.Minute || e.Created > time.Now().Unix()+5 {
		t.Errorf("Created %d is not a recent Unix time", e.Created)
	}
	if e.SizeRw == nil || *e.SizeRw < 1500*1024 || *e.SizeRw > 1600*1024 || e.SizeRootFs == nil || *e.SizeRootFs < *e.SizeRw+bb.Size {
		t.Errorf("size=1: SizeRw %s SizeRootFs %s, want about 1536000 and at least that plus the image's %d", i64(e.SizeRw), i64(e.SizeRootFs), bb.Size)
	}
	if e.Ports == nil || e.Mounts == nil || e.HostConfig == nil || e.NetworkSettings == nil || e.Labels["e2e.ps"] == "" {
		t.Errorf("entry lacks Docker's fields (Ports, Mounts, HostConfig, NetworkSettings, Labels): %+v", e)
	}
	if got[1].Command != "sh -c 'exit 3'" || got[2].Command != "true" || !statusExit3RE.MatchString(got[1].Status) || got[2].Status != "Created" {
		t.Errorf("entries: %q %q / %q %q, want sh -c 'exit 3' Exited (3) … ago / true Created", got[1].Command, got[1].Status, got[2].Command, got[2].Status)
	}
	if got := list(url.Values{"filters": {filt()}}); len(got) != 1 || got[0].ID != f.runID {
		t.Errorf("containers/json without all: %d entries, want only the running one", len(got))
	}
	if got := list(url.Values{"all": {"1"}, "filters": {filt("status", "exited", "exited", "3")}}); len(got) != 1 || got[0].ID != f.exitedID {
		t.Errorf("filters status=exited,exited=3: %d entries, want the exited one", len(got))
	}
	if got := list(url.Values{"all": {"1"}, "limit": {"1"}, "filters": {filt()}}); len(got) != 1 || got[0].ID != f.runID {
		t.Errorf("limit=1: %d entries, want the newest", len(got))
	}
	// dockerd: 400 Invalid filter 'bogus'
	a.call(t, "GET", "/containers/json?filters="+url.QueryEscape(`{"bogus":["1"]}`), nil, nil).wantError(t, 400, "Invalid filter 'bogus'")
	// dockerd: 400 Invalid filter 'status=nope'
	a.call(t, "GET", "/containers/json?filters="+url.QueryEscape(`{"status":["nope"]}`), nil, nil).wantError(t, 400, "status=nope")
}

func i64(p *int64) string {
	if p == nil {
		return "null"
	}
	return strconv.FormatInt(*p, 10)
}
