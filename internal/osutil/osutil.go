// Package osutil holds the few file and socket helpers that berthd,
// berth-shim and the berth CLI share. It imports only the standard library and x/sys, so
// the shim stays small.
package osutil

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// WriteFileAtomic writes data to path through a temporary file, fsync and
// rename, so a reader sees the old content or the new, never half of it.
func WriteFileAtomic(path string, data []byte) error {
	return writeAtomic(path, bytes.NewReader(data), true)
}

// ReplaceFile is WriteFileAtomic without the fsync: readers see the old or
// the new content, never a mix, but a crash may lose the write (or, on
// some filesystems, leave an empty file). For records that need not
// survive a crash.
func ReplaceFile(path string, data []byte) error {
	return writeAtomic(path, bytes.NewReader(data), false)
}

// WriteAtomic is WriteFileAtomic for content read from r (a saved image,
// say): path gets all of it or keeps what it had.
func WriteAtomic(path string, r io.Reader) error {
	return writeAtomic(path, r, true)
}

// writeAtomic is the one write-sync-close-rename: a new temporary file in
// path's directory (".NAME.*.tmp", mode 0600, so concurrent writers never
// share one and a leftover is plainly temporary), fsync'd when durable, then
// renamed over path. On failure the temporary file is removed.
func writeAtomic(path string, r io.Reader, durable bool) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := io.Copy(f, r); err != nil {
		return err
	}
	if durable {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// Readlinkat returns the target of the symlink base in the directory dfd,
// however long it is. With base "" it reads the link dfd itself is an O_PATH
// descriptor of (openat with O_PATH|O_NOFOLLOW), so a link found by a walk
// that must stay inside a root is read without a second lookup by name.
func Readlinkat(dfd int, base string) (string, error) {
	for size := 256; ; size *= 2 {
		b := make([]byte, size)
		n, err := unix.Readlinkat(dfd, base, b)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(b[:n]), nil
		}
	}
}

// ReceiveConsole accepts one connection on l (runc's --console-socket)
// within d and returns the pty master runc passes over it.
func ReceiveConsole(l *net.UnixListener, d time.Duration) (*os.File, error) {
	_ = l.SetDeadline(time.Now().Add(d))
	c, err := l.AcceptUnix()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	buf := make([]byte, 256)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) == 0 {
		return nil, fmt.Errorf("console socket: no control message: %v", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) == 0 {
		return nil, fmt.Errorf("console socket: no descriptor: %v", err)
	}
	return os.NewFile(uintptr(fds[0]), "console"), nil
}
