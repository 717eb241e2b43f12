package spec

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/moby/moby/api/types/container"
)

func TestCreateDefaults(t *testing.T) {
	hc := &container.HostConfig{}
	hc.Memory = 1 << 30
	hc.CPUShares = 1 // kept: runc refuses it at start, as under dockerd
	if w := CreateDefaults(hc, testHost); len(w) != 0 {
		t.Errorf("warnings %q", w)
	}
	if hc.MemorySwap != 2<<30 || hc.ShmSize != 64<<20 || hc.IpcMode != "private" || hc.CgroupnsMode != "host" ||
		hc.OomKillDisable == nil || *hc.OomKillDisable || hc.CPUShares != 1 {
		t.Errorf("defaults %+v", hc)
	}
	if !slices.Equal(hc.MaskedPaths, DefaultMaskedPaths()) || !slices.Equal(hc.ReadonlyPaths, DefaultReadonlyPaths()) {
		t.Errorf("paths %v %v", hc.MaskedPaths, hc.ReadonlyPaths)
	}
	// The spec agrees with the stored HostConfig.
	s := mustGenerate(t, testInput(nil, hc))
	if *s.Linux.Resources.Memory.Swap != 2<<30 || !slices.Equal(s.Linux.MaskedPaths, DefaultMaskedPaths()) {
		t.Errorf("spec from defaults: %+v", s.Linux.Resources.Memory)
	}

	v2 := &Host{CgroupV2: true, Caps: testHost.Caps}
	hc = &container.HostConfig{Privileged: true}
	hc.Memory, hc.MemorySwappiness, hc.OomKillDisable = 64<<20, ptr(int64(10)), ptr(true)
	w := CreateDefaults(hc, v2)
	if len(w) != 3 || hc.MemorySwap != -1 || hc.MemorySwappiness != nil || *hc.OomKillDisable {
		t.Errorf("v2 without swap accounting: %q %+v", w, hc)
	}
	if hc.CgroupnsMode != "private" || hc.MaskedPaths != nil || hc.ReadonlyPaths != nil {
		t.Errorf("privileged on v2: %+v", hc)
	}

	hc = &container.HostConfig{SecurityOpt: []string{"systempaths=unconfined"}, ShmSize: 1 << 20, IpcMode: "host"}
	CreateDefaults(hc, testHost)
	if hc.MaskedPaths != nil || hc.ShmSize != 1<<20 || hc.IpcMode != "host" {
		t.Errorf("explicit values overridden: %+v", hc)
	}
}

func TestDryRun(t *testing.T) {
	dry := func(cfg *container.Config, hc *container.HostConfig) error {
		in := testInput(cfg, hc)
		in.Rootfs, in.Users, in.DryRun = "", nil, true
		_, err := Generate(in)
		return err
	}
	// What needs the rootfs or the host's devices is not checked.
	ok := []struct {
		cfg *container.Config
		hc  *container.HostConfig
	}{
		{&container.Config{Cmd: []string{"sh"}, User: "nosuch", WorkingDir: "/evil"}, nil},
		// Cmd [""] is created (and committed) as dockerd does; it fails
		// at start.
		{&container.Config{Cmd: []string{""}}, nil},
		{nil, &container.HostConfig{Privileged: true}},
		{nil, &container.HostConfig{Resources: container.Resources{Devices: []container.DeviceMapping{{PathOnHost: "/dev/nope"}}}}},
	}
	for _, tc := range ok {
		if err := dry(tc.cfg, tc.hc); err != nil {
			t.Errorf("dry run: %v", err)
		}
	}
	// Everything else is.
	for _, tc := range []struct {
		cfg     *container.Config
		hc      *container.HostConfig
		wantErr string
	}{
		{&container.Config{Cmd: []string{"sh"}, WorkingDir: "/proc/self/fd/7"}, nil, "leads into /proc"},
		{&container.Config{}, nil, "No command specified"},
		{nil, &container.HostConfig{CapAdd: []string{"foo"}}, `unknown capability: "CAP_FOO"`},
		{nil, &container.HostConfig{Resources: container.Resources{Memory: 1 << 20}}, "Minimum memory limit allowed is 6MB"},
		{nil, &container.HostConfig{Resources: container.Resources{Devices: []container.DeviceMapping{{PathOnHost: "/dev/null", CgroupPermissions: "rwx"}}}}, "invalid device mode: rwx"},
		{nil, &container.HostConfig{Tmpfs: map[string]string{"/x": "bogus"}}, "invalid tmpfs option"},
		{nil, &container.HostConfig{SecurityOpt: []string{"bogus=1"}}, "invalid --security-opt 2"},
	} {
		wantInvalid(t, dry(tc.cfg, tc.hc), tc.wantErr)
	}
}

func TestDefaultMaskedPathsCurrentDocker(t *testing.T) {
	got := DefaultMaskedPaths()
	if !slices.Contains(got, "/proc/interrupts") {
		t.Errorf("masked paths %q lack /proc/interrupts (GHSA-6fw5-f8r9-fgfm)", got)
	}
	got[0] = "changed"
	if DefaultMaskedPaths()[0] == "changed" {
		t.Error("DefaultMaskedPaths hands out its own slice")
	}
	dir := t.TempDir()
	for _, p := range []string{"cpu0/thermal_throttle", "cpu10/thermal_throttle", "cpu2/thermal_throttle", "cpu1", "cpufreq/thermal_throttle"} {
		if err := os.MkdirAll(filepath.Join(dir, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{dir + "/cpu0/thermal_throttle", dir + "/cpu2/thermal_throttle", dir + "/cpu10/thermal_throttle"}
	if got := thermalThrottleDirs(dir); !slices.Equal(got, want) {
		t.Errorf("thermalThrottleDirs = %q, want %q", got, want)
	}
}
