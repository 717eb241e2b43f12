package container

// docker stats: resource usage from the container's cgroups, in the shape
// of Docker's StatsResponse, on cgroup v1 and v2.

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"

	rtspec "github.com/berth/berth/runtime/spec"
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
	r := s.newStatsReader(c.ID)
	sample := func() *container.StatsResponse {
		st := s.sampleWith(c, r)
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

// statsReader holds what a stream needs between samples: the cgroup
// files' paths, worked out once, and a read buffer.
type statsReader struct {
	v2    bool
	dirs  map[string]string // controller → cgroup dir ("" on v2)
	blkio string            // v1 blkio file prefix that has data
	buf   []byte
}

func (s *Service) newStatsReader(id string) *statsReader {
	r := &statsReader{v2: rtspec.DetectHost().CgroupV2, dirs: map[string]string{}, buf: make([]byte, 16<<10)}
	if r.v2 {
		r.dirs[""] = s.cgroupDir(id, "")
		return r
	}
	for _, ctl := range []string{"cpu", "cpuacct", "memory", "pids", "blkio"} {
		r.dirs[ctl] = s.cgroupDir(id, ctl)
	}
	return r
}

// file is the content of a cgroup file (valid until the next call).
func (r *statsReader) file(ctl, name string) []byte {
	return readInto(filepath.Join(r.dirs[ctl], name), &r.buf)
}

// readInto reads a small file into *buf (grown if needed); nil on error.
func readInto(p string, buf *[]byte) []byte {
	f, err := os.Open(p)
	if err != nil {
		return nil
	}
	defer f.Close()
	n := 0
	for {
		m, err := f.Read((*buf)[n:])
		n += m
		if err != nil || m == 0 {
			return (*buf)[:n]
		}
		if n == len(*buf) {
			nb := make([]byte, 2*len(*buf))
			copy(nb, *buf)
			*buf = nb
		}
	}
}

func (s *Service) sampleWith(c *Container, r *statsReader) *container.StatsResponse {
	c.mu.Lock()
	running := c.State.Running && !c.State.Restarting
	pid := c.State.Pid
	hostNet := c.HostConfig != nil && (c.HostConfig.NetworkMode.IsHost() || c.HostConfig.NetworkMode.IsContainer())
	st := &container.StatsResponse{ID: c.ID, Name: c.Name}
	c.mu.Unlock()
	if !running {
		return st
	}
	st.OSType = "linux"
	st.Read = time.Now().UTC()
	if r.v2 {
		r.sampleV2(st)
	} else {
		r.sampleV1(st)
	}
	st.CPUStats.SystemUsage, st.CPUStats.OnlineCPUs = systemCPU()
	if !hostNet && pid > 0 {
		st.Networks = netDev(pid)
	}
	return st
}

// clockTicks is USER_HZ, the unit of cpuacct.stat and /proc/stat.
const clockTicks = 100

func (r *statsReader) sampleV1(st *container.StatsResponse) {
	st.CPUStats.CPUUsage.TotalUsage = parseUint(r.file("cpuacct", "cpuacct.usage"))
	for _, f := range strings.Fields(string(r.file("cpuacct", "cpuacct.usage_percpu"))) {
		n, _ := strconv.ParseUint(f, 10, 64)
		st.CPUStats.CPUUsage.PercpuUsage = append(st.CPUStats.CPUUsage.PercpuUsage, n)
	}
	kv := parseKV(r.file("cpuacct", "cpuacct.stat"))
	st.CPUStats.CPUUsage.UsageInUsermode = kv["user"] * (1e9 / clockTicks)
	st.CPUStats.CPUUsage.UsageInKernelmode = kv["system"] * (1e9 / clockTicks)
	kv = parseKV(r.file("cpu", "cpu.stat"))
	st.CPUStats.ThrottlingData = container.ThrottlingData{Periods: kv["nr_periods"], ThrottledPeriods: kv["nr_throttled"], ThrottledTime: kv["throttled_time"]}

	st.MemoryStats.Usage = parseUint(r.file("memory", "memory.usage_in_bytes"))
	st.MemoryStats.MaxUsage = parseUint(r.file("memory", "memory.max_usage_in_bytes"))
	st.MemoryStats.Failcnt = parseUint(r.file("memory", "memory.failcnt"))
	st.MemoryStats.Limit = capLimit(parseUint(r.file("memory", "memory.limit_in_bytes")))
	st.MemoryStats.Stats = parseKV(r.file("memory", "memory.stat"))

	st.PidsStats.Current = parseUint(r.file("pids", "pids.current"))
	st.PidsStats.Limit = parseUint(r.file("pids", "pids.max")) // "max" reads as 0

	if r.blkio == "" {
		// The first of CFQ/BFQ/throttle that has data, as runc reads them.
		r.blkio = "blkio.throttle."
		for _, pre := range []string{"blkio.bfq.", "blkio."} {
			if len(parseBlkioV1(r.file("blkio", pre+"io_service_bytes_recursive"))) > 0 {
				r.blkio = pre
				break
			}
		}
	}
	st.BlkioStats.IoServiceBytesRecursive = parseBlkioV1(r.file("blkio", r.blkio+"io_service_bytes_recursive"))
	st.BlkioStats.IoServicedRecursive = parseBlkioV1(r.file("blkio", r.blkio+"io_serviced_recursive"))
}

func (r *statsReader) sampleV2(st *container.StatsResponse) {
	kv := parseKV(r.file("", "cpu.stat"))
	st.CPUStats.CPUUsage.TotalUsage = kv["usage_usec"] * 1000
	st.CPUStats.CPUUsage.UsageInUsermode = kv["user_usec"] * 1000
	st.CPUStats.CPUUsage.UsageInKernelmode = kv["system_usec"] * 1000
	st.CPUStats.ThrottlingData = container.ThrottlingData{Periods: kv["nr_periods"], ThrottledPeriods: kv["nr_throttled"], ThrottledTime: kv["throttled_usec"] * 1000}

	st.MemoryStats.Usage = parseUint(r.file("", "memory.current"))
	st.MemoryStats.Limit = capLimit(parseUint(r.file("", "memory.max")))
	st.MemoryStats.Stats = parseKV(r.file("", "memory.stat"))

	st.PidsStats.Current = parseUint(r.file("", "pids.current"))
	st.PidsStats.Limit = parseUint(r.file("", "pids.max"))

	st.BlkioStats.IoServiceBytesRecursive, st.BlkioStats.IoServicedRecursive = parseIOStatV2(r.file("", "io.stat"))
}

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
	b := readInto("/proc/stat", &sysCPU.buf)
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

// netDev reads the network counters of pid's namespace, loopback left out.
func netDev(pid int) map[string]container.NetworkStats {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "net", "dev"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var out map[string]container.NetworkStats
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		name = strings.TrimSpace(name)
		if !ok || name == "lo" || strings.Contains(name, "|") {
			continue
		}
		v := strings.Fields(rest)
		if len(v) < 16 {
			continue
		}
		n := func(i int) uint64 { x, _ := strconv.ParseUint(v[i], 10, 64); return x }
		if out == nil {
			out = map[string]container.NetworkStats{}
		}
		out[name] = container.NetworkStats{
			RxBytes: n(0), RxPackets: n(1), RxErrors: n(2), RxDropped: n(3),
			TxBytes: n(8), TxPackets: n(9), TxErrors: n(10), TxDropped: n(11),
		}
	}
	return out
}

func readString(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// readUint reads a one-number file; "max" and errors read as 0.
func readUint(p string) uint64 {
	n, _ := strconv.ParseUint(readString(p), 10, 64)
	return n
}

func parseUint(b []byte) uint64 {
	n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// readKV reads "key value" lines.
func readKV(p string) map[string]uint64 {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil
	}
	return parseKV(b)
}

func parseKV(b []byte) map[string]uint64 {
	if b == nil {
		return nil
	}
	out := map[string]uint64{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			continue
		}
		out[f[0]] = n
	}
	return out
}

// readBlkioV1 reads "MAJ:MIN Op value" lines (the Total line left out).
func readBlkioV1(p string) []container.BlkioStatEntry {
	b, _ := os.ReadFile(p)
	return parseBlkioV1(b)
}

func parseBlkioV1(b []byte) []container.BlkioStatEntry {
	var out []container.BlkioStatEntry
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		maj, min, ok := strings.Cut(f[0], ":")
		if !ok {
			continue
		}
		e := container.BlkioStatEntry{Op: f[1]}
		e.Major, _ = strconv.ParseUint(maj, 10, 64)
		e.Minor, _ = strconv.ParseUint(min, 10, 64)
		e.Value, _ = strconv.ParseUint(f[2], 10, 64)
		out = append(out, e)
	}
	return out
}

// readIOStatV2 reads io.stat ("MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=..")
// into Docker's v2 entries: bytes and ops, "read" and "write".
func readIOStatV2(p string) (bytesOut, ops []container.BlkioStatEntry) {
	b, _ := os.ReadFile(p)
	return parseIOStatV2(b)
}

func parseIOStatV2(b []byte) (bytesOut, ops []container.BlkioStatEntry) {
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		maj, min, ok := strings.Cut(f[0], ":")
		if !ok {
			continue
		}
		mj, _ := strconv.ParseUint(maj, 10, 64)
		mn, _ := strconv.ParseUint(min, 10, 64)
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			n, _ := strconv.ParseUint(v, 10, 64)
			e := container.BlkioStatEntry{Major: mj, Minor: mn, Value: n}
			switch k {
			case "rbytes":
				e.Op = "read"
				bytesOut = append(bytesOut, e)
			case "wbytes":
				e.Op = "write"
				bytesOut = append(bytesOut, e)
			case "rios":
				e.Op = "read"
				ops = append(ops, e)
			case "wios":
				e.Op = "write"
				ops = append(ops, e)
			}
		}
	}
	return bytesOut, ops
}
