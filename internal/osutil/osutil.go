// Package osutil holds the few file and socket helpers that both berthd
// and berth-shim need. It imports only the standard library and x/sys, so
// the shim stays small.
package osutil

import (
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// WriteFileAtomic writes data to path through a temporary file, fsync and
// rename, so a reader sees the old content or the new, never half of it.
func WriteFileAtomic(path string, data []byte) error {
	return writeFileAtomic(path, data, true)
}

// ReplaceFile is WriteFileAtomic without the fsync: readers see the old or
// the new content, never a mix, but a crash may lose the write (or, on
// some filesystems, leave an empty file). For records that need not
// survive a crash.
func ReplaceFile(path string, data []byte) error {
	return writeFileAtomic(path, data, false)
}

func writeFileAtomic(path string, data []byte, durable bool) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if durable {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
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
