package container

// docker update: change a container's cgroup limits and restart policy.

import (
	"context"
	"fmt"
	"path/filepath"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"

	rtspec "github.com/berth/berth/runtime/spec"
)

// Update answers POST /containers/{id}/update: the limits asked for are
// merged into the container's HostConfig as Docker merges them (zero
// values leave a setting alone), applied to the running container with
// `runc update`, and saved. It returns Docker's warnings.
func (s *Service) Update(ctx context.Context, name string, u container.UpdateConfig) ([]string, error) {
	c, err := s.Get(name)
	if err != nil {
		return nil, err
	}
	host := rtspec.DetectHost()
	warnings, err := checkUpdate(host, &u.Resources)
	if err != nil {
		return nil, err
	}
	cannot := func(err error) error {
		return reclass(err, fmt.Sprintf("Cannot update container %s: %s", c.ID, err.Error()))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removed || c.State.Status == container.StateRemoving || c.State.Dead {
		return nil, cannot(cerrdefs.ErrConflict.WithMessage(`container is marked for removal and cannot be "update"`))
	}
	merged := *c.HostConfig
	if err := mergeResources(&merged.Resources, &u.Resources); err != nil {
		return nil, cannot(err)
	}
	if u.RestartPolicy.Name != "" {
		if merged.AutoRemove && u.RestartPolicy.Name != container.RestartPolicyDisabled {
			return nil, cannot(cerrdefs.ErrConflict.WithMessage("Restart policy cannot be updated because AutoRemove is enabled for the container"))
		}
		merged.RestartPolicy = u.RestartPolicy
	}
	if err := validateHostConfig(&merged); err != nil {
		return nil, err
	}
	if c.State.Running && !c.State.Restarting {
		if err := s.task(c).Update(ctx, rtspec.UpdateResources(host, &merged.Resources)); err != nil {
			return nil, cannot(err)
		}
	}
	old := c.HostConfig
	c.HostConfig = &merged
	if err := c.save(s.dir(c.ID)); err != nil {
		c.HostConfig = old
		return nil, err
	}
	s.emitLocked(c, "update", nil)
	if warnings == nil {
		warnings = []string{}
	}
	return warnings, nil
}

// reclass returns an error with message msg and err's class (conflict,
// invalid argument or not found; anything else is internal).
func reclass(err error, msg string) error {
	switch {
	case cerrdefs.IsConflict(err):
		return cerrdefs.ErrConflict.WithMessage(msg)
	case cerrdefs.IsInvalidArgument(err):
		return cerrdefs.ErrInvalidArgument.WithMessage(msg)
	case cerrdefs.IsNotFound(err):
		return cerrdefs.ErrNotFound.WithMessage(msg)
	}
	return cerrdefs.ErrInternal.WithMessage(msg)
}

// checkUpdate applies Docker's checks to the requested resources, and
// drops what the host cannot do, with a warning.
func checkUpdate(host *rtspec.Host, r *container.Resources) ([]string, error) {
	if r.Memory != 0 && r.Memory < 6<<20 {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage("Minimum memory limit allowed is 6MB")
	}
	// Limits the host's cgroups cannot apply go, with Docker's warnings,
	// as at create.
	askedMemory := r.Memory > 0
	warnings := rtspec.DiscardUnsupported(host, r)
	if askedMemory && r.Memory == 0 {
		// A discarded memory limit comes back with MemorySwap -1
		// ("unlimited", right for a new container), which the merge
		// would write over the container's swap limit: leave swap alone
		// instead, since the limit it goes with is not changing.
		r.MemorySwap = 0
	}
	if r.Memory > 0 && r.MemorySwap > 0 && r.MemorySwap < r.Memory {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage("Minimum memoryswap limit should be larger than memory limit, see usage")
	}
	if r.MemoryReservation != 0 && r.MemoryReservation < 6<<20 {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage("Minimum memory reservation allowed is 6MB")
	}
	if r.NanoCPUs != 0 && (r.CPUPeriod != 0 || r.CPUQuota != 0) {
		which := "Period"
		if r.CPUPeriod == 0 {
			which = "Quota"
		}
		return nil, cerrdefs.ErrInvalidArgument.WithMessage("Conflicting options: Nano CPUs and CPU " + which + " cannot both be set")
	}
	if n := host.NumCPU; r.NanoCPUs < 0 || (r.NanoCPUs > 0 && r.NanoCPUs < 1e7) || (n > 0 && r.NanoCPUs > int64(n)*1e9) {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", n, n))
	}
	if r.CPUPeriod != 0 && (r.CPUPeriod < 1000 || r.CPUPeriod > 1000000) {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
	}
	if r.CPUQuota > 0 && r.CPUQuota < 1000 {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage("CPU cfs quota can not be less than 1ms (i.e. 1000)")
	}
	if r.CPUShares < 0 {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid CPU shares (%d): value must be a positive integer", r.CPUShares))
	}
	for _, set := range []struct{ v, what string }{{r.CpusetCpus, "cpus"}, {r.CpusetMems, "mems"}} {
		if set.v == "" {
			continue
		}
		ids, err := rtspec.ParseIDList(set.v)
		if err != nil {
			return nil, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Invalid value %s for cpuset %s", set.v, set.what))
		}
		if set.what == "cpus" {
			for _, id := range ids {
				if host.NumCPU > 0 && id >= host.NumCPU {
					return nil, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Requested CPUs are not available - requested %s, available: 0-%d", set.v, host.NumCPU-1))
				}
			}
		}
	}
	if r.BlkioWeight > 0 && (r.BlkioWeight < 10 || r.BlkioWeight > 1000) {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage("Range of blkio weight is from 10 to 1000")
	}
	if r.MemorySwap != 0 && !host.SwapLimit {
		warnings = append(warnings, "Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.")
		r.MemorySwap = -1
	}
	return warnings, nil
}

// mergeResources applies the non-zero fields of r to cur, with Docker's
// conflict checks.
func mergeResources(cur, r *container.Resources) error {
	for _, c := range []struct {
		clash bool
		msg   string
	}{
		{r.NanoCPUs > 0 && cur.CPUPeriod > 0, "Nano CPUs cannot be updated as CPU Period has already been set"},
		{r.NanoCPUs > 0 && cur.CPUQuota > 0, "Nano CPUs cannot be updated as CPU Quota has already been set"},
		{r.CPUPeriod > 0 && cur.NanoCPUs > 0, "CPU Period cannot be updated as NanoCPUs has already been set"},
		{r.CPUQuota > 0 && cur.NanoCPUs > 0, "CPU Quota cannot be updated as NanoCPUs has already been set"},
	} {
		if c.clash {
			return cerrdefs.ErrConflict.WithMessage("Conflicting options: " + c.msg)
		}
	}
	if r.Memory != 0 {
		// Docker records memory-swap as twice the memory when only
		// --memory was given; berth computes it at start, so do it here.
		swap := cur.MemorySwap
		if swap == 0 && cur.Memory > 0 {
			swap = 2 * cur.Memory
		}
		if r.Memory > swap && r.MemorySwap == 0 {
			return cerrdefs.ErrConflict.WithMessage("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time")
		}
		cur.MemorySwap = swap
	}
	setIfSet(&cur.BlkioWeight, r.BlkioWeight)
	setIfSet(&cur.CPUShares, r.CPUShares)
	setIfSet(&cur.NanoCPUs, r.NanoCPUs)
	setIfSet(&cur.CPUPeriod, r.CPUPeriod)
	setIfSet(&cur.CPUQuota, r.CPUQuota)
	setIfSet(&cur.CpusetCpus, r.CpusetCpus)
	setIfSet(&cur.CpusetMems, r.CpusetMems)
	setIfSet(&cur.Memory, r.Memory)
	setIfSet(&cur.MemorySwap, r.MemorySwap)
	setIfSet(&cur.MemoryReservation, r.MemoryReservation)
	setIfSet(&cur.CPURealtimePeriod, r.CPURealtimePeriod)
	setIfSet(&cur.CPURealtimeRuntime, r.CPURealtimeRuntime)
	if r.PidsLimit != nil {
		v := *r.PidsLimit
		cur.PidsLimit = &v
	}
	return nil
}

// setIfSet sets *dst to v unless v is the zero value: update leaves a
// setting it was not given alone.
func setIfSet[T comparable](dst *T, v T) {
	var zero T
	if v != zero {
		*dst = v
	}
}

// memoryLimitFile is where the container's memory limit shows (tests).
func (s *Service) memoryLimitFile(id string) string {
	if rtspec.DetectHost().CgroupV2 {
		return filepath.Join(s.cgroupDir(id, ""), "memory.max")
	}
	return filepath.Join(s.cgroupDir(id, "memory"), "memory.limit_in_bytes")
}
