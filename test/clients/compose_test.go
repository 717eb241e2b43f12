package clients

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// composeRunner is one Compose implementation: the v5 docker CLI plugin or
// Debian's docker-compose 1.29.
type composeRunner struct {
	name string
	cmd  func(t *testing.T) (string, []string) // binary and leading args
}

var composeRunners = []composeRunner{
	{"compose-v5", func(t *testing.T) (string, []string) {
		tool(t, filepath.Join(env.cache, "docker-compose"), "Compose v5 (docker CLI plugin)")
		return tool(t, "/usr/local/bin/docker", "the docker CLI"), []string{"compose"}
	}},
	{"docker-compose-1.29", func(t *testing.T) (string, []string) {
		return tool(t, "/usr/bin/docker-compose", "Debian's docker-compose"), nil
	}},
}

// composeProject copies the project into a temporary directory; without
// health it drops the healthcheck and makes the proxy wait for the app to
// be started instead of healthy.
func composeProject(t *testing.T, health bool) string {
	t.Helper()
	dir := copyTree(t, "testdata/compose")
	if !health {
		p := filepath.Join(dir, "compose.yaml")
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		s := regexp.MustCompile(`(?s)\n    healthcheck:\n.*?retries: 30`).ReplaceAllString(string(b), "")
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestCompose runs the three-service project through both Compose
// implementations: up --wait, the proxied page through the published
// port, ps, logs -f, exec, restart, scale, down -v.
func TestCompose(t *testing.T) {
	requireEnv(t)
	for i, cr := range composeRunners {
		t.Run(cr.name, func(t *testing.T) {
			if cr.name == "docker-compose-1.29" {
				slow(t)
			}
			t.Run("healthy", func(t *testing.T) {
				slow(t)
				composeScenario(t, cr, true, 18180+i*10)
			})
			t.Run("started", func(t *testing.T) {
				composeScenario(t, cr, false, 18185+i*10)
			})
		})
	}
}

func composeScenario(t *testing.T, cr composeRunner, health bool, port int) {
	bin, lead := cr.cmd(t)
	dir := composeProject(t, health)
	project := fmt.Sprintf("tier%d%s", port, randHex(2))
	cond := "service_started"
	if health {
		cond = "service_healthy"
	}
	e := clientEnv(t, fmt.Sprintf("WEB_PORT=%d", port), "APP_CONDITION="+cond, "COMPOSE_PROJECT_NAME="+project)
	compose := func(timeout time.Duration, args ...string) result {
		t.Helper()
		return runIn(t, dir, e, timeout, bin, append(append([]string{}, lead...), args...)...)
	}
	must := func(args ...string) result {
		t.Helper()
		r := compose(3*time.Minute, args...)
		if r.code != 0 {
			t.Fatalf("%s %s: exit %d\n%s", cr.name, strings.Join(args, " "), r.code, r.err)
		}
		return r
	}
	t.Cleanup(func() { compose(2*time.Minute, "down", "-v", "--remove-orphans") })

	up := []string{"up", "-d"}
	if cr.name == "compose-v5" {
		up = append(up, "--wait")
	}
	must(up...)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	var body string
	if !poll(60*time.Second, func() bool {
		b, err := httpGet(url)
		body = b
		return err == nil && strings.Contains(b, "hello from app")
	}) {
		t.Fatalf("%s: the proxy at %s never served the app: %q", cr.name, url, body)
	}
	// ps: three services running.
	ps := must("ps")
	for _, svc := range []string{"proxy", "app", "worker"} {
		if !regexp.MustCompile(`(?m)^` + project + `[-_]` + svc + `[-_]1\s.*(Up|running)`).MatchString(ps.out) {
			t.Errorf("%s ps: no running %s in\n%s", cr.name, svc, ps.out)
		}
	}
	// logs -f follows new lines.
	logs := startIn(t, dir, e, bin, append(append([]string{}, lead...), "logs", "-f", "app")...)
	httpGet(url + "follow-me")
	if !poll(30*time.Second, func() bool { return strings.Contains(logs.output(), "served /follow-me") }) {
		t.Errorf("%s logs -f app: never showed the new request:\n%s", cr.name, logs.output())
	}
	// exec: the worker writes into the named volume the app shares.
	r := must("exec", "-T", "app", "python3", "-c", "print(open('/data/ticks').read().count('\\n') > 0)")
	if strings.TrimSpace(r.out) != "True" {
		t.Errorf("%s exec: the app sees no ticks from the worker in the shared volume: %q", cr.name, r.out)
	}
	// Networks: the worker (back) reaches the app, not the proxy (front).
	// (No wget -T: Debian's busybox 1.35 wget dies of SIGSEGV with it,
	// which would pass this check whatever the network did.)
	if r := compose(3*time.Minute, "exec", "-T", "worker", "wget", "-qO-", "http://proxy/"); r.code == 0 {
		t.Errorf("%s: the worker, on the back network only, reaches the proxy:\n%s", cr.name, r.out)
	}
	if r := compose(3*time.Minute, "exec", "-T", "worker", "wget", "-qO-", "http://app:8000/health"); r.code != 0 || strings.TrimSpace(r.out) != "ok" {
		t.Errorf("%s: the worker cannot reach the app on the back network: %q %q", cr.name, r.out, r.err)
	}
	// restart keeps the named volume's data, and the app serves again
	// (asked from the worker, by name: a proxy keeps the address it
	// resolved at its own start).
	before, _ := httpGet(url)
	must("restart", "app")
	var after string
	poll(60*time.Second, func() bool {
		r := compose(3*time.Minute, "exec", "-T", "worker", "wget", "-qO-", "http://app:8000/")
		after = r.out
		return r.code == 0 && strings.Contains(after, "hello from app")
	})
	if visit(before) == 0 || visit(after) != visit(before)+1 {
		t.Errorf("%s restart: visits %q then %q, want the count kept in the volume", cr.name, before, after)
	}
	// scale the worker to 2.
	must("up", "-d", "--scale", "worker=2", "--no-recreate")
	ps = must("ps")
	if !regexp.MustCompile(`(?m)^` + project + `[-_]worker[-_]2\s`).MatchString(ps.out) {
		t.Errorf("%s scale worker=2: no second worker in\n%s", cr.name, ps.out)
	}
	// down -v removes containers, networks and the named volume.
	must("down", "-v")
	a := env.d.api()
	for _, what := range []string{"/containers/json?all=1", "/networks", "/volumes"} {
		r, err := a.do(t.Context(), "GET", what, nil)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(r.body), project) {
			t.Errorf("%s down -v left %s: %s", cr.name, what, r.body)
		}
	}
}

var visitRE = regexp.MustCompile(`visit (\d+)`)

func visit(s string) int {
	m := visitRE.FindStringSubmatch(s)
	if m == nil {
		return 0
	}
	var n int
	fmt.Sscan(m[1], &n)
	return n
}
