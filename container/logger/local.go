package logger

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/docker/docker/api/types/plugins/logdriver"
)

// Format is how a log file is encoded.
type Format string

const (
	// FormatJSON is json-file's: one JSON object per line.
	FormatJSON Format = ""
	// FormatLocal is dockerd's local driver's (also its dual-logging
	// cache's): each entry a protobuf logdriver.LogEntry with its length
	// as a big-endian uint32 before and after it, so the file is read
	// forwards and tailed backwards. Files are interchangeable with
	// dockerd's.
	FormatLocal Format = "local"
)

// ParseFormat reads a Format from its name ("json-file" or "", "local").
func ParseFormat(s string) (Format, error) {
	switch s {
	case "", JSONFile:
		return FormatJSON, nil
	case Local:
		return FormatLocal, nil
	}
	return "", fmt.Errorf("unknown log file format %q", s)
}

// String is the format's name, as ParseFormat takes it.
func (f Format) String() string {
	if f == FormatLocal {
		return Local
	}
	return JSONFile
}

// localFrameLen is the size of each of an entry's two length fields.
const localFrameLen = 4

// maxLocalEntry is the largest entry the reader takes, as dockerd's
// decoder: anything larger is damage.
const maxLocalEntry = 1e6

// Partial marks one piece of a line longer than the 16 KiB dockerd cuts
// lines at (or a last line without a newline): pieces share ID and are
// numbered from 1; the one that ended with a newline is Last.
type Partial struct {
	ID      string
	Ordinal int
	Last    bool
}

// encodeLocal appends e to buf in the local format: the line without its
// newline (a piece without one is Partial, as dockerd's copier marks it).
func encodeLocal(buf []byte, e Entry) ([]byte, error) {
	le := logdriver.LogEntry{Source: e.Stream, TimeNano: e.Time.UnixNano()}
	line := e.Log
	if e.Partial != nil {
		le.Partial = true
		le.PartialLogMetadata = &logdriver.PartialLogEntryMetadata{Id: e.Partial.ID, Ordinal: int32(e.Partial.Ordinal), Last: e.Partial.Last}
		line = strings.TrimSuffix(line, "\n")
	} else if strings.HasSuffix(line, "\n") {
		line = line[:len(line)-1]
	} else {
		// A line without a newline that no splitter marked: a piece of
		// its own, as dockerd's copier logs what is left at the end.
		le.Partial = true
		le.PartialLogMetadata = &logdriver.PartialLogEntryMetadata{Ordinal: 1}
	}
	le.Line = []byte(line)
	n := le.Size()
	start := len(buf)
	buf = append(buf, make([]byte, n+2*localFrameLen)...)
	binary.BigEndian.PutUint32(buf[start:], uint32(n))
	if _, err := le.MarshalTo(buf[start+localFrameLen : start+localFrameLen+n]); err != nil {
		return buf[:start], err
	}
	binary.BigEndian.PutUint32(buf[start+localFrameLen+n:], uint32(n))
	return buf, nil
}

// errLocalDamaged is a local file whose framing does not hold.
var errLocalDamaged = errors.New("damaged local log entry")

// scanLocal reads whole entries from rd, which is at off, and returns the
// offset after the last complete one. An entry still being written (cut
// short at the end) is left for the next scan; a frame whose lengths do
// not agree or an entry that does not decode ends the scan with
// errLocalDamaged, as dockerd's reader stops there.
func scanLocal(rd io.Reader, off int64, emit func(Entry) error) (int64, error) {
	r := bufio.NewReaderSize(rd, 64*1024)
	var head [localFrameLen]byte
	var buf []byte
	var le logdriver.LogEntry
	for {
		if _, err := io.ReadFull(r, head[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return off, nil
			}
			return off, err
		}
		n := int(binary.BigEndian.Uint32(head[:]))
		if n > maxLocalEntry {
			return off, errLocalDamaged
		}
		if cap(buf) < n+localFrameLen {
			buf = make([]byte, n+localFrameLen)
		}
		buf = buf[:n+localFrameLen]
		if _, err := io.ReadFull(r, buf); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return off, nil
			}
			return off, err
		}
		if int(binary.BigEndian.Uint32(buf[n:])) != n {
			return off, errLocalDamaged
		}
		le.Reset()
		if err := le.Unmarshal(buf[:n]); err != nil {
			return off, errLocalDamaged
		}
		off += int64(n + 2*localFrameLen)
		e := Entry{Log: string(le.Line), Stream: le.Source, Time: time.Unix(0, le.TimeNano).UTC()}
		if le.Partial {
			md := le.GetPartialLogMetadata()
			e.Partial = &Partial{ID: md.GetId(), Ordinal: int(md.GetOrdinal()), Last: md.GetLast()}
		}
		// dockerd's reader gives a whole line its newline back.
		if e.Partial == nil || e.Partial.Last {
			e.Log += "\n"
		}
		if err := emit(e); err != nil {
			return off, err
		}
	}
}
