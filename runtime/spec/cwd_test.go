package spec

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// cwdRootfs makes a rootfs with symlinks an image (or a volume) could ship.
func cwdRootfs(t *testing.T) (rootfs, volume string) {
	dir := t.TempDir()
	rootfs = filepath.Join(dir, "rootfs")
	volume = filepath.Join(dir, "volume")
	for _, d := range []string{"rootfs/app/sub", "rootfs/usr", "volume/ok"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"rootfs/evil":        "/proc/self/fd/7",
		"rootfs/rel":         "../../../proc/self/fd/8",
		"rootfs/p":           "/proc",
		"rootfs/chain1":      "chain2",
		"rootfs/chain2":      "/usr/../evil",
		"rootfs/loop1":       "loop2",
		"rootfs/loop2":       "loop1",
		"rootfs/fine":        "/app/sub",
		"rootfs/devfd":       "/dev/fd",
		"rootfs/hostproc":    "/host/proc",
		"volume/evil":        "/proc/self/fd/9",
		"volume/fine":        "ok",
		"rootfs/app/upper":   "../..",
		"rootfs/via-missing": "/missing/../evil",
		"rootfs/via-tmpfs":   "/scratch/x/../../evil",
		"rootfs/via-dev":     "/dev/x/../../evil",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return rootfs, volume
}

func TestWorkingDir(t *testing.T) {
	rootfs, volume := cwdRootfs(t)
	tests := []struct {
		wd      string
		want    string // the spec's cwd
		wantErr string
	}{
		{"", "/", ""},
		{"/app", "/app", ""},
		{"/app/", "/app", ""},
		{"/app/./sub/../sub", "/app/sub", ""},
		{"/does/not/exist", "/does/not/exist", ""}, // runc creates it
		{"/fine", "/fine", ""},
		{"/app/upper/app", "/app/upper/app", ""},
		{"/data/fine", "/data/fine", ""},
		{"/scratch/anything", "/scratch/anything", ""},
		{"relative/dir", "", "the working directory 'relative/dir' is invalid, it needs to be an absolute path"},
		{"/proc/self/fd/7", "", "the working directory '/proc/self/fd/7' is invalid, it leads into /proc"},
		{"/proc/thread-self/fd/3", "", "leads into /proc"},
		{"/proc/1/cwd", "", "leads into /proc"},
		{"/proc", "", "leads into /proc"},
		{"/evil", "", "leads into /proc"},
		{"/evil/x/y", "", "leads into /proc"},
		{"/rel", "", "leads into /proc"},
		{"/p/self/fd/7", "", "leads into /proc"},
		{"/chain1", "", "leads into /proc"},
		{"/devfd/7", "", "leads into /proc"},
		{"/dev/fd/7", "", "leads into /proc"},
		{"/dev/stdin", "", "leads into /proc"},
		{"/data/evil", "", "leads into /proc"},
		{"/host/proc/self/fd/7", "", "leads into /proc"}, // the host's / bound in
		{"/hostproc/self/fd/7", "", "leads into /proc"},
		{"/hp/self/fd/7", "", "leads into /proc"}, // the host's /proc bound in
		{"/loop1", "", "too many levels of symbolic links"},
		{"/via-missing", "", "leads into /proc"},
		{"/via-tmpfs", "", "leads into /proc"},
		{"/via-dev", "", "leads into /proc"},
		{"/missing/x/../../evil", "", "leads into /proc"}, // cleaned to /evil
	}
	for _, tt := range tests {
		t.Run(tt.wd, func(t *testing.T) {
			in := testInput(&container.Config{Cmd: []string{"sh"}, WorkingDir: tt.wd}, &container.HostConfig{Tmpfs: map[string]string{"/scratch": ""}})
			in.Rootfs = rootfs
			in.Mounts = []specs.Mount{
				{Destination: "/data", Type: "bind", Source: volume, Options: []string{"rbind"}},
				{Destination: "/host", Type: "bind", Source: "/", Options: []string{"rbind", "ro"}},
				{Destination: "/hp", Source: "/proc", Options: []string{"rbind"}},
			}
			s, err := Generate(in)
			if tt.wantErr != "" {
				wantInvalid(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Process.Cwd != tt.want {
				t.Errorf("cwd %q, want %q", s.Process.Cwd, tt.want)
			}
		})
	}
}

// A bind source that is itself a host symlink is followed on the host, as
// runc mounts it: what it leads to is what the container sees.
func TestWorkingDirThroughSymlinkedBindSource(t *testing.T) {
	rootfs, _ := cwdRootfs(t)
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	if err := os.MkdirAll(real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/proc/self/fd/7", filepath.Join(real, "evil")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	in := testInput(&container.Config{Cmd: []string{"sh"}, WorkingDir: "/vol/evil"}, nil)
	in.Rootfs = rootfs
	in.Mounts = []specs.Mount{{Destination: "/vol", Type: "bind", Source: filepath.Join(dir, "link")}}
	_, err := Generate(in)
	wantInvalid(t, err, "leads into /proc")
}

func TestImageWorkingDirIntoProc(t *testing.T) {
	in := testInput(&container.Config{}, nil)
	in.Image = image(nil, []string{"sh"})
	in.Image.WorkingDir = "/proc/self/fd/5"
	_, err := Generate(in)
	wantInvalid(t, err, "leads into /proc")
	in.Image.WorkingDir = "relative"
	_, err = Generate(in)
	wantInvalid(t, err, "it needs to be an absolute path")
	// The request's -w replaces the image's.
	in.Config.WorkingDir = "/srv"
	if s := mustGenerate(t, in); s.Process.Cwd != "/srv" {
		t.Errorf("cwd %q", s.Process.Cwd)
	}
}

func TestExecProcess(t *testing.T) {
	rootfs, _ := cwdRootfs(t)
	in := testInput(&container.Config{Cmd: []string{"sleep", "1"}, Env: []string{"A=1"}, User: "app", WorkingDir: "/app", Tty: true},
		&container.HostConfig{CapAdd: []string{"NET_ADMIN"}, SecurityOpt: []string{"no-new-privileges"}, GroupAdd: []string{"docker"}})
	in.Rootfs = rootfs
	base := mustGenerate(t, in)
	before := *base.Process

	p, err := ExecProcess(base, ExecInput{Cmd: []string{"sh"}, Users: testUsers, Host: testHost})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Args, []string{"sh"}) || p.Cwd != "/app" || p.User.UID != 1000 || !p.NoNewPrivileges || p.Terminal {
		t.Errorf("exec process %+v", p)
	}
	if slices.Contains(p.Env, "TERM=xterm") || !slices.Contains(p.Env, "A=1") {
		t.Errorf("env %q", p.Env)
	}
	if !slices.Equal(p.Capabilities.Bounding, base.Process.Capabilities.Bounding) || !slices.Equal(p.Rlimits, base.Process.Rlimits) {
		t.Errorf("caps or rlimits differ from the container's")
	}
	if !slices.Equal(p.User.AdditionalGids, []uint32{1000, 10, 50, 999}) {
		t.Errorf("gids %v", p.User.AdditionalGids)
	}

	p, err = ExecProcess(base, ExecInput{Cmd: []string{"id"}, Env: []string{"B=2", "A"}, User: "root", GroupAdd: []string{"docker"},
		WorkingDir: "/tmp", Tty: true, ConsoleSize: [2]uint{24, 80}, Privileged: true, Users: testUsers, Host: testHost})
	if err != nil {
		t.Fatal(err)
	}
	if p.User.UID != 0 || !slices.Equal(p.User.AdditionalGids, []uint32{0, 10, 999}) || p.Cwd != "/tmp" || !p.Terminal ||
		p.ConsoleSize == nil || p.ConsoleSize.Width != 80 {
		t.Errorf("exec process %+v", p)
	}
	if !slices.Contains(p.Env, "TERM=xterm") || !slices.Contains(p.Env, "B=2") || slices.Contains(p.Env, "A=1") {
		t.Errorf("env %q", p.Env)
	}
	if !slices.Equal(p.Capabilities.Bounding, testHost.Caps) || len(p.Capabilities.Inheritable) != 0 {
		t.Errorf("privileged exec caps %v", p.Capabilities)
	}

	for _, tc := range []struct {
		in      ExecInput
		wantErr string
	}{
		{ExecInput{}, "No exec command specified"},
		{ExecInput{Cmd: []string{"sh"}, WorkingDir: "tmp"}, "the working directory 'tmp' is invalid, it needs to be an absolute path"},
		{ExecInput{Cmd: []string{"sh"}, WorkingDir: "/proc/self/fd/7"}, "leads into /proc"},
		{ExecInput{Cmd: []string{"sh"}, WorkingDir: "/evil"}, "leads into /proc"},
		{ExecInput{Cmd: []string{"sh"}, WorkingDir: "/dev/fd/3"}, "leads into /proc"},
		{ExecInput{Cmd: []string{"sh"}, User: "nosuch"}, "unable to find user nosuch"},
		{ExecInput{Cmd: []string{"sh"}, Env: []string{"=x"}}, "invalid environment variable: =x"},
	} {
		tc.in.Users, tc.in.Host = testUsers, testHost
		_, err := ExecProcess(base, tc.in)
		wantInvalid(t, err, tc.wantErr)
	}
	if !reflectEqualProcess(&before, base.Process) {
		t.Error("ExecProcess modified the base spec")
	}
}

func reflectEqualProcess(a, b *specs.Process) bool {
	return slices.Equal(a.Env, b.Env) && slices.Equal(a.Args, b.Args) && a.Cwd == b.Cwd &&
		slices.Equal(a.User.AdditionalGids, b.User.AdditionalGids) && a.Capabilities == b.Capabilities
}

func TestValidate(t *testing.T) {
	good := func() *specs.Spec { return mustGenerate(t, testInput(nil, nil)) }
	if err := Validate(good()); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(s *specs.Spec){
		"relative root":    func(s *specs.Spec) { s.Root.Path = "rootfs" },
		"no args":          func(s *specs.Spec) { s.Process.Args = nil },
		"relative cwd":     func(s *specs.Spec) { s.Process.Cwd = "x" },
		"inheritable caps": func(s *specs.Spec) { s.Process.Capabilities.Inheritable = []string{"CAP_KILL"} },
		"unknown cap":      func(s *specs.Spec) { s.Process.Capabilities.Bounding = []string{"CAP_NOPE"} },
		"duplicate mount":  func(s *specs.Spec) { s.Mounts = append(s.Mounts, s.Mounts[0]) },
		"unclean mount":    func(s *specs.Spec) { s.Mounts[0].Destination = "/proc/" },
		"duplicate ns":     func(s *specs.Spec) { s.Linux.Namespaces = append(s.Linux.Namespaces, s.Linux.Namespaces[0]) },
		"relative ns path": func(s *specs.Spec) { s.Linux.Namespaces[1].Path = "ns/net" },
		"hostname, no uts": func(s *specs.Spec) { s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, isUTS) },
		"duplicate rlimit": func(s *specs.Spec) { s.Process.Rlimits = append(s.Process.Rlimits, s.Process.Rlimits[0]) },
		"soft above hard":  func(s *specs.Spec) { s.Process.Rlimits[0].Soft = s.Process.Rlimits[0].Hard + 1 },
		"no cgroups path":  func(s *specs.Spec) { s.Linux.CgroupsPath = "" },
		"no mount namespace": func(s *specs.Spec) {
			s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.MountNamespace })
		},
	} {
		s := good()
		mutate(s)
		if err := Validate(s); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func isUTS(n specs.LinuxNamespace) bool { return n.Type == specs.UTSNamespace }
