// Package cgstats samples a task's resource usage from its cgroups, on
// cgroup v1 and v2, into runtime.Stats: what a runtime.Task's Stats
// reads (issue 8 item 5), so that the container service reads none of
// it itself.
package cgstats

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berth/berth/runtime"
)

// Reader samples one task's cgroups. It keeps what a stream needs between
// samples: the files' directories and a read buffer. It is not safe for
// concurrent use.
type Reader struct {
	v2    bool
	dirs  map[string]string // controller → cgroup dir; v2: "" only
	blkio string            // v1 blkio file prefix that has data
	buf   []byte
}

// NewReader reads the cgroups named in paths, controller → directory (as
// runc's state.json has them; on cgroup v2 the one directory under "").
func NewReader(paths map[string]string, v2 bool) *Reader {
	return &Reader{v2: v2, dirs: paths, buf: make([]byte, 16<<10)}
}

// RuncPaths are the cgroup directories runc recorded for container id in
// its state directory root (state.json's cgroup_paths).
func RuncPaths(root, id string) (map[string]string, error) {
	b, err := os.ReadFile(filepath.Join(root, id, "state.json"))
	if err != nil {
		return nil, err
	}
	var st struct {
		CgroupPaths map[string]string `json:"cgroup_paths"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, err
	}
	return st.CgroupPaths, nil
}

// Sample reads the cgroups into st (Read is set to now) and, when pid is
// not 0, the network counters of pid's namespace.
func (r *Reader) Sample(st *runtime.Stats, pid int) {
	st.Read = time.Now().UTC()
	if r.v2 {
		r.sampleV2(st)
	} else {
		r.sampleV1(st)
	}
	if pid > 0 {
		st.Networks = NetDev(pid)
	}
}

// file is the content of a cgroup file (valid until the next call).
func (r *Reader) file(ctl, name string) []byte {
	if r.v2 {
		ctl = ""
	}
	return ReadInto(filepath.Join(r.dirs[ctl], name), &r.buf)
}

// ReadInto reads a small file into *buf (grown if needed); nil on error.
func ReadInto(p string, buf *[]byte) []byte {
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

// clockTicks is USER_HZ, the unit of cpuacct.stat.
const clockTicks = 100

func (r *Reader) sampleV1(st *runtime.Stats) {
	st.CPU.Total = ParseUint(r.file("cpuacct", "cpuacct.usage"))
	for _, f := range strings.Fields(string(r.file("cpuacct", "cpuacct.usage_percpu"))) {
		n, _ := strconv.ParseUint(f, 10, 64)
		st.CPU.PerCPU = append(st.CPU.PerCPU, n)
	}
	kv := ParseKV(r.file("cpuacct", "cpuacct.stat"))
	st.CPU.User = kv["user"] * (1e9 / clockTicks)
	st.CPU.Kernel = kv["system"] * (1e9 / clockTicks)
	kv = ParseKV(r.file("cpu", "cpu.stat"))
	st.CPU.Periods, st.CPU.ThrottledPeriods, st.CPU.ThrottledTime = kv["nr_periods"], kv["nr_throttled"], kv["throttled_time"]

	st.Memory.Usage = ParseUint(r.file("memory", "memory.usage_in_bytes"))
	st.Memory.MaxUsage = ParseUint(r.file("memory", "memory.max_usage_in_bytes"))
	st.Memory.Failcnt = ParseUint(r.file("memory", "memory.failcnt"))
	st.Memory.Limit = ParseUint(r.file("memory", "memory.limit_in_bytes"))
	st.Memory.Stat = ParseKV(r.file("memory", "memory.stat"))

	st.Pids.Current = ParseUint(r.file("pids", "pids.current"))
	st.Pids.Limit = ParseUint(r.file("pids", "pids.max")) // "max" reads as 0

	if r.blkio == "" {
		// The first of CFQ/BFQ/throttle that has data, as runc reads them.
		r.blkio = "blkio.throttle."
		for _, pre := range []string{"blkio.bfq.", "blkio."} {
			if len(ParseBlkioV1(r.file("blkio", pre+"io_service_bytes_recursive"))) > 0 {
				r.blkio = pre
				break
			}
		}
	}
	st.IO.Bytes = ParseBlkioV1(r.file("blkio", r.blkio+"io_service_bytes_recursive"))
	st.IO.Ops = ParseBlkioV1(r.file("blkio", r.blkio+"io_serviced_recursive"))
}

func (r *Reader) sampleV2(st *runtime.Stats) {
	kv := ParseKV(r.file("", "cpu.stat"))
	st.CPU.Total = kv["usage_usec"] * 1000
	st.CPU.User = kv["user_usec"] * 1000
	st.CPU.Kernel = kv["system_usec"] * 1000
	st.CPU.Periods, st.CPU.ThrottledPeriods, st.CPU.ThrottledTime = kv["nr_periods"], kv["nr_throttled"], kv["throttled_usec"]*1000

	st.Memory.Usage = ParseUint(r.file("", "memory.current"))
	st.Memory.Limit = ParseUint(r.file("", "memory.max")) // "max" reads as 0
	st.Memory.Stat = ParseKV(r.file("", "memory.stat"))

	st.Pids.Current = ParseUint(r.file("", "pids.current"))
	st.Pids.Limit = ParseUint(r.file("", "pids.max"))

	st.IO.Bytes, st.IO.Ops = ParseIOStatV2(r.file("", "io.stat"))
}

// NetDev reads the network counters of pid's namespace, loopback left out.
func NetDev(pid int) map[string]runtime.NetworkStats {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "net", "dev"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var out map[string]runtime.NetworkStats
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
			out = map[string]runtime.NetworkStats{}
		}
		out[name] = runtime.NetworkStats{
			RxBytes: n(0), RxPackets: n(1), RxErrors: n(2), RxDropped: n(3),
			TxBytes: n(8), TxPackets: n(9), TxErrors: n(10), TxDropped: n(11),
		}
	}
	return out
}

// ParseUint reads a one-number file's content; "max" and junk read as 0.
func ParseUint(b []byte) uint64 {
	n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// ParseKV reads "key value" lines; nil for nil.
func ParseKV(b []byte) map[string]uint64 {
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

// ParseBlkioV1 reads "MAJ:MIN Op value" lines (the Total line left out).
func ParseBlkioV1(b []byte) []runtime.IOEntry {
	var out []runtime.IOEntry
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		maj, min, ok := strings.Cut(f[0], ":")
		if !ok {
			continue
		}
		e := runtime.IOEntry{Op: f[1]}
		e.Major, _ = strconv.ParseUint(maj, 10, 64)
		e.Minor, _ = strconv.ParseUint(min, 10, 64)
		e.Value, _ = strconv.ParseUint(f[2], 10, 64)
		out = append(out, e)
	}
	return out
}

// ParseIOStatV2 reads io.stat ("MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=..")
// into bytes and ops entries, "read" and "write" (Docker's v2 names).
func ParseIOStatV2(b []byte) (bytesOut, ops []runtime.IOEntry) {
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
			e := runtime.IOEntry{Major: mj, Minor: mn, Value: n}
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
