package cli

import (
	"io"
	"os"

	"golang.org/x/term"
)

// InStream is the CLI's standard input, with what is known about the
// terminal behind it.
type InStream struct {
	io.Reader
	fd     uintptr
	isTerm bool
}

// OutStream is a standard output or error stream, with what is known about
// the terminal behind it.
type OutStream struct {
	io.Writer
	fd     uintptr
	isTerm bool
}

type fder interface{ Fd() uintptr }

// NewInStream wraps r; when r is an *os.File its terminal state is detected.
func NewInStream(r io.Reader) *InStream {
	s := &InStream{Reader: r}
	if f, ok := r.(fder); ok {
		s.fd = f.Fd()
		s.isTerm = term.IsTerminal(int(s.fd))
	}
	return s
}

// NewOutStream wraps w; when w is an *os.File its terminal state is detected.
func NewOutStream(w io.Writer) *OutStream {
	s := &OutStream{Writer: w}
	if f, ok := w.(fder); ok {
		s.fd = f.Fd()
		s.isTerm = term.IsTerminal(int(s.fd))
	}
	return s
}

// FD returns the stream's file descriptor (0 when it has none).
func (s *InStream) FD() uintptr { return s.fd }

// IsTerminal reports whether the stream is a terminal.
func (s *InStream) IsTerminal() bool { return s.isTerm }

// FD returns the stream's file descriptor (0 when it has none).
func (s *OutStream) FD() uintptr { return s.fd }

// IsTerminal reports whether the stream is a terminal.
func (s *OutStream) IsTerminal() bool { return s.isTerm }

// Width returns the terminal's width in columns, or def when the stream is
// not a terminal.
func (s *OutStream) Width(def int) int {
	if !s.isTerm {
		return def
	}
	w, _, err := term.GetSize(int(s.fd))
	if err != nil || w <= 0 {
		return def
	}
	return w
}

// stdStreams returns the process's own streams.
func stdStreams() (*InStream, *OutStream, *OutStream) {
	return NewInStream(os.Stdin), NewOutStream(os.Stdout), NewOutStream(os.Stderr)
}
