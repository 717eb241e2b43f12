package system

import (
	"context"
	"slices"
	"testing"

	rtspec "github.com/berth/berth/runtime/spec"
)

func infoWith(t *testing.T, cg cgroupFacts) (cgroupVersion string, warnings, secopts []string, flags [7]bool) {
	t.Helper()
	s := New(Config{CgroupDriver: "cgroupfs"})
	s.cgroups = func() cgroupFacts { return cg }
	info, err := s.SystemInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.CgroupDriver != "cgroupfs" {
		t.Errorf("CgroupDriver %q", info.CgroupDriver)
	}
	return info.CgroupVersion, info.Warnings, info.SecurityOptions,
		[7]bool{info.MemoryLimit, info.SwapLimit, info.CPUCfsPeriod, info.CPUCfsQuota, info.CPUShares, info.CPUSet, info.PidsLimit}
}

// TestInfoCgroupV2WithoutControllers: a v2 host whose unified hierarchy
// has no controller reports version 2, no limit support and Docker's
// warnings, and the cgroupns security option.
func TestInfoCgroupV2WithoutControllers(t *testing.T) {
	v, w, so, flags := infoWith(t, cgroupFacts{v2: true})
	if v != "2" {
		t.Errorf("CgroupVersion %q, want 2", v)
	}
	if flags != [7]bool{} {
		t.Errorf("limit support %v, want none", flags)
	}
	want := []string{
		"WARNING: No memory limit support",
		"WARNING: No swap limit support",
		"WARNING: No cpu cfs quota support",
		"WARNING: No cpu cfs period support",
		"WARNING: No cpu shares support",
		"WARNING: No cpuset support",
		"WARNING: No io.weight support",
		"WARNING: No io.weight (per device) support",
		"WARNING: No io.max (rbps) support",
		"WARNING: No io.max (wbps) support",
		"WARNING: No io.max (riops) support",
		"WARNING: No io.max (wiops) support",
	}
	if !slices.Equal(w, want) {
		t.Errorf("Warnings\n got %q\nwant %q", w, want)
	}
	if !slices.Equal(so, []string{"name=seccomp,profile=builtin", "name=cgroupns"}) {
		t.Errorf("SecurityOptions %q", so)
	}
}

// TestInfoCgroupV2Full: a production v2 host (all controllers, swap
// accounting) warns of nothing.
func TestInfoCgroupV2Full(t *testing.T) {
	all := rtspec.CgroupSupport{Memory: true, CPU: true, Cpuset: true, Pids: true, IO: true, IOWeight: true, IOWeightDevice: true, IOThrottle: true}
	v, w, so, flags := infoWith(t, cgroupFacts{v2: true, swapLimit: true, support: all})
	if v != "2" || len(w) != 0 || flags != [7]bool{true, true, true, true, true, true, true} || !slices.Contains(so, "name=cgroupns") {
		t.Errorf("full v2: version %q warnings %q flags %v secopts %q", v, w, flags, so)
	}
}

// TestInfoCgroupV1: this machine's kind of host: version 1, no cgroupns
// option, no warnings when every hierarchy is mounted.
func TestInfoCgroupV1(t *testing.T) {
	all := rtspec.CgroupSupport{Memory: true, CPU: true, Cpuset: true, Pids: true, IO: true, IOWeight: true, IOWeightDevice: true, IOThrottle: true}
	v, w, so, flags := infoWith(t, cgroupFacts{swapLimit: true, support: all})
	if v != "1" || len(w) != 0 || flags != [7]bool{true, true, true, true, true, true, true} || slices.Contains(so, "name=cgroupns") {
		t.Errorf("v1: version %q warnings %q flags %v secopts %q", v, w, flags, so)
	}
	_, w, _, _ = infoWith(t, cgroupFacts{support: all})
	if !slices.Equal(w, []string{"WARNING: No swap limit support"}) {
		t.Errorf("v1 without swap accounting: %q", w)
	}
	// No blkio weight (mq-deadline, no BFQ): Docker says nothing of it on
	// v1; without throttling it names the v1 files.
	noWeight := all
	noWeight.IOWeight, noWeight.IOWeightDevice = false, false
	if _, w, _, _ = infoWith(t, cgroupFacts{swapLimit: true, support: noWeight}); len(w) != 0 {
		t.Errorf("v1 without blkio weight: %q", w)
	}
	noWeight.IOThrottle = false
	_, w, _, _ = infoWith(t, cgroupFacts{swapLimit: true, support: noWeight})
	if want := []string{
		"WARNING: No blkio throttle.read_bps_device support",
		"WARNING: No blkio throttle.write_bps_device support",
		"WARNING: No blkio throttle.read_iops_device support",
		"WARNING: No blkio throttle.write_iops_device support",
	}; !slices.Equal(w, want) {
		t.Errorf("v1 without blkio throttling: %q", w)
	}
}

// TestInfoDetectsThisHost: the default facts are this machine's.
func TestInfoDetectsThisHost(t *testing.T) {
	s := New(Config{})
	info, err := s.SystemInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.CgroupVersion != CgroupVersion() {
		t.Errorf("CgroupVersion %q, statfs says %q", info.CgroupVersion, CgroupVersion())
	}
	if got := rtspec.CgroupSupportOf(rtspec.DetectHost()).Memory; info.MemoryLimit != got {
		t.Errorf("MemoryLimit %v, host %v", info.MemoryLimit, got)
	}
}
