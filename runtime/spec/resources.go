package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/runtime-spec/specs-go"
)

const (
	minMemory    = 6 << 20 // Docker's smallest --memory and --memory-reservation
	cfsPeriod    = 100000  // the CFS period --cpus is expressed in, µs
	minCPUShares = 2
	maxCPUShares = 262144
	// DefaultNofile is the RLIMIT_NOFILE a container gets when the request
	// sets none, capped by the host's hard limit. See defaultRlimits.
	DefaultNofile = 1048576
)

// CgroupSupport says which limits the host's cgroups can apply: on cgroup
// v2 the controllers the root cgroup offers (its cgroup.controllers, where
// Docker looks), on v1 the controllers mounted. A host can lack one: a
// kernel built without it, or a v2 hierarchy whose controllers are bound to
// v1 hierarchies (a hybrid host's /sys/fs/cgroup/unified). runc then fails
// every start that asks for such a limit on a missing file (openat2
// .../memory.max: no such file or directory); Docker instead discards the
// limit at create with a warning (verifyPlatformContainerResources), and so
// does CreateDefaults. limits() leaves such limits out too, so that no
// container, whenever created, hands runc a limit it cannot apply.
type CgroupSupport struct {
	Memory bool // --memory, --memory-swap, --memory-reservation
	CPU    bool // --cpus, --cpu-period, --cpu-quota, --cpu-shares, --cpu-rt-*
	Cpuset bool // --cpuset-cpus, --cpuset-mems
	Pids   bool // --pids-limit
	IO     bool // the blkio (v1) or io (v2) controller

	// The blkio limits are decided file by file, as Docker's sysinfo
	// does: a host can have the controller and not the weight (a v1
	// kernel since 5.0 has blkio.weight only with BFQ, and BFQ only
	// where it is built and loaded). runc writes whichever weight file
	// exists, the BFQ one first, and fails the start when neither does.
	IOWeight       bool // --blkio-weight
	IOWeightDevice bool // --blkio-weight-device
	IOThrottle     bool // --device-read-bps, --device-write-bps, --device-read-iops, --device-write-iops
}

// fullCgroupSupport is every controller.
var fullCgroupSupport = CgroupSupport{Memory: true, CPU: true, Cpuset: true, Pids: true, IO: true,
	IOWeight: true, IOWeightDevice: true, IOThrottle: true}

// ReadCgroupSupport reads what the cgroup hierarchy mounted at root (the
// unified one when v2) can limit.
//
// The blkio weight is where Docker's sysinfo looks for it, blkio.weight at
// the blkio root (v1), or BFQ's blkio.bfq.weight, which runc writes when
// it is there: BFQ offers it in every cgroup but the root, so a cgroup
// below the root is looked at too. On v2 the io controller's weight is
// io.weight (io.cost, whose io.cost.qos sits at the root) or BFQ's
// io.bfq.weight, both in the cgroups below the root only. A host with
// neither (the mq-deadline scheduler and no BFQ) gets Docker's "Weight
// discarded" warning at create and update, and runc is never asked.
func ReadCgroupSupport(root string, v2 bool) CgroupSupport {
	// anywhere: name at dir or in a cgroup right below it.
	anywhere := func(dir string, names ...string) bool {
		for _, n := range names {
			if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
				return true
			}
			if m, _ := filepath.Glob(filepath.Join(dir, "*", n)); len(m) > 0 {
				return true
			}
		}
		return false
	}
	if v2 {
		b, err := os.ReadFile(filepath.Join(root, "cgroup.controllers"))
		if err != nil {
			return CgroupSupport{}
		}
		has := map[string]bool{}
		for _, c := range strings.Fields(string(b)) {
			has[c] = true
		}
		weight := has["io"] && anywhere(root, "io.cost.qos", "io.weight", "io.bfq.weight")
		return CgroupSupport{Memory: has["memory"], CPU: has["cpu"], Cpuset: has["cpuset"], Pids: has["pids"], IO: has["io"],
			IOWeight: weight, IOWeightDevice: weight, IOThrottle: has["io"]}
	}
	exists := func(paths ...string) bool {
		for _, p := range paths {
			if _, err := os.Stat(filepath.Join(root, p)); err == nil {
				return true
			}
		}
		return false
	}
	// A hierarchy's root has cgroup.procs but not every limit file (no
	// pids.max): a mounted hierarchy is what counts.
	blkio := filepath.Join(root, "blkio")
	return CgroupSupport{
		Memory:         exists("memory/cgroup.procs"),
		CPU:            exists("cpu/cgroup.procs", "cpu,cpuacct/cgroup.procs"),
		Cpuset:         exists("cpuset/cgroup.procs"),
		Pids:           exists("pids/cgroup.procs"),
		IO:             exists("blkio/cgroup.procs"),
		IOWeight:       anywhere(blkio, "blkio.weight", "blkio.bfq.weight"),
		IOWeightDevice: anywhere(blkio, "blkio.weight_device", "blkio.bfq.weight_device"),
		IOThrottle:     exists("blkio/blkio.throttle.read_bps_device"),
	}
}

var detectCgroupSupport = sync.OnceValue(func() CgroupSupport {
	return ReadCgroupSupport("/sys/fs/cgroup", DetectHost().CgroupV2)
})

// cgroupSupportOverride holds the support of Hosts built by tests.
var cgroupSupportOverride sync.Map // *Host → CgroupSupport

// OverrideCgroupSupport makes CgroupSupportOf(host) report sup until the
// returned undo is called. It is for tests, which build a Host that lacks
// some controller (pass undo to t.Cleanup); berth itself never calls it.
func OverrideCgroupSupport(host *Host, sup CgroupSupport) (undo func()) {
	cgroupSupportOverride.Store(host, sup)
	return func() { cgroupSupportOverride.Delete(host) }
}

// CgroupSupportOf is what host's cgroups can limit: this machine's (read
// once) for DetectHost()'s host; every controller for a Host built
// elsewhere, unless a test gave it a set.
func CgroupSupportOf(host *Host) CgroupSupport {
	if s, ok := cgroupSupportOverride.Load(host); ok {
		return s.(CgroupSupport)
	}
	if host == DetectHost() {
		return detectCgroupSupport()
	}
	return fullCgroupSupport
}

func invalid(format string, a ...any) error {
	return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf(format, a...))
}

// resources converts the request's cgroup limits, with Docker's checks and
// wording, into runc's terms. Limits a host cannot apply are dropped as
// Docker drops them (swap without swap accounting; swappiness and
// oom-kill-disable on cgroup v2). A dry run leaves out the per-device blkio
// limits, which need the devices' numbers.
func resources(host *Host, r *container.Resources, dryRun bool) (*specs.LinuxResources, error) {
	if err := checkResources(host, r); err != nil {
		return nil, err
	}
	out := limits(host, r)
	sup := CgroupSupportOf(host)
	if !host.CgroupV2 && sup.Memory {
		mem := specs.LinuxMemory{}
		if out.Memory != nil {
			mem = *out.Memory
		}
		if s := r.MemorySwappiness; s != nil && *s >= 0 {
			mem.Swappiness = ptr(uint64(*s))
		}
		if r.OomKillDisable != nil {
			mem.DisableOOMKiller = ptr(*r.OomKillDisable)
		}
		if mem != (specs.LinuxMemory{}) {
			out.Memory = &mem
		}
	}
	if !dryRun && (sup.IOWeightDevice || sup.IOThrottle) {
		rr := *r
		if !sup.IOWeightDevice {
			rr.BlkioWeightDevice = nil
		}
		if !sup.IOThrottle {
			rr.BlkioDeviceReadBps, rr.BlkioDeviceWriteBps, rr.BlkioDeviceReadIOps, rr.BlkioDeviceWriteIOps = nil, nil, nil, nil
		}
		bio, err := blockIO(&rr)
		if err != nil {
			return nil, err
		}
		if bio != nil {
			if out.BlockIO != nil {
				bio.Weight = out.BlockIO.Weight
			}
			out.BlockIO = bio
		}
	}
	return out, nil
}

// checkResources applies Docker's create-time checks to the cgroup limits,
// in Docker's order and wording. The per-device blkio limits are checked
// where they are converted (blockIO).
func checkResources(host *Host, r *container.Resources) error {
	// Memory.
	if r.Memory != 0 && r.Memory < minMemory {
		return invalid("Minimum memory limit allowed is 6MB")
	}
	if r.Memory > 0 && r.MemorySwap > 0 && r.MemorySwap < r.Memory {
		return invalid("Minimum memoryswap limit should be larger than memory limit, see usage")
	}
	if r.Memory == 0 && r.MemorySwap > 0 {
		return invalid("You should always set the Memory limit when using Memoryswap limit, see usage")
	}
	if r.MemoryReservation != 0 && r.MemoryReservation < minMemory {
		return invalid("Minimum memory reservation allowed is 6MB")
	}
	if r.Memory > 0 && r.MemoryReservation > 0 && r.Memory < r.MemoryReservation {
		return invalid("Minimum memory limit can not be less than memory reservation limit, see usage")
	}
	if s := r.MemorySwappiness; s != nil && (*s < -1 || *s > 100) {
		return invalid("Invalid value: %v, valid memory swappiness range is 0-100", *s)
	}

	// CPU.
	if r.NanoCPUs != 0 && r.CPUPeriod != 0 {
		return invalid("Conflicting options: Nano CPUs and CPU Period cannot both be set")
	}
	if r.NanoCPUs != 0 && r.CPUQuota != 0 {
		return invalid("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
	}
	sup := CgroupSupportOf(host)
	if r.NanoCPUs > 0 && !sup.CPU {
		return invalid("NanoCPUs can not be set, as your kernel does not support CPU CFS scheduler or the cgroup is not mounted")
	}
	if n := host.NumCPU; r.NanoCPUs < 0 || (r.NanoCPUs > 0 && r.NanoCPUs < 1e7) || (n > 0 && r.NanoCPUs > int64(n)*1e9) {
		return invalid("Range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", n, n)
	}
	if r.CPUPeriod != 0 && (r.CPUPeriod < 1000 || r.CPUPeriod > 1000000) {
		return invalid("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
	}
	if r.CPUQuota > 0 && r.CPUQuota < 1000 {
		return invalid("CPU cfs quota can not be less than 1ms (i.e. 1000)")
	}
	if r.CPURealtimePeriod != 0 && r.CPURealtimeRuntime != 0 && r.CPURealtimeRuntime > r.CPURealtimePeriod {
		return invalid("cpu-rt-runtime cannot be higher than cpu-rt-period")
	}
	if r.CPUShares < 0 {
		// dockerd's words (it says so at start, berth at create).
		return invalid("shares: invalid argument")
	}
	// A cpuset the host cannot apply is discarded (CreateDefaults), not
	// checked, as Docker does.
	if r.CpusetCpus != "" && sup.Cpuset {
		ids, err := ParseIDList(r.CpusetCpus)
		if err != nil {
			return invalid("Invalid value %s for cpuset cpus", r.CpusetCpus)
		}
		for _, id := range ids {
			if host.NumCPU > 0 && id >= host.NumCPU {
				return invalid("Requested CPUs are not available - requested %s, available: 0-%d", r.CpusetCpus, host.NumCPU-1)
			}
		}
	}
	if r.CpusetMems != "" && sup.Cpuset {
		if _, err := ParseIDList(r.CpusetMems); err != nil {
			return invalid("Invalid value %s for cpuset mems", r.CpusetMems)
		}
	}

	// Block IO.
	if r.BlkioWeight > 0 && sup.IOWeight && (r.BlkioWeight < 10 || r.BlkioWeight > 1000) {
		return invalid("Range of blkio weight is from 10 to 1000")
	}
	return nil
}

// limits converts the memory, CPU, PIDs and blkio weight limits of r into
// runc's terms, unchecked; a field left at zero is left out, and so is a
// limit whose controller the host lacks (see CgroupSupport). These are the
// limits `runc update` can change too (see UpdateResources); swappiness,
// oom-kill-disable and per-device blkio limits are create-time only.
func limits(host *Host, r *container.Resources) *specs.LinuxResources {
	out := &specs.LinuxResources{}
	sup := CgroupSupportOf(host)
	if !sup.Memory || !sup.CPU || !sup.Cpuset || !sup.Pids || !sup.IOWeight {
		// Work on a copy without what the host cannot apply.
		rr := *r
		if !sup.Memory {
			rr.Memory, rr.MemorySwap, rr.MemoryReservation = 0, 0, 0
		}
		if !sup.CPU {
			rr.CPUShares, rr.NanoCPUs, rr.CPUPeriod, rr.CPUQuota = 0, 0, 0, 0
			rr.CPURealtimePeriod, rr.CPURealtimeRuntime = 0, 0
		}
		if !sup.Cpuset {
			rr.CpusetCpus, rr.CpusetMems = "", ""
		}
		if !sup.Pids {
			rr.PidsLimit = nil
		}
		if !sup.IOWeight {
			rr.BlkioWeight = 0
		}
		r = &rr
	}

	mem := &specs.LinuxMemory{}
	if r.Memory > 0 {
		mem.Limit = ptr(r.Memory)
		swap := r.MemorySwap
		if swap == 0 {
			swap = 2 * r.Memory // Docker's default: as much swap as memory
		}
		if host.SwapLimit {
			mem.Swap = ptr(swap)
		}
	} else if r.MemorySwap == -1 && host.SwapLimit {
		mem.Swap = ptr(int64(-1))
	}
	if r.MemoryReservation > 0 {
		mem.Reservation = ptr(r.MemoryReservation)
	}
	if *mem != (specs.LinuxMemory{}) {
		out.Memory = mem
	}

	cpu := &specs.LinuxCPU{}
	if r.CPUShares > 0 {
		// As given: out of 2..262144, runc refuses it at start with
		// "the minimum (maximum) allowed cpu-shares is ...", as under
		// dockerd (which clamps only for API clients before 1.19).
		cpu.Shares = ptr(uint64(r.CPUShares))
	}
	if r.NanoCPUs > 0 {
		cpu.Period = ptr(uint64(cfsPeriod))
		cpu.Quota = ptr(r.NanoCPUs * cfsPeriod / 1e9)
	}
	if r.CPUPeriod > 0 {
		cpu.Period = ptr(uint64(r.CPUPeriod))
	}
	if r.CPUQuota != 0 {
		cpu.Quota = ptr(r.CPUQuota)
	}
	if r.CPURealtimePeriod != 0 {
		cpu.RealtimePeriod = ptr(uint64(r.CPURealtimePeriod))
	}
	if r.CPURealtimeRuntime != 0 {
		cpu.RealtimeRuntime = ptr(r.CPURealtimeRuntime)
	}
	cpu.Cpus, cpu.Mems = r.CpusetCpus, r.CpusetMems
	if *cpu != (specs.LinuxCPU{}) {
		out.CPU = cpu
	}

	if r.PidsLimit != nil && *r.PidsLimit > 0 {
		out.Pids = &specs.LinuxPids{Limit: ptr(*r.PidsLimit)}
	}

	if r.BlkioWeight > 0 {
		out.BlockIO = &specs.LinuxBlockIO{Weight: ptr(r.BlkioWeight)}
	}
	return out
}

// UpdateResources is what `runc update --resources` gets for a running
// container's resources: its HostConfig's, with the update merged in and
// checked as Docker checks an update (not as at create). It is the
// create-time conversion of memory, CPU, PIDs and blkio weight, except that
// a PIDs limit of 0 or less (Docker's "unlimited") is sent as -1: for runc
// update a missing or zero limit means "leave it as it is", and -1 lifts a
// limit set before.
func UpdateResources(host *Host, r *container.Resources) *specs.LinuxResources {
	out := limits(host, r)
	if out.CPU != nil && out.CPU.Shares != nil {
		// Update keeps shares in the kernel's range.
		out.CPU.Shares = ptr(min(max(*out.CPU.Shares, minCPUShares), maxCPUShares))
	}
	if r.PidsLimit != nil && *r.PidsLimit <= 0 && CgroupSupportOf(host).Pids {
		out.Pids = &specs.LinuxPids{Limit: ptr(int64(-1))}
	}
	return out
}

// ParseIDList parses a cpuset list such as "0-2,4,7-8"; a range wider than
// 65536 is refused.
func ParseIDList(s string) ([]int, error) {
	var ids []int
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("bad list %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("bad list %q", s)
			}
		}
		if b-a > 1<<16 {
			return nil, fmt.Errorf("bad list %q", s)
		}
		for i := a; i <= b; i++ {
			ids = append(ids, i)
		}
	}
	return ids, nil
}

// rlimitNames are the ulimit names Docker accepts, with their RLIMIT_ type.
var rlimitNames = map[string]string{
	"core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA", "fsize": "RLIMIT_FSIZE",
	"locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK", "msgqueue": "RLIMIT_MSGQUEUE",
	"nice": "RLIMIT_NICE", "nofile": "RLIMIT_NOFILE", "nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS",
	"rtprio": "RLIMIT_RTPRIO", "rttime": "RLIMIT_RTTIME", "sigpending": "RLIMIT_SIGPENDING",
	"stack": "RLIMIT_STACK",
}

// rlimits converts --ulimit values; -1 means unlimited. The last value for a
// name wins. Without a nofile ulimit, RLIMIT_NOFILE is set to
// min(DefaultNofile, host hard limit) for both soft and hard:
//
//   - Docker itself sets no rlimit, so a container inherits the limits of
//     containerd, which on most hosts runs with LimitNOFILE=infinity: a
//     Docker user sees `ulimit -n` = 1048576 (soft and hard). On a host whose
//     hard limit is lower and without CAP_SYS_RESOURCE (like this one:
//     20000), that same inheritance makes runc fail.
//   - Inheriting berthd's own limits instead would make the result depend on
//     how berthd was started (systemd's 1024:524288, a shell's 20000:20000,
//     and Go raising its own soft limit at start but restoring it for
//     children).
//
// An explicit value is deterministic, matches what Docker users see wherever
// the host allows it, and can never exceed the host's hard limit, so it never
// fails. A --ulimit nofile above the host's hard limit is refused with a
// clear message instead of runc's "operation not permitted".
func rlimits(host *Host, uls []*container.Ulimit) ([]specs.POSIXRlimit, error) {
	var out []specs.POSIXRlimit
	idx := map[string]int{}
	for _, ul := range uls {
		if ul == nil {
			continue
		}
		t, ok := rlimitNames[strings.ToLower(ul.Name)]
		if !ok {
			return nil, invalid("invalid ulimit type: %s", ul.Name)
		}
		soft, hard := uint64(ul.Soft), uint64(ul.Hard)
		if soft > hard {
			return nil, invalid("ulimit soft limit must be less than or equal to hard limit: %d > %d", ul.Soft, ul.Hard)
		}
		if t == "RLIMIT_NOFILE" && host.NofileHard > 0 && hard > host.NofileHard {
			return nil, invalid("ulimit nofile: hard limit %d is above the host's hard limit %d", ul.Hard, host.NofileHard)
		}
		rl := specs.POSIXRlimit{Type: t, Soft: soft, Hard: hard}
		if i, ok := idx[t]; ok {
			out[i] = rl
			continue
		}
		idx[t] = len(out)
		out = append(out, rl)
	}
	if _, ok := idx["RLIMIT_NOFILE"]; !ok && host.NofileHard > 0 {
		n := min(uint64(DefaultNofile), host.NofileHard)
		out = append(out, specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Soft: n, Hard: n})
	}
	return out, nil
}

// ipcSysctls are the namespaced kernel.* sysctls of the IPC namespace.
var ipcSysctls = map[string]bool{
	"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true, "kernel.sem": true,
	"kernel.shmall": true, "kernel.shmmax": true, "kernel.shmmni": true, "kernel.shm_rmid_forced": true,
}

// sysctls validates --sysctl (only namespaced ones, and not those of a
// namespace shared with the host) and adds Docker's defaults for a container
// with its own network namespace: unprivileged users may bind ports below
// 1024 and send ICMP echo.
func sysctls(in map[string]string, netHost, ownNetNS, ipcHost, utsHost bool) (map[string]string, error) {
	out := make(map[string]string, len(in)+2)
	for k, v := range in {
		key := strings.ReplaceAll(k, "/", ".")
		switch {
		case strings.HasPrefix(key, "net."):
			if netHost {
				return nil, invalid("sysctl '%s' is not allowed in host network mode", k)
			}
		case ipcSysctls[key] || strings.HasPrefix(key, "fs.mqueue."):
			if ipcHost {
				return nil, invalid("sysctl '%s' is not allowed in host IPC mode", k)
			}
		case key == "kernel.domainname" || key == "kernel.hostname":
			if utsHost {
				return nil, invalid("sysctl '%s' is not allowed in host UTS mode", k)
			}
			if key == "kernel.hostname" {
				return nil, invalid("sysctl '%s' is not allowed: set the hostname with --hostname", k)
			}
		default:
			return nil, invalid("sysctl '%s' is not allowed", k)
		}
		out[k] = v
	}
	if ownNetNS {
		if _, ok := in["net.ipv4.ip_unprivileged_port_start"]; !ok {
			out["net.ipv4.ip_unprivileged_port_start"] = "0"
		}
		if _, ok := in["net.ipv4.ping_group_range"]; !ok {
			out["net.ipv4.ping_group_range"] = "0 2147483647"
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func ptr[T any](v T) *T { return &v }
