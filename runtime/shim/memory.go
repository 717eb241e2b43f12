package shim

import (
	"bufio"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// A shim runs beside every container and mostly sleeps, so what it keeps
// resident counts per container. Start-up touches most of the binary and a
// garbage collection much of the rest; neither is needed again for a
// while. trimmer gives both back after the container has started and after
// each collection (the Go runtime forces one every two minutes), at most
// once per trimInterval.
type trimmer struct {
	mu   sync.Mutex
	last time.Time
}

const trimInterval = time.Minute

// trimAfterCollections arms a hook that runs after every garbage
// collection for the life of the process.
func (t *trimmer) trimAfterCollections() {
	sentinel := new([16]byte)
	runtime.SetFinalizer(sentinel, func(*[16]byte) {
		t.trim(false)
		t.trimAfterCollections()
	})
}

// trim returns freed heap memory to the kernel and releases the binary's
// pages, unless that was done less than trimInterval ago (force skips
// the check).
func (t *trimmer) trim(force bool) {
	t.mu.Lock()
	if !force && time.Since(t.last) < trimInterval {
		t.mu.Unlock()
		return
	}
	t.last = time.Now()
	t.mu.Unlock()
	// This collects once more (the hook then finds the interval not yet
	// passed) and hands unused heap pages back.
	debug.FreeOSMemory()
	releaseBinaryPages()
}

// releaseBinaryPages drops this process's mappings of its own executable's
// read-only pages (code and read-only data) from its page tables. They stay
// in the page cache, shared by every shim, and fault back in (a minor
// fault, no I/O) when next used. Writable mappings are left alone.
func releaseBinaryPages() {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 00400000-0062c000 r-xp 00000000 fe:01 1234  /usr/bin/berth-shim
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != exe || strings.Contains(fields[1], "w") {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		// unix.Madvise wants a []byte; the range is not Go memory.
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_DONTNEED)
	}
}
