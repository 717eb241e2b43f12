package spec

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Host holds the facts about the machine that change what a spec may contain.
// DetectHost fills it once per process; tests build their own.
type Host struct {
	// CgroupV2 is true on a unified (cgroup v2 only) hierarchy. A hybrid
	// host (v1 controllers plus an empty cgroup2 mount) counts as v1, as it
	// does for runc.
	CgroupV2 bool
	// Caps is the capability bounding set of this process, as CAP_* names in
	// bit order: what a privileged container (or --cap-add ALL) gets. A
	// capability the host lacks can never be granted, so asking runc for it
	// only makes the start fail.
	Caps []string
	// NofileHard is this process's hard RLIMIT_NOFILE. No default rlimit is
	// ever set above it (raising a hard limit needs CAP_SYS_RESOURCE).
	// Zero means unknown: no default is set.
	NofileHard uint64
	// SwapLimit reports whether the kernel accounts swap per cgroup
	// (memory.memsw.* on v1, memory.swap.max on v2). Without it Docker
	// ignores --memory-swap, and so do we.
	SwapLimit bool
	// NumCPU is the number of CPUs usable for --cpus and --cpuset-cpus.
	NumCPU int
	// NoX32 is true on an x86-64 kernel that does not run x32-ABI system
	// calls (CONFIG_X86_X32_ABI off, or disabled at boot): there the
	// seccomp profile's x32 section can never match anything an
	// executable could do, and leaving it out halves the time runc spends
	// compiling the filter (see seccompFor).
	NoX32 bool
}

var detectHost = sync.OnceValue(func() *Host {
	h := &Host{NumCPU: runtime.NumCPU()}
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		h.CgroupV2 = true
	}
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err == nil {
		h.NofileHard = rl.Max
	}
	h.Caps = capsFromMask(readCapBnd())
	h.NoX32 = runtime.GOARCH == "amd64" && !x32Syscalls()
	if h.CgroupV2 {
		if b, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers"); err == nil {
			// As Docker: on v2 the memory controller brings memory.swap.max.
			h.SwapLimit = strings.Contains(" "+strings.TrimSpace(string(b))+" ", " memory ")
		}
	} else {
		_, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
		h.SwapLimit = err == nil
	}
	return h
})

// DetectHost returns the facts about this machine, detected on first use and
// cached for the life of the process. The result is shared: do not modify it.
func DetectHost() *Host { return detectHost() }

// readCapBnd returns this process's capability bounding set from
// /proc/self/status, or the default set if it cannot be read.
func readCapBnd() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return defaultCapMask
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "CapBnd:")
		if !ok {
			continue
		}
		m, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return defaultCapMask
		}
		return m
	}
	return defaultCapMask
}

// x32Syscalls reports whether the kernel serves x32-ABI system calls: it
// asks for getpid (39) with the x32 bit set, which a kernel without x32
// answers with ENOSYS.
func x32Syscalls() bool {
	const x32Bit = 0x40000000
	_, _, errno := unix.RawSyscall(x32Bit|39, 0, 0, 0)
	return errno != unix.ENOSYS
}
