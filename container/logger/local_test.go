package logger

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/plugins/logdriver"
)

// readFrames decodes a local-format file the way dockerd's reader does:
// [len][LogEntry][len], lengths big-endian and equal.
func readFrames(t *testing.T, path string) []logdriver.LogEntry {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []logdriver.LogEntry
	for len(b) > 0 {
		if len(b) < 8 {
			t.Fatalf("%d stray bytes at the end", len(b))
		}
		n := int(binary.BigEndian.Uint32(b))
		if len(b) < 8+n || int(binary.BigEndian.Uint32(b[4+n:])) != n {
			t.Fatalf("frame of %d bytes: header and footer disagree or file cut", n)
		}
		var e logdriver.LogEntry
		if err := e.Unmarshal(b[4 : 4+n]); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
		b = b[8+n:]
	}
	return out
}

// TestLocalFormatFrames: the local writer lays entries out as dockerd's
// local driver: lines without their newline, cut lines as pieces with
// one partial ID, ordinals from 1, the piece that ends the line Last and
// all pieces at the first one's time; a last line without a newline is a
// piece that is not Last.
func TestLocalFormatFrames(t *testing.T) {
	path := filepath.Join(t.TempDir(), "container.log")
	w, err := NewWriter(path, 0, 1, WithFormat(FormatLocal))
	if err != nil {
		t.Fatal(err)
	}
	s := &LineSplitter{Stream: "stdout", Emit: func(e Entry) {
		if err := w.Write(e); err != nil {
			t.Fatal(err)
		}
	}}
	s.Write([]byte("hello\n"))
	s.Write([]byte(strings.Repeat("x", maxLine)))
	time.Sleep(2 * time.Millisecond) // the pieces keep the first one's time anyway
	s.Write([]byte(strings.Repeat("y", maxLine+5) + "\nnext\ntail"))
	s.Flush()
	w.Close()
	got := readFrames(t, path)
	type want struct {
		line    string
		partial bool
		ordinal int32
		last    bool
	}
	wants := []want{
		{"hello", false, 0, false},
		{strings.Repeat("x", maxLine), true, 1, false},
		{strings.Repeat("y", maxLine), true, 2, false},
		{"yyyyy", true, 3, true},
		{"next", false, 0, false},
		{"tail", true, 1, false},
	}
	if len(got) != len(wants) {
		t.Fatalf("%d entries, want %d", len(got), len(wants))
	}
	for i, wt := range wants {
		g := got[i]
		if string(g.Line) != wt.line || g.Source != "stdout" || g.Partial != wt.partial ||
			g.GetPartialLogMetadata().GetOrdinal() != wt.ordinal || g.GetPartialLogMetadata().GetLast() != wt.last {
			t.Errorf("entry %d: line %.20q source %q partial %v md %+v, want %+v", i, g.Line, g.Source, g.Partial, g.PartialLogMetadata, wt)
		}
		if g.TimeNano == 0 {
			t.Errorf("entry %d: no time", i)
		}
	}
	id := got[1].GetPartialLogMetadata().GetId()
	if len(id) != 64 || got[2].GetPartialLogMetadata().GetId() != id || got[3].GetPartialLogMetadata().GetId() != id {
		t.Errorf("pieces of one line have IDs %q %q %q", id, got[2].GetPartialLogMetadata().GetId(), got[3].GetPartialLogMetadata().GetId())
	}
	if got[5].GetPartialLogMetadata().GetId() == id || got[5].GetPartialLogMetadata().GetId() == "" {
		t.Errorf("the tail piece shares the cut line's ID or has none")
	}
	if got[1].TimeNano != got[2].TimeNano || got[2].TimeNano != got[3].TimeNano {
		t.Errorf("pieces at different times: %d %d %d", got[1].TimeNano, got[2].TimeNano, got[3].TimeNano)
	}

	// Read back as docker logs: whole lines get their newline back, pieces
	// concatenate to the line.
	var text strings.Builder
	if err := Read(context.Background(), path, 1, ReadOptions{Tail: -1, Format: FormatLocal}, func(e Entry) error {
		text.WriteString(e.Log)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	wantText := "hello\n" + strings.Repeat("x", maxLine) + strings.Repeat("y", maxLine+5) + "\nnext\ntail"
	if text.String() != wantText {
		t.Errorf("read back %d bytes, want %d", text.Len(), len(wantText))
	}
}

// TestLocalReadsDockerdFrames: a file framed as dockerd frames it (each
// LogEntry marshalled by moby's own type) reads back, stderr and stdout,
// times, tail and since.
func TestLocalReadsDockerdFrames(t *testing.T) {
	path := filepath.Join(t.TempDir(), "container.log")
	base := time.Date(2026, 12, 5, 9, 0, 0, 123456789, time.UTC)
	var b []byte
	for i := 0; i < 10; i++ {
		src := "stdout"
		if i%2 == 1 {
			src = "stderr"
		}
		e := logdriver.LogEntry{Source: src, TimeNano: base.Add(time.Duration(i) * time.Second).UnixNano(), Line: []byte(fmt.Sprintf("line %d", i))}
		p, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
	}
	// An entry still being written: only its header and half its body.
	b = append(b, 0, 0, 0, 40, 1, 2, 3)
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
	var got []Entry
	if err := Read(context.Background(), path, 1, ReadOptions{Tail: 3, Format: FormatLocal}, func(e Entry) error {
		got = append(got, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Log != "line 7\n" || got[0].Stream != "stderr" || got[1].Stream != "stdout" ||
		!got[2].Time.Equal(base.Add(9*time.Second)) {
		t.Fatalf("tail 3: %+v", got)
	}
	got = nil
	if err := Read(context.Background(), path, 1, ReadOptions{Tail: -1, Since: base.Add(8 * time.Second), Format: FormatLocal}, func(e Entry) error {
		got = append(got, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Log != "line 8\n" {
		t.Fatalf("since: %+v", got)
	}
}

// TestLocalDamagedFrame: a frame whose footer disagrees with its header
// ends the read with an error, after what came before it.
func TestLocalDamagedFrame(t *testing.T) {
	path := filepath.Join(t.TempDir(), "container.log")
	w, err := NewWriter(path, 0, 1, WithFormat(FormatLocal))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(Entry{Log: "good\n", Stream: "stdout", Time: time.Now()})
	w.Write(Entry{Log: "bad\n", Stream: "stdout", Time: time.Now()})
	w.Close()
	b, _ := os.ReadFile(path)
	b[len(b)-1]++ // the second frame's footer
	os.WriteFile(path, b, 0o640)
	var got []string
	err = Read(context.Background(), path, 1, ReadOptions{Tail: -1, Format: FormatLocal}, func(e Entry) error {
		got = append(got, e.Log)
		return nil
	})
	if !errors.Is(err, errLocalDamaged) || len(got) != 1 || got[0] != "good\n" {
		t.Fatalf("got %q, %v", got, err)
	}
}

// TestLocalRotateCompressFollow: local rotates and gzips as json-file
// does, and a follower sees entries written after it started.
func TestLocalRotateCompressFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "container.log")
	w, err := NewWriter(path, 300, 3, WithFormat(FormatLocal), WithCompress(true))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ {
		w.Write(Entry{Log: fmt.Sprintf("line %02d\n", i), Stream: "stdout", Time: time.Now()})
	}
	if _, err := os.Stat(path + ".1.gz"); err != nil {
		t.Fatal("no rotated gzip file:", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stop := make(chan struct{})
	got := make(chan string, 100)
	done := make(chan error, 1)
	go func() {
		done <- Read(ctx, path, 3, ReadOptions{Tail: -1, Follow: true, Stop: stop, Format: FormatLocal}, func(e Entry) error {
			got <- e.Log
			return nil
		})
	}()
	var seen []string
	for len(seen) == 0 || seen[len(seen)-1] != "line 39\n" {
		seen = append(seen, <-got)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] <= seen[i-1] {
			t.Fatalf("out of order: %q", seen)
		}
	}
	w.Write(Entry{Log: "after\n", Stream: "stdout", Time: time.Now()})
	if l := <-got; l != "after\n" {
		t.Fatalf("followed %q", l)
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	w.Close()
}
