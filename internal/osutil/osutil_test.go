package osutil

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestWriteFileAtomic(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := WriteFileAtomic(p, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(p, []byte("two")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "two" {
		t.Fatalf("content %q", b)
	}
	if err := ReplaceFile(p, []byte("three")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "three" {
		t.Fatalf("content %q", b)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	if ents, _ := os.ReadDir(filepath.Dir(p)); len(ents) != 1 {
		t.Fatalf("temporary file left: %v", ents)
	}
}

type failingReader struct{ n int }

func (r *failingReader) Read(b []byte) (int, error) {
	if r.n == 0 {
		return 0, errors.New("interrupted")
	}
	r.n--
	return copy(b, "partial"), nil
}

// TestWriteAtomicFails: a reader that fails half way leaves the old content
// and no temporary file; the temporary file is named .NAME.*.tmp beside the
// target.
func TestWriteAtomicFails(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.tar")
	if err := WriteAtomic(p, strings.NewReader("old")); err != nil {
		t.Fatal(err)
	}
	if err := WriteAtomic(p, &failingReader{n: 2}); err == nil || err.Error() != "interrupted" {
		t.Fatalf("err %v, want interrupted", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "old" {
		t.Fatalf("content %q, want the old one", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("temporary file left: %v", ents)
	}
	// A missing directory: nothing is created.
	if err := WriteFileAtomic(filepath.Join(dir, "no", "f"), nil); !os.IsNotExist(err) {
		t.Fatalf("err %v, want not exist", err)
	}

	// The temporary file while it is written.
	seen := make(chan []string, 1)
	r := readerFunc(func(b []byte) (int, error) {
		ents, _ := os.ReadDir(dir)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		seen <- names
		return 0, io.EOF
	})
	if err := WriteAtomic(p, r); err != nil {
		t.Fatal(err)
	}
	names := <-seen
	if len(names) != 2 || !strings.HasPrefix(names[0], ".out.tar.") || !strings.HasSuffix(names[0], ".tmp") {
		t.Fatalf("directory during the write: %q, want .out.tar.*.tmp beside out.tar", names)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(b []byte) (int, error) { return f(b) }

func TestReceiveConsole(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "c.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r, w, _ := os.Pipe()
	defer r.Close()
	go func() {
		c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: sock, Net: "unix"})
		if err != nil {
			return
		}
		defer c.Close()
		c.WriteMsgUnix([]byte("x"), unix.UnixRights(int(w.Fd())), nil)
		w.Close()
	}()
	f, err := ReceiveConsole(l, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := r.Read(buf); err != nil || string(buf) != "hi" {
		t.Fatalf("read %q %v", buf, err)
	}
	if _, err := ReceiveConsole(l, 10*time.Millisecond); err == nil {
		t.Fatal("no sender, yet a descriptor")
	}
}

func TestReadlinkat(t *testing.T) {
	dir := t.TempDir()
	long := "/" + strings.Repeat("x/", 300) + "end" // more than the first 256-byte buffer
	for name, target := range map[string]string{"short": "a/b", "long": long, "exact": strings.Repeat("y", 256)} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	for name, want := range map[string]string{"short": "a/b", "long": long, "exact": strings.Repeat("y", 256)} {
		if got, err := Readlinkat(dfd, name); err != nil || got != want {
			t.Errorf("Readlinkat(%s) = %q, %v; want %q", name, got, err, want)
		}
	}
	// base "": the link an O_PATH|O_NOFOLLOW descriptor stands for.
	fd, err := unix.Openat(dfd, "long", unix.O_PATH|unix.O_NOFOLLOW, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if got, err := Readlinkat(fd, ""); err != nil || got != long {
		t.Errorf("Readlinkat(fd, \"\") = %q, %v", got, err)
	}
	if _, err := Readlinkat(dfd, "missing"); err == nil {
		t.Error("a missing link read")
	}
}

func TestMkdirPrivate(t *testing.T) {
	old := unix.Umask(0o022)
	defer unix.Umask(old)
	root := t.TempDir()
	fresh := filepath.Join(root, "a", "b")
	if err := MkdirPrivate(fresh, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(root, "a"), fresh} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v %v, want mode 0700", p, st.Mode(), err)
		}
	}
	// A directory an older version left open is closed.
	open := filepath.Join(root, "open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o755|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	if err := MkdirPrivate(open, 0o710); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(open); st.Mode() != os.ModeDir|0o710 {
		t.Errorf("existing 0755 dir: mode %v after MkdirPrivate(0710)", st.Mode())
	}
	file := filepath.Join(root, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := MkdirPrivate(file, 0o700); err == nil {
		t.Error("MkdirPrivate on a regular file: no error")
	}
}

// recorder is a steps that logs every call and fails the one named fail.
type recorder struct {
	calls []string
	fail  string
}

func (r *recorder) steps() steps {
	step := func(name string, real func() error) error {
		r.calls = append(r.calls, name)
		if name == r.fail {
			return errors.New(name + " failed")
		}
		return real()
	}
	return steps{
		syncFile: func(f *os.File) error { return step("syncFile", f.Sync) },
		rename: func(o, n string) error {
			return step("rename", func() error { return os.Rename(o, n) })
		},
		syncDir: func(d string) error {
			return step("syncDir:"+filepath.Clean(d), func() error { return SyncDir(d) })
		},
	}
}

// TestWriteAtomicSyncsFileThenDir: a durable write fsyncs the file before
// the rename and path's directory after it; ReplaceFile does neither.
func TestWriteAtomicSyncsFileThenDir(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.v2.json")
	var r recorder
	if err := writeAtomic(p, strings.NewReader("x"), true, r.steps()); err != nil {
		t.Fatal(err)
	}
	want := []string{"syncFile", "rename", "syncDir:" + dir}
	if strings.Join(r.calls, " ") != strings.Join(want, " ") {
		t.Fatalf("calls %q, want %q", r.calls, want)
	}
	r = recorder{}
	if err := writeAtomic(p, strings.NewReader("y"), false, r.steps()); err != nil {
		t.Fatal(err)
	}
	if strings.Join(r.calls, " ") != "rename" {
		t.Fatalf("non-durable calls %q, want just the rename", r.calls)
	}
}

// TestWriteAtomicFailedStepKeepsOldFile: a write whose fsync or rename
// fails leaves the old content and no temporary file.
func TestWriteAtomicFailedStepKeepsOldFile(t *testing.T) {
	for _, fail := range []string{"syncFile", "rename"} {
		t.Run(fail, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "exit.json")
			if err := WriteFileAtomic(p, []byte("old")); err != nil {
				t.Fatal(err)
			}
			r := recorder{fail: fail}
			if err := writeAtomic(p, strings.NewReader("new"), true, r.steps()); err == nil || err.Error() != fail+" failed" {
				t.Fatalf("err %v, want %s failed", err, fail)
			}
			if b, _ := os.ReadFile(p); string(b) != "old" {
				t.Fatalf("content %q, want the old one", b)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 1 {
				t.Fatalf("temporary file left: %v", ents)
			}
		})
	}
	// A failed directory sync is reported: the new content is in place but
	// not known to be durable.
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	r := recorder{fail: "syncDir:" + dir}
	if err := writeAtomic(p, strings.NewReader("new"), true, r.steps()); err == nil {
		t.Fatal("a failed directory sync must be reported")
	}
}

func TestRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "opts[1].json")
	for _, n := range []string{".opts[1].json.123.tmp", ".opts[1].json.456.tmp", ".other.json.1.tmp", "opts[1].json"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	RemoveTemps(p)
	var names []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != ".other.json.1.tmp opts[1].json" {
		t.Fatalf("left %q", names)
	}
}
