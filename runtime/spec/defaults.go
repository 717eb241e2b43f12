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
//     Docker's warnings;
//   - a limit whose cgroup controller the host lacks (see CgroupSupport)
//     is dropped, with Docker's warning, as Docker's
//     verifyPlatformContainerResources drops it; --cpus there is refused
//     (checkResources), as by Docker.
//
// It returns the warnings Docker returns from create. host nil means
// DetectHost().
func CreateDefaults(hc *container.HostConfig, host *Host) []string {
	if host == nil {
		host = DetectHost()
	}
	warnings := DiscardUnsupported(host, &hc.Resources)
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

// DiscardUnsupported drops from hc the limits the host's cgroups cannot
// apply (see CgroupSupport), and returns Docker's warnings for them, in
// Docker's order. Docker does this at create and at update alike.
func DiscardUnsupported(host *Host, hc *container.Resources) []string {
	if host == nil {
		host = DetectHost()
	}
	sup := CgroupSupportOf(host)
	var w []string
	if hc.Memory > 0 && !sup.Memory {
		w = append(w, "Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded.")
		hc.Memory, hc.MemorySwap = 0, -1
	}
	if hc.MemoryReservation > 0 && !sup.Memory {
		w = append(w, "Your kernel does not support memory soft limit capabilities or the cgroup is not mounted. Limitation discarded.")
		hc.MemoryReservation = 0
	}
	if hc.PidsLimit != nil && !sup.Pids {
		if *hc.PidsLimit > 0 {
			w = append(w, "Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded.")
		}
		hc.PidsLimit = nil
	}
	if hc.CPUShares > 0 && !sup.CPU {
		w = append(w, "Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded.")
		hc.CPUShares = 0
	}
	if (hc.CPUPeriod != 0 || hc.CPUQuota != 0) && !sup.CPU {
		w = append(w, "Your kernel does not support CPU CFS scheduler. CPU period/quota discarded.")
		hc.CPUPeriod, hc.CPUQuota = 0, 0
	}
	if (hc.CpusetCpus != "" || hc.CpusetMems != "") && !sup.Cpuset {
		w = append(w, "Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded.")
		hc.CpusetCpus, hc.CpusetMems = "", ""
	}
	if hc.BlkioWeight > 0 && !sup.IOWeight {
		w = append(w, "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.")
		hc.BlkioWeight = 0
	}
	if len(hc.BlkioWeightDevice) > 0 && !sup.IOWeightDevice {
		w = append(w, "Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.")
		hc.BlkioWeightDevice = nil
	}
	if !sup.IOThrottle {
		if len(hc.BlkioDeviceReadBps) > 0 {
			w = append(w, "Your kernel does not support BPS Block I/O read limit or the cgroup is not mounted. Block I/O BPS read limit discarded.")
			hc.BlkioDeviceReadBps = nil
		}
		if len(hc.BlkioDeviceWriteBps) > 0 {
			w = append(w, "Your kernel does not support BPS Block I/O write limit or the cgroup is not mounted. Block I/O BPS write limit discarded.")
			hc.BlkioDeviceWriteBps = nil
		}
		if len(hc.BlkioDeviceReadIOps) > 0 {
			w = append(w, "Your kernel does not support IOPS Block read limit or the cgroup is not mounted. Block I/O IOPS read limit discarded.")
			hc.BlkioDeviceReadIOps = nil
		}
		if len(hc.BlkioDeviceWriteIOps) > 0 {
			w = append(w, "Your kernel does not support IOPS Block write limit or the cgroup is not mounted. Block I/O IOPS write limit discarded.")
			hc.BlkioDeviceWriteIOps = nil
		}
	}
	return w
}
