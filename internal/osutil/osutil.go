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
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// WriteFileAtomic replaces path with data durably: a temporary file in
// path's directory is written, fsync'd, renamed over path, and the directory
// is fsync'd, so after a crash path holds the old content or the new, never
// half of it, and a write that returned nil survives. Every daemon record
// that must survive a crash is written with it.
func WriteFileAtomic(path string, data []byte) error {
	return writeAtomic(path, bytes.NewReader(data), true, realSteps)
}

// ReplaceFile is WriteFileAtomic without the fsyncs: readers see the old or
// the new content, never a mix, but a crash may lose the write (or, on
// some filesystems, leave an empty file). For records that need not
// survive a crash (a --rm container's, a sandbox's).
func ReplaceFile(path string, data []byte) error {
	return writeAtomic(path, bytes.NewReader(data), false, realSteps)
}

// WriteAtomic is WriteFileAtomic for content read from r (a saved image,
// say): path gets all of it or keeps what it had.
func WriteAtomic(path string, r io.Reader) error {
	return writeAtomic(path, r, true, realSteps)
}

// SyncDir fsyncs the directory dir, which makes the renames, creations and
// removals of its entries durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// RemoveTemps removes the temporary files a write of path left behind when
// it was cut short (by a crash: a failed write removes its own).
func RemoveTemps(path string) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmps, _ := filepath.Glob(filepath.Join(dir, "."+globEscape(base)+".*.tmp"))
	for _, t := range tmps {
		_ = os.Remove(t)
	}
}

func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// steps are the calls of writeAtomic that tests watch and fail.
type steps struct {
	syncFile func(f *os.File) error
	rename   func(oldpath, newpath string) error
	syncDir  func(dir string) error
}

var realSteps = steps{
	syncFile: (*os.File).Sync,
	rename:   os.Rename,
	syncDir:  SyncDir,
}

// writeAtomic is the one write-sync-close-rename-sync: a new temporary file
// in path's directory (".NAME.*.tmp", mode 0600, so concurrent writers never
// share one and a leftover is plainly temporary), fsync'd when durable, then
// renamed over path, then the directory fsync'd when durable. On failure
// before the rename the temporary file is removed and path is untouched.
func writeAtomic(path string, r io.Reader, durable bool, do steps) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return err
	}
	renamed := false
	defer func() {
		if err != nil && !renamed {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := io.Copy(f, r); err != nil {
		return err
	}
	if durable {
		if err := do.syncFile(f); err != nil {
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := do.rename(f.Name(), path); err != nil {
		return err
	}
	renamed = true
	if durable {
		return do.syncDir(dir)
	}
	return nil
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
