package logger

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
