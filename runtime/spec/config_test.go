package spec

import (
	"slices"
	"testing"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func image(entrypoint, cmd []string) *dockerspec.DockerOCIImageConfig {
	return &dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{Entrypoint: entrypoint, Cmd: cmd}}
}

func TestArgs(t *testing.T) {
	tests := []struct {
		name            string
		img             *dockerspec.DockerOCIImageConfig
		entrypoint, cmd []string
		want            []string
		wantErr         string
	}{
		{"image cmd", image(nil, []string{"nginx", "-g", "daemon off;"}), nil, nil, []string{"nginx", "-g", "daemon off;"}, ""},
		{"image entrypoint and cmd", image([]string{"/docker-entrypoint.sh"}, []string{"nginx"}), nil, nil, []string{"/docker-entrypoint.sh", "nginx"}, ""},
		{"request cmd replaces image cmd", image([]string{"/ep"}, []string{"nginx"}), nil, []string{"sh"}, []string{"/ep", "sh"}, ""},
		{"--entrypoint clears image cmd", image([]string{"/ep"}, []string{"nginx"}), []string{"sh"}, nil, []string{"sh"}, ""},
		{"--entrypoint with cmd", image([]string{"/ep"}, []string{"nginx"}), []string{"sh"}, []string{"-c", "true"}, []string{"sh", "-c", "true"}, ""},
		{`--entrypoint "" with cmd`, image([]string{"/ep"}, []string{"nginx"}), []string{""}, []string{"ls"}, []string{"ls"}, ""},
		{`--entrypoint "" alone`, image([]string{"/ep"}, []string{"nginx"}), []string{""}, nil, nil, "No command specified"},
		{"nothing at all", image(nil, nil), nil, nil, nil, "No command specified"},
		{"no image", nil, nil, []string{"true"}, []string{"true"}, ""},
		{`no image, --entrypoint ""`, nil, []string{""}, []string{"ls"}, []string{"ls"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := testInput(&container.Config{Entrypoint: tt.entrypoint, Cmd: tt.cmd}, nil)
			in.Image = tt.img
			s, err := Generate(in)
			if tt.wantErr != "" {
				wantInvalid(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(s.Process.Args, tt.want) {
				t.Errorf("args = %q, want %q", s.Process.Args, tt.want)
			}
		})
	}
}

func TestMergeConfigDoesNotModifyInputs(t *testing.T) {
	req := &container.Config{Env: []string{"A=1"}, Labels: map[string]string{"a": "1"}}
	img := &dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{
		Env: []string{"B=2"}, Cmd: []string{"sh"}, Labels: map[string]string{"b": "2"},
		Volumes: map[string]struct{}{"/data": {}}, ExposedPorts: map[string]struct{}{"80/tcp": {}},
		WorkingDir: "/app", User: "app", StopSignal: "SIGQUIT",
	}}
	img.Healthcheck = &dockerspec.HealthcheckConfig{Test: []string{"CMD", "true"}, Interval: time.Second, Retries: 3}
	c, err := MergeConfig(req, img)
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Env) != 1 || len(req.Labels) != 1 || req.Cmd != nil {
		t.Errorf("request modified: %+v", req)
	}
	if !slices.Equal(c.Env, []string{"A=1", "B=2"}) {
		t.Errorf("env = %q", c.Env)
	}
	if c.Labels["a"] != "1" || c.Labels["b"] != "2" {
		t.Errorf("labels = %v", c.Labels)
	}
	if _, ok := c.Volumes["/data"]; !ok || len(c.ExposedPorts) != 1 {
		t.Errorf("volumes %v ports %v", c.Volumes, c.ExposedPorts)
	}
	if c.WorkingDir != "/app" || c.User != "app" || c.StopSignal != "SIGQUIT" {
		t.Errorf("got %q %q %q", c.WorkingDir, c.User, c.StopSignal)
	}
	if c.Healthcheck == nil || c.Healthcheck.Retries != 3 || c.Healthcheck == img.Healthcheck {
		t.Errorf("healthcheck %+v", c.Healthcheck)
	}

	// The request's healthcheck fields win, the rest come from the image.
	req = &container.Config{Healthcheck: &container.HealthConfig{Interval: 5 * time.Second}}
	c, err = MergeConfig(req, img)
	if err != nil {
		t.Fatal(err)
	}
	if h := c.Healthcheck; h.Interval != 5*time.Second || h.Retries != 3 || !slices.Equal(h.Test, []string{"CMD", "true"}) {
		t.Errorf("merged healthcheck %+v", h)
	}
	if req.Healthcheck.Retries != 0 {
		t.Error("request healthcheck modified")
	}
}

func TestEnv(t *testing.T) {
	tests := []struct {
		name     string
		imageEnv []string
		env      []string
		tty      bool
		want     []string
		wantErr  string
	}{
		{"defaults", nil, nil, false, []string{"PATH=" + DefaultPathEnv, "HOSTNAME=0123456789ab"}, ""},
		{"tty adds TERM", nil, nil, true, []string{"PATH=" + DefaultPathEnv, "HOSTNAME=0123456789ab", "TERM=xterm"}, ""},
		{"image PATH replaces the default in place", []string{"PATH=/opt/bin", "LANG=C"}, nil, false,
			[]string{"PATH=/opt/bin", "HOSTNAME=0123456789ab", "LANG=C"}, ""},
		{"request env before image env, and wins", []string{"A=image", "B=image"}, []string{"B=req", "C=req"}, false,
			[]string{"PATH=" + DefaultPathEnv, "HOSTNAME=0123456789ab", "B=req", "C=req", "A=image"}, ""},
		{"bare key unsets", []string{"A=image"}, []string{"A", "TERM"}, true,
			[]string{"PATH=" + DefaultPathEnv, "HOSTNAME=0123456789ab"}, ""},
		{"user TERM wins", nil, []string{"TERM=vt100"}, true,
			[]string{"PATH=" + DefaultPathEnv, "HOSTNAME=0123456789ab", "TERM=vt100"}, ""},
		{"empty key", nil, []string{"=x"}, false, nil, "invalid environment variable: =x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := testInput(&container.Config{Env: tt.env, Tty: tt.tty}, nil)
			in.Image = &dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{Env: tt.imageEnv, Cmd: []string{"sh"}}}
			s, err := Generate(in)
			if tt.wantErr != "" {
				wantInvalid(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(s.Process.Env, tt.want) {
				t.Errorf("env = %q\nwant  %q", s.Process.Env, tt.want)
			}
		})
	}
}

func TestHostname(t *testing.T) {
	s := mustGenerate(t, testInput(nil, nil))
	if s.Hostname != "0123456789ab" {
		t.Errorf("default hostname %q", s.Hostname)
	}
	in := testInput(&container.Config{Cmd: []string{"sh"}, Hostname: "web", Domainname: "example.com"}, nil)
	s = mustGenerate(t, in)
	if s.Hostname != "web" || s.Domainname != "example.com" || !slices.Contains(s.Process.Env, "HOSTNAME=web") {
		t.Errorf("hostname %q domain %q env %q", s.Hostname, s.Domainname, s.Process.Env)
	}
	in.Hostname = "given"
	if s = mustGenerate(t, in); s.Hostname != "given" {
		t.Errorf("Input.Hostname ignored: %q", s.Hostname)
	}
}

func TestProcessMisc(t *testing.T) {
	umask := uint32(0o077)
	hc := &container.HostConfig{OomScoreAdj: 500, ConsoleSize: [2]uint{40, 120}, Umask: &umask,
		SecurityOpt: []string{"no-new-privileges"}}
	s := mustGenerate(t, testInput(&container.Config{Cmd: []string{"sh"}, Tty: true}, hc))
	p := s.Process
	if !p.Terminal || p.ConsoleSize == nil || p.ConsoleSize.Height != 40 || p.ConsoleSize.Width != 120 {
		t.Errorf("terminal %v size %+v", p.Terminal, p.ConsoleSize)
	}
	if p.OOMScoreAdj == nil || *p.OOMScoreAdj != 500 || !p.NoNewPrivileges || *p.User.Umask != 0o077 {
		t.Errorf("oom %v nnp %v umask %v", p.OOMScoreAdj, p.NoNewPrivileges, p.User.Umask)
	}
	// No console size without a terminal.
	s = mustGenerate(t, testInput(nil, hc))
	if s.Process.ConsoleSize != nil || s.Process.Terminal {
		t.Error("console size without tty")
	}
	_, err := Generate(testInput(nil, &container.HostConfig{OomScoreAdj: 1001}))
	wantInvalid(t, err, "Invalid value 1001, range for oom score adj is [-1000, 1000]")
}

func TestInit(t *testing.T) {
	hc := &container.HostConfig{Init: ptr(true)}
	in := testInput(&container.Config{Cmd: []string{"sleep", "1"}}, hc)
	if _, err := Generate(in); err == nil {
		t.Fatal("--init without an init binary accepted")
	}
	in.InitPath = "/usr/bin/tini-static"
	s := mustGenerate(t, in)
	if !slices.Equal(s.Process.Args, []string{"/sbin/docker-init", "--", "sleep", "1"}) {
		t.Errorf("args %q", s.Process.Args)
	}
	m := findMount(s, "/sbin/docker-init")
	if m == nil || m.Source != "/usr/bin/tini-static" || !slices.Contains(m.Options, "ro") {
		t.Errorf("init mount %+v", m)
	}
	hc.Init = ptr(false)
	if s = mustGenerate(t, in); s.Process.Args[0] != "sleep" {
		t.Errorf("--init=false: args %q", s.Process.Args)
	}
}

func TestReplaceOrAppendEnv(t *testing.T) {
	base := []string{"A=1", "B=2"}
	got := ReplaceOrAppendEnv(base, []string{"B=3", "C=4", "A"}, []string{"C=5"})
	if !slices.Equal(got, []string{"B=3", "C=5"}) {
		t.Errorf("got %q", got)
	}
	if !slices.Equal(base, []string{"A=1", "B=2"}) {
		t.Errorf("base modified: %q", base)
	}
}
