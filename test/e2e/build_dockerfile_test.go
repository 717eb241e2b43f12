package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// imageConfig is an image's Config as `image inspect` shows it.
type imageConfig struct {
	Cmd          []string
	Entrypoint   []string
	Env          []string
	Labels       map[string]string
	ExposedPorts map[string]any
	User         string
	WorkingDir   string
	Volumes      map[string]any
	StopSignal   string
	Shell        []string
	OnBuild      []string
	Healthcheck  *struct {
		Test     []string
		Interval int64
	}
}

func inspectConfig(t *testing.T, c *CLI, ref string) imageConfig {
	t.Helper()
	var cfg imageConfig
	out := c.ok("image", "inspect", "--format", "{{json .Config}}", ref).Stdout
	if err := json.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatalf("image inspect %s: %v\n%s", ref, err, out)
	}
	return cfg
}

// tarGz is a gzip tar archive of files (name → content).
func tarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(body))
	}
	_ = tw.Close()
	_ = gz.Close()
	return b.Bytes()
}

// TestBuildDockerfileCoverage (issue 9 item 5): the Dockerfile
// instructions every BuildKit frontend has, built with berth build and
// docker build (buildx): ARG before FROM, FROM ... AS, scratch, RUN shell
// and exec forms, ENV, LABEL, EXPOSE, USER, WORKDIR, VOLUME, COPY
// --from/--chown, ADD of a local archive (extracted) and of a URL,
// STOPSIGNAL, HEALTHCHECK, SHELL, ONBUILD, ENTRYPOINT, CMD, RUN
// --mount=type=cache|bind|tmpfs, .dockerignore, and a stage the target
// does not need is skipped (its RUN fails).
func TestBuildDockerfileCoverage(t *testing.T) {
	files := serve(t, "127.0.0.1:0", http.FileServer(http.Dir(writeContext(t, map[string]string{"remote.txt": "fetched over http\n"}))))
	df := `ARG BASE=alpine:3.18
FROM ${BASE} AS builder
RUN mkdir -p /out && echo built > /out/built.txt
RUN --mount=type=cache,target=/cache echo cached > /cache/c && cp /cache/c /out/cache.txt
RUN --mount=type=bind,source=data.txt,target=/mnt/data.txt cp /mnt/data.txt /out/bound.txt
RUN --mount=type=tmpfs,target=/scratchpad touch /scratchpad/x && ! test -e /out/x

FROM scratch AS files
COPY data.txt /data.txt

FROM builder AS broken
RUN echo this stage is not needed && exit 7

FROM ${BASE}
ARG BASE
ENV GREETING="hello env" OTHER=two
LABEL e2e.label="a label" e2e.base=${BASE}
EXPOSE 8080/tcp 53/udp
WORKDIR /app
COPY --from=builder /out/ /app/out/
COPY --from=files /data.txt /app/data.txt
RUN echo 'appuser:x:4242:4242::/app:/bin/sh' >> /etc/passwd && echo 'appuser:x:4242:' >> /etc/group
COPY --chown=appuser:appuser data.txt /app/owned.txt
ADD archive.tar.gz /app/extracted/
ADD --chown=appuser:appuser http://` + files + `/remote.txt /app/remote.txt
RUN ["/bin/sh", "-c", "echo exec form > /app/exec.txt"]
RUN --mount=type=bind,target=/ctx test -e /ctx/data.txt && ! test -e /ctx/ignored.txt
VOLUME /data
STOPSIGNAL SIGUSR1
HEALTHCHECK --interval=5s CMD true
ONBUILD RUN echo child
SHELL ["/bin/sh", "-ec"]
RUN echo "shell: $GREETING" > /app/shell.txt
USER appuser
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /app/out/built.txt /app/out/cache.txt /app/out/bound.txt /app/data.txt /app/extracted/inside.txt /app/remote.txt /app/exec.txt /app/shell.txt; id -u; stat -c %U /app/owned.txt; ls /app; pwd"]
`
	eachBuildCLI(t, func(t *testing.T, c *CLI) {
		dir := writeContext(t, map[string]string{
			"Dockerfile":    df,
			"data.txt":      "from the context\n",
			"ignored.txt":   "must not be sent\n",
			".dockerignore": "ignored.txt\n",
		})
		if err := os.WriteFile(filepath.Join(dir, "archive.tar.gz"), tarGz(t, map[string]string{"inside.txt": "from the archive\n"}), 0o644); err != nil {
			t.Fatal(err)
		}
		tag := "e2e-dfcover-" + c.name + ":1"
		t.Cleanup(func() { c.run("rmi", "-f", tag) })
		b := c.ok(append([]string{"build"}, buildArgs("--progress=plain", "-t", tag, dir)...)...)
		if strings.Contains(b.Stderr, "this stage is not needed") {
			t.Errorf("the unneeded stage ran:\n%s", b.Stderr)
		}
		out := c.ok("run", "--rm", tag).Stdout
		want := "built\ncached\nfrom the context\nfrom the context\nfrom the archive\nfetched over http\nexec form\nshell: hello env\n4242\nappuser\ndata.txt\nexec.txt\nextracted\nout\nowned.txt\nremote.txt\nshell.txt\n/app\n"
		if out != want {
			t.Errorf("run %s printed:\n%s\nwant:\n%s", tag, out, want)
		}
		cfg := inspectConfig(t, c, tag)
		if !reflect.DeepEqual(cfg.Entrypoint, []string{"/bin/sh", "-c"}) || len(cfg.Cmd) != 1 {
			t.Errorf("Entrypoint %q Cmd %q", cfg.Entrypoint, cfg.Cmd)
		}
		env := strings.Join(cfg.Env, "\n")
		if !strings.Contains(env, "GREETING=hello env") || !strings.Contains(env, "OTHER=two") {
			t.Errorf("Env %q", cfg.Env)
		}
		if cfg.Labels["e2e.label"] != "a label" || cfg.Labels["e2e.base"] != "alpine:3.18" {
			t.Errorf("Labels %v", cfg.Labels)
		}
		if _, ok := cfg.ExposedPorts["8080/tcp"]; !ok || len(cfg.ExposedPorts) != 2 {
			t.Errorf("ExposedPorts %v", cfg.ExposedPorts)
		}
		if _, ok := cfg.Volumes["/data"]; !ok {
			t.Errorf("Volumes %v", cfg.Volumes)
		}
		if cfg.User != "appuser" || cfg.WorkingDir != "/app" || cfg.StopSignal != "SIGUSR1" {
			t.Errorf("User %q WorkingDir %q StopSignal %q", cfg.User, cfg.WorkingDir, cfg.StopSignal)
		}
		if !reflect.DeepEqual(cfg.Shell, []string{"/bin/sh", "-ec"}) || !reflect.DeepEqual(cfg.OnBuild, []string{"RUN echo child"}) {
			t.Errorf("Shell %q OnBuild %q", cfg.Shell, cfg.OnBuild)
		}
		if cfg.Healthcheck == nil || !reflect.DeepEqual(cfg.Healthcheck.Test, []string{"CMD-SHELL", "true"}) || cfg.Healthcheck.Interval != 5e9 {
			t.Errorf("Healthcheck %+v", cfg.Healthcheck)
		}
	})
}

// TestBuildDockerfileNewSyntax (issue 9 item 5): what the Dockerfile
// frontend added after dockerd 20.10's BuildKit: RUN heredocs, COPY
// --chmod and --link, ADD --checksum (a wrong checksum fails the build).
func TestBuildDockerfileNewSyntax(t *testing.T) {
	onlyBerth(t, "dockerd 20.10's built-in Dockerfile frontend (BuildKit 0.8) has no heredocs, COPY --link or ADD --checksum, and a # syntax= image cannot be pulled here")
	remote := "fetched over http\n"
	files := serve(t, "127.0.0.1:0", http.FileServer(http.Dir(writeContext(t, map[string]string{"remote.txt": remote}))))
	sum := sha256.Sum256([]byte(remote))
	c := buildCLI(t, "berth")
	df := `FROM alpine:3.18
RUN <<EOF
echo line one > /heredoc.txt
echo line two >> /heredoc.txt
EOF
COPY --chmod=0741 data.txt /mode.txt
COPY --link data.txt /linked.txt
ADD --checksum=sha256:` + hex.EncodeToString(sum[:]) + ` http://` + files + `/remote.txt /remote.txt
CMD ["sh", "-c", "cat /heredoc.txt /linked.txt /remote.txt; stat -c %a /mode.txt"]
`
	dir := writeContext(t, map[string]string{"Dockerfile": df, "data.txt": "from the context\n"})
	tag := "e2e-dfnew:1"
	t.Cleanup(func() { c.run("rmi", "-f", tag) })
	c.ok("build", "-q", "-t", tag, dir)
	if out := c.ok("run", "--rm", tag).Stdout; out != "line one\nline two\nfrom the context\nfetched over http\n741\n" {
		t.Errorf("run %s printed %q", tag, out)
	}
	bad := writeContext(t, map[string]string{"Dockerfile": "FROM alpine:3.18\nADD --checksum=sha256:" + strings.Repeat("0", 64) + " http://" + files + "/remote.txt /remote.txt\n"})
	c.fail([]string{"build", "--progress=plain", "-t", "e2e-dfnew:bad", bad}, "digest mismatch")
}
