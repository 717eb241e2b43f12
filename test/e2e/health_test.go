package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Healthchecks (issue 11 item 1): probes run as execs at the interval,
// their results land in State.Health, ps shows and filters the status,
// events tell the changes; a hanging probe is killed at its timeout; a
// probe never holds up a stop or a remove.

type healthJSON struct {
	Status        string
	FailingStreak int
	Log           []struct {
		Start    time.Time
		End      time.Time
		ExitCode int
		Output   string
	}
}

type healthCtrJSON struct {
	State struct {
		Running bool
		Paused  bool
		Health  *healthJSON
	}
	Config struct {
		Healthcheck *struct {
			Test        []string
			Interval    time.Duration
			Timeout     time.Duration
			StartPeriod time.Duration
			Retries     int
		}
	}
}

func inspectHealth(t *testing.T, a *apiClient, ref string) healthCtrJSON {
	t.Helper()
	var c healthCtrJSON
	a.call(t, "GET", "/containers/"+ref+"/json", nil, nil).wantStatus(t, 200).decode(t, &c)
	return c
}

// waitHealth polls inspect until the health status is want.
func waitHealth(t *testing.T, a *apiClient, ref, want string, timeout time.Duration) healthCtrJSON {
	t.Helper()
	var c healthCtrJSON
	if !poll(timeout, func() bool {
		c = inspectHealth(t, a, ref)
		return c.State.Health != nil && c.State.Health.Status == want
	}) {
		b, _ := json.Marshal(c.State)
		t.Fatalf("container %s: health not %q within %s: State %s", ref, want, timeout, b)
	}
	return c
}

// countProcs counts the container's processes whose command line is cmd.
func countProcs(t *testing.T, a *apiClient, ref, cmd string) int {
	t.Helper()
	var top struct {
		Titles    []string
		Processes [][]string
	}
	a.call(t, "GET", "/containers/"+ref+"/top?ps_args=-eo+pid,args", nil, nil).wantStatus(t, 200).decode(t, &top)
	n := 0
	for _, p := range top.Processes {
		if len(p) > 0 && strings.TrimSpace(p[len(p)-1]) == cmd {
			n++
		}
	}
	return n
}

var (
	statusHealthyRE   = regexp.MustCompile(`^Up .* \(healthy\)$`)
	statusUnhealthyRE = regexp.MustCompile(`^Up .* \(unhealthy\)$`)
	statusStartingRE  = regexp.MustCompile(`^Up .* \(health: starting\)$`)
)

// TestHealthcheck: healthy, unhealthy and starting containers as inspect,
// ps (status suffix and --filter health=) and events show them.
func TestHealthcheck(t *testing.T) {
	busybox(t)
	a := env.d.api()
	eachCLI(t, func(t *testing.T, c *CLI) {
		label := "e2e.health=" + uniq()
		t0 := time.Now().Add(-time.Second)
		good, bad, slow, plain := ctrName(t, "hgood"), ctrName(t, "hbad"), ctrName(t, "hslow"), ctrName(t, "hplain")
		c.ok("run", "-d", "-l", label, "--name", good, "--health-cmd", "echo probe-out; true", "--health-interval", "200ms", "busybox", "sleep", "300")
		c.ok("run", "-d", "-l", label, "--name", bad, "--health-cmd", "echo failing >&2; exit 3", "--health-interval", "100ms", "--health-retries", "2", "busybox", "sleep", "300")
		c.ok("run", "-d", "-l", label, "--name", slow, "--health-cmd", "true", "--health-interval", "1h", "busybox", "sleep", "300")
		c.ok("run", "-d", "-l", label, "--name", plain, "busybox", "sleep", "300")

		// The first probe comes after one interval: until then, starting.
		st := inspectHealth(t, a, slow)
		if st.State.Health == nil || st.State.Health.Status != "starting" || len(st.State.Health.Log) != 0 {
			t.Errorf("%s: before the first probe State.Health %+v, want starting with no log", c.name, st.State.Health)
		}
		if h := inspectHealth(t, a, plain).State.Health; h != nil {
			t.Errorf("%s: a container without a healthcheck has State.Health %+v", c.name, h)
		}

		g := waitHealth(t, a, good, "healthy", 30*time.Second)
		if g.State.Health.FailingStreak != 0 || len(g.State.Health.Log) == 0 {
			t.Errorf("%s: healthy container: %+v, want FailingStreak 0 and a log", c.name, g.State.Health)
		} else if l := g.State.Health.Log[0]; l.ExitCode != 0 || l.Output != "probe-out\n" || l.End.Before(l.Start) || l.Start.Before(t0) {
			t.Errorf("%s: probe result %+v, want exit 0, output \"probe-out\\n\", Start ≤ End", c.name, l)
		}
		c.ok("inspect", "-f", "{{.State.Health.Status}}", good).wantOut(t, c.name, "healthy")

		b := waitHealth(t, a, bad, "unhealthy", 30*time.Second)
		if b.State.Health.FailingStreak < 2 {
			t.Errorf("%s: unhealthy with FailingStreak %d, want at least the 2 retries", c.name, b.State.Health.FailingStreak)
		}
		// Only the last five results are kept.
		if !poll(30*time.Second, func() bool { b = inspectHealth(t, a, bad); return b.State.Health.FailingStreak >= 7 }) {
			t.Fatalf("%s: FailingStreak stuck at %d", c.name, b.State.Health.FailingStreak)
		}
		if n := len(b.State.Health.Log); n != 5 {
			t.Errorf("%s: %d results in the log after %d probes, want the last 5", c.name, n, b.State.Health.FailingStreak)
		}
		for _, l := range b.State.Health.Log {
			if l.ExitCode != 3 || l.Output != "failing\n" {
				t.Errorf("%s: failing probe result %+v, want exit 3 and its stderr", c.name, l)
			}
		}

		// ps: the status suffix, and the filter.
		status := map[string]string{}
		for _, l := range lines(c.ok("ps", "--filter", "label="+label, "--format", "{{.Names}}|{{.Status}}").Stdout) {
			n, s, _ := strings.Cut(l, "|")
			status[n] = s
		}
		for name, re := range map[string]*regexp.Regexp{good: statusHealthyRE, bad: statusUnhealthyRE, slow: statusStartingRE, plain: statusUpRE} {
			if !re.MatchString(status[name]) {
				t.Errorf("%s ps: %s has status %q, want %s", c.name, name, status[name], re)
			}
		}
		for filter, want := range map[string]string{"healthy": good, "unhealthy": bad, "starting": slow, "none": plain} {
			got := lines(c.ok("ps", "--filter", "label="+label, "--filter", "health="+filter, "--format", "{{.Names}}").Stdout)
			if len(got) != 1 || got[0] != want {
				t.Errorf("%s ps --filter health=%s: %q, want only %s", c.name, filter, got, want)
			}
		}
		c.fail([]string{"ps", "--filter", "health=bogus"}, "Unrecognised filter value for health: bogus")

		// Events: the probe's execs and the status changes.
		since := fmt.Sprint(t0.Unix())
		until := fmt.Sprint(time.Now().Add(time.Second).Unix())
		evs := lines(c.ok("events", "--since", since, "--until", until, "--filter", "container="+good, "--format", "{{.Action}}").Stdout)
		for _, want := range []string{"exec_create: /bin/sh -c echo probe-out; true", "exec_start: /bin/sh -c echo probe-out; true", "health_status: healthy"} {
			if !containsStr(evs, want) {
				t.Errorf("%s events of %s: %q, want %q among them", c.name, good, evs, want)
			}
		}
		evs = lines(c.ok("events", "--since", since, "--until", until, "--filter", "container="+bad, "--filter", "event=health_status", "--format", "{{.Action}}").Stdout)
		if len(evs) != 1 || evs[0] != "health_status: unhealthy" {
			t.Errorf("%s health_status events of %s: %q, want one \"health_status: unhealthy\"", c.name, bad, evs)
		}

		// Stopped, a container's health is "unhealthy" (Docker's choice).
		c.ok("stop", "-t", "1", good)
		if h := inspectHealth(t, a, good).State.Health; h == nil || h.Status != "unhealthy" {
			t.Errorf("%s: stopped container's health %+v, want unhealthy", c.name, h)
		}
		got := lines(c.ok("ps", "-a", "--filter", "label="+label, "--filter", "health=unhealthy", "--format", "{{.Names}}").Stdout)
		if len(got) != 2 {
			t.Errorf("%s ps -a --filter health=unhealthy: %q, want %s and %s", c.name, got, bad, good)
		}
		// Started again: starting, then healthy, the log kept.
		c.ok("start", good)
		if h := inspectHealth(t, a, good).State.Health; h == nil || h.Status != "starting" || len(h.Log) == 0 {
			t.Errorf("%s: restarted container's health %+v, want starting with the old log", c.name, h)
		}
		waitHealth(t, a, good, "healthy", 30*time.Second)
	})
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestHealthcheckTimeout: a probe that hangs is killed at its timeout and
// counts as a failure; hanging probes never pile up in the container.
func TestHealthcheckTimeout(t *testing.T) {
	busybox(t)
	a := env.d.api()
	c := cli(t, "docker")
	name := ctrName(t, "htimeout")
	c.ok("run", "-d", "--name", name, "--health-cmd", "sleep 77", "--health-timeout", "300ms", "--health-interval", "100ms", "--health-retries", "1", "busybox", "sleep", "300")
	h := waitHealth(t, a, name, "unhealthy", 30*time.Second).State.Health
	if l := h.Log[0]; l.ExitCode != -1 || l.Output != "Health check exceeded timeout (300ms)" {
		t.Errorf("timed-out probe: %+v, want exit -1 and \"Health check exceeded timeout (300ms)\"", l)
	}
	// Several probes later, at most the one that runs now is alive.
	if !poll(30*time.Second, func() bool { return inspectHealth(t, a, name).State.Health.FailingStreak >= 6 }) {
		t.Fatal("probes stopped running")
	}
	// A kill may land a little after its timeout (dockerd's, on a loaded
	// machine), but probes never killed live 77 s each and only pile up.
	var n int
	if !poll(15*time.Second, func() bool { n = countProcs(t, a, name, "sleep 77"); return n <= 1 }) {
		t.Errorf("%d hanging probes alive in the container after 6 timeouts, want at most 1 (each killed at its timeout)", n)
	}
}

// TestHealthcheckNeverBlocksStop: a container whose probe hangs stops and
// is removed as fast as one without.
func TestHealthcheckNeverBlocksStop(t *testing.T) {
	busybox(t)
	a := env.d.api()
	c := cli(t, "docker")
	for _, op := range []string{"stop", "rm"} {
		name := ctrName(t, "hstop")
		c.ok("run", "-d", "--name", name, "--health-cmd", "sleep 78", "--health-timeout", "60s", "--health-interval", "50ms", "busybox", "sleep", "300")
		if !poll(30*time.Second, func() bool { return countProcs(t, a, name, "sleep 78") > 0 }) {
			t.Fatal("the probe never ran")
		}
		start := time.Now()
		if op == "stop" {
			c.ok("stop", "-t", "0", name)
		} else {
			c.ok("rm", "-f", name)
		}
		// Bound far below the probe's 60 s timeout (what a blocking
		// probe would cost).
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("%s with a hanging probe took %s", op, d)
		}
		if op == "stop" {
			ci := inspectHealth(t, a, name)
			if ci.State.Running || ci.State.Health == nil || ci.State.Health.Status != "unhealthy" {
				t.Errorf("after stop: State %+v, health %+v, want stopped and unhealthy", ci.State, ci.State.Health)
			}
		} else if ctrExists(t, a, name) {
			t.Errorf("rm -f: container %s still exists", name)
		}
	}
}

// TestHealthcheckImageAndNone: the image's HEALTHCHECK is merged with the
// container's options; --no-healthcheck (NONE) disables it.
func TestHealthcheckImageAndNone(t *testing.T) {
	busybox(t)
	a := env.d.api()
	c := cli(t, "docker")
	src := ctrName(t, "hsrc")
	c.ok("create", "--name", src, "busybox", "sleep", "300")
	img := "e2e-health-img:" + uniq()
	c.ok("commit", "--change", "HEALTHCHECK --interval=150ms --retries=4 CMD [\"true\"]", src, img)
	t.Cleanup(func() { c.run("rmi", "-f", img) })

	merged := ctrName(t, "hmerged")
	c.ok("run", "-d", "--name", merged, "--health-timeout", "7s", img)
	ci := inspectHealth(t, a, merged)
	hc := ci.Config.Healthcheck
	if hc == nil || strings.Join(hc.Test, " ") != "CMD true" || hc.Interval != 150*time.Millisecond || hc.Timeout != 7*time.Second || hc.Retries != 4 {
		t.Errorf("merged Config.Healthcheck %+v, want the image's CMD true, 150ms, retries 4 and the run's 7s timeout", hc)
	}
	waitHealth(t, a, merged, "healthy", 30*time.Second)

	none := ctrName(t, "hnone")
	c.ok("run", "-d", "--name", none, "--no-healthcheck", img)
	ci = inspectHealth(t, a, none)
	if ci.Config.Healthcheck == nil || strings.Join(ci.Config.Healthcheck.Test, " ") != "NONE" {
		t.Errorf("--no-healthcheck: Config.Healthcheck %+v, want Test [NONE]", ci.Config.Healthcheck)
	}
	// Wait until the image's healthcheck has run three times in the
	// other container since this one started.
	noneStarted := time.Now()
	if !poll(30*time.Second, func() bool {
		l := inspectHealth(t, a, merged).State.Health.Log
		return len(l) > 0 && l[len(l)-1].Start.After(noneStarted.Add(450*time.Millisecond))
	}) {
		t.Fatal("the image's healthcheck stopped running")
	}
	if h := inspectHealth(t, a, none).State.Health; h != nil {
		t.Errorf("--no-healthcheck: State.Health %+v, want none", h)
	}
	got := lines(c.ok("ps", "--filter", "name="+none, "--filter", "health=none", "--format", "{{.Names}}").Stdout)
	if len(got) != 1 || got[0] != none {
		t.Errorf("ps --filter health=none: %q, want %s", got, none)
	}
}

// TestHealthcheckPause: a paused container is not probed and counts as
// unhealthy (Docker's choice); unpaused, probes resume.
func TestHealthcheckPause(t *testing.T) {
	busybox(t)
	a := env.d.api()
	c := cli(t, "docker")
	name := ctrName(t, "hpause")
	c.ok("run", "-d", "--name", name, "--health-cmd", "true", "--health-interval", "100ms", "busybox", "sleep", "300")
	waitHealth(t, a, name, "healthy", 30*time.Second)
	c.ok("pause", name)
	ci := inspectHealth(t, a, name)
	if ci.State.Health.Status != "unhealthy" {
		t.Errorf("paused: health %q, want unhealthy", ci.State.Health.Status)
	}
	c.ok("unpause", name)
	waitHealth(t, a, name, "healthy", 30*time.Second)
}

// TestHealthcheckValidation: durations under 1 ms and negative retries
// are refused at create with dockerd's words (issue 14 item 5); nothing is
// created.
func TestHealthcheckValidation(t *testing.T) {
	busybox(t)
	a := env.d.api()
	for _, tc := range []struct {
		hc   map[string]any
		want string
	}{
		{map[string]any{"Test": []string{"CMD", "true"}, "Interval": 500000}, "Interval in Healthcheck cannot be less than 1ms"},
		{map[string]any{"Test": []string{"CMD", "true"}, "Interval": -1}, "Interval in Healthcheck cannot be less than 1ms"},
		{map[string]any{"Test": []string{"CMD", "true"}, "Timeout": 999999}, "Timeout in Healthcheck cannot be less than 1ms"},
		{map[string]any{"Test": []string{"CMD", "true"}, "StartPeriod": 10}, "StartPeriod in Healthcheck cannot be less than 1ms"},
		{map[string]any{"Test": []string{"CMD", "true"}, "Retries": -1}, "Retries in Healthcheck cannot be negative"},
	} {
		name := ctrName(t, "hbad")
		body, _ := json.Marshal(map[string]any{"Image": "busybox:latest", "Cmd": []string{"true"}, "Healthcheck": tc.hc})
		a.call(t, "POST", "/containers/create?name="+name, body, nil).wantError(t, 400, tc.want)
		if ctrExists(t, a, name) {
			t.Errorf("healthcheck %v: container %s created anyway", tc.hc, name)
		}
	}
	// 1 ms is allowed.
	name := ctrName(t, "hok")
	createCtr(t, a, name, map[string]any{"Image": "busybox:latest", "Cmd": []string{"true"}, "Healthcheck": map[string]any{"Test": []string{"CMD", "true"}, "Interval": 1000000}})
}

// TestHealthcheckAcrossDaemonRestart: a restarted berthd finds the health
// state it left (status, log) and resumes probing.
func TestHealthcheckAcrossDaemonRestart(t *testing.T) {
	requireEnv(t)
	onlyBerth(t, "dockerd without live-restore stops containers with the daemon; berth's keep running under their shims")
	b := startTestDaemon(t, "berth", daemonOpts{mirror: true})
	a := b.api()
	ensureImage(t, a, "busybox:latest")
	c := cliFor(t, "docker", b)
	gate := t.TempDir()
	writeFile(t, gate, "ok", nil)
	id := strings.TrimSpace(c.ok("run", "-d", "-v", gate+":/gate", "--health-cmd", "test -e /gate/ok", "--health-interval", "100ms", "--health-retries", "1", "busybox", "sleep", "300").Stdout)
	h := waitHealth(t, a, id, "healthy", 30*time.Second).State.Health
	if err := b.stop(); err != nil {
		t.Fatalf("stop berthd: %v", err)
	}
	b2 := b.restartT(t, daemonOpts{mirror: true})
	t.Cleanup(func() {
		c2 := cliFor(t, "docker", b2)
		c2.run("rm", "-f", id)
	})
	a = b2.api()
	got := inspectHealth(t, a, id).State.Health
	if got == nil || got.Status != "healthy" || len(got.Log) < len(h.Log) {
		t.Errorf("after the restart: health %+v, want healthy with the log kept (%d entries before)", got, len(h.Log))
	}
	if err := os.Remove(filepath.Join(gate, "ok")); err != nil {
		t.Fatal(err)
	}
	waitHealth(t, a, id, "unhealthy", 30*time.Second)
}

// TestHealthcheckStartIntervalByVersion: StartInterval (API 1.44) is
// dropped from an older client's create, as dockerd drops it; a 1.44
// client's is kept, validated (1 ms at least) and used: inside the start
// period, while starting, probes run at StartInterval, not Interval.
func TestHealthcheckStartIntervalByVersion(t *testing.T) {
	busybox(t)
	a := env.d.api()
	hc := map[string]any{"Test": []string{"CMD", "true"}, "Interval": int64(time.Hour), "StartPeriod": int64(time.Hour), "StartInterval": int64(200 * time.Millisecond)}
	body := map[string]any{"Image": "busybox:latest", "Cmd": []string{"sleep", "300"}, "Healthcheck": hc}
	old := ctrName(t, "hsi")
	b, _ := json.Marshal(body)
	a.call(t, "POST", "/v1.41/containers/create?name="+old, b, nil).wantStatus(t, 201)
	var raw struct {
		Config struct{ Healthcheck map[string]any }
	}
	a.call(t, "GET", "/v1.41/containers/"+old+"/json", nil, nil).wantStatus(t, 200).decode(t, &raw)
	if v, ok := raw.Config.Healthcheck["StartInterval"]; ok && v != float64(0) {
		t.Errorf("API 1.41 create kept StartInterval: %v", raw.Config.Healthcheck)
	}
	onlyBerth(t, "dockerd 20.10 speaks API 1.41 at most; StartInterval is API 1.44's")
	// A 1.43 client's too-short StartInterval is dropped, not refused.
	short := map[string]any{"Image": "busybox:latest", "Cmd": []string{"true"}, "Healthcheck": map[string]any{"Test": []string{"CMD", "true"}, "StartInterval": 10}}
	b, _ = json.Marshal(short)
	a.call(t, "POST", "/v1.43/containers/create?name="+ctrName(t, "hsi"), b, nil).wantStatus(t, 201)
	bad := ctrName(t, "hsi")
	a.call(t, "POST", "/v1.44/containers/create?name="+bad, b, nil).wantError(t, 400, "StartInterval in Healthcheck cannot be less than 1ms")
	if ctrExists(t, a, bad) {
		t.Errorf("container %s created with a bad StartInterval", bad)
	}
	cur := ctrName(t, "hsi")
	b, _ = json.Marshal(body)
	a.call(t, "POST", "/v1.44/containers/create?name="+cur, b, nil).wantStatus(t, 201)
	a.call(t, "GET", "/v1.44/containers/"+cur+"/json", nil, nil).wantStatus(t, 200).decode(t, &raw)
	if v := raw.Config.Healthcheck["StartInterval"]; v != float64(200*time.Millisecond) {
		t.Errorf("API 1.44 create: StartInterval %v, want %d", v, 200*time.Millisecond)
	}
	a.call(t, "POST", "/containers/"+old+"/start", nil, nil).wantStatus(t, 204)
	a.call(t, "POST", "/containers/"+cur+"/start", nil, nil).wantStatus(t, 204)
	waitHealth(t, a, cur, "healthy", 30*time.Second)
	// The older one, started first, has its first probe an hour away.
	if h := inspectHealth(t, a, old).State.Health; h == nil || h.Status != "starting" || len(h.Log) != 0 {
		t.Errorf("without StartInterval: health %+v, want starting with no probe yet", h)
	}
}
