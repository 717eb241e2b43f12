// Package logger reads and writes container logs in Docker's json-file
// format: one JSON object per line, {"log":"...","stream":"stdout","time":"..."},
// with rotation by size into path.1, path.2, ... (oldest highest).
// The shim writes; berthd reads. It depends on nothing but the standard
// library so the shim stays small.
package logger

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"
)

// Entry is one log record.
type Entry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// maxLine is where a line without a newline is cut, as Docker does.
const maxLine = 16 * 1024

// Writer appends entries to a json-file log, rotating it when it would
// grow past MaxSize (0 = never) and keeping MaxFiles files in all.
type Writer struct {
	path     string
	maxSize  int64
	maxFiles int

	mu   sync.Mutex
	f    *os.File
	size int64
	buf  bytes.Buffer
}

// NewWriter opens (appending to) the log at path.
func NewWriter(path string, maxSize int64, maxFiles int) (*Writer, error) {
	if maxFiles < 1 {
		maxFiles = 1
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Writer{path: path, maxSize: maxSize, maxFiles: maxFiles, f: f, size: st.Size()}, nil
}

// Write records one entry.
func (w *Writer) Write(e Entry) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Reset()
	enc := json.NewEncoder(&w.buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(struct {
		Log    string `json:"log"`
		Stream string `json:"stream"`
		Time   string `json:"time"`
	}{e.Log, e.Stream, e.Time.UTC().Format(time.RFC3339Nano)}); err != nil {
		return err
	}
	if w.maxSize > 0 && w.size > 0 && w.size+int64(w.buf.Len()) > w.maxSize {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(w.buf.Bytes())
	w.size += int64(n)
	return err
}

func (w *Writer) rotate() error {
	if err := w.f.Close(); err != nil {
		return err
	}
	if w.maxFiles > 1 {
		for i := w.maxFiles - 1; i >= 1; i-- {
			from := w.path
			if i > 1 {
				from = fmt.Sprintf("%s.%d", w.path, i-1)
			}
			_ = os.Rename(from, fmt.Sprintf("%s.%d", w.path, i))
		}
	}
	flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	f, err := os.OpenFile(w.path, flags, 0o640)
	if err != nil {
		return err
	}
	w.f, w.size = f, 0
	return nil
}

// Close closes the log file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.f.Close()
}

// LineSplitter turns a stream of output chunks into log entries: one per
// line, lines longer than 16 KiB cut into pieces, as Docker does.
type LineSplitter struct {
	Stream string
	Emit   func(Entry)
	buf    []byte
}

// Write implements io.Writer.
func (s *LineSplitter) Write(p []byte) (int, error) {
	n := len(p)
	now := time.Now()
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.buf = append(s.buf, p...)
			for len(s.buf) >= maxLine {
				s.Emit(Entry{Log: string(s.buf[:maxLine]), Stream: s.Stream, Time: now})
				s.buf = append(s.buf[:0], s.buf[maxLine:]...)
			}
			break
		}
		line := p[:i+1]
		p = p[i+1:]
		if len(s.buf) > 0 {
			s.buf = append(s.buf, line...)
			line = s.buf
		}
		for len(line) > maxLine {
			s.Emit(Entry{Log: string(line[:maxLine]), Stream: s.Stream, Time: now})
			line = line[maxLine:]
		}
		s.Emit(Entry{Log: string(line), Stream: s.Stream, Time: now})
		s.buf = s.buf[:0]
	}
	return n, nil
}

// Flush emits a pending partial line.
func (s *LineSplitter) Flush() {
	if len(s.buf) > 0 {
		s.Emit(Entry{Log: string(s.buf), Stream: s.Stream, Time: time.Now()})
		s.buf = s.buf[:0]
	}
}
