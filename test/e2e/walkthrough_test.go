package e2e

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestWalkthrough (issue 10 item 6) is ../shared/MISSION.md's walk-through,
// every command in order, as a user types it: once with the berth CLI,
// once with the docker CLI without buildx (the classic builder) and once
// with buildx installed (docker build is then buildx's). The daemon runs in
// a network namespace of its own, where it owns port 8080 as on the
// user's machine; images come through its Docker Hub mirror (the local
// registry), and the push goes to a registry with htpasswd of the test's
// own (MISSION's printfchamp/ names Docker Hub; here it is <registry>/
// printfchamp/mytest:1.0). Each step checks what the user sees.
func TestWalkthrough(t *testing.T) {
	sb, nd := newNetTarget(t)
	for _, v := range []struct {
		name, cli string
		buildx    bool
	}{
		{"berth", "berth", false},
		{"docker", "docker", false},
		{"docker+buildx", "docker", true},
	} {
		t.Run(v.name, func(t *testing.T) {
			c := cliFor(t, v.cli, nd.daemon)
			if v.buildx {
				withBuildx(t, c)
			}
			// A registry per run: every run's first push uploads.
			reg := startRegistry(t, registryOpts{htpasswd: true})
			sb.forward(reg.Host, reg.Host)
			walkthrough(t, sb, nd, c, reg.Host)
		})
	}
}

// walkthrough runs MISSION.md's commands with c against nd.
func walkthrough(t *testing.T, sb *netSandbox, nd *netDaemon, c *CLI, registry string) {
	a := nd.api()
	repo := registry + "/printfchamp/mytest"
	// A user's machine that has none of the walk-through's images yet.
	for _, ref := range []string{repo + ":1.0", "mytest:1.0", "mypython:1.0", "nginx:alpine"} {
		removeImage(t, a, ref)
	}
	nd.rmLater(t, "demo-nginx")

	// berth pull nginx:alpine
	r := c.ok("pull", "nginx:alpine")
	if !strings.Contains(r.Stdout, "Status: Downloaded newer image for nginx:alpine") || lastLine(r.Stdout) != "docker.io/library/nginx:alpine" {
		t.Errorf("pull nginx:alpine printed:\n%s", r.Stdout)
	}

	// berth run --name demo-nginx -d -p 8080:80 nginx:alpine
	id := strings.TrimSpace(c.ok("run", "--name", "demo-nginx", "-d", "-p", "8080:80", "nginx:alpine").Stdout)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
		t.Errorf("run -d printed %q, want the container ID", id)
	}

	// berth ps ; berth ps -a
	psRow := regexp.MustCompile(`(?m)^` + id[:12] + `\s+nginx:alpine\s+"nginx -g .*"\s+.*\s+Up .*0\.0\.0\.0:8080->80/tcp.*\s+demo-nginx$`)
	for _, args := range [][]string{{"ps"}, {"ps", "-a"}} {
		out := c.ok(args...).Stdout
		if !strings.HasPrefix(out, "CONTAINER ID   IMAGE") || !psRow.MatchString(out) {
			t.Errorf("%s: no running demo-nginx row with its port:\n%s", strings.Join(args, " "), out)
		}
	}

	// curl http://localhost:8080
	waitHTTP(t, sb.path, "http://127.0.0.1:8080/", nginxWelcome, 30*time.Second)
	if out, err := sb.try("curl", "-sS", "-m", "5", "http://localhost:8080"); err != nil || !strings.Contains(out, "<h1>"+nginxWelcome+"</h1>") {
		t.Errorf("curl http://localhost:8080: %v\n%s", err, out)
	}

	// berth images
	if out := c.ok("images").Stdout; !regexp.MustCompile(`(?m)^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^nginx\s+alpine\s+[0-9a-f]{12}\s`).MatchString(out) {
		t.Errorf("images: no nginx alpine row:\n%s", out)
	}

	// berth inspect demo-nginx
	var insp []struct {
		ID              string `json:"Id"`
		Name            string
		State           struct{ Status string }
		NetworkSettings struct {
			Ports map[string][]netPortBinding
		}
	}
	if err := json.Unmarshal([]byte(c.ok("inspect", "demo-nginx").Stdout), &insp); err != nil || len(insp) != 1 {
		t.Fatalf("inspect demo-nginx: %v (%d objects)", err, len(insp))
	}
	if in := insp[0]; in.ID != id || in.Name != "/demo-nginx" || in.State.Status != "running" || len(in.NetworkSettings.Ports["80/tcp"]) == 0 || in.NetworkSettings.Ports["80/tcp"][0].HostPort != "8080" {
		t.Errorf("inspect demo-nginx: %+v", in)
	}

	// berth logs demo-nginx: nginx's access log has the curl.
	if r := c.ok("logs", "demo-nginx"); !strings.Contains(r.Stdout, `"GET / HTTP/1.1" 200`) {
		t.Errorf("logs demo-nginx: no access log line for the curl:\nstdout:\n%s\nstderr:\n%s", r.Stdout, r.Stderr)
	}

	// berth exec -it demo-nginx sh: a shell inside, on a terminal.
	tm := newTerm(t, c, "exec", "-it", "demo-nginx", "sh")
	tm.typeLine("echo inside-$((6*7)); cat /etc/hostname")
	if !tm.waitScreen(regexp.MustCompile(`inside-42\s*\n`+id[:12]), 15*time.Second) {
		t.Errorf("exec -it demo-nginx sh: the shell never answered; screen:\n%s", tm.screen())
	}
	tm.typeLine("exit")
	if code := tm.exitCode(15 * time.Second); code != 0 {
		t.Errorf("exec -it ... sh, exit: code %d", code)
	}

	// berth history nginx:alpine
	if out := c.ok("history", "nginx:alpine").Stdout; !regexp.MustCompile(`^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT\n`).MatchString(out) || len(lines(out)) < 3 {
		t.Errorf("history nginx:alpine:\n%s", out)
	}

	// berth stop demo-nginx ; berth rm demo-nginx
	c.ok("stop", "demo-nginx").wantOut(t, c.name, "demo-nginx")
	c.ok("rm", "demo-nginx").wantOut(t, c.name, "demo-nginx")
	c.fail([]string{"inspect", "demo-nginx"}, "No such object: demo-nginx")
	if code, _, err := nsHTTPGet(sb.path, "http://127.0.0.1:8080/"); err == nil {
		t.Errorf("port 8080 still answers (%d) after rm demo-nginx", code)
	}

	// berth build -t mytest:1.0 .
	mytest := writeContext(t, map[string]string{"Dockerfile": mytestDockerfile})
	walkBuild(t, c, "mytest:1.0", mytest)
	// berth run mytest:1.0
	if out := c.ok("run", "mytest:1.0").Stdout; out != "Hello from Docker!\n" {
		t.Errorf("run mytest:1.0 printed %q, want the Hello line", out)
	}
	// berth history mytest:1.0: the base's entries, the RUN layer, a 0B CMD.
	// (alpine:3.18 is pulled for the comparison: a build through BuildKit
	// does not tag its base in the daemon's store.)
	ensureImage(t, a, "alpine:3.18")
	base := lines(c.ok("history", "--format", "{{.CreatedBy}}", "alpine:3.18").Stdout)
	h := lines(c.ok("history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Size}}", "mytest:1.0").Stdout)
	if len(h) != len(base)+2 {
		t.Errorf("history mytest:1.0 has %d entries, want %d (alpine:3.18's %d, the RUN, the CMD):\n%s", len(h), len(base)+2, len(base), strings.Join(h, "\n"))
	}
	if len(h) >= 2 {
		if !regexp.MustCompile(`CMD \["cat" "/hello.txt"\]\|0B$`).MatchString(h[0]) {
			t.Errorf("history mytest:1.0: top entry %q, want the CMD at 0B", h[0])
		}
		// BuildKit writes "RUN /bin/sh -c ...", the classic builder "/bin/sh -c ...".
		if !strings.Contains(h[1], `/bin/sh -c echo "Hello from Docker!" > /hello.txt`) || strings.HasSuffix(h[1], "|0B") {
			t.Errorf("history mytest:1.0: second entry %q, want the RUN layer with its size", h[1])
		}
	}

	// berth build -t mypython:1.0 . ; berth run mypython:1.0
	mypython := writeContext(t, map[string]string{
		"app.py":     "print(\"Hello from Python inside Docker!\")\n",
		"Dockerfile": "FROM python:3.11-slim\nWORKDIR /app\nCOPY app.py .\nCMD [\"python\", \"app.py\"]\n",
	})
	walkBuild(t, c, "mypython:1.0", mypython)
	if out := c.ok("run", "mypython:1.0").Stdout; out != "Hello from Python inside Docker!\n" {
		t.Errorf("run mypython:1.0 printed %q", out)
	}

	// berth login -u printfchamp (--password-stdin)
	r = c.runStdin([]byte(authPassword+"\n"), "login", "-u", authUser, "--password-stdin", registry)
	if r.Code != 0 || !strings.Contains(r.Stdout, "Login Succeeded") {
		t.Fatalf("login: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}

	// berth tag mytest:1.0 printfchamp/mytest:1.0
	c.ok("tag", "mytest:1.0", repo+":1.0").wantOut(t, c.name, "")
	img := inspectImage(t, a, repo+":1.0")

	// berth push printfchamp/mytest:1.0: every layer Pushed, the digest.
	dgst := wantPush(t, c.ok("push", repo+":1.0"), repo, "1.0", img, "Pushed")
	// Pushed again (not in MISSION): every layer already exists, same digest.
	if again := wantPush(t, c.ok("push", repo+":1.0"), repo, "1.0", img, "Layer already exists"); again != dgst {
		t.Errorf("the second push gave digest %s, the first %s", again, dgst)
	}

	// berth pull printfchamp/mytest:1.0 ; berth run printfchamp/mytest:1.0,
	// as on another machine: without the image (nor the containers
	// `run mytest:1.0` left).
	a.call(t, "POST", "/containers/prune", nil, nil).wantStatus(t, 200)
	c.ok("rmi", repo+":1.0", "mytest:1.0")
	if imageExists(t, a, img.ID) {
		t.Fatalf("image %s is still there after rmi of its tags", img.ID)
	}
	r = c.ok("pull", repo+":1.0")
	if !strings.Contains(r.Stdout, "Digest: "+dgst) || !strings.Contains(r.Stdout, "Status: Downloaded newer image for "+repo+":1.0") {
		t.Errorf("pull %s:1.0 printed:\n%s\nwant the digest %s and Downloaded newer image", repo, r.Stdout, dgst)
	}
	if got := inspectImage(t, a, repo+":1.0").ID; got != img.ID {
		t.Errorf("the pulled image is %s, the pushed one %s", got, img.ID)
	}
	if out := c.ok("run", repo+":1.0").Stdout; out != "Hello from Docker!\n" {
		t.Errorf("run %s:1.0 printed %q, want the Hello line", repo, out)
	}
	removeImage(t, a, repo+":1.0")
	removeImage(t, a, "mypython:1.0")

	// ... and elsewhere: the suite's own daemon (another data root and
	// image store, on the host) logs in, pulls the pushed image by its
	// digest and by its tag, and runs it: the same image ID.
	o := cli(t, c.name)
	oa := env.d.api()
	if r := o.runStdin([]byte(authPassword+"\n"), "login", "-u", authUser, "--password-stdin", registry); r.Code != 0 {
		t.Fatalf("login elsewhere: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	removeImageEverywhere(t, oa, img.ID)
	defer removeImageEverywhere(t, oa, img.ID)
	if r := o.ok("pull", repo+"@"+dgst); !strings.Contains(r.Stdout, "Status: Downloaded newer image for "+repo+"@"+dgst) {
		t.Errorf("elsewhere: pull %s@%s printed:\n%s", repo, dgst, r.Stdout)
	}
	if got := inspectImage(t, oa, repo+"@"+dgst).ID; got != img.ID {
		t.Errorf("elsewhere: pull by digest gave image %s, the pushed one is %s", got, img.ID)
	}
	o.ok("pull", repo+":1.0")
	if got := inspectImage(t, oa, repo+":1.0").ID; got != img.ID {
		t.Errorf("elsewhere: pull by tag gave image %s, the pushed one is %s", got, img.ID)
	}
	if out := o.ok("run", "--rm", repo+":1.0").Stdout; out != "Hello from Docker!\n" {
		t.Errorf("elsewhere: run %s:1.0 printed %q, want the Hello line", repo, out)
	}
}

// walkBuild runs the walk-through's `build -t tag dir`.
func walkBuild(t *testing.T, c *CLI, tag, dir string) {
	t.Helper()
	// (The sandboxed daemon has its networking: no --network=host.)
	r := c.runTimeout(5*time.Minute, nil, "build", "-t", tag, dir)
	if r.Code != 0 {
		t.Fatalf("%s build -t %s: exit %d\nstdout: %s\nstderr: %s", c.name, tag, r.Code, clip(r.Stdout), clip(r.Stderr))
	}
}
