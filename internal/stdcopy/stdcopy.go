// Package stdcopy writes (and reads) the Engine API's multiplexed stream:
// without a TTY, attach, exec and logs carry stdout and stderr on one
// connection as frames of an 8-byte header (stream id, three zero bytes,
// big-endian payload length) and the payload. The shim's attach stream uses
// the same frames. Clients decode it with moby's
// github.com/moby/moby/api/pkg/stdcopy.StdCopy, which has no writer; this is
// berth's one writer. It imports only the standard library: the shim uses it.
package stdcopy

import (
	"encoding/binary"
	"io"
	"net"
	"slices"
	"sync"
)

// Stream ids, as in the frame header.
const (
	Stdin  byte = 0
	Stdout byte = 1
	Stderr byte = 2
)

// HeaderLen is the size of a frame header.
const HeaderLen = 8

// WriteFrame writes p to w as one frame of stream. A connection gets header
// and payload in one writev; other writers get two Writes, so callers that
// share w between goroutines serialize (see Mux).
func WriteFrame(w io.Writer, stream byte, p []byte) error {
	var hdr [HeaderLen]byte
	hdr[0] = stream
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(p)))
	bufs := net.Buffers{hdr[:], p}
	_, err := bufs.WriteTo(w)
	return err
}

// ReadFrame reads one frame from r into buf (grown when too small) and
// returns its stream id and payload, which aliases buf.
func ReadFrame(r io.Reader, buf []byte) (stream byte, data []byte, err error) {
	var hdr [HeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := int(binary.BigEndian.Uint32(hdr[4:]))
	if cap(buf) >= n {
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, nil, err
		}
		return hdr[0], buf, nil
	}
	// Grown as the payload arrives: a header alone (up to 4 GiB) does not
	// allocate its length.
	buf = buf[:0]
	for len(buf) < n {
		k := min(n-len(buf), 1<<20)
		buf = slices.Grow(buf, k)
		m, err := io.ReadFull(r, buf[len(buf):len(buf)+k])
		buf = buf[:len(buf)+m]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, nil, err
		}
	}
	return hdr[0], buf, nil
}

// Mux frames the writes of several streams onto one writer; frames from
// concurrent writers never interleave.
type Mux struct {
	mu sync.Mutex
	w  io.Writer
}

// NewMux returns a Mux writing to w.
func NewMux(w io.Writer) *Mux { return &Mux{w: w} }

// Stream returns an io.Writer whose every Write is one frame of stream id.
func (m *Mux) Stream(id byte) io.Writer { return streamWriter{m, id} }

type streamWriter struct {
	m  *Mux
	id byte
}

func (s streamWriter) Write(p []byte) (int, error) {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	if err := WriteFrame(s.m.w, s.id, p); err != nil {
		return 0, err
	}
	return len(p), nil
}
