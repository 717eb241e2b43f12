package container

// docker stats: the task's resource usage (runtime.Task.Stats: its
// cgroups, v1 or v2, and network counters) in the shape of Docker's
// StatsResponse, with the host's CPU time beside it.

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/berth/berth/runtime"
	"github.com/berth/berth/runtime/cgstats"
)

// StatsOptions are GET /containers/{id}/stats's parameters.
type StatsOptions struct {
	// Stream sends a sample every second until ctx is done.
	Stream bool
	// OneShot (without Stream) answers at once, without the previous
	// sample that fills precpu_stats.
	OneShot bool
}

// statsInterval is how often a stream samples, as Docker's collector.
const statsInterval = time.Second

// Stats samples the container's usage and hands each sample to send: one
// sample without Stream (taken a second after a first one that fills its
// precpu_stats, unless OneShot), else one a second until ctx is done or
// the container is removed. A container that is not running gives zeroed
// samples with only its name and ID, as Docker's.
func (s *Service) Stats(ctx context.Context, name string, o StatsOptions, send func(*container.StatsResponse) error) error {
	c, err := s.Get(name)
	if err != nil {
		return err
	}
	var prev *container.StatsResponse
	sample := func() *container.StatsResponse {
		st := s.sample(ctx, c)
		if prev != nil && !st.Read.IsZero() && !prev.Read.IsZero() {
			st.PreCPUStats = prev.CPUStats
			st.PreRead = prev.Read
		}
		prev = st
		return st
	}
	if !o.Stream {
		st := sample()
		if !o.OneShot && !st.Read.IsZero() {
			t := time.NewTimer(statsInterval)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil
			}
			st = sample()
		}
		return send(st)
	}
	tick := time.NewTicker(statsInterval)
	defer tick.Stop()
	for {
		if err := send(sample()); err != nil {
			return nil // the client went away
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return nil
		case <-c.removedCh():
			return nil
		}
	}
}

// removedCh returns a channel closed once c is removed.
func (c *Container) removedCh() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removed {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	return nil
}

// sample is one stats sample of c, from its task (runtime.Task.Stats).
func (s *Service) sample(ctx context.Context, c *Container) *container.StatsResponse {
	c.mu.Lock()
	running := c.State.Running && !c.State.Restarting
	hostNet := c.HostConfig != nil && (c.HostConfig.NetworkMode.IsHost() || c.HostConfig.NetworkMode.IsContainer())
	st := &container.StatsResponse{ID: c.ID, Name: c.Name}
	c.mu.Unlock()
	if !running {
		return st
	}
	ts, err := s.task(c).Stats(ctx)
	if err != nil {
		// Exited meanwhile, or no task (yet): as a stopped container.
		return st
	}
	st.OSType = "linux"
	st.Read = ts.Read
	cpu := &st.CPUStats
	cpu.CPUUsage = container.CPUUsage{TotalUsage: ts.CPU.Total, PercpuUsage: ts.CPU.PerCPU, UsageInUsermode: ts.CPU.User, UsageInKernelmode: ts.CPU.Kernel}
	cpu.ThrottlingData = container.ThrottlingData{Periods: ts.CPU.Periods, ThrottledPeriods: ts.CPU.ThrottledPeriods, ThrottledTime: ts.CPU.ThrottledTime}
	cpu.SystemUsage, cpu.OnlineCPUs = systemCPU()
	mem := &st.MemoryStats
	mem.Usage, mem.MaxUsage, mem.Failcnt, mem.Stats = ts.Memory.Usage, ts.Memory.MaxUsage, ts.Memory.Failcnt, ts.Memory.Stat
	mem.Limit = capLimit(ts.Memory.Limit)
	st.PidsStats = container.PidsStats{Current: ts.Pids.Current, Limit: ts.Pids.Limit}
	st.BlkioStats.IoServiceBytesRecursive = blkioEntries(ts.IO.Bytes)
	st.BlkioStats.IoServicedRecursive = blkioEntries(ts.IO.Ops)
	if !hostNet && len(ts.Networks) > 0 {
		st.Networks = make(map[string]container.NetworkStats, len(ts.Networks))
		for name, n := range ts.Networks {
			st.Networks[name] = container.NetworkStats{
				RxBytes: n.RxBytes, RxPackets: n.RxPackets, RxErrors: n.RxErrors, RxDropped: n.RxDropped,
				TxBytes: n.TxBytes, TxPackets: n.TxPackets, TxErrors: n.TxErrors, TxDropped: n.TxDropped,
			}
		}
	}
	return st
}

func blkioEntries(in []runtime.IOEntry) []container.BlkioStatEntry {
	if in == nil {
		return nil
	}
	out := make([]container.BlkioStatEntry, len(in))
	for i, e := range in {
		out[i] = container.BlkioStatEntry{Major: e.Major, Minor: e.Minor, Op: e.Op, Value: e.Value}
	}
	return out
}

// clockTicks is USER_HZ, the unit of /proc/stat.
const clockTicks = 100

// capLimit reports "no limit" as the machine's memory, as Docker does.
func capLimit(l uint64) uint64 {
	if m := machineMemory(); m > 0 && (l == 0 || l > m) {
		return m
	}
	return l
}

var machineMemory = sync.OnceValue(func() uint64 {
	kv := readKV("/proc/meminfo")
	return kv["MemTotal:"] * 1024
})

// sysCPU caches /proc/stat briefly: every stream samples it each second.
var sysCPU struct {
	sync.Mutex
	at    time.Time
	total uint64
	cpus  uint32
	buf   []byte
}

// systemCPU is the host's total CPU time in ns and its online CPU count,
// from /proc/stat (read at most every 50 ms).
func systemCPU() (uint64, uint32) {
	sysCPU.Lock()
	defer sysCPU.Unlock()
	if time.Since(sysCPU.at) < 50*time.Millisecond {
		return sysCPU.total, sysCPU.cpus
	}
	if sysCPU.buf == nil {
		sysCPU.buf = make([]byte, 64<<10)
	}
	b := cgstats.ReadInto("/proc/stat", &sysCPU.buf)
	if b == nil {
		return 0, 0
	}
	sysCPU.total, sysCPU.cpus = parseProcStat(b)
	sysCPU.at = time.Now()
	return sysCPU.total, sysCPU.cpus
}

func parseProcStat(b []byte) (uint64, uint32) {
	var total uint64
	var cpus uint32
	for _, line := range bytes.Split(b, []byte("\n")) {
		f := strings.Fields(string(line))
		if len(f) == 0 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		if f[0] != "cpu" {
			cpus++
			continue
		}
		// user nice system idle iowait irq softirq steal
		for i := 1; i < len(f) && i <= 8; i++ {
			n, _ := strconv.ParseUint(f[i], 10, 64)
			total += n
		}
	}
	return total * (1e9 / clockTicks), cpus
}

// readKV reads "key value" lines.
func readKV(p string) map[string]uint64 {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil
	}
	return cgstats.ParseKV(b)
}
