package spec

import (
	"slices"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/opencontainers/runtime-spec/specs-go"
)

func dests(s *specs.Spec) []string {
	var out []string
	for _, m := range s.Mounts {
		out = append(out, m.Destination)
	}
	return out
}

func TestDefaultMounts(t *testing.T) {
	s := mustGenerate(t, testInput(nil, nil))
	want := []string{"/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm"}
	if !slices.Equal(dests(s), want) {
		t.Fatalf("mounts %v, want %v", dests(s), want)
	}
	check := func(dest, typ string, opts ...string) {
		t.Helper()
		m := findMount(s, dest)
		if m == nil || m.Type != typ || !slices.Equal(m.Options, opts) {
			t.Errorf("%s: %+v, want %s %v", dest, m, typ, opts)
		}
	}
	check("/proc", "proc", "nosuid", "noexec", "nodev")
	check("/dev", "tmpfs", "nosuid", "strictatime", "mode=755", "size=65536k")
	check("/dev/pts", "devpts", "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5")
	check("/sys", "sysfs", "nosuid", "noexec", "nodev", "ro")
	check("/sys/fs/cgroup", "cgroup", "ro", "nosuid", "noexec", "nodev")
	check("/dev/mqueue", "mqueue", "nosuid", "noexec", "nodev")
	check("/dev/shm", "tmpfs", "nosuid", "noexec", "nodev", "mode=1777", "size=67108864")
	if s.Root.Readonly {
		t.Error("root read-only by default")
	}
}

func TestMountVariants(t *testing.T) {
	s := mustGenerate(t, testInput(nil, &container.HostConfig{ShmSize: 1 << 20, ReadonlyRootfs: true}))
	if m := findMount(s, "/dev/shm"); !slices.Contains(m.Options, "size=1048576") {
		t.Errorf("shm %v", m.Options)
	}
	if !s.Root.Readonly {
		t.Error("--read-only ignored")
	}
	s = mustGenerate(t, testInput(nil, &container.HostConfig{IpcMode: "host"}))
	if m := findMount(s, "/dev/shm"); m == nil || m.Type != "bind" || m.Source != "/dev/shm" {
		t.Errorf("ipc host shm %+v", m)
	}
	s = mustGenerate(t, testInput(nil, &container.HostConfig{IpcMode: "none"}))
	if findMount(s, "/dev/shm") != nil {
		t.Error("ipc none still has /dev/shm")
	}
	s = mustGenerate(t, testInput(nil, &container.HostConfig{Privileged: true}))
	if slices.Contains(findMount(s, "/sys").Options, "ro") || slices.Contains(findMount(s, "/sys/fs/cgroup").Options, "ro") {
		t.Error("privileged /sys is read-only")
	}
	_, err := Generate(testInput(nil, &container.HostConfig{ShmSize: -1}))
	wantInvalid(t, err, "SHM size can not be less than 0")
}

func TestTmpfs(t *testing.T) {
	tests := []struct {
		name    string
		tmpfs   map[string]string
		mounts  []mount.Mount
		dest    string
		want    []string
		wantErr string
	}{
		{"defaults", map[string]string{"/run": ""}, nil, "/run", []string{"noexec", "nosuid", "nodev", "rprivate"}, ""},
		{"user options override", map[string]string{"/run": "exec,size=64m,mode=1777"}, nil, "/run",
			[]string{"nosuid", "nodev", "rprivate", "exec", "size=64m", "mode=1777"}, ""},
		{"last size wins", map[string]string{"/run/x/": "size=1m,ro,size=2m"}, nil, "/run/x",
			[]string{"noexec", "nosuid", "nodev", "rprivate", "ro", "size=2m"}, ""},
		{"--mount type=tmpfs", nil, []mount.Mount{{Type: mount.TypeTmpfs, Target: "/cache", ReadOnly: true,
			TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 64 << 20, Mode: 0o700}}}, "/cache",
			[]string{"noexec", "nosuid", "nodev", "rprivate", "size=64m", "mode=700", "ro"}, ""},
		{"--mount tmpfs odd size", nil, []mount.Mount{{Type: mount.TypeTmpfs, Target: "/c",
			TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1000}}}, "/c",
			[]string{"noexec", "nosuid", "nodev", "rprivate", "size=1000"}, ""},
		{"tmpfs over /dev/shm replaces it", map[string]string{"/dev/shm": "size=1g"}, nil, "/dev/shm",
			[]string{"noexec", "nosuid", "nodev", "rprivate", "size=1g"}, ""},
		{"bad option", map[string]string{"/run": "bogus"}, nil, "", nil, `invalid tmpfs option "bogus"`},
		{"bad data option", map[string]string{"/run": "foo=bar"}, nil, "", nil, `invalid tmpfs option "foo=bar"`},
		{"relative", map[string]string{"run": ""}, nil, "", nil, "mount path must be absolute"},
		{"root", map[string]string{"/": ""}, nil, "", nil, "destination can't be '/'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Generate(testInput(nil, &container.HostConfig{Tmpfs: tt.tmpfs, Mounts: tt.mounts}))
			if tt.wantErr != "" {
				wantInvalid(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			m := findMount(s, tt.dest)
			if m == nil || m.Type != "tmpfs" || !slices.Equal(m.Options, tt.want) {
				t.Errorf("mount %+v, want options %v", m, tt.want)
			}
		})
	}
}

func TestUserMounts(t *testing.T) {
	in := testInput(nil, &container.HostConfig{Tmpfs: map[string]string{"/data/tmp": ""}})
	in.Mounts = []specs.Mount{
		{Destination: "/data/sub/deeper", Type: "bind", Source: "/srv/c", Options: []string{"rbind"}},
		{Destination: "/etc/hosts", Type: "bind", Source: "/run/berth/hosts", Options: []string{"rbind", "ro"}},
		{Destination: "/data/", Type: "bind", Source: "/srv/a", Options: []string{"rbind"}},
		{Destination: "/etc/hosts", Type: "bind", Source: "/run/berth/hosts2", Options: []string{"rbind"}}, // later wins
		{Destination: "/dev/mqueue", Type: "bind", Source: "/srv/mq", Options: []string{"rbind"}},          // replaces a default
	}
	s := mustGenerate(t, in)
	want := []string{"/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/shm",
		"/data", "/data/tmp", "/etc/hosts", "/dev/mqueue", "/data/sub/deeper"}
	if !slices.Equal(dests(s), want) {
		t.Errorf("mounts %v\nwant   %v", dests(s), want)
	}
	if m := findMount(s, "/etc/hosts"); m.Source != "/run/berth/hosts2" {
		t.Errorf("duplicate destination: %+v", m)
	}
	if m := findMount(s, "/dev/mqueue"); m.Type != "bind" {
		t.Errorf("default not replaced: %+v", m)
	}

	// A user /dev replaces every default under it.
	in.Mounts = []specs.Mount{{Destination: "/dev", Type: "bind", Source: "/dev", Options: []string{"rbind"}}}
	in.HostConfig = nil
	s = mustGenerate(t, in)
	if !slices.Equal(dests(s), []string{"/proc", "/sys", "/sys/fs/cgroup", "/dev"}) {
		t.Errorf("with /dev bound: %v", dests(s))
	}

	in.Mounts = []specs.Mount{{Destination: "data", Type: "bind", Source: "/srv"}}
	_, err := Generate(in)
	wantInvalid(t, err, "mount path must be absolute")
}

func TestNamespaces(t *testing.T) {
	type nsCase struct {
		name    string
		hc      *container.HostConfig
		netns   string
		nsPaths map[specs.LinuxNamespaceType]string
		v2      bool
		want    map[specs.LinuxNamespaceType]string // type -> path ("" = new)
		wantErr string
	}
	all := func(extra map[specs.LinuxNamespaceType]string, drop ...specs.LinuxNamespaceType) map[specs.LinuxNamespaceType]string {
		m := map[specs.LinuxNamespaceType]string{specs.MountNamespace: "", specs.NetworkNamespace: "", specs.UTSNamespace: "", specs.PIDNamespace: "", specs.IPCNamespace: ""}
		for _, d := range drop {
			delete(m, d)
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []nsCase{
		{name: "default v1", want: all(nil)},
		{name: "default v2 has a cgroup namespace", v2: true, want: all(map[specs.LinuxNamespaceType]string{specs.CgroupNamespace: ""})},
		{name: "cgroupns host on v2", v2: true, hc: &container.HostConfig{CgroupnsMode: "host"}, want: all(nil)},
		{name: "cgroupns private on v1", hc: &container.HostConfig{CgroupnsMode: "private"}, want: all(map[specs.LinuxNamespaceType]string{specs.CgroupNamespace: ""})},
		{name: "join netns", netns: "/run/berth/netns/x", want: all(map[specs.LinuxNamespaceType]string{specs.NetworkNamespace: "/run/berth/netns/x"})},
		{name: "host network by path", netns: "host", want: all(nil, specs.NetworkNamespace)},
		{name: "host network by mode", hc: &container.HostConfig{NetworkMode: "host"}, want: all(nil, specs.NetworkNamespace)},
		{name: "pid host", hc: &container.HostConfig{PidMode: "host"}, want: all(nil, specs.PIDNamespace)},
		{name: "ipc host", hc: &container.HostConfig{IpcMode: "host"}, want: all(nil, specs.IPCNamespace)},
		{name: "uts host", hc: &container.HostConfig{UTSMode: "host"}, want: all(nil, specs.UTSNamespace)},
		{name: "pid container", hc: &container.HostConfig{PidMode: "container:db"},
			nsPaths: map[specs.LinuxNamespaceType]string{specs.PIDNamespace: "/proc/42/ns/pid"},
			want:    all(map[specs.LinuxNamespaceType]string{specs.PIDNamespace: "/proc/42/ns/pid"})},
		{name: "ipc container", hc: &container.HostConfig{IpcMode: "container:db"},
			nsPaths: map[specs.LinuxNamespaceType]string{specs.IPCNamespace: "/proc/42/ns/ipc"},
			want:    all(map[specs.LinuxNamespaceType]string{specs.IPCNamespace: "/proc/42/ns/ipc"})},
		{name: "bad pid mode", hc: &container.HostConfig{PidMode: "weird"}, wantErr: "invalid PID mode: weird"},
		{name: "bad ipc mode", hc: &container.HostConfig{IpcMode: "weird"}, wantErr: "invalid IPC mode: weird"},
		{name: "bad uts mode", hc: &container.HostConfig{UTSMode: "weird"}, wantErr: "invalid UTS mode: weird"},
		{name: "bad cgroupns mode", hc: &container.HostConfig{CgroupnsMode: "weird"}, wantErr: "invalid cgroup namespace mode: weird"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := testInput(nil, tt.hc)
			in.NetNSPath, in.NSPaths = tt.netns, tt.nsPaths
			h := *testHost
			h.CgroupV2 = tt.v2
			in.Host = &h
			s, err := Generate(in)
			if tt.wantErr != "" {
				wantInvalid(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[specs.LinuxNamespaceType]string{}
			for _, n := range s.Linux.Namespaces {
				got[n.Type] = n.Path
			}
			if len(got) != len(tt.want) {
				t.Errorf("namespaces %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if p, ok := got[k]; !ok || p != v {
					t.Errorf("namespaces %v, want %v", got, tt.want)
					break
				}
			}
		})
	}

	// Joining another container's namespace needs its path.
	for _, hc := range []*container.HostConfig{{PidMode: "container:x"}, {IpcMode: "container:x"}, {NetworkMode: "container:x"}} {
		if _, err := Generate(testInput(nil, hc)); err == nil {
			t.Errorf("%+v accepted without a namespace path", hc)
		}
	}
	// A hostname cannot be set in the host's UTS namespace.
	s := mustGenerate(t, testInput(&container.Config{Cmd: []string{"sh"}, Hostname: "x", Domainname: "y"}, &container.HostConfig{UTSMode: "host"}))
	if s.Hostname != "" || s.Domainname != "" {
		t.Errorf("uts host: hostname %q domain %q", s.Hostname, s.Domainname)
	}
	_, err := Generate(testInput(nil, &container.HostConfig{UsernsMode: "private"}))
	if err == nil {
		t.Error("userns private accepted")
	}
}

func TestCgroupsPath(t *testing.T) {
	in := testInput(nil, nil)
	if s := mustGenerate(t, in); s.Linux.CgroupsPath != "/berth/"+in.ID {
		t.Errorf("default %q", s.Linux.CgroupsPath)
	}
	in.HostConfig = &container.HostConfig{Resources: container.Resources{CgroupParent: "mygroup"}}
	if s := mustGenerate(t, in); s.Linux.CgroupsPath != "/mygroup/"+in.ID {
		t.Errorf("cgroup parent %q", s.Linux.CgroupsPath)
	}
	in.CgroupsPath = "/berth/x"
	if s := mustGenerate(t, in); s.Linux.CgroupsPath != "/berth/x" {
		t.Errorf("explicit %q", s.Linux.CgroupsPath)
	}
}
