package shim

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// exeRss sums the resident kB of this process's read-only mappings of its
// own executable.
func exeRss(t *testing.T) int {
	t.Helper()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	total, in := 0, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			in = len(fields) >= 6 && fields[5] == exe && !strings.Contains(fields[1], "w")
			continue
		}
		if in && len(fields) >= 2 && fields[0] == "Rss:" {
			n, _ := strconv.Atoi(fields[1])
			total += n
		}
	}
	return total
}

func TestReleaseBinaryPages(t *testing.T) {
	before := exeRss(t)
	releaseBinaryPages()
	after := exeRss(t)
	t.Logf("resident read-only pages of the test binary: %d kB before, %d kB after", before, after)
	if before < 512 {
		t.Skipf("only %d kB resident to begin with", before)
	}
	if after > before*3/4 {
		t.Errorf("resident read-only pages %d kB → %d kB: not released", before, after)
	}
}

// The trim runs after garbage collections, at most once per interval.
func TestTrimAfterCollections(t *testing.T) {
	var tr trimmer
	tr.trimAfterCollections()
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		tr.mu.Lock()
		last := tr.last
		tr.mu.Unlock()
		if !last.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no trim after collections")
		}
		time.Sleep(10 * time.Millisecond)
	}
	tr.mu.Lock()
	first := tr.last
	tr.mu.Unlock()
	runtime.GC()
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	tr.mu.Lock()
	again := tr.last
	tr.mu.Unlock()
	if !again.Equal(first) {
		t.Errorf("trimmed again %v after the first: the interval is not kept", again.Sub(first))
	}
}
