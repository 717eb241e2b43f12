package stdcopy

import (
	"bytes"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	mobystdcopy "github.com/moby/moby/api/pkg/stdcopy"
)

// What WriteFrame and Mux write is what Docker's clients decode.
func TestFramesDecodeWithMobyStdCopy(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteFrame(&buf, Stdout, []byte("out1\n")); err != nil {
		t.Fatal(err)
	}
	m := NewMux(&buf)
	if _, err := m.Stream(Stderr).Write([]byte("err1\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Stream(Stdout).Write([]byte("out2\n")); err != nil {
		t.Fatal(err)
	}
	if err := WriteFrame(&buf, Stdout, nil); err != nil {
		t.Fatal(err)
	}
	wantHdr := []byte{1, 0, 0, 0, 0, 0, 0, 5}
	if !bytes.Equal(buf.Bytes()[:8], wantHdr) {
		t.Fatalf("header % x, want % x", buf.Bytes()[:8], wantHdr)
	}
	var out, errOut bytes.Buffer
	if _, err := mobystdcopy.StdCopy(&out, &errOut, &buf); err != nil {
		t.Fatal(err)
	}
	if out.String() != "out1\nout2\n" || errOut.String() != "err1\n" {
		t.Fatalf("stdout %q stderr %q", out.String(), errOut.String())
	}
}

func TestReadFrame(t *testing.T) {
	var buf bytes.Buffer
	_ = WriteFrame(&buf, Stderr, []byte(strings.Repeat("x", 100)))
	_ = WriteFrame(&buf, Stdout, []byte("y"))
	small := make([]byte, 4)
	id, data, err := ReadFrame(&buf, small)
	if err != nil || id != Stderr || string(data) != strings.Repeat("x", 100) {
		t.Fatalf("first frame: %d %q %v", id, data, err)
	}
	id, data, err = ReadFrame(&buf, small)
	if err != nil || id != Stdout || string(data) != "y" {
		t.Fatalf("second frame: %d %q %v", id, data, err)
	}
	if _, _, err := ReadFrame(&buf, small); err != io.EOF {
		t.Fatalf("at end: %v, want io.EOF", err)
	}
	// A frame cut short is an error, not a short payload.
	_ = WriteFrame(&buf, Stdout, []byte("abcdef"))
	buf.Truncate(buf.Len() - 2)
	if _, _, err := ReadFrame(&buf, nil); err != io.ErrUnexpectedEOF {
		t.Fatalf("cut frame: %v, want io.ErrUnexpectedEOF", err)
	}
}

// Concurrent writers through one Mux over a real connection never
// interleave their frames.
func TestMuxConcurrentWritersOverConn(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	m := NewMux(a)
	const n = 200
	var wg sync.WaitGroup
	for _, id := range []byte{Stdout, Stderr} {
		wg.Go(func() {
			w := m.Stream(id)
			for range n {
				if _, err := w.Write([]byte(strings.Repeat(string('a'+rune(id)), 64))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	go func() { wg.Wait(); a.Close() }()
	counts := map[byte]int{}
	buf := make([]byte, 64)
	for {
		id, data, err := ReadFrame(b, buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if string(data) != strings.Repeat(string('a'+rune(id)), 64) {
			t.Fatalf("frame of stream %d mixed: %q", id, data)
		}
		counts[id]++
	}
	if counts[Stdout] != n || counts[Stderr] != n {
		t.Fatalf("frames %v, want %d each", counts, n)
	}
}
