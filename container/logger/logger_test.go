package logger

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestSplitterLinesAndLongLines(t *testing.T) {
	var got []Entry
	s := &LineSplitter{Stream: "stdout", Emit: func(e Entry) { got = append(got, e) }}
	s.Write([]byte("hel"))
	s.Write([]byte("lo\nwor"))
	s.Write([]byte("ld\n"))
	s.Write([]byte(strings.Repeat("x", maxLine+10) + "\n"))
	s.Write([]byte("tail"))
	s.Flush()
	want := []string{"hello\n", "world\n", strings.Repeat("x", maxLine), "xxxxxxxxxx\n", "tail"}
	if len(got) != len(want) {
		t.Fatalf("got %d entries", len(got))
	}
	for i := range want {
		if got[i].Log != want[i] || got[i].Stream != "stdout" {
			t.Fatalf("entry %d = %q", i, got[i].Log)
		}
	}
}

func TestWriteRotateReadTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := NewWriter(path, 200, 3)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 20; i++ {
		if err := w.Write(Entry{Log: fmt.Sprintf("line %d\n", i), Stream: "stdout", Time: base.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	if _, err := os.Stat(path + ".3"); err == nil {
		t.Fatal("more files kept than max-file")
	}
	if _, err := os.Stat(path + ".2"); err != nil {
		t.Fatal("rotation did not happen")
	}
	var all []string
	Read(context.Background(), path, 3, ReadOptions{Tail: -1}, func(e Entry) error { all = append(all, e.Log); return nil })
	if len(all) == 0 || all[len(all)-1] != "line 19\n" {
		t.Fatalf("read %v", all)
	}
	for i := 1; i < len(all); i++ {
		if all[i-1] >= all[i] && len(all[i-1]) == len(all[i]) {
			t.Fatalf("out of order: %v", all)
		}
	}
	var tail []string
	Read(context.Background(), path, 3, ReadOptions{Tail: 2}, func(e Entry) error { tail = append(tail, e.Log); return nil })
	if len(tail) != 2 || tail[1] != "line 19\n" {
		t.Fatalf("tail %v", tail)
	}
	var since []string
	Read(context.Background(), path, 3, ReadOptions{Tail: -1, Since: base.Add(18 * time.Second)}, func(e Entry) error { since = append(since, e.Log); return nil })
	if len(since) != 2 {
		t.Fatalf("since %v", since)
	}
}

func TestFollowSeesNewEntriesAndStops(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, _ := NewWriter(path, 0, 1)
	w.Write(Entry{Log: "first\n", Stream: "stdout", Time: time.Now()})
	stop := make(chan struct{})
	got := make(chan string, 10)
	done := make(chan error)
	go func() {
		done <- Read(context.Background(), path, 1, ReadOptions{Tail: -1, Follow: true, Stop: stop}, func(e Entry) error { got <- e.Log; return nil })
	}()
	if l := <-got; l != "first\n" {
		t.Fatalf("got %q", l)
	}
	w.Write(Entry{Log: "second\n", Stream: "stderr", Time: time.Now()})
	if l := <-got; l != "second\n" {
		t.Fatalf("got %q", l)
	}
	w.Write(Entry{Log: "last\n", Stream: "stdout", Time: time.Now()})
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if l := <-got; l != "last\n" {
		t.Fatalf("entry written before stop lost: %q", l)
	}
}

// TestFullDiskDropsCountedAndReported (issue 13 item 10): entries that do
// not fit on a full disk are dropped whole (the file stays one JSON object
// per line), counted, and said in the log once it can be written again;
// the report hears of both moments.
func TestFullDiskDropsCountedAndReported(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	path := filepath.Join(dir, "c-json.log")
	var reports []string
	w, err := NewWriter(path, 0, 1, WithReport(func(m string) { reports = append(reports, m) }))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	now := time.Now()
	if err := w.Write(Entry{Log: "before\n", Stream: "stdout", Time: now}); err != nil {
		t.Fatal(err)
	}
	// Fill the disk.
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := f.Write(make([]byte, 1000)); err != nil {
			break
		}
	}
	f.Close()
	long := strings.Repeat("y", 3000)
	failed := 0
	for i := range 10 {
		if err := w.Write(Entry{Log: fmt.Sprintf("lost %d %s\n", i, long), Stream: "stdout", Time: now}); err != nil {
			failed++
		}
	}
	if failed == 0 || w.Dropped() != int64(failed) {
		t.Fatalf("on a full disk: %d writes failed, Dropped() = %d", failed, w.Dropped())
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(Entry{Log: "after\n", Stream: "stdout", Time: now}); err != nil {
		t.Fatalf("write after space came back: %v", err)
	}
	if w.Dropped() != 0 {
		t.Errorf("Dropped() = %d after the notice", w.Dropped())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []Entry
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		var e Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line is not JSON (a partial write left in place?): %q", clip(line))
		}
		got = append(got, e)
	}
	want := fmt.Sprintf("berth: %d log lines dropped: no space left on device\n", failed)
	if len(got) < 3 || got[0].Log != "before\n" || got[len(got)-2].Log != want || got[len(got)-2].Stream != "stderr" || got[len(got)-1].Log != "after\n" {
		var logs []string
		for _, e := range got {
			logs = append(logs, clip(e.Log))
		}
		t.Errorf("log after the disk filled and emptied: %q, want before, (lines that fit), %q, after", logs, want)
	}
	if len(reports) != 2 || !strings.Contains(reports[0], "no space left on device") || !strings.Contains(reports[1], fmt.Sprintf("after %d entries were dropped", failed)) {
		t.Errorf("reports: %q", reports)
	}
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
