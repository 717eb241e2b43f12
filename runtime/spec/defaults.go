package spec

import (
	"slices"

	"github.com/moby/moby/api/types/container"
)

// CreateDefaults fills in a create request's HostConfig the way Docker's
// daemon does before it stores it, so that `inspect` shows what Docker
// shows and the spec generated later agrees with it:
//
//   - MemorySwap is twice Memory when only Memory is given, or -1 where
//     the kernel does not account swap (with Docker's warning);
//   - ShmSize is 64 MiB, IpcMode "private", OomKillDisable false;
//   - CgroupnsMode is "private" on cgroup v2 and "host" on v1;
//   - CPUShares is clamped to 2..262144;
//   - MaskedPaths and ReadonlyPaths get the defaults unless privileged (or
//     systempaths=unconfined, which the docker CLI sends as empty lists);
//   - swappiness and OomKillDisable are dropped on cgroup v2, with
//     Docker's warnings.
//
// It returns the warnings Docker returns from create. host nil means
// DetectHost().
func CreateDefaults(hc *container.HostConfig, host *Host) []string {
	if host == nil {
		host = DetectHost()
	}
	var warnings []string
	if hc.CPUShares > 0 {
		hc.CPUShares = min(max(hc.CPUShares, minCPUShares), maxCPUShares)
	}
	if hc.Memory > 0 && hc.MemorySwap == 0 {
		hc.MemorySwap = 2 * hc.Memory
	}
	if hc.Memory > 0 && hc.MemorySwap != -1 && !host.SwapLimit {
		warnings = append(warnings, "Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.")
		hc.MemorySwap = -1
	}
	if host.CgroupV2 {
		if hc.MemorySwappiness != nil && *hc.MemorySwappiness != -1 {
			warnings = append(warnings, "Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded.")
			hc.MemorySwappiness = nil
		}
		if hc.OomKillDisable != nil && *hc.OomKillDisable {
			warnings = append(warnings, "Your kernel does not support OomKillDisable. OomKillDisable discarded.")
			hc.OomKillDisable = ptr(false)
		}
	}
	if hc.ShmSize == 0 {
		hc.ShmSize = DefaultShmSize
	}
	if hc.IpcMode == "" {
		hc.IpcMode = container.IPCModePrivate
	}
	if hc.CgroupnsMode == "" {
		hc.CgroupnsMode = container.CgroupnsModeHost
		if host.CgroupV2 {
			hc.CgroupnsMode = container.CgroupnsModePrivate
		}
	}
	if hc.OomKillDisable == nil {
		hc.OomKillDisable = ptr(false)
	}
	if !hc.Privileged && !slices.Contains(hc.SecurityOpt, "systempaths=unconfined") {
		if hc.MaskedPaths == nil {
			hc.MaskedPaths = DefaultMaskedPaths()
		}
		if hc.ReadonlyPaths == nil {
			hc.ReadonlyPaths = DefaultReadonlyPaths()
		}
	}
	return warnings
}
