package e2e

import (
	"strings"
	"testing"
	"time"
)

// buildBadInputs are issue 9's bad build inputs, each with Docker's
// answer (BuildKit's, through buildx's docker driver, and berth build's),
// run on the suite's daemon (berthd or dockerd).
var buildBadInputs = []struct {
	name string
	run  func(t *testing.T, c *CLI)
}{
	{"missing-stage", badMissingStage},
	{"bad-heredoc", badHeredoc},
	{"no-from", badNoFrom},
}

// TestBuildBadInput (issue 9, bad input): see buildBadInputs.
func TestBuildBadInput(t *testing.T) {
	eachBuildCLI(t, func(t *testing.T, c *CLI) {
		for _, bc := range buildBadInputs {
			t.Run(bc.name, func(t *testing.T) { bc.run(t, c) })
		}
	})
}

// badMissingStage: `COPY --from=` a name that is no stage is an image
// name (Docker's rule); an image that does not exist fails the build
// with an error naming it, and nothing is tagged.
func badMissingStage(t *testing.T, c *CLI) {
	tag := "e2e-bad-missing-stage-" + c.name + ":1"
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM alpine:3.18 AS base\nRUN true\nFROM alpine:3.18\nCOPY --from=nosuchstage /x /x\n"})
	r := c.fail(append([]string{"build"}, buildArgs("--progress=plain", "-t", tag, ctx)...), "ERROR", "nosuchstage")
	if r.Elapsed > 60*time.Second {
		t.Errorf("the build took %v to fail", r.Elapsed)
	}
	c.fail([]string{"image", "inspect", tag}, "No such image")
}

// badHeredoc: a heredoc with no terminator fails the build with an
// error naming a line of the Dockerfile (BuildKit 0.8 in dockerd 20.10
// knows no heredocs: the body's first line is an unknown instruction).
func badHeredoc(t *testing.T, c *CLI) {
	tag := "e2e-bad-heredoc-" + c.name + ":1"
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM alpine:3.18\nRUN <<EOT\necho never terminated\n"})
	r := c.run(append([]string{"build"}, buildArgs("--progress=plain", "-t", tag, ctx)...)...)
	if r.Code != 1 {
		t.Fatalf("unterminated heredoc: exit %d, want 1\n%s", r.Code, clip(r.Stderr))
	}
	if !strings.Contains(r.Stderr, "line ") && !strings.Contains(r.Stderr, "Dockerfile:") {
		t.Errorf("the error names no line of the Dockerfile:\n%s", clip(r.Stderr))
	}
	c.fail([]string{"image", "inspect", tag}, "No such image")
}

// badNoFrom: a Dockerfile without FROM fails the build with a clear
// error, and nothing is tagged.
func badNoFrom(t *testing.T, c *CLI) {
	tag := "e2e-bad-nofrom-" + c.name + ":1"
	ctx := writeContext(t, map[string]string{"Dockerfile": "RUN echo no base\n"})
	c.fail(append([]string{"build"}, buildArgs("--progress=plain", "-t", tag, ctx)...), "ERROR", "no build stage in current context")
	c.fail([]string{"image", "inspect", tag}, "No such image")
}

// TestBuildMultiPlatform (issue 9 item 8): `build --platform a,b` into the
// daemon's image store, which keeps one platform per image (dockerd 20.10's
// and berthd's), is refused in buildx's words before anything is built,
// and nothing is tagged.
func TestBuildMultiPlatform(t *testing.T) {
	eachBuildCLI(t, func(t *testing.T, c *CLI) {
		tag := "e2e-multiplatform-" + c.name + ":1"
		ctx := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo built > /built\n"})
		c.fail(append([]string{"build"}, buildArgs("--platform", "linux/amd64,linux/arm64", "-t", tag, ctx)...),
			"Multi-platform build is not supported for the docker driver.\nSwitch to a different driver, or turn on the containerd image store, and try again.")
		c.fail([]string{"image", "inspect", tag}, "No such image")
	})
}
