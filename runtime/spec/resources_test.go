package spec

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/runtime-spec/specs-go"
)

func TestResources(t *testing.T) {
	const mb = 1 << 20
	tests := []struct {
		name    string
		r       container.Resources
		v2      bool
		noSwap  bool
		check   func(t *testing.T, r *specs.LinuxResources)
		wantErr string
	}{
		{name: "none", check: func(t *testing.T, r *specs.LinuxResources) {
			if r.Memory != nil || r.CPU != nil || r.Pids != nil || r.BlockIO != nil {
				t.Errorf("limits without asking: %+v", r)
			}
		}},
		{name: "memory with default swap", r: container.Resources{Memory: 64 * mb}, check: func(t *testing.T, r *specs.LinuxResources) {
			if *r.Memory.Limit != 64*mb || *r.Memory.Swap != 128*mb {
				t.Errorf("memory %+v", r.Memory)
			}
		}},
		{name: "memory, unlimited swap", r: container.Resources{Memory: 64 * mb, MemorySwap: -1}, check: func(t *testing.T, r *specs.LinuxResources) {
			if *r.Memory.Swap != -1 {
				t.Errorf("swap %v", *r.Memory.Swap)
			}
		}},
		{name: "memory without swap accounting", noSwap: true, r: container.Resources{Memory: 64 * mb, MemorySwap: 100 * mb}, check: func(t *testing.T, r *specs.LinuxResources) {
			if r.Memory.Swap != nil {
				t.Errorf("swap set without swap accounting")
			}
		}},
		{name: "reservation, swappiness, oom", r: container.Resources{MemoryReservation: 32 * mb, MemorySwappiness: ptr(int64(10)), OomKillDisable: ptr(true)},
			check: func(t *testing.T, r *specs.LinuxResources) {
				if *r.Memory.Reservation != 32*mb || *r.Memory.Swappiness != 10 || !*r.Memory.DisableOOMKiller {
					t.Errorf("memory %+v", r.Memory)
				}
			}},
		{name: "swappiness and oom ignored on v2", v2: true, r: container.Resources{MemorySwappiness: ptr(int64(10)), OomKillDisable: ptr(true)},
			check: func(t *testing.T, r *specs.LinuxResources) {
				if r.Memory != nil {
					t.Errorf("memory %+v", r.Memory)
				}
			}},
		{name: "memory too small", r: container.Resources{Memory: 4 * mb}, wantErr: "Minimum memory limit allowed is 6MB"},
		{name: "swap below memory", r: container.Resources{Memory: 64 * mb, MemorySwap: 32 * mb}, wantErr: "Minimum memoryswap limit should be larger than memory limit, see usage"},
		{name: "swap without memory", r: container.Resources{MemorySwap: 64 * mb}, wantErr: "You should always set the Memory limit when using Memoryswap limit, see usage"},
		{name: "reservation too small", r: container.Resources{MemoryReservation: mb}, wantErr: "Minimum memory reservation allowed is 6MB"},
		{name: "reservation above limit", r: container.Resources{Memory: 10 * mb, MemoryReservation: 20 * mb}, wantErr: "Minimum memory limit can not be less than memory reservation limit, see usage"},
		{name: "swappiness out of range", r: container.Resources{MemorySwappiness: ptr(int64(101))}, wantErr: "valid memory swappiness range is 0-100"},
		{name: "cpus", r: container.Resources{NanoCPUs: 1.5e9}, check: func(t *testing.T, r *specs.LinuxResources) {
			if *r.CPU.Period != 100000 || *r.CPU.Quota != 150000 {
				t.Errorf("cpu %+v", r.CPU)
			}
		}},
		{name: "quota and period", r: container.Resources{CPUQuota: 50000, CPUPeriod: 200000, CPUShares: 512}, check: func(t *testing.T, r *specs.LinuxResources) {
			if *r.CPU.Period != 200000 || *r.CPU.Quota != 50000 || *r.CPU.Shares != 512 {
				t.Errorf("cpu %+v", r.CPU)
			}
		}},
		{name: "shares as given", r: container.Resources{CPUShares: 1}, check: func(t *testing.T, r *specs.LinuxResources) {
			if *r.CPU.Shares != 1 {
				t.Errorf("shares %d", *r.CPU.Shares)
			}
		}},
		{name: "cpuset", r: container.Resources{CpusetCpus: "0-1", CpusetMems: "0"}, check: func(t *testing.T, r *specs.LinuxResources) {
			if r.CPU.Cpus != "0-1" || r.CPU.Mems != "0" {
				t.Errorf("cpuset %+v", r.CPU)
			}
		}},
		{name: "cpus and period", r: container.Resources{NanoCPUs: 1e9, CPUPeriod: 100000}, wantErr: "Conflicting options: Nano CPUs and CPU Period cannot both be set"},
		{name: "cpus and quota", r: container.Resources{NanoCPUs: 1e9, CPUQuota: 100000}, wantErr: "Conflicting options: Nano CPUs and CPU Quota cannot both be set"},
		{name: "too many cpus", r: container.Resources{NanoCPUs: 3e9}, wantErr: "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"},
		{name: "too few cpus", r: container.Resources{NanoCPUs: 1e6}, wantErr: "Range of CPUs is from 0.01 to 2.00"},
		{name: "bad period", r: container.Resources{CPUPeriod: 500}, wantErr: "CPU cfs period can not be less than 1ms"},
		{name: "bad quota", r: container.Resources{CPUQuota: 500}, wantErr: "CPU cfs quota can not be less than 1ms"},
		{name: "bad cpuset", r: container.Resources{CpusetCpus: "0-"}, wantErr: "Invalid value 0- for cpuset cpus"},
		{name: "bad cpuset order", r: container.Resources{CpusetCpus: "3-1"}, wantErr: "Invalid value 3-1 for cpuset cpus"},
		{name: "unavailable cpu", r: container.Resources{CpusetCpus: "0,5"}, wantErr: "Requested CPUs are not available - requested 0,5, available: 0-1"},
		{name: "bad mems", r: container.Resources{CpusetMems: "a"}, wantErr: "Invalid value a for cpuset mems"},
		{name: "pids", r: container.Resources{PidsLimit: ptr(int64(100))}, check: func(t *testing.T, r *specs.LinuxResources) {
			if *r.Pids.Limit != 100 {
				t.Errorf("pids %+v", r.Pids)
			}
		}},
		{name: "pids unlimited", r: container.Resources{PidsLimit: ptr(int64(-1))}, check: func(t *testing.T, r *specs.LinuxResources) {
			if r.Pids != nil {
				t.Errorf("pids %+v", r.Pids)
			}
		}},
		{name: "blkio weight", r: container.Resources{BlkioWeight: 300}, check: func(t *testing.T, r *specs.LinuxResources) {
			if *r.BlockIO.Weight != 300 {
				t.Errorf("blkio %+v", r.BlockIO)
			}
		}},
		{name: "blkio weight out of range", r: container.Resources{BlkioWeight: 5}, wantErr: "Range of blkio weight is from 10 to 1000"},
		{name: "blkio device not a block device", r: container.Resources{BlkioDeviceReadBps: []*blkiodev.ThrottleDevice{{Path: "/dev/null", Rate: 1}}},
			wantErr: `"/dev/null" is not a block device`},
		{name: "blkio device missing", r: container.Resources{BlkioWeightDevice: []*blkiodev.WeightDevice{{Path: "/dev/nonexistent", Weight: 100}}},
			wantErr: `invalid block device "/dev/nonexistent"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := testInput(nil, &container.HostConfig{Resources: tt.r})
			h := *testHost
			h.CgroupV2, h.SwapLimit = tt.v2, !tt.noSwap
			in.Host = &h
			s, err := Generate(in)
			if tt.wantErr != "" {
				wantInvalid(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s.Linux.Resources)
		})
	}
}

func TestRlimits(t *testing.T) {
	nofile := func(s *specs.Spec) specs.POSIXRlimit {
		for _, r := range s.Process.Rlimits {
			if r.Type == "RLIMIT_NOFILE" {
				return r
			}
		}
		return specs.POSIXRlimit{}
	}
	// The default never exceeds the host's hard limit.
	s := mustGenerate(t, testInput(nil, nil))
	if r := nofile(s); r.Soft != 20000 || r.Hard != 20000 {
		t.Errorf("default nofile %+v", r)
	}
	h := *testHost
	h.NofileHard = 1 << 30
	in := testInput(nil, nil)
	in.Host = &h
	if r := nofile(mustGenerate(t, in)); r.Soft != DefaultNofile || r.Hard != DefaultNofile {
		t.Errorf("default nofile on a generous host %+v", r)
	}
	h.NofileHard = 0
	if rl := mustGenerate(t, in).Process.Rlimits; len(rl) != 0 {
		t.Errorf("unknown host limit: %+v", rl)
	}

	hc := &container.HostConfig{}
	hc.Ulimits = []*container.Ulimit{{Name: "nofile", Soft: 1024, Hard: 4096}, {Name: "nproc", Soft: -1, Hard: -1}, {Name: "core", Soft: 0, Hard: 0}, {Name: "nproc", Soft: 10, Hard: 20}}
	s = mustGenerate(t, testInput(nil, hc))
	want := []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 4096}, {Type: "RLIMIT_NPROC", Soft: 10, Hard: 20}, {Type: "RLIMIT_CORE"}}
	if !reflect.DeepEqual(s.Process.Rlimits, want) {
		t.Errorf("rlimits %+v\nwant %+v", s.Process.Rlimits, want)
	}
	hc.Ulimits = []*container.Ulimit{{Name: "nproc", Soft: -1, Hard: -1}}
	s = mustGenerate(t, testInput(nil, hc))
	if r := s.Process.Rlimits[0]; r.Soft != ^uint64(0) || r.Hard != ^uint64(0) {
		t.Errorf("unlimited %+v", r)
	}

	for _, tc := range []struct {
		ul      container.Ulimit
		wantErr string
	}{
		{container.Ulimit{Name: "nofile", Soft: 10, Hard: 5}, "ulimit soft limit must be less than or equal to hard limit: 10 > 5"},
		{container.Ulimit{Name: "bogus", Soft: 1, Hard: 1}, "invalid ulimit type: bogus"},
		{container.Ulimit{Name: "nofile", Soft: 1048576, Hard: 1048576}, "ulimit nofile: hard limit 1048576 is above the host's hard limit 20000"},
	} {
		hc.Ulimits = []*container.Ulimit{&tc.ul}
		_, err := Generate(testInput(nil, hc))
		wantInvalid(t, err, tc.wantErr)
	}
	// A host path that is no device (a directory with none below it
	// too) or is missing: dockerd's words, and its 500 (no class).
	for _, tc := range []struct{ src, want string }{
		{"/etc/hostname", `error gathering device information while adding custom device "/etc/hostname": not a device node`},
		{t.TempDir(), "not a device node"},
		{"/dev/nope", `error gathering device information while adding custom device "/dev/nope": no such file or directory`},
	} {
		hc := &container.HostConfig{}
		hc.Devices = []container.DeviceMapping{{PathOnHost: tc.src}}
		_, err := Generate(testInput(nil, hc))
		if err == nil || !strings.Contains(err.Error(), tc.want) || cerrdefs.IsInvalidArgument(err) {
			t.Errorf("--device %s: %v, want %q of no class", tc.src, err, tc.want)
		}
	}
}

func TestSysctls(t *testing.T) {
	s := mustGenerate(t, testInput(nil, &container.HostConfig{Sysctls: map[string]string{"net.core.somaxconn": "1024", "kernel.shmmax": "1"}}))
	want := map[string]string{"net.core.somaxconn": "1024", "kernel.shmmax": "1",
		"net.ipv4.ip_unprivileged_port_start": "0", "net.ipv4.ping_group_range": "0 2147483647"}
	if !reflect.DeepEqual(s.Linux.Sysctl, want) {
		t.Errorf("sysctl %v", s.Linux.Sysctl)
	}
	// The user's value wins over Docker's defaults.
	s = mustGenerate(t, testInput(nil, &container.HostConfig{Sysctls: map[string]string{"net.ipv4.ip_unprivileged_port_start": "1024"}}))
	if s.Linux.Sysctl["net.ipv4.ip_unprivileged_port_start"] != "1024" {
		t.Errorf("sysctl %v", s.Linux.Sysctl)
	}
	// No defaults in the host's network namespace or in another container's.
	for _, hc := range []*container.HostConfig{{NetworkMode: "host"}} {
		if s = mustGenerate(t, testInput(nil, hc)); s.Linux.Sysctl != nil {
			t.Errorf("%s: sysctl %v", hc.NetworkMode, s.Linux.Sysctl)
		}
	}
	in := testInput(nil, &container.HostConfig{NetworkMode: "container:db"})
	in.NetNSPath = "/proc/42/ns/net"
	if s = mustGenerate(t, in); s.Linux.Sysctl != nil {
		t.Errorf("container network: sysctl %v", s.Linux.Sysctl)
	}
	for _, tc := range []struct {
		hc      *container.HostConfig
		wantErr string
	}{
		{&container.HostConfig{Sysctls: map[string]string{"kernel.panic": "1"}}, "sysctl 'kernel.panic' is not allowed"},
		{&container.HostConfig{Sysctls: map[string]string{"vm.swappiness": "1"}}, "sysctl 'vm.swappiness' is not allowed"},
		{&container.HostConfig{NetworkMode: "host", Sysctls: map[string]string{"net.ipv4.ip_forward": "1"}}, "sysctl 'net.ipv4.ip_forward' is not allowed in host network mode"},
		{&container.HostConfig{IpcMode: "host", Sysctls: map[string]string{"kernel.sem": "1 2 3 4"}}, "sysctl 'kernel.sem' is not allowed in host IPC mode"},
		{&container.HostConfig{UTSMode: "host", Sysctls: map[string]string{"kernel.domainname": "x"}}, "sysctl 'kernel.domainname' is not allowed in host UTS mode"},
	} {
		_, err := Generate(testInput(nil, tc.hc))
		wantInvalid(t, err, tc.wantErr)
	}
}

func TestDevices(t *testing.T) {
	s := mustGenerate(t, testInput(nil, nil))
	rules := s.Linux.Resources.Devices
	if len(rules) == 0 || rules[0].Allow || rules[0].Access != "rwm" || rules[0].Type != "" {
		t.Fatalf("first rule must deny all: %+v", rules)
	}
	allowed := func(rules []specs.LinuxDeviceCgroup, typ string, major, minor int64, access string) bool {
		for _, r := range rules {
			if r.Allow && r.Type == typ && r.Access == access &&
				((r.Major == nil && major < 0) || (r.Major != nil && *r.Major == major)) &&
				((r.Minor == nil && minor < 0) || (r.Minor != nil && *r.Minor == minor)) {
				return true
			}
		}
		return false
	}
	for _, d := range [][2]int64{{1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}, {5, 0}, {5, 1}, {5, 2}, {136, -1}, {10, 200}} {
		if !allowed(rules, "c", d[0], d[1], "rwm") {
			t.Errorf("c %d:%d not allowed", d[0], d[1])
		}
	}
	if !allowed(rules, "c", -1, -1, "m") || !allowed(rules, "b", -1, -1, "m") {
		t.Error("mknod not allowed")
	}
	if allowed(rules, "c", 10, 229, "rwm") {
		t.Error("fuse allowed")
	}

	hc := &container.HostConfig{}
	hc.DeviceCgroupRules = []string{"c 10:229 rw", "b *:* r"}
	hc.Devices = []container.DeviceMapping{{PathOnHost: "/dev/null", PathInContainer: "/dev/mynull", CgroupPermissions: "r"}}
	s = mustGenerate(t, testInput(nil, hc))
	rules = s.Linux.Resources.Devices
	if !allowed(rules, "c", 10, 229, "rw") || !allowed(rules, "b", -1, -1, "r") || !allowed(rules, "c", 1, 3, "r") {
		t.Errorf("user rules missing: %+v", rules[len(rules)-3:])
	}
	if len(s.Linux.Devices) != 1 || s.Linux.Devices[0].Path != "/dev/mynull" || s.Linux.Devices[0].Major != 1 || s.Linux.Devices[0].Minor != 3 {
		t.Errorf("devices %+v", s.Linux.Devices)
	}

	for _, tc := range []struct {
		rules   []string
		devs    []container.DeviceMapping
		wantErr string
	}{
		{[]string{"x 1:3 rwm"}, nil, "invalid device cgroup rule format: 'x 1:3 rwm'"},
		{[]string{"c 1:3 rwx"}, nil, "invalid device cgroup rule format"},
		{[]string{"c 1 rwm"}, nil, "invalid device cgroup rule format"},
		{nil, []container.DeviceMapping{{PathOnHost: "/dev/null", CgroupPermissions: "x"}}, "invalid device mode: x"},
	} {
		hc := &container.HostConfig{}
		hc.DeviceCgroupRules, hc.Devices = tc.rules, tc.devs
		_, err := Generate(testInput(nil, hc))
		wantInvalid(t, err, tc.wantErr)
	}
	// A host path that is no device (a directory with none below it
	// too) or is missing: dockerd's words, and its 500 (no class).
	for _, tc := range []struct{ src, want string }{
		{"/etc/hostname", `error gathering device information while adding custom device "/etc/hostname": not a device node`},
		{t.TempDir(), "not a device node"},
		{"/dev/nope", `error gathering device information while adding custom device "/dev/nope": no such file or directory`},
	} {
		hc := &container.HostConfig{}
		hc.Devices = []container.DeviceMapping{{PathOnHost: tc.src}}
		_, err := Generate(testInput(nil, hc))
		if err == nil || !strings.Contains(err.Error(), tc.want) || cerrdefs.IsInvalidArgument(err) {
			t.Errorf("--device %s: %v, want %q of no class", tc.src, err, tc.want)
		}
	}

	// Privileged: every device allowed, the host's nodes created, a
	// --device to another path added.
	hc = &container.HostConfig{Privileged: true}
	hc.Devices = []container.DeviceMapping{{PathOnHost: "/dev/null", PathInContainer: "/dev/null", CgroupPermissions: "r"},
		{PathOnHost: "/dev/zero", PathInContainer: "/dev/myzero", CgroupPermissions: "r"}}
	s = mustGenerate(t, testInput(nil, hc))
	if n := len(slices.DeleteFunc(slices.Clone(s.Linux.Devices), func(d specs.LinuxDevice) bool { return d.Path != "/dev/null" })); n != 1 {
		t.Errorf("/dev/null %d times", n)
	}
	if !slices.ContainsFunc(s.Linux.Devices, func(d specs.LinuxDevice) bool { return d.Path == "/dev/myzero" && d.Major == 1 && d.Minor == 5 }) {
		t.Error("privileged: mapped device missing")
	}
	if r := s.Linux.Resources.Devices; len(r) != 1 || !r[0].Allow || r[0].Access != "rwm" || r[0].Type != "" {
		t.Errorf("privileged rules %+v", r)
	}
	if !slices.ContainsFunc(s.Linux.Devices, func(d specs.LinuxDevice) bool { return d.Path == "/dev/null" }) {
		t.Errorf("privileged devices lack /dev/null (%d devices)", len(s.Linux.Devices))
	}
	if slices.ContainsFunc(s.Linux.Devices, func(d specs.LinuxDevice) bool { return d.Path == "/dev/console" }) {
		t.Error("privileged devices include /dev/console")
	}
}

func TestUpdateResources(t *testing.T) {
	const mb = 1 << 20
	swap := &Host{NumCPU: 2, SwapLimit: true}
	noSwap := &Host{NumCPU: 2}
	for _, tt := range []struct {
		name string
		host *Host
		r    container.Resources
		want specs.LinuxResources
	}{
		{"nothing", swap, container.Resources{}, specs.LinuxResources{}},
		{"memory with default swap", swap, container.Resources{Memory: 64 * mb},
			specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(64 * mb)), Swap: ptr(int64(128 * mb))}}},
		{"memory and swap", swap, container.Resources{Memory: 64 * mb, MemorySwap: 100 * mb, MemoryReservation: 32 * mb},
			specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(64 * mb)), Swap: ptr(int64(100 * mb)), Reservation: ptr(int64(32 * mb))}}},
		{"memory without swap accounting", noSwap, container.Resources{Memory: 64 * mb, MemorySwap: 100 * mb},
			specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(64 * mb))}}},
		{"unlimited swap alone", swap, container.Resources{MemorySwap: -1},
			specs.LinuxResources{Memory: &specs.LinuxMemory{Swap: ptr(int64(-1))}}},
		{"unlimited swap without swap accounting", noSwap, container.Resources{MemorySwap: -1}, specs.LinuxResources{}},
		// Not checked here: the update path checks the request as Docker
		// checks an update, and a merged record may look like this.
		{"swap without memory", swap, container.Resources{MemorySwap: 64 * mb}, specs.LinuxResources{}},
		{"swappiness and oom are create-time only", swap, container.Resources{MemorySwappiness: ptr(int64(10)), OomKillDisable: ptr(true)}, specs.LinuxResources{}},
		{"cpus", swap, container.Resources{NanoCPUs: 1.5e9, CPUShares: 1 << 20},
			specs.LinuxResources{CPU: &specs.LinuxCPU{Period: ptr(uint64(100000)), Quota: ptr(int64(150000)), Shares: ptr(uint64(262144))}}},
		{"quota, period, realtime, cpuset", swap, container.Resources{CPUQuota: 50000, CPUPeriod: 200000, CPURealtimePeriod: 1000, CPURealtimeRuntime: 500, CpusetCpus: "0-1", CpusetMems: "0"},
			specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: ptr(int64(50000)), Period: ptr(uint64(200000)), RealtimePeriod: ptr(uint64(1000)), RealtimeRuntime: ptr(int64(500)), Cpus: "0-1", Mems: "0"}}},
		{"pids", swap, container.Resources{PidsLimit: ptr(int64(50))}, specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr(int64(50))}}},
		{"pids unlimited lifts a limit", swap, container.Resources{PidsLimit: ptr(int64(0))}, specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr(int64(-1))}}},
		{"pids -1 lifts a limit", swap, container.Resources{PidsLimit: ptr(int64(-1))}, specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr(int64(-1))}}},
		{"blkio weight, not devices", swap, container.Resources{BlkioWeight: 300, BlkioDeviceReadBps: []*blkiodev.ThrottleDevice{{Path: "/dev/nonexistent", Rate: 1}}},
			specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: ptr(uint16(300))}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := UpdateResources(tt.host, &tt.r)
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got %s\nwant %s", jsonOf(got), jsonOf(&tt.want))
			}
		})
	}
}

func TestParseIDList(t *testing.T) {
	for in, want := range map[string][]int{"0": {0}, "0-2,4": {0, 1, 2, 4}, "3,1": {3, 1}, "7-7": {7}} {
		if got, err := ParseIDList(in); err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseIDList(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1", "0-", "3-1", "1,,2", "0-100000"} {
		if got, err := ParseIDList(in); err == nil {
			t.Errorf("ParseIDList(%q) = %v, want an error", in, got)
		}
	}
}

func jsonOf(r *specs.LinuxResources) string {
	b, _ := json.Marshal(r)
	return string(b)
}
