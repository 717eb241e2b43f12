package spec

import (
	"slices"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/runtime-spec/specs-go"
)

func TestDefaultCapMask(t *testing.T) {
	if defaultCapMask != 0xa80425fb {
		t.Fatalf("default caps mask %#x, want 0xa80425fb", defaultCapMask)
	}
}

func TestCapabilities(t *testing.T) {
	dflt := slices.Clone(DefaultCaps)
	without := func(list []string, drop ...string) []string {
		return slices.DeleteFunc(slices.Clone(list), func(c string) bool { return slices.Contains(drop, c) })
	}
	tests := []struct {
		name       string
		add, drop  []string
		privileged bool
		want       []string
		wantErr    string
	}{
		{"default", nil, nil, false, dflt, ""},
		{"add lower case without prefix", []string{"sys_admin"}, nil, false, append(slices.Clone(dflt), "CAP_SYS_ADMIN"), ""},
		{"add with prefix, mixed case", []string{"Cap_Net_Admin"}, nil, false, append(slices.Clone(dflt), "CAP_NET_ADMIN"), ""},
		{"add a default is a no-op", []string{"CHOWN"}, nil, false, dflt, ""},
		{"drop", nil, []string{"net_raw", "CAP_MKNOD"}, false, without(dflt, "CAP_NET_RAW", "CAP_MKNOD"), ""},
		{"drop all, add some", []string{"chown", "kill"}, []string{"all"}, false, []string{"CAP_CHOWN", "CAP_KILL"}, ""},
		{"drop all", nil, []string{"ALL"}, false, nil, ""},
		{"add all, drop some", []string{"ALL"}, []string{"sys_admin"}, false, without(testHost.Caps, "CAP_SYS_ADMIN"), ""},
		{"add all", []string{"all"}, nil, false, testHost.Caps, ""},
		{"privileged: what the host has", nil, nil, true, testHost.Caps, ""},
		{"privileged ignores drops", nil, []string{"ALL"}, true, testHost.Caps, ""},
		{"unknown add", []string{"foo"}, nil, false, nil, `unknown capability: "CAP_FOO"`},
		{"unknown drop", nil, []string{"CAP_BAR"}, false, nil, `unknown capability: "CAP_BAR"`},
		{"the host cannot grant it", []string{"SYS_RESOURCE"}, nil, false, nil, "capability CAP_SYS_RESOURCE is not available on this host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hc := &container.HostConfig{CapAdd: tt.add, CapDrop: tt.drop, Privileged: tt.privileged}
			s, err := Generate(testInput(nil, hc))
			if tt.wantErr != "" {
				wantInvalid(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := s.Process.Capabilities
			if !slices.Equal(c.Bounding, tt.want) && !(len(c.Bounding) == 0 && len(tt.want) == 0) {
				t.Errorf("bounding = %v\nwant       %v", c.Bounding, tt.want)
			}
			if !slices.Equal(c.Effective, c.Bounding) || !slices.Equal(c.Permitted, c.Bounding) {
				t.Errorf("effective/permitted differ from bounding")
			}
			if len(c.Inheritable) != 0 || len(c.Ambient) != 0 {
				t.Errorf("inheritable %v ambient %v", c.Inheritable, c.Ambient)
			}
			if slices.Contains(c.Bounding, "CAP_SYS_RESOURCE") {
				t.Errorf("a capability the host lacks was granted")
			}
		})
	}
}

func TestCapabilitiesHostLacksADefault(t *testing.T) {
	h := *testHost
	h.Caps = capsFromMask(capMask(testHost.Caps) &^ (1 << capBit["CAP_AUDIT_WRITE"]))
	in := testInput(nil, nil)
	in.Host = &h
	s := mustGenerate(t, in)
	if slices.Contains(s.Process.Capabilities.Bounding, "CAP_AUDIT_WRITE") || len(s.Process.Capabilities.Bounding) != 13 {
		t.Errorf("bounding %v", s.Process.Capabilities.Bounding)
	}
}

func TestSeccomp(t *testing.T) {
	s := mustGenerate(t, testInput(nil, nil))
	sc := s.Linux.Seccomp
	if sc == nil || sc.DefaultAction != specs.ActErrno || len(sc.Syscalls) == 0 {
		t.Fatalf("default seccomp %+v", sc)
	}
	// Cached: the same conversion serves the next container.
	if s2 := mustGenerate(t, testInput(nil, nil)); s2.Linux.Seccomp != sc {
		t.Error("default profile not cached")
	}
	allowed := func(sc *specs.LinuxSeccomp, name string) bool {
		for _, r := range sc.Syscalls {
			if r.Action == specs.ActAllow && len(r.Args) == 0 && slices.Contains(r.Names, name) {
				return true
			}
		}
		return false
	}
	if allowed(sc, "mount") {
		t.Error("mount allowed without CAP_SYS_ADMIN")
	}
	// The profile follows the capabilities.
	s = mustGenerate(t, testInput(nil, &container.HostConfig{CapAdd: []string{"SYS_ADMIN"}}))
	if s.Linux.Seccomp == sc || !allowed(s.Linux.Seccomp, "mount") {
		t.Error("CAP_SYS_ADMIN does not allow mount in the profile")
	}

	for _, opt := range []string{"seccomp=unconfined", "seccomp:unconfined"} {
		s = mustGenerate(t, testInput(nil, &container.HostConfig{SecurityOpt: []string{opt}}))
		if s.Linux.Seccomp != nil {
			t.Errorf("%s: seccomp still set", opt)
		}
	}
	s = mustGenerate(t, testInput(nil, &container.HostConfig{SecurityOpt: []string{"seccomp=builtin"}}))
	if s.Linux.Seccomp != sc {
		t.Error("seccomp=builtin is not the default")
	}
	s = mustGenerate(t, testInput(nil, &container.HostConfig{Privileged: true, SecurityOpt: []string{"seccomp=builtin"}}))
	if s.Linux.Seccomp != nil {
		t.Error("privileged keeps seccomp")
	}
	custom := `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["chmod"],"action":"SCMP_ACT_ERRNO"}]}`
	s = mustGenerate(t, testInput(nil, &container.HostConfig{SecurityOpt: []string{"seccomp=" + custom}}))
	if c := s.Linux.Seccomp; c == nil || c.DefaultAction != specs.ActAllow || len(c.Syscalls) != 1 {
		t.Errorf("custom profile %+v", c)
	}
	_, err := Generate(testInput(nil, &container.HostConfig{SecurityOpt: []string{"seccomp=/etc/profile.json"}}))
	wantInvalid(t, err, "Decoding seccomp profile failed")
}

func TestSecurityOpts(t *testing.T) {
	tests := []struct {
		opts    []string
		nnp     bool
		wantErr string
	}{
		{[]string{"no-new-privileges"}, true, ""},
		{[]string{"no-new-privileges=true"}, true, ""},
		{[]string{"no-new-privileges:true"}, true, ""},
		{[]string{"no-new-privileges", "no-new-privileges=false"}, false, ""},
		{[]string{"apparmor=unconfined", "label=disable"}, false, ""},
		{[]string{"no-new-privileges=maybe"}, false, `invalid --security-opt 2: "no-new-privileges=maybe"`},
		{[]string{"bogus"}, false, `invalid --security-opt 1: "bogus"`},
		{[]string{"bogus=1"}, false, `invalid --security-opt 2: "bogus=1"`},
	}
	for _, tt := range tests {
		s, err := Generate(testInput(nil, &container.HostConfig{SecurityOpt: tt.opts}))
		if tt.wantErr != "" {
			wantInvalid(t, err, tt.wantErr)
			continue
		}
		if err != nil {
			t.Fatalf("%v: %v", tt.opts, err)
		}
		if s.Process.NoNewPrivileges != tt.nnp {
			t.Errorf("%v: nnp %v", tt.opts, s.Process.NoNewPrivileges)
		}
	}
}

func TestMaskedAndReadonlyPaths(t *testing.T) {
	s := mustGenerate(t, testInput(nil, nil))
	// Current Docker's (moby's daemon/pkg/oci defaults), this host's CPUs'
	// thermal_throttle directories after them.
	want := []string{"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/sched_debug", "/proc/scsi", "/proc/timer_list", "/proc/timer_stats", "/sys/devices/virtual/powercap", "/sys/firmware"}
	want = append(want, thermalThrottleDirs("/sys/devices/system/cpu")...)
	if !slices.Equal(s.Linux.MaskedPaths, want) {
		t.Errorf("masked paths %v", s.Linux.MaskedPaths)
	}
	if !slices.Equal(s.Linux.ReadonlyPaths, []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}) {
		t.Errorf("readonly paths %v", s.Linux.ReadonlyPaths)
	}
	for _, hc := range []*container.HostConfig{{Privileged: true}, {SecurityOpt: []string{"systempaths=unconfined"}}} {
		s = mustGenerate(t, testInput(nil, hc))
		if s.Linux.MaskedPaths != nil || s.Linux.ReadonlyPaths != nil {
			t.Errorf("%+v: masked %v readonly %v", hc.SecurityOpt, s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
		}
	}
	s = mustGenerate(t, testInput(nil, &container.HostConfig{MaskedPaths: []string{"/proc/x"}, ReadonlyPaths: []string{}}))
	if !slices.Equal(s.Linux.MaskedPaths, []string{"/proc/x"}) || len(s.Linux.ReadonlyPaths) != 0 {
		t.Errorf("explicit lists: %v %v", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
}
