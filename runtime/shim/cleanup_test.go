package shim

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth/berth/container/logger"
)

// The shim removes runc's state and the container's cgroups itself after
// the exit, as `runc delete` would, without running runc for it.
func TestShimRemovesRuncStateItself(t *testing.T) {
	dir := bundle(t, []string{"cat"}, false)
	runc, _ := exec.LookPath("runc")
	// A runtime that logs how it is called, then is runc.
	calls := filepath.Join(dir, "calls")
	wrapper := filepath.Join(dir, "runtime.sh")
	os.WriteFile(wrapper, []byte("#!/bin/sh\necho \"$*\" >> "+calls+"\nexec "+runc+" \"$@\"\n"), 0o755)
	shimBin := buildShim(t)
	id := "cleanuptest-" + filepath.Base(dir)
	c, err := Spawn(context.Background(), shimBin, Options{
		ID: id, Bundle: dir, StateDir: filepath.Join(dir, "state"), Runtime: wrapper,
		RuntimeRoot: filepath.Join(dir, "runc"), LogMaxFiles: 1, OpenStdin: true, StdinOnce: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := c.Attach(ctx, true, true, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var st struct {
		CgroupPaths map[string]string `json:"cgroup_paths"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "runc", id, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &st); err != nil || len(st.CgroupPaths) == 0 {
		t.Fatalf("runc state: %v, cgroups %v", err, st.CgroupPaths)
	}
	for _, p := range st.CgroupPaths {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("cgroup %s of the running container: %v", p, err)
		}
	}
	a.CloseWrite() // cat exits
	if ex, err := c.Wait(ctx); err != nil || ex.ExitCode != 0 {
		t.Fatalf("wait: %+v %v", ex, err)
	}
	if err := WaitGone(c.StateDir, id, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "runc", id)); !os.IsNotExist(err) {
		t.Errorf("runc state dir left (%v)", err)
	}
	for _, p := range st.CgroupPaths {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("cgroup %s left (%v)", p, err)
		}
	}
	log, _ := os.ReadFile(calls)
	if strings.Contains(string(log), " delete ") {
		t.Errorf("the shim ran runc delete:\n%s", log)
	}
	if !strings.Contains(string(log), " run ") {
		t.Errorf("runtime calls %q: no run (is the wrapper used?)", log)
	}
}

// A container that exits at once still gets its start answered: the shim
// does not finish (and, as a process, exit) before every answer is
// written. (It used to, now and then, once its clean-up no longer waited
// for a runc process.) The server runs in this process; a hook holds the
// start's answer back while the container exits.
func TestStartAnsweredBeforeShimEnds(t *testing.T) {
	dir := bundle(t, []string{"true"}, false)
	s, err := NewServer(Options{
		ID: "quickexit-" + filepath.Base(dir), Bundle: dir, StateDir: filepath.Join(dir, "state"),
		Runtime: "runc", RuntimeRoot: filepath.Join(dir, "runc"), LogMaxFiles: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []string
	note := func(e string) { mu.Lock(); events = append(events, e); mu.Unlock() }
	testHookBeforeStartReply = func() { time.Sleep(300 * time.Millisecond); note("answering") }
	defer func() { testHookBeforeStartReply = nil }()
	served := make(chan struct{})
	go func() { s.Serve(nil); note("shim done"); close(served) }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pid, err := Client{StateDir: filepath.Join(dir, "state")}.Start(ctx)
	if err != nil || pid <= 0 {
		t.Fatalf("start = %d, %v", pid, err)
	}
	<-served
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 2 || events[0] != "answering" {
		t.Fatalf("events %v: the shim was done before it answered the start", events)
	}
}

// An attached client that reads slowly still gets all of the output of a
// container that has exited: the shim ends (as a process: exits) only once
// the stream has written everything.
func TestAttachDrainedBeforeShimEnds(t *testing.T) {
	dir := bundle(t, []string{"cat", "/bin/busybox"}, false)
	bb, err := os.Stat(filepath.Join(dir, "rootfs", "bin", "busybox"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(Options{
		ID: "drain-" + filepath.Base(dir), Bundle: dir, StateDir: filepath.Join(dir, "state"),
		Runtime: "runc", RuntimeRoot: filepath.Join(dir, "runc"), LogMaxFiles: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []string
	note := func(e string) { mu.Lock(); events = append(events, e); mu.Unlock() }
	testHookAttachEnded = func() { note("stream written") }
	defer func() { testHookAttachEnded = nil }()
	served := make(chan struct{})
	go func() { s.Serve(nil); note("shim done"); close(served) }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := Client{StateDir: filepath.Join(dir, "state")}
	a, err := cl.Attach(ctx, false, true, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var got int64
	buf := make([]byte, 64<<10)
	for {
		_, data, err := a.ReadFrame(buf)
		if err != nil {
			break
		}
		got += int64(len(data))
		time.Sleep(2 * time.Millisecond) // a slow reader
	}
	<-served
	if got != bb.Size() {
		t.Errorf("attach got %d bytes, want %d", got, bb.Size())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 2 || events[0] != "stream written" {
		t.Fatalf("events %v: the shim was done before its attach stream had written everything", events)
	}
}

// A client that reads nothing for a while and then reads slowly gets every
// line of a chatty container (issue 13 item 7): the shim holds the container
// back (as dockerd does) rather than dropping the client; the log has all
// of it too.
func TestAttachSlowReaderGetsAll(t *testing.T) {
	const n = 40000
	dir := bundle(t, []string{"sh", "-c", fmt.Sprintf(`i=0; while [ $i -lt %d ]; do echo "%090d $i"; i=$((i+1)); done; echo end >&2`, n, 0)}, false)
	c := spawn(t, dir, false, false)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, err := c.Attach(ctx, false, true, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the client reads nothing yet
	got := map[byte]*strings.Builder{StreamStdout: {}, StreamStderr: {}}
	buf := make([]byte, 64<<10)
	for i := 0; ; i++ {
		stream, data, err := a.ReadFrame(buf)
		if err != nil {
			break
		}
		got[stream].Write(data)
		if i%64 == 0 {
			time.Sleep(5 * time.Millisecond) // a slow reader
		}
	}
	lines := strings.Split(strings.TrimSuffix(got[StreamStdout].String(), "\n"), "\n")
	for i, l := range lines {
		if want := fmt.Sprintf("%090d %d", 0, i); l != want {
			t.Fatalf("line %d is %q, want %q", i, l, want)
		}
	}
	if len(lines) != n || got[StreamStderr].String() != "end\n" {
		t.Fatalf("attach got %d of %d lines, stderr %q", len(lines), n, got[StreamStderr].String())
	}
	st, err := c.Wait(ctx)
	if err != nil || st.ExitCode != 0 {
		t.Fatalf("wait = %+v, %v", st, err)
	}
	logged := 0
	logger.Read(ctx, filepath.Join(dir, "ctr-json.log"), 1, logger.ReadOptions{Tail: -1}, func(e logger.Entry) error {
		if e.Stream == "stdout" {
			logged++
		}
		return nil
	})
	if logged != n {
		t.Fatalf("log holds %d of %d lines", logged, n)
	}
}
