package e2e

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// buildCLI returns CLI name set up to build with BuildKit: berth as it
// is, docker with the buildx plugin (so `docker build` is buildx's, the
// behaviour `berth build` copies).
func buildCLI(t *testing.T, name string) *CLI {
	t.Helper()
	c := cli(t, name)
	if name == "docker" {
		withBuildx(t, c)
	}
	return c
}

// eachBuildCLI runs fn per CLI (berth, docker with buildx).
func eachBuildCLI(t *testing.T, fn func(t *testing.T, c *CLI)) {
	t.Helper()
	requireEnv(t)
	for _, name := range cliNames {
		t.Run(name, func(t *testing.T) { fn(t, buildCLI(t, name)) })
	}
}

var builtIDLine = regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`)

// TestBuildCLI (issue 9 item 8): `build` with BuildKit, through the berth
// CLI and docker's (buildx): the walk-through's image is built, named,
// runs and has its history; a rebuild is CACHED and gives the same image;
// -q prints only the image ID, --iidfile writes it; several -t, --label,
// --build-arg and --target reach the image.
func TestBuildCLI(t *testing.T) {
	eachBuildCLI(t, func(t *testing.T, c *CLI) {
		ctx := writeContext(t, map[string]string{"Dockerfile": mytestDockerfile})
		tag := "e2e-buildcli-" + c.name + ":1.0"
		tag2 := "e2e-buildcli-" + c.name + ":two"
		t.Cleanup(func() { c.run("rmi", "-f", tag, tag2) })
		b := c.ok(append([]string{"build"}, buildArgs("--progress=plain", "-t", tag, "-t", tag2, ctx)...)...)
		for _, want := range []string{"[1/2] FROM docker.io/library/alpine:3.18", "[2/2] RUN echo \"Hello from Docker!\" > /hello.txt",
			"naming to docker.io/library/" + tag, "naming to docker.io/library/" + tag2, " DONE "} {
			if !strings.Contains(b.Stderr, want) {
				t.Errorf("build output lacks %q:\n%s", want, b.Stderr)
			}
		}
		if b.Stdout != "" {
			t.Errorf("build printed on stdout: %q", b.Stdout)
		}
		checkMytest(t, c, tag)
		id := strings.TrimSpace(c.ok("image", "inspect", "--format", "{{.Id}}", tag).Stdout)
		if id2 := strings.TrimSpace(c.ok("image", "inspect", "--format", "{{.Id}}", tag2).Stdout); id2 != id {
			t.Errorf("-t %s is %s, -t %s is %s", tag, id, tag2, id2)
		}

		// A cached rebuild, quiet: the image ID alone, the same image.
		iid := filepath.Join(t.TempDir(), "iid")
		q := c.ok(append([]string{"build"}, buildArgs("-q", "--iidfile", iid, "-t", tag, ctx)...)...)
		if !builtIDLine.MatchString(q.Stdout) || strings.TrimSpace(q.Stdout) != id {
			t.Errorf("build -q printed %q, want %s", q.Stdout, id)
		}
		if q.Stderr != "" {
			t.Errorf("build -q wrote on stderr: %q", q.Stderr)
		}
		if got, err := os.ReadFile(iid); err != nil || string(got) != id {
			t.Errorf("--iidfile holds %q (%v), want %s", got, err, id)
		}
		b = c.ok(append([]string{"build"}, buildArgs("--progress=plain", "-t", tag, ctx)...)...)
		if !regexp.MustCompile(`#\d+ \[2/2\] RUN echo .*\n#\d+ CACHED`).MatchString(b.Stderr) {
			t.Errorf("rebuild did not use the cache for the RUN:\n%s", b.Stderr)
		}

		// --build-arg, --label and --target.
		multi := writeContext(t, map[string]string{"Dockerfile": `FROM alpine:3.18 AS base
ARG GREETING=unset
RUN echo "greeting=$GREETING" > /g.txt
CMD ["cat", "/g.txt"]

FROM base AS other
RUN echo other > /g.txt
`})
		tag3 := "e2e-buildcli-" + c.name + ":args"
		t.Cleanup(func() { c.run("rmi", "-f", tag3) })
		c.ok(append([]string{"build"}, buildArgs("-q", "--target", "base", "--build-arg", "GREETING=hi", "--label", "e2e.label=yes", "-t", tag3, multi)...)...)
		if out := c.ok("run", "--rm", tag3).Stdout; out != "greeting=hi\n" {
			t.Errorf("--target base --build-arg GREETING=hi: the image printed %q", out)
		}
		if l := c.ok("image", "inspect", "--format", `{{index .Config.Labels "e2e.label"}}`, tag3).Stdout; l != "yes\n" {
			t.Errorf("--label e2e.label=yes: label is %q", l)
		}
	})
}

// TestBuildCLIStdin (issue 9 item 8): `build -f - DIR` takes the
// Dockerfile from stdin, `build -` a Dockerfile (empty context) or a tar
// context from stdin.
func TestBuildCLIStdin(t *testing.T) {
	eachBuildCLI(t, func(t *testing.T, c *CLI) {
		tag := "e2e-buildcli-stdin-" + c.name + ":1"
		t.Cleanup(func() { c.run("rmi", "-f", tag) })
		dir := writeContext(t, map[string]string{"msg.txt": "from the context\n", "Dockerfile": "FROM scratch\nthis is not the Dockerfile\n"})
		df := "FROM alpine:3.18\nCOPY msg.txt /msg.txt\nCMD [\"cat\", \"/msg.txt\"]\n"
		r := c.runTimeout(cliTimeout, []byte(df), append([]string{"build"}, buildArgs("-q", "-f", "-", "-t", tag, dir)...)...)
		if r.Code != 0 {
			t.Fatalf("build -f -: exit %d\n%s", r.Code, r.Stderr)
		}
		if out := c.ok("run", "--rm", tag).Stdout; out != "from the context\n" {
			t.Errorf("build -f - DIR: the image printed %q", out)
		}

		r = c.runTimeout(cliTimeout, []byte("FROM alpine:3.18\nRUN echo piped > /p.txt\nCMD [\"cat\", \"/p.txt\"]\n"),
			append([]string{"build"}, buildArgs("-q", "-t", tag, "-")...)...)
		if r.Code != 0 {
			t.Fatalf("build - (Dockerfile): exit %d\n%s", r.Code, r.Stderr)
		}
		if out := c.ok("run", "--rm", tag).Stdout; out != "piped\n" {
			t.Errorf("build - (Dockerfile): the image printed %q", out)
		}

		var tb bytes.Buffer
		tw := tar.NewWriter(&tb)
		for name, body := range map[string]string{"Dockerfile": df, "msg.txt": "from the tar\n"} {
			_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))})
			_, _ = tw.Write([]byte(body))
		}
		_ = tw.Close()
		r = c.runTimeout(cliTimeout, tb.Bytes(), append([]string{"build"}, buildArgs("-q", "-t", tag, "-")...)...)
		if r.Code != 0 {
			t.Fatalf("build - (tar): exit %d\n%s", r.Code, r.Stderr)
		}
		if out := c.ok("run", "--rm", tag).Stdout; out != "from the tar\n" {
			t.Errorf("build - (tar): the image printed %q", out)
		}
	})
}

// TestBuildCLIErrors (issue 9 item 10, bad input): a missing context, a
// missing Dockerfile, an unknown instruction (named with its line) and a
// failing RUN (its exit code in the message) fail the build with exit 1
// and tag nothing.
func TestBuildCLIErrors(t *testing.T) {
	eachBuildCLI(t, func(t *testing.T, c *CLI) {
		tag := "e2e-buildcli-bad-" + c.name + ":1"
		t.Cleanup(func() { c.run("rmi", "-f", tag) })
		missing := filepath.Join(t.TempDir(), "nope")
		c.fail(append([]string{"build"}, buildArgs("-t", tag, missing)...), `unable to prepare context: path "`+missing+`" not found`)

		// The wording is BuildKit's and varies with its version (dockerd
		// 20.10 embeds 0.8, which attaches no Dockerfile source to errors):
		// the source lines are checked on berthd (BuildKit 0.34) only.
		newBuildKit := env.target == "berth"
		empty := writeContext(t, map[string]string{"README": "no Dockerfile here\n"})
		c.fail(append([]string{"build"}, buildArgs("--progress=plain", "-t", tag, empty)...),
			"ERROR: failed to build: failed to solve: ", "failed to read dockerfile: open ", "Dockerfile: no such file or directory")

		bad := writeContext(t, map[string]string{"Dockerfile": "FROM alpine:3.18\nFOO bar\n"})
		r := c.fail(append([]string{"build"}, buildArgs("--progress=plain", "-t", tag, bad)...),
			"line 2", "unknown instruction: FOO")
		if newBuildKit && !strings.Contains(r.Stderr, "Dockerfile:2\n") {
			t.Errorf("the parse error does not show the Dockerfile's line:\n%s", r.Stderr)
		}

		failing := writeContext(t, map[string]string{"Dockerfile": "FROM alpine:3.18\nRUN echo about to fail && exit 3\n"})
		r = c.fail(append([]string{"build"}, buildArgs("--progress=plain", "-t", tag, failing)...),
			"ERROR: failed to build: failed to solve: ", "/bin/sh -c echo about to fail && exit 3", "exit code: 3", "about to fail")
		if newBuildKit && !strings.Contains(r.Stderr, `process "/bin/sh -c echo about to fail && exit 3" did not complete successfully: exit code: 3`) {
			t.Errorf("the failure is not worded as BuildKit 0.34 words it:\n%s", r.Stderr)
		}
		if newBuildKit && !strings.Contains(r.Stderr, ">>> RUN echo about to fail && exit 3") {
			t.Errorf("the failure does not show the Dockerfile's line:\n%s", r.Stderr)
		}
		c.fail([]string{"image", "inspect", tag}, "No such image")
	})
}

// TestBuildPrivateBase (issue 9 item 2, item 4): a FROM image in a
// registry that wants credentials is pulled with those the client holds
// (after `login`): the classic path sends them in X-Registry-Config, buildx
// and berth build through their BuildKit session. Without them the build
// fails.
func TestBuildPrivateBase(t *testing.T) {
	reg := startRegistry(t, registryOpts{htpasswd: true})
	a := requireEnv(t).api()
	ensureImage(t, a, "busybox:latest")
	base := reg.Host + "/e2e/privbase:1"
	admin := cli(t, "docker")
	if r := admin.runStdin([]byte(authPassword+"\n"), "login", "-u", authUser, "--password-stdin", reg.Host); r.Code != 0 {
		t.Fatalf("login: %s", r.Stderr)
	}
	admin.ok("tag", "busybox:latest", base)
	admin.ok("push", base)
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM " + base + "\nRUN echo built on the private base > /ok\nCMD [\"cat\", \"/ok\"]\n"})
	for _, variant := range []string{"docker-classic", "docker-buildx", "berth"} {
		t.Run(variant, func(t *testing.T) {
			var c *CLI
			switch variant {
			case "docker-classic":
				c = cli(t, "docker")
			case "docker-buildx":
				c = buildCLI(t, "docker")
			default:
				c = buildCLI(t, "berth")
			}
			tag := "e2e-privbase-" + variant + ":1"
			t.Cleanup(func() { c.run("rmi", "-f", tag) })
			// The base must come from the registry, not the store.
			removeImage(t, a, base)
			args := append([]string{"build"}, buildArgs("--no-cache", "-t", tag, ctx)...)
			if r := c.run(args...); r.Code == 0 {
				t.Fatalf("a build FROM the private %s worked without credentials", base)
			}
			if r := c.runStdin([]byte(authPassword+"\n"), "login", "-u", authUser, "--password-stdin", reg.Host); r.Code != 0 {
				t.Fatalf("login: %s", r.Stderr)
			}
			c.ok(args...)
			if out := c.ok("run", "--rm", tag).Stdout; out != "built on the private base\n" {
				t.Errorf("run %s printed %q", tag, out)
			}
		})
	}
}
