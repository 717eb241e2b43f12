package spec

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
)

// A cgroup v2 host whose unified hierarchy offers no controller (as a
// cgroup2 mount on a hybrid host, where the controllers are bound to v1):
// runc fails every start that asks for a limit there ("openat2
// .../memory.max: no such file or directory"), Docker discards the limit
// at create with a warning.

// withSupport makes h report sup while the test runs.
func withSupport(t *testing.T, h *Host, sup CgroupSupport) *Host {
	t.Helper()
	cgroupSupportOverride.Store(h, sup)
	t.Cleanup(func() { cgroupSupportOverride.Delete(h) })
	return h
}

// bareV2 is a cgroup v2 host with no controller.
func bareV2(t *testing.T) *Host {
	return withSupport(t, &Host{CgroupV2: true, Caps: testHost.Caps, NofileHard: 20000, NumCPU: 2}, CgroupSupport{})
}

func TestReadCgroupSupportV2(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.controllers"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("hugetlb\n")
	if got := ReadCgroupSupport(dir, true); got != (CgroupSupport{}) {
		t.Errorf("hugetlb only: %+v, want nothing", got)
	}
	write("cpuset cpu io memory hugetlb pids rdma misc\n")
	// The io controller without io.cost or BFQ has no weight (io.max
	// only): runc would fail to write io.weight.
	noWeight := fullCgroupSupport
	noWeight.IOWeight, noWeight.IOWeightDevice = false, false
	if got := ReadCgroupSupport(dir, true); got != noWeight {
		t.Errorf("all controllers, no io weight file: %+v, want %+v", got, noWeight)
	}
	// BFQ's io.bfq.weight is in the cgroups below the root.
	if err := os.MkdirAll(filepath.Join(dir, "system.slice"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "system.slice", "io.bfq.weight"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := ReadCgroupSupport(dir, true); got != fullCgroupSupport {
		t.Errorf("all controllers, BFQ: %+v", got)
	}
	write("cpu memory\n")
	if got := ReadCgroupSupport(dir, true); got != (CgroupSupport{Memory: true, CPU: true}) {
		t.Errorf("cpu memory: %+v", got)
	}
	if got := ReadCgroupSupport(filepath.Join(dir, "nosuch"), true); got != (CgroupSupport{}) {
		t.Errorf("no cgroup.controllers: %+v", got)
	}
}

func TestReadCgroupSupportV1(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"memory/cgroup.procs", "cpu,cpuacct/cgroup.procs", "pids/cgroup.procs"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := CgroupSupport{Memory: true, CPU: true, Pids: true}
	if got := ReadCgroupSupport(dir, false); got != want {
		t.Errorf("v1 memory, cpu,cpuacct, pids: %+v, want %+v", got, want)
	}

	// blkio as on a kernel since 5.0 with the mq-deadline scheduler (this
	// machine): throttling, no weight at all.
	touch := func(f string) {
		t.Helper()
		p := filepath.Join(dir, "blkio", f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	touch("cgroup.procs")
	touch("blkio.throttle.read_bps_device")
	want.IO, want.IOThrottle = true, true
	if got := ReadCgroupSupport(dir, false); got != want {
		t.Errorf("v1 blkio without weight files: %+v, want %+v", got, want)
	}
	// BFQ loaded: its files are in the cgroups below the root.
	touch("berth/blkio.bfq.weight")
	touch("berth/blkio.bfq.weight_device")
	want.IOWeight, want.IOWeightDevice = true, true
	if got := ReadCgroupSupport(dir, false); got != want {
		t.Errorf("v1 blkio with BFQ: %+v, want %+v", got, want)
	}
}

// TestDiscardBlkioWeightWithoutWeightFile: the controller is there, the
// weight is not (mq-deadline, no BFQ): the weight is discarded with
// Docker's warning before its range is checked (dockerd discards a weight
// of 5 too), and runc is never asked for it; throttling stays.
func TestDiscardBlkioWeightWithoutWeightFile(t *testing.T) {
	h := withSupport(t, &Host{NumCPU: 2, Caps: testHost.Caps}, CgroupSupport{Memory: true, CPU: true, Cpuset: true, Pids: true, IO: true, IOThrottle: true})
	for _, weight := range []uint16{300, 5} {
		hc := &container.HostConfig{}
		hc.BlkioWeight = weight
		hc.BlkioWeightDevice = []*blkiodev.WeightDevice{{Path: "/dev/null", Weight: 100}}
		hc.BlkioDeviceReadBps = []*blkiodev.ThrottleDevice{{Path: "/dev/null", Rate: 1 << 20}}
		if _, err := Generate(Input{ID: "x", Config: &container.Config{Cmd: []string{"sh"}}, HostConfig: hc, DryRun: true, Host: h, Users: testUsers}); err != nil {
			t.Fatalf("weight %d: dry run: %v", weight, err)
		}
		w := DiscardUnsupported(h, &hc.Resources)
		want := []string{
			"Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.",
			"Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.",
		}
		if !slices.Equal(w, want) {
			t.Errorf("weight %d: warnings\n got %q\nwant %q", weight, w, want)
		}
		if hc.BlkioWeight != 0 || hc.BlkioWeightDevice != nil || len(hc.BlkioDeviceReadBps) != 1 {
			t.Errorf("weight %d: resources after discard %+v", weight, hc.Resources)
		}
	}
	// A HostConfig that still holds a weight (made before) gives runc none.
	hc := &container.HostConfig{}
	hc.BlkioWeight = 300
	in := testInput(nil, hc)
	in.Host = h
	if s := mustGenerate(t, in); s.Linux.Resources.BlockIO != nil {
		t.Errorf("spec BlockIO %+v, want none", s.Linux.Resources.BlockIO)
	}
	if u := UpdateResources(h, &hc.Resources); u.BlockIO != nil {
		t.Errorf("update BlockIO %+v, want none", u.BlockIO)
	}
}

// TestCgroupSupportOfDetectedHost: the machine's own host reports what its
// hierarchy has; a hand-built Host has everything.
func TestCgroupSupportOfDetectedHost(t *testing.T) {
	h := DetectHost()
	if got, want := CgroupSupportOf(h), ReadCgroupSupport("/sys/fs/cgroup", h.CgroupV2); got != want {
		t.Errorf("CgroupSupportOf(DetectHost()) = %+v, want %+v", got, want)
	}
	if got := CgroupSupportOf(&Host{}); got != fullCgroupSupport {
		t.Errorf("hand-built host: %+v", got)
	}
}

func TestCreateDefaultsDiscardsUnsupportedLimits(t *testing.T) {
	h := bareV2(t)
	hc := &container.HostConfig{}
	hc.Memory, hc.MemorySwap, hc.MemoryReservation = 64<<20, 128<<20, 32<<20
	hc.PidsLimit = ptr(int64(50))
	hc.CPUShares, hc.CPUPeriod, hc.CPUQuota = 512, 50000, 25000
	hc.CpusetCpus = "0"
	hc.BlkioWeight = 300
	hc.BlkioDeviceReadBps = []*blkiodev.ThrottleDevice{{Path: "/dev/null", Rate: 1 << 20}}
	// What Docker checks first still fails first.
	if _, err := Generate(Input{ID: "x", Config: &container.Config{Cmd: []string{"sh"}}, HostConfig: hc, DryRun: true, Host: h, Users: testUsers}); err != nil {
		t.Fatalf("dry run: %v", err)
	}
	w := CreateDefaults(hc, h)
	want := []string{
		"Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded.",
		"Your kernel does not support memory soft limit capabilities or the cgroup is not mounted. Limitation discarded.",
		"Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded.",
		"Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded.",
		"Your kernel does not support CPU CFS scheduler. CPU period/quota discarded.",
		"Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded.",
		"Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.",
		"Your kernel does not support BPS Block I/O read limit or the cgroup is not mounted. Block I/O BPS read limit discarded.",
	}
	if !slices.Equal(w, want) {
		t.Errorf("warnings:\n got %q\nwant %q", w, want)
	}
	r := hc.Resources
	if r.Memory != 0 || r.MemorySwap != -1 || r.MemoryReservation != 0 || r.PidsLimit != nil || r.CPUShares != 0 ||
		r.CPUPeriod != 0 || r.CPUQuota != 0 || r.CpusetCpus != "" || r.BlkioWeight != 0 || r.BlkioDeviceReadBps != nil {
		t.Errorf("stored resources keep a discarded limit: %+v", r)
	}
	if hc.CgroupnsMode != container.CgroupnsModePrivate {
		t.Errorf("CgroupnsMode %q, want private on v2", hc.CgroupnsMode)
	}
	// The spec of the stored HostConfig asks runc for nothing it can't do.
	in := testInput(nil, hc)
	in.Host = h
	s := mustGenerate(t, in)
	if lr := s.Linux.Resources; lr.Memory != nil || lr.CPU != nil || lr.Pids != nil || lr.BlockIO != nil {
		t.Errorf("spec resources: memory %+v cpu %+v pids %+v blkio %+v", lr.Memory, lr.CPU, lr.Pids, lr.BlockIO)
	}
	if len(s.Linux.Resources.Devices) == 0 {
		t.Errorf("the device allow-list must stay (eBPF on v2, no controller needed)")
	}
}

// TestGenerateLeavesOutUnsupportedLimits: a container created before (or
// whose HostConfig still holds a limit) never hands runc one it cannot
// apply; neither does an update.
func TestGenerateLeavesOutUnsupportedLimits(t *testing.T) {
	h := bareV2(t)
	hc := &container.HostConfig{}
	hc.Memory, hc.PidsLimit, hc.CPUShares, hc.CpusetCpus, hc.BlkioWeight = 64<<20, ptr(int64(50)), 512, "0", 300
	in := testInput(nil, hc)
	in.Host = h
	s := mustGenerate(t, in)
	if lr := s.Linux.Resources; lr.Memory != nil || lr.CPU != nil || lr.Pids != nil || lr.BlockIO != nil {
		t.Errorf("spec resources: memory %+v cpu %+v pids %+v blkio %+v", lr.Memory, lr.CPU, lr.Pids, lr.BlockIO)
	}
	u := UpdateResources(h, &container.Resources{Memory: 64 << 20, PidsLimit: ptr(int64(0)), CPUShares: 512})
	if u.Memory != nil || u.CPU != nil || u.Pids != nil {
		t.Errorf("update resources: memory %+v cpu %+v pids %+v", u.Memory, u.CPU, u.Pids)
	}
	// The input is not changed.
	if hc.Memory != 64<<20 || *hc.PidsLimit != 50 {
		t.Errorf("input changed: %+v", hc.Resources)
	}

	// Only the missing controller's limits go.
	mem := withSupport(t, &Host{CgroupV2: true, NumCPU: 2, Caps: testHost.Caps}, CgroupSupport{Memory: true, IO: true, IOWeight: true})
	in.Host = mem
	s = mustGenerate(t, in)
	if lr := s.Linux.Resources; lr.Memory == nil || *lr.Memory.Limit != 64<<20 || lr.CPU != nil || lr.Pids != nil || lr.BlockIO == nil {
		t.Errorf("memory+io host: memory %+v cpu %+v pids %+v blkio %+v", lr.Memory, lr.CPU, lr.Pids, lr.BlockIO)
	}
}

// TestDiscardUnsupportedForUpdate: what update uses; a host with every
// controller keeps everything.
func TestDiscardUnsupportedForUpdate(t *testing.T) {
	r := &container.Resources{Memory: 64 << 20, MemorySwap: 128 << 20, PidsLimit: ptr(int64(-1))}
	w := DiscardUnsupported(bareV2(t), r)
	if !slices.Equal(w, []string{"Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded."}) {
		t.Errorf("warnings %q (an unlimited PIDs limit is dropped without one)", w)
	}
	if r.Memory != 0 || r.MemorySwap != -1 || r.PidsLimit != nil {
		t.Errorf("resources %+v", r)
	}
	r = &container.Resources{Memory: 64 << 20, PidsLimit: ptr(int64(5)), CPUShares: 3, CpusetCpus: "0", BlkioWeight: 10}
	if w := DiscardUnsupported(testHost, r); len(w) != 0 || r.Memory == 0 || r.PidsLimit == nil || r.CPUShares == 0 || r.CpusetCpus == "" || r.BlkioWeight == 0 {
		t.Errorf("full host: %q %+v", w, r)
	}
}

// TestNanoCPUsWithoutCPUController: Docker refuses --cpus where the CPU
// controller is missing; a cpuset there is discarded, not checked.
func TestNanoCPUsWithoutCPUController(t *testing.T) {
	h := bareV2(t)
	hc := &container.HostConfig{}
	hc.NanoCPUs = 5e8
	_, err := Generate(Input{ID: "x", Config: &container.Config{Cmd: []string{"sh"}}, HostConfig: hc, DryRun: true, Host: h, Users: testUsers})
	wantInvalid(t, err, "NanoCPUs can not be set, as your kernel does not support CPU CFS scheduler or the cgroup is not mounted")

	hc = &container.HostConfig{}
	hc.CpusetCpus = "7"
	if _, err := Generate(Input{ID: "x", Config: &container.Config{Cmd: []string{"sh"}}, HostConfig: hc, DryRun: true, Host: h, Users: testUsers}); err != nil {
		t.Errorf("cpuset on a host without cpuset: %v (Docker discards it)", err)
	}
}
