package logger

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ReadOptions select entries, as the logs endpoint's query does.
type ReadOptions struct {
	Since, Until time.Time // zero: unbounded
	Tail         int       // < 0: all
	Follow       bool
	// Stop, when closed during Follow, makes the reader take what is left
	// in the log and return: the container has exited.
	Stop <-chan struct{}
	// Format is how the log's files are encoded.
	Format Format
}

// files lists the log's files oldest first.
func files(path string, maxFiles int) []string {
	var out []string
	for i := maxFiles - 1; i >= 1; i-- {
		p := fmt.Sprintf("%s.%d", path, i)
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		} else if _, err := os.Stat(p + ".gz"); err == nil {
			out = append(out, p+".gz")
		}
	}
	return append(out, path)
}

func (o ReadOptions) keep(e Entry) bool {
	if !o.Since.IsZero() && e.Time.Before(o.Since) {
		return false
	}
	if !o.Until.IsZero() && !e.Time.Before(o.Until) {
		return false
	}
	return true
}

// Read calls fn for each selected entry of the log at path, oldest first,
// and with Follow keeps calling it as entries are written until ctx ends
// or Stop is closed.
func Read(ctx context.Context, path string, maxFiles int, o ReadOptions, fn func(Entry) error) error {
	if maxFiles < 1 {
		maxFiles = 1
	}
	var tail []Entry
	emit := func(e Entry) error {
		if !o.keep(e) {
			return nil
		}
		if o.Tail >= 0 {
			if o.Tail == 0 {
				return nil
			}
			tail = append(tail, e)
			if len(tail) > o.Tail {
				tail = tail[1:]
			}
			return nil
		}
		return fn(e)
	}
	var last *os.File
	var lastOff int64
	for _, p := range files(path, maxFiles) {
		f, err := os.Open(p)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return err
		}
		if strings.HasSuffix(p, ".gz") {
			// A rotated file compress=true gzipped.
			zr, err := gzip.NewReader(f)
			if err == nil {
				_, err = scanReader(o.Format, zr, 0, emit)
			}
			f.Close()
			if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
				return err
			}
			continue
		}
		off, err := scan(o.Format, f, 0, emit)
		if err != nil {
			f.Close()
			return err
		}
		if p == path {
			last, lastOff = f, off
		} else {
			f.Close()
		}
	}
	for _, e := range tail {
		if err := fn(e); err != nil {
			if last != nil {
				last.Close()
			}
			return err
		}
	}
	if !o.Follow {
		if last != nil {
			last.Close()
		}
		return nil
	}
	o.Tail = -1
	return follow(ctx, path, last, lastOff, o, fn)
}

// scan reads whole entries from f at off and returns the offset after the
// last complete one.
func scan(format Format, f *os.File, off int64, emit func(Entry) error) (int64, error) {
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return off, err
	}
	return scanReader(format, f, off, emit)
}

// scanReader reads whole entries from r, which is at off, and returns the
// offset after the last complete one.
func scanReader(format Format, rd io.Reader, off int64, emit func(Entry) error) (int64, error) {
	if format == FormatLocal {
		return scanLocal(rd, off, emit)
	}
	return scanLines(rd, off, emit)
}

// scanLines reads whole json-file lines from r, which is at off, and
// returns the offset after the last complete line.
func scanLines(rd io.Reader, off int64, emit func(Entry) error) (int64, error) {
	r := bufio.NewReaderSize(rd, 64*1024)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			off += int64(len(line))
			var e Entry
			if jerr := json.Unmarshal(line, &e); jerr == nil {
				if eerr := emit(e); eerr != nil {
					return off, eerr
				}
			}
		}
		if err == io.EOF {
			return off, nil
		}
		if err != nil {
			return off, err
		}
	}
}

func follow(ctx context.Context, path string, f *os.File, off int64, o ReadOptions, fn func(Entry) error) error {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return err
	}
	ino := os.NewFile(uintptr(fd), "inotify")
	defer ino.Close()
	if _, err := unix.InotifyAddWatch(fd, filepath.Dir(path), unix.IN_MODIFY|unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE); err != nil {
		return err
	}
	emit := func(e Entry) error {
		if !o.keep(e) {
			return nil
		}
		return fn(e)
	}
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	reopen := func() error {
		nf, err := os.Open(path)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if f != nil {
			// Take what the old file still had, then switch.
			if _, err := scan(o.Format, f, off, emit); err != nil {
				nf.Close()
				return err
			}
			f.Close()
		}
		f, off = nf, 0
		return nil
	}
	if f == nil {
		if err := reopen(); err != nil {
			return err
		}
	}
	buf := make([]byte, 4096)
	stopped := false
	for {
		if f != nil {
			// Rotated? The path names a new file.
			if st, err := os.Stat(path); err == nil {
				if cur, err := f.Stat(); err == nil && !os.SameFile(st, cur) {
					if err := reopen(); err != nil {
						return err
					}
				}
			}
			if off, err = scan(o.Format, f, off, emit); err != nil {
				return err
			}
		} else if err := reopen(); err != nil {
			return err
		}
		if stopped {
			return nil
		}
		// Wait for a change, the stop signal or the end of ctx.
		if err := waitReadable(ctx, fd, o.Stop); err != nil {
			if errors.Is(err, errStopped) {
				stopped = true
				continue
			}
			return err
		}
		for {
			if _, err := unix.Read(fd, buf); err != nil {
				break
			}
		}
	}
}

var errStopped = errors.New("stopped")

// waitReadable blocks until fd is readable, stop is closed or ctx ends,
// polling in short steps so both channels are honoured.
func waitReadable(ctx context.Context, fd int, stop <-chan struct{}) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-stop:
			return errStopped
		default:
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 100)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return err
		}
		if n > 0 {
			return nil
		}
	}
}
