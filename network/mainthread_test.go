package network

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// The process's main thread is special to Go: a goroutine that exits while
// locked to it does not end it (Linux would make the process a zombie) but
// wedges it for good. A network namespace that such a goroutine switched
// the thread to then lives as long as the process. Tests below run code on
// the main thread, as it happens in berthd whenever the main goroutine is
// blocked and the scheduler hands the main thread another goroutine.

// mainThread receives functions to run on the main thread (see TestMain).
var mainThread = make(chan func())

// The main goroutine keeps the main thread until TestMain lends it out.
func init() { runtime.LockOSThread() }

func TestMain(m *testing.M) {
	done := make(chan int, 1)
	go func() { done <- m.Run() }()
	for {
		select {
		case fn := <-mainThread:
			fn()
		case code := <-done:
			os.Exit(code)
		}
	}
}

// onMainThread runs fn on the main goroutine, unlocked from but still on
// the main thread, so that a goroutine fn starts and waits for runs on the
// main thread (the runtime hands a blocked goroutine's thread the one it
// just started). It reports whether fn started on the main thread.
func onMainThread(fn func()) bool {
	done := make(chan bool)
	mainThread <- func() {
		runtime.UnlockOSThread()
		onMain := unix.Gettid() == unix.Getpid()
		fn()
		runtime.LockOSThread()
		done <- onMain
	}
	return <-done
}

// threadNetNS lists the threads of this process that are not in network
// namespace home (an "net:[inode]" link).
func strayThreads(t *testing.T, home string) []string {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range tasks {
		ns, err := os.Readlink(filepath.Join("/proc/self/task", e.Name(), "ns/net"))
		if err != nil {
			continue // the thread ended meanwhile
		}
		if ns != home {
			who := "thread " + e.Name()
			if e.Name() == strconv.Itoa(os.Getpid()) {
				who = "the main thread " + e.Name()
			}
			out = append(out, who+" is in "+ns)
		}
	}
	return out
}

// TestNetNSThreadsGoHome: making a namespace, a spare, and entering a
// namespace (the DNS server's sockets) leave no thread of the process in
// another namespace, even when the work lands on the main thread. A
// thread left in a container's namespace keeps it, and its veth on the
// bridge, alive after the container is removed (issue 4).
func TestNetNSThreadsGoHome(t *testing.T) {
	needRoot(t)
	home, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if s := strayThreads(t, home); len(s) > 0 {
		t.Fatalf("before the test: %v", s)
	}
	var mkErr error
	onMain := onMainThread(func() {
		h, err := newNetNSHandle()
		if err != nil {
			mkErr = err
			return
		}
		h.Close()
	})
	if mkErr != nil {
		t.Fatal(mkErr)
	}
	if !onMain {
		t.Log("the main goroutine was not on the main thread: only other threads are checked")
	}
	if s := strayThreads(t, home); len(s) > 0 {
		t.Fatalf("after newNetNSHandle: %v", s)
	}

	path := filepath.Join(t.TempDir(), "ns")
	onMainThread(func() { mkErr = newNetNS(path) })
	if mkErr != nil {
		t.Fatal(mkErr)
	}
	defer removeNetNS(path)
	if s := strayThreads(t, home); len(s) > 0 {
		t.Fatalf("after newNetNS: %v", s)
	}
	onMainThread(func() { mkErr = inNetNS(path, func() error { return nil }) })
	if mkErr != nil {
		t.Fatal(mkErr)
	}
	if s := strayThreads(t, home); len(s) > 0 {
		t.Fatalf("after inNetNS: %v", s)
	}

	s := newTestService(t)
	for i := 0; i < 20; i++ {
		onMainThread(func() {
			sp, err := s.makeSpare()
			if err != nil {
				mkErr = err
				return
			}
			sp.destroy()
		})
		if mkErr != nil {
			t.Fatal(mkErr)
		}
	}
	if s := strayThreads(t, home); len(s) > 0 {
		t.Fatalf("after makeSpare: %v", s)
	}
}
