// Package logger reads and writes container logs in Docker's file formats:
// json-file's (one JSON object per line, {"log":"...","stream":"stdout","time":"..."})
// and the local driver's (length-framed protobuf entries, see FormatLocal),
// with rotation by size into path.1, path.2, ... (oldest highest).
// The shim writes; berthd reads. It depends on little beyond the standard
// library (moby's logdriver entry type) so the shim stays small.
package logger

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"
)

// Entry is one log record.
type Entry struct {
	Log    string            `json:"log"`
	Stream string            `json:"stream"`
	Attrs  map[string]string `json:"attrs,omitempty"`
	Time   time.Time         `json:"time"`
	// Partial marks a piece of a cut line (the local format records it;
	// json-file only leaves the piece without its newline).
	Partial *Partial `json:"-"`
}

// maxLine is where a line without a newline is cut, as Docker does.
const maxLine = 16 * 1024

// Writer appends entries to a json-file log, rotating it when it would
// grow past MaxSize (0 = never) and keeping MaxFiles files in all.
//
// An entry that cannot be written (the disk is full) is dropped whole:
// what a failed write left of it is cut off again, so the file stays one
// JSON object per line. The writer counts what it drops, and the first
// entry it can write again is preceded by one on stderr saying how many
// were lost and why ("berth: 12 log lines dropped: no space left on
// device"), which `docker logs` shows in place of the gap.
type Writer struct {
	path     string
	maxSize  int64
	maxFiles int
	report   func(string)
	compress bool            // rotated files are gzipped (path.1.gz ...)
	format   Format          // how entries are encoded
	attrs    json.RawMessage // every entry's attrs (json-file's labels/env/tag), or nil

	mu      sync.Mutex
	f       *os.File
	size    int64
	buf     bytes.Buffer
	dropped int64 // entries lost since the last notice
	dropErr error // why the first of them was lost
}

// Option configures a Writer.
type Option func(*Writer)

// WithReport has the writer tell report when it starts dropping entries
// and when it can write again (for the shim's own log).
func WithReport(report func(msg string)) Option {
	return func(w *Writer) { w.report = report }
}

// WithCompress gzips rotated files (path.1.gz, path.2.gz ...), as the
// compress option asks.
func WithCompress(on bool) Option {
	return func(w *Writer) { w.compress = on }
}

// WithFormat has the writer encode entries as format asks (json-file's
// lines by default).
func WithFormat(format Format) Option {
	return func(w *Writer) { w.format = format }
}

// WithAttrs gives every entry the same attributes (the labels and
// environment variables the log options name, and the tag), which
// `docker logs --details` shows.
func WithAttrs(attrs map[string]string) Option {
	return func(w *Writer) {
		if len(attrs) > 0 {
			w.attrs, _ = json.Marshal(attrs)
		}
	}
}

// NewWriter opens (appending to) the log at path.
func NewWriter(path string, maxSize int64, maxFiles int, opts ...Option) (*Writer, error) {
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
	w := &Writer{path: path, maxSize: maxSize, maxFiles: maxFiles, f: f, size: st.Size()}
	for _, o := range opts {
		o(w)
	}
	return w, nil
}

// Write records one entry. An error means the entry was dropped (and
// counted, see Writer).
func (w *Writer) Write(e Entry) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Reset()
	if w.dropped > 0 {
		// The notice goes in with the entry, in one write: both or neither.
		notice := Entry{Log: fmt.Sprintf("berth: %d log lines dropped: %s\n", w.dropped, errText(w.dropErr)), Stream: "stderr", Time: e.Time}
		if err := w.encode(notice); err != nil {
			return err
		}
	}
	if err := w.encode(e); err != nil {
		return err
	}
	if err := w.write(); err != nil {
		return w.drop(err)
	}
	if w.dropped > 0 {
		if w.report != nil {
			w.report(fmt.Sprintf("log %s: writing again after %d entries were dropped (%s)", w.path, w.dropped, errText(w.dropErr)))
		}
		w.dropped, w.dropErr = 0, nil
	}
	return nil
}

// drop counts an entry lost to err. Call with mu held.
func (w *Writer) drop(err error) error {
	if w.dropped == 0 {
		w.dropErr = err
		if w.report != nil {
			w.report(fmt.Sprintf("log %s: dropping entries: %v", w.path, err))
		}
	}
	w.dropped++
	return err
}

// Dropped is how many entries were lost since the last notice.
func (w *Writer) Dropped() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dropped
}

// errText is an error's cause without the path (the log's own).
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// encode adds one entry, in the writer's format, to buf. Call with mu held.
func (w *Writer) encode(e Entry) error {
	if w.format == FormatLocal {
		b, err := encodeLocal(w.buf.AvailableBuffer(), e)
		if err != nil {
			return err
		}
		w.buf.Write(b)
		return nil
	}
	enc := json.NewEncoder(&w.buf)
	enc.SetEscapeHTML(false)
	return enc.Encode(struct {
		Log    string          `json:"log"`
		Stream string          `json:"stream"`
		Attrs  json.RawMessage `json:"attrs,omitempty"`
		Time   string          `json:"time"`
	}{e.Log, e.Stream, w.attrs, e.Time.UTC().Format(time.RFC3339Nano)})
}

// write appends buf whole, or nothing. Call with mu held.
func (w *Writer) write() error {
	if w.maxSize > 0 && w.size > 0 && w.size+int64(w.buf.Len()) > w.maxSize {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(w.buf.Bytes())
	if err != nil {
		if n > 0 {
			// Half a line would break every reader of the file.
			if terr := w.f.Truncate(w.size); terr != nil {
				w.size += int64(n)
			}
		}
		return err
	}
	w.size += int64(n)
	return nil
}

func (w *Writer) rotate() error {
	if err := w.f.Close(); err != nil {
		return err
	}
	ext := ""
	if w.compress {
		ext = ".gz"
	}
	if w.maxFiles > 1 {
		for i := w.maxFiles - 1; i >= 2; i-- {
			_ = os.Rename(fmt.Sprintf("%s.%d%s", w.path, i-1, ext), fmt.Sprintf("%s.%d%s", w.path, i, ext))
		}
		_ = os.Rename(w.path, w.path+".1")
		if w.compress {
			if err := gzipFile(w.path + ".1"); err != nil && w.report != nil {
				w.report(fmt.Sprintf("log %s: compress the rotated file: %v", w.path, err))
			}
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
// line, lines longer than 16 KiB cut into pieces, as Docker does. Pieces
// carry Partial (one ID, numbered from 1, the first piece's time; the one
// ending the line is Last), as dockerd's copier marks them.
type LineSplitter struct {
	Stream string
	Emit   func(Entry)
	buf    []byte
	// the cut line under way, if any
	partial *Partial
	partAt  time.Time
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
				s.piece(string(s.buf[:maxLine]), now)
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
			s.piece(string(line[:maxLine]), now)
			line = line[maxLine:]
		}
		if s.partial != nil {
			last := *s.partial
			last.Ordinal++
			last.Last = true
			s.Emit(Entry{Log: string(line), Stream: s.Stream, Time: s.partAt, Partial: &last})
			s.partial = nil
		} else {
			s.Emit(Entry{Log: string(line), Stream: s.Stream, Time: now})
		}
		s.buf = s.buf[:0]
	}
	return n, nil
}

// piece emits one cut piece of the line under way.
func (s *LineSplitter) piece(log string, now time.Time) {
	if s.partial == nil {
		s.partial = &Partial{ID: newPartialID()}
		s.partAt = now
	}
	s.partial.Ordinal++
	pc := *s.partial
	s.Emit(Entry{Log: log, Stream: s.Stream, Time: s.partAt, Partial: &pc})
}

// Flush emits a pending partial line (a piece: it has no newline).
func (s *LineSplitter) Flush() {
	if len(s.buf) > 0 {
		s.piece(string(s.buf), time.Now())
		s.buf = s.buf[:0]
	}
	s.partial = nil
}

// newPartialID is a random ID for the pieces of one line, as dockerd's.
func newPartialID() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// gzipFile replaces p by p.gz, its gzipped copy (written aside, then
// renamed into place), as the json-file and local drivers keep rotated
// files with compress.
func gzipFile(p string) error {
	in, err := os.Open(p)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := p + ".gz.tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(out)
	_, err = io.Copy(zw, in)
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p+".gz")
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return os.Remove(p)
}
