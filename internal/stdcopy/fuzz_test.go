package stdcopy

import (
	"bytes"
	"io"
	"runtime"
	"testing"
)

// FuzzReadFrame reads frames from arbitrary bytes: no panic, payloads
// within the input, and a header alone never allocates its length.
func FuzzReadFrame(f *testing.F) {
	var b bytes.Buffer
	WriteFrame(&b, Stdout, []byte("hello\n"))
	WriteFrame(&b, Stderr, nil)
	f.Add(b.Bytes())
	f.Add([]byte{1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 'x'})
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 3, 'a', 'b'})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		buf := make([]byte, 0, 16)
		total := 0
		for {
			_, p, err := ReadFrame(r, buf)
			if err != nil {
				if err != io.EOF && err != io.ErrUnexpectedEOF {
					t.Fatalf("error %v", err)
				}
				break
			}
			total += HeaderLen + len(p)
			if total > len(data) {
				t.Fatalf("read %d bytes of frames from %d", total, len(data))
			}
			if cap(p) > 16 && cap(p) > 2*len(data)+(1<<20) {
				t.Fatalf("payload buffer of %d for %d bytes of input", cap(p), len(data))
			}
		}
	})
}

// A frame header claiming 1 GiB over a stream that ends after 10 bytes
// allocates about what arrived, not the claim (the shim's peer, or a
// damaged stream, cannot make its reader take memory it never sends).
func TestReadFrameHeaderDoesNotAllocateItsClaim(t *testing.T) {
	data := append([]byte{1, 0, 0, 0, 0x40, 0, 0, 0}, make([]byte, 10)...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, err := ReadFrame(bytes.NewReader(data), nil)
	runtime.ReadMemStats(&after)
	if err != io.ErrUnexpectedEOF {
		t.Fatalf("err %v, want unexpected EOF", err)
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 8<<20 {
		t.Fatalf("reading a cut frame allocated %d bytes", d)
	}
}
