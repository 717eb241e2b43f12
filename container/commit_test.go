package container

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

func TestShellWords(t *testing.T) {
	env := []string{"A=1", "B=two words"}
	for in, want := range map[string][]string{
		`a b  c`:             {"a", "b", "c"},
		`"x y" 'z $A'`:       {"x y", "z $A"},
		`$A ${A} "$B"`:       {"1", "1", "two words"},
		`${C:-def} \$A`:      {"def", "$A"},
		`k="v w" k2=$A`:      {"k=v w", "k2=1"},
		`"a\"b" "c\d"`:       {`a"b`, `c\d`},
		`name=${B}x`:         {"name=two wordsx"},
		`8080/tcp 53/udp 80`: {"8080/tcp", "53/udp", "80"},
	} {
		got, err := shellWords(in, env)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("shellWords(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := shellWords(`"open`, nil); err == nil {
		t.Error("unterminated quote accepted")
	}
}

func TestApplyChanges(t *testing.T) {
	cfg := &container.Config{Env: []string{"PATH=/bin", "X=old"}, Cmd: []string{"sh"}, WorkingDir: "/srv"}
	err := applyChanges(cfg, []string{
		`ENV X=new Y="a b"`,
		`ENV Z from legacy form`,
		`LABEL a=b "c d"=e`,
		`EXPOSE 80 53/udp 8000-8001`,
		`USER app:app`,
		`WORKDIR sub`,
		`VOLUME ["/data", "/logs"]`,
		`STOPSIGNAL SIGUSR1`,
		`CMD echo $X`,
		`HEALTHCHECK --interval=5s --retries=2 CMD ["true"]`,
		`ONBUILD RUN true`,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Env, []string{"PATH=/bin", "X=new", "Y=a b", "Z=from legacy form"}) {
		t.Errorf("Env = %q", cfg.Env)
	}
	if cfg.Labels["a"] != "b" || cfg.Labels["c d"] != "e" {
		t.Errorf("Labels = %v", cfg.Labels)
	}
	for _, p := range []string{"80/tcp", "53/udp", "8000/tcp", "8001/tcp"} {
		if _, ok := cfg.ExposedPorts[network.MustParsePort(p)]; !ok {
			t.Errorf("port %s missing: %v", p, cfg.ExposedPorts)
		}
	}
	if cfg.User != "app:app" || cfg.WorkingDir != "/srv/sub" || cfg.StopSignal != "SIGUSR1" {
		t.Errorf("user %q workdir %q stopsignal %q", cfg.User, cfg.WorkingDir, cfg.StopSignal)
	}
	if _, ok := cfg.Volumes["/logs"]; !ok || len(cfg.Volumes) != 2 {
		t.Errorf("Volumes = %v", cfg.Volumes)
	}
	// Variables expand in arguments, not in the shell-form command (the
	// shell does that at run time), as Docker.
	if !reflect.DeepEqual(cfg.Cmd, []string{"/bin/sh", "-c", "echo $X"}) {
		t.Errorf("Cmd = %q", cfg.Cmd)
	}
	if h := cfg.Healthcheck; h == nil || h.Interval.Seconds() != 5 || h.Retries != 2 || !reflect.DeepEqual(h.Test, []string{"CMD", "true"}) {
		t.Errorf("Healthcheck = %+v", cfg.Healthcheck)
	}
	if !reflect.DeepEqual(cfg.OnBuild, []string{"RUN true"}) {
		t.Errorf("OnBuild = %q", cfg.OnBuild)
	}

	// ENTRYPOINT drops the CMD unless a CMD came first.
	c2 := &container.Config{Cmd: []string{"sh"}}
	applyChanges(c2, []string{`ENTRYPOINT ["/bin/app"]`})
	if c2.Cmd != nil || !reflect.DeepEqual(c2.Entrypoint, []string{"/bin/app"}) {
		t.Errorf("entrypoint: %q %q", c2.Entrypoint, c2.Cmd)
	}
	c3 := &container.Config{}
	applyChanges(c3, []string{`CMD ["x"]`, `ENTRYPOINT ["/bin/app"]`})
	if !reflect.DeepEqual(c3.Cmd, []string{"x"}) {
		t.Errorf("cmd then entrypoint: %q", c3.Cmd)
	}

	for change, msg := range map[string]string{
		"RUN rm -rf /":      "run is not a valid change command",
		"FROM busybox":      "from is not a valid change command",
		"STOPSIGNAL SIGFOO": "Invalid signal: SIGFOO",
		"EXPOSE notaport":   "invalid containerPort: notaport",
		"ENV":               "ENV requires at least one argument",
	} {
		err := applyChanges(&container.Config{}, []string{change})
		if !cerrdefs.IsInvalidArgument(err) || err.Error() != msg {
			t.Errorf("%q: %v, want %q", change, err, msg)
		}
	}
}

func TestMergeCommitConfig(t *testing.T) {
	ctr := &container.Config{User: "u", Env: []string{"A=1", "B=2"}, Cmd: []string{"sh"}, WorkingDir: "/w", Labels: map[string]string{"l": "1"}, StopSignal: "SIGINT"}
	user := &container.Config{Env: []string{"A=9"}, Labels: map[string]string{"m": "2"}}
	mergeCommitConfig(user, ctr)
	if user.User != "u" || !reflect.DeepEqual(user.Env, []string{"A=9", "B=2"}) || !reflect.DeepEqual(user.Cmd, []string{"sh"}) ||
		user.WorkingDir != "/w" || user.Labels["l"] != "1" || user.Labels["m"] != "2" || user.StopSignal != "SIGINT" {
		t.Fatalf("%+v", user)
	}
}

func TestCommitReference(t *testing.T) {
	for in, want := range map[[2]string]string{
		{"", ""}:             "",
		{"app", ""}:          "docker.io/library/app:latest",
		{"app", "v1"}:        "docker.io/library/app:v1",
		{"app:old", "v2"}:    "docker.io/library/app:v2",
		{"reg:5000/x/y", ""}: "reg:5000/x/y:latest",
	} {
		got, err := commitReference(in[0], in[1])
		if err != nil || got != want {
			t.Errorf("%v: %q %v", in, got, err)
		}
	}
	if _, err := commitReference("UPPER", ""); !cerrdefs.IsInvalidArgument(err) {
		t.Errorf("bad repo: %v", err)
	}
}

func TestCommitAndRun(t *testing.T) {
	e := newXEnv(t)
	ctx := context.Background()
	id := e.run(t, []string{"sh", "-c", "echo committed > /state; rm /etc/group; mkdir /made; touch /ready; exec sleep 1000"}, nil)
	e.waitFile(t, id, "/ready")
	imgID, err := e.svc.Commit(ctx, id, CommitOptions{
		Repo: "committed", Tag: "v1", Comment: "a comment", Author: "me", Pause: true,
		Changes: []string{`CMD ["cat", "/state"]`, "ENV FOO=bar", "LABEL made=by-commit"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(imgID, "sha256:") {
		t.Fatalf("id %q", imgID)
	}
	// The container was paused for the commit and runs again.
	if out := e.exec(t, id, "cat", "/state"); out != "committed\n" {
		t.Fatalf("container after commit: %q", out)
	}
	rec, err := e.images.Resolve(ctx, "committed:v1")
	if err != nil || rec.ID.String() != imgID {
		t.Fatalf("resolve: %v %v", rec, err)
	}
	cfg, err := e.images.Config(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Author != "me" || !reflect.DeepEqual(cfg.Config.Cmd, []string{"cat", "/state"}) || cfg.Config.Labels["made"] != "by-commit" ||
		!contains(cfg.Config.Env, "FOO=bar") || len(cfg.RootFS.DiffIDs) != 2 {
		t.Fatalf("config: %+v", cfg)
	}
	last := cfg.History[len(cfg.History)-1]
	if last.Comment != "a comment" || last.CreatedBy != "sh -c echo committed > /state; rm /etc/group; mkdir /made; touch /ready; exec sleep 1000" || last.EmptyLayer {
		t.Fatalf("history: %+v", last)
	}
	// The layer carries the changes and none of runc's placeholders.
	l, err := e.snaps.Get(ctx, rec.TopChain)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"etc/hosts", "etc/resolv.conf", "etc/hostname"} {
		if _, err := os.Lstat(filepath.Join(l.Dir, p)); err == nil {
			t.Errorf("layer has the placeholder %s", p)
		}
	}
	if _, err := os.Lstat(filepath.Join(l.Dir, "made")); err != nil {
		t.Errorf("layer lacks /made: %v", err)
	}

	// Run the committed image.
	id2 := e.createFrom(t, "committed:v1", nil, nil)
	if err := e.svc.Start(ctx, id2); err != nil {
		t.Fatal(err)
	}
	if code := e.wait(t, id2); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if _, err := e.svc.ArchiveStat(ctx, id2, "/etc/group"); !cerrdefs.IsNotFound(err) {
		t.Errorf("/etc/group was deleted before the commit: %v", err)
	}
	if _, files := xGet(t, e, id2, "/state"); files["state"].data != "committed\n" {
		t.Errorf("/state: %v", files)
	}
	if ch, _ := e.svc.Changes(ctx, id2); len(ch) != 0 {
		t.Errorf("changes in the new container: %s", fmtChanges(ch))
	}
}

func TestCommitErrors(t *testing.T) {
	e := newXEnv(t)
	id := e.create(t, []string{"true"}, nil)
	if _, err := e.svc.Commit(context.Background(), id, CommitOptions{Changes: []string{"RUN x"}}); !cerrdefs.IsInvalidArgument(err) {
		t.Fatalf("bad change: %v", err)
	}
	if _, err := e.svc.Commit(context.Background(), "nope", CommitOptions{}); !cerrdefs.IsNotFound(err) {
		t.Fatalf("missing: %v", err)
	}
	// A never-started container commits to an empty layer on its image.
	imgID, err := e.svc.Commit(context.Background(), id, CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := e.images.Resolve(context.Background(), imgID)
	if err != nil || len(rec.Layers) != 2 {
		t.Fatalf("%+v %v", rec, err)
	}
}
