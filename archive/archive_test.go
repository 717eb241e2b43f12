package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// compressed returns payload compressed with c (bzip2 and xz through the
// system's tools: berth writes neither).
func compressed(t *testing.T, c Compression, payload []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	switch c {
	case None:
		return payload
	case Gzip:
		zw := gzip.NewWriter(&b)
		zw.Write(payload)
		zw.Close()
	case Zstd:
		zw, _ := zstd.NewWriter(&b)
		zw.Write(payload)
		zw.Close()
	case Bzip2, Xz:
		tool := map[Compression]string{Bzip2: "bzip2", Xz: "xz"}[c]
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
		cmd := exec.Command(tool, "-c")
		cmd.Stdin = bytes.NewReader(payload)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	return b.Bytes()
}

func TestDecompress(t *testing.T) {
	payload := bytes.Repeat([]byte("layer data "), 10000)
	for _, c := range []Compression{None, Gzip, Bzip2, Xz, Zstd} {
		t.Run(Name(c), func(t *testing.T) {
			in := compressed(t, c, payload)
			rc, got, err := Decompress(bytes.NewReader(in))
			if err != nil || got != c {
				t.Fatalf("Decompress = %v, %v; want %v", Name(got), err, Name(c))
			}
			out, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(out, payload) {
				t.Fatalf("read %d bytes, %v", len(out), err)
			}
			if c == None {
				return
			}
			// Cut short, or garbage after the magic: an invalid argument
			// that says which compression.
			for name, bad := range map[string][]byte{
				"truncated": in[:len(in)/2],
				"corrupt":   append(append([]byte(nil), in[:len(in)/2]...), bytes.Repeat([]byte{0xff}, 300)...),
			} {
				rc, _, err := Decompress(bytes.NewReader(bad))
				if err == nil {
					_, err = io.ReadAll(rc)
					rc.Close()
				}
				if !cerrdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "invalid "+Name(c)+" stream") {
					t.Errorf("%s: %v, want an invalid argument naming %s", name, err, Name(c))
				}
			}
		})
	}
	for _, short := range [][]byte{{0x1f}, nil} {
		rc, c, err := Decompress(bytes.NewReader(short))
		if err != nil || c != None {
			t.Fatalf("%x: %v %v", short, Name(c), err)
		}
		if b, err := io.ReadAll(rc); err != nil || !bytes.Equal(b, short) {
			t.Fatalf("%x: read %x %v", short, b, err)
		}
	}
}

// A failure of the compressed stream's own reader is not a corrupt stream.
func TestDecompressSourceError(t *testing.T) {
	gone := errors.New("client went away")
	in := compressed(t, Gzip, bytes.Repeat([]byte("x"), 1<<20))
	rc, _, err := Decompress(io.MultiReader(bytes.NewReader(in[:len(in)/2]), &failing{gone}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(rc)
	if !errors.Is(err, gone) || cerrdefs.IsInvalidArgument(err) {
		t.Fatalf("err = %v, want the source's own error, unclassed", err)
	}
}

type failing struct{ err error }

func (f *failing) Read([]byte) (int, error) { return 0, f.err }

func TestCompressRoundTrip(t *testing.T) {
	payload := bytes.Repeat([]byte("layer "), 50000)
	for _, c := range []Compression{None, Gzip, Zstd} {
		var b bytes.Buffer
		w, err := Compress(&b, c)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(payload)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		rc, got, err := Decompress(&b)
		if err != nil || got != c {
			t.Fatalf("%s: detected %s, %v", Name(c), Name(got), err)
		}
		if out, err := io.ReadAll(rc); err != nil || !bytes.Equal(out, payload) {
			t.Fatalf("%s: %v", Name(c), err)
		}
	}
	if _, err := Compress(io.Discard, Xz); !cerrdefs.IsNotImplemented(err) {
		t.Fatalf("xz: %v", err)
	}
}

// Compress hands its output on in large writes: klauspost's deflate emits
// pieces of ~240 bytes, and each one used to be a write syscall into the
// content store and another into the registry's socket during a push.
func TestCompressWritesInLargePieces(t *testing.T) {
	payload := make([]byte, 8<<20)
	rand.NewChaCha8([32]byte{1}).Read(payload) // incompressible: 8 MiB out
	for _, c := range []Compression{Gzip, Zstd} {
		cw := &writeCounter{}
		w, err := Compress(cw, c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(payload); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if cw.n < int64(len(payload)) {
			t.Fatalf("%s: %d bytes out for %d incompressible ones", Name(c), cw.n, len(payload))
		}
		if max := cw.n/(64<<10) + 2; cw.writes > max {
			t.Errorf("%s: %d writes for %d bytes, want at most %d (pieces of 64 KiB or more)", Name(c), cw.writes, cw.n, max)
		}
	}
}

type writeCounter struct{ n, writes int64 }

func (w *writeCounter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	w.writes++
	return len(p), nil
}

func TestTarDirRoundTrip(t *testing.T) {
	requireRoot(t)
	src := archivetestTree(t)
	rc, err := TarDir(context.Background(), src, WriterOptions{Layer: true})
	if err != nil {
		t.Fatal(err)
	}
	t1, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if _, err := UnpackLayer(context.Background(), dst, bytes.NewReader(t1)); err != nil {
		t.Fatal(err)
	}
	rc, _ = TarDir(context.Background(), dst, WriterOptions{Layer: true})
	t2, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(t1, t2) {
		t.Fatal("TarDir(UnpackLayer(TarDir(x))) != TarDir(x)")
	}
	hdrs := map[string]*tar.Header{}
	tr := tar.NewReader(bytes.NewReader(t1))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		hdrs[h.Name] = h
	}
	if h := hdrs["d/.wh.gone"]; h == nil || h.Typeflag != tar.TypeReg {
		t.Errorf("whiteout: %+v", h)
	}
	if h := hdrs["o/.wh..wh..opq"]; h == nil {
		t.Errorf("no opaque marker in %v", hdrs)
	}
	if h := hdrs["f"]; h == nil || h.PAXRecords["SCHILY.xattr.user.a"] != "1" {
		t.Errorf("layer xattrs: %+v", h)
	}
	// cp and export: no whiteout conversion, security.capability alone.
	rc, _ = TarDir(context.Background(), src, WriterOptions{})
	hdrs = map[string]*tar.Header{}
	tr = tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		hdrs[h.Name] = h
	}
	rc.Close()
	if h := hdrs["d/gone"]; h == nil || h.Typeflag != tar.TypeChar {
		t.Errorf("cp tar: the whiteout device is %+v", h)
	}
	if h := hdrs["f"]; h == nil || len(h.PAXRecords) != 0 {
		t.Errorf("cp tar: f has %v", h.PAXRecords)
	}
}

// TestTarDirExclude: the excluded paths are left out, a directory with
// what is under it; the rest is archived as without the option.
func TestTarDirExclude(t *testing.T) {
	requireRoot(t)
	src := archivetestTree(t)
	names := func(opts WriterOptions) []string {
		t.Helper()
		rc, err := TarDir(context.Background(), src, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		var out []string
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				return out
			}
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, h.Name)
		}
	}
	all := names(WriterOptions{Layer: true})
	got := names(WriterOptions{Layer: true, Exclude: map[string]bool{"/o": true, "/d/gone": true, "/nothere": true}})
	var want []string
	for _, n := range all {
		if !strings.HasPrefix(n, "o/") && n != "d/.wh.gone" {
			want = append(want, n)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("with /o and /d/gone excluded: %q, want %q (all: %q)", got, want, all)
	}
}

// archivetestTree is a small upper dir: a whiteout, an opaque dir, an
// xattr, a hard link.
func archivetestTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Mkdir(filepath.Join(dir, "d"), 0o755))
	must(unix.Mknod(filepath.Join(dir, "d", "gone"), unix.S_IFCHR, 0))
	must(os.Mkdir(filepath.Join(dir, "o"), 0o755))
	must(unix.Setxattr(filepath.Join(dir, "o"), OpaqueXattr, []byte("y"), 0))
	must(os.WriteFile(filepath.Join(dir, "o", "x"), []byte("x"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "f"), []byte("f"), 0o644))
	must(unix.Setxattr(filepath.Join(dir, "f"), "user.a", []byte("1"), 0))
	must(os.Link(filepath.Join(dir, "f"), filepath.Join(dir, "hl")))
	return dir
}

func TestStreamCloseEarly(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "big"), bytes.Repeat([]byte("x"), 4<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	rc, err := TarDir(context.Background(), dir, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(rc, make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err) // the writer goroutine sees the closed pipe and exits; Close waits for it
	}
}

// Names come from the tree's own passwd and group, first entry wins.
func TestNames(t *testing.T) {
	n := NewNames([]byte("root:x:0:0::/:/bin/sh\nzed:x:4242:4343::/:/bin/sh\nzed2:x:4242:1::/:/bin/sh\n"), []byte("root:x:0:\nzgrp:x:4343:\n"))
	if n.user(0) != "root" || n.user(4242) != "zed" || n.user(5) != "" || n.group(4343) != "zgrp" || n.group(7) != "" {
		t.Fatalf("names: %+v", n)
	}
	if n := NewNames(nil, []byte("garbage")); n.user(0) != "" {
		t.Fatalf("no passwd: %q", n.user(0))
	}
}

func TestTarHeaders(t *testing.T) {
	requireRoot(t) // mknod
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Mkdir(filepath.Join(dir, "d"), 0o750))
	must(os.WriteFile(filepath.Join(dir, "f"), []byte("hello"), 0o644))
	must(os.Chown(filepath.Join(dir, "f"), 7, 8))
	must(unix.Chmod(filepath.Join(dir, "f"), 0o4755)) // after chown, which clears setuid
	must(os.Link(filepath.Join(dir, "f"), filepath.Join(dir, "g")))
	must(os.Symlink("../nowhere", filepath.Join(dir, "l")))
	must(unix.Mkfifo(filepath.Join(dir, "p"), 0o600))
	must(unix.Mknod(filepath.Join(dir, "c"), unix.S_IFCHR|0o620, int(unix.Mkdev(5, 1))))
	must(unix.Mknod(filepath.Join(dir, "b"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 2))))
	must(unix.Mknod(filepath.Join(dir, "s"), unix.S_IFSOCK|0o755, 0))
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 678_000_000, time.UTC)
	for n, mode := range map[string]os.FileMode{"d": 0o750, "p": 0o600, "c": 0o620, "b": 0o660} {
		must(os.Chmod(filepath.Join(dir, n), mode)) // past the umask
	}
	for _, n := range []string{"d", "f", "p", "c", "b"} {
		must(os.Chtimes(filepath.Join(dir, n), mtime, mtime))
	}
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	must(err)
	defer unix.Close(dfd)

	var h Headers
	header := func(base, name string) *tar.Header {
		t.Helper()
		var st unix.Stat_t
		must(unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW))
		hdr, err := h.Header(dfd, base, name, &st)
		must(err)
		return hdr
	}
	type want struct {
		typ            byte
		name, linkname string
		mode, size     int64
		uid, gid       int
		major, minor   int64
	}
	check := func(hdr *tar.Header, w want) {
		t.Helper()
		got := want{hdr.Typeflag, hdr.Name, hdr.Linkname, hdr.Mode, hdr.Size, hdr.Uid, hdr.Gid, hdr.Devmajor, hdr.Devminor}
		if got != w {
			t.Errorf("header\n got %+v\nwant %+v", got, w)
		}
		if hdr.Format != tar.FormatPAX {
			t.Errorf("%s: format %v", hdr.Name, hdr.Format)
		}
	}
	d := header("d", "x/d")
	check(d, want{typ: tar.TypeDir, name: "x/d/", mode: 0o750})
	if !d.ModTime.Equal(mtime.Truncate(time.Second)) {
		t.Errorf("mtime %v, want whole seconds of %v", d.ModTime, mtime)
	}
	check(header("d", "./"), want{typ: tar.TypeDir, name: "./", mode: 0o750})
	check(header("f", "f"), want{typ: tar.TypeReg, name: "f", mode: 0o4755, size: 5, uid: 7, gid: 8})
	// The second name of the same inode is a hard link to the first.
	check(header("g", "other/g"), want{typ: tar.TypeLink, name: "other/g", linkname: "f", mode: 0o4755, uid: 7, gid: 8})
	check(header("l", "l"), want{typ: tar.TypeSymlink, name: "l", linkname: "../nowhere", mode: 0o777})
	check(header("p", "p"), want{typ: tar.TypeFifo, name: "p", mode: 0o600})
	check(header("c", "c"), want{typ: tar.TypeChar, name: "c", mode: 0o620, major: 5, minor: 1})
	check(header("b", "b"), want{typ: tar.TypeBlock, name: "b", mode: 0o660, major: 7, minor: 2})
	if hdr := header("s", "s"); hdr != nil {
		t.Errorf("socket: %+v, want no entry", hdr)
	}
	// Another tar starts with no links known.
	var fresh Headers
	var st unix.Stat_t
	must(unix.Fstatat(dfd, "g", &st, unix.AT_SYMLINK_NOFOLLOW))
	if hdr, err := fresh.Header(dfd, "g", "g", &st); err != nil || hdr.Typeflag != tar.TypeReg {
		t.Errorf("first name in a fresh tar: %+v %v", hdr, err)
	}
}

// TestResolveInRoot plants the classic escapes in a plain directory and
// checks resolution and opening stay inside it.
func TestResolveInRoot(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("host secret"), 0o600)
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc", "secret"), []byte("container file"), 0o600)
	os.Symlink("/", filepath.Join(root, "etc", "evil"))
	os.Symlink("../../../../../../", filepath.Join(root, "dots"))
	os.Symlink(outside, filepath.Join(root, "hostlink"))
	os.Symlink("loop2", filepath.Join(root, "loop1"))
	os.Symlink("loop1", filepath.Join(root, "loop2"))
	os.Symlink("missing/../etc/evil", filepath.Join(root, "viamissing"))
	fd, err := os.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	for in, want := range map[string]string{
		"/etc/evil/etc/secret": "/etc/secret",
		"/dots/etc/secret":     "/etc/secret",
		"/hostlink/secret":     outside + "/secret", // absolute: resolved from the container's root
		"/etc/evil":            "/",
		"/missing/x/../y":      "/missing/y",
		// A missing component is a plain directory and the walk goes on,
		// so the links after a ".." out of it are still resolved (in root).
		"/viamissing/etc/secret": "/etc/secret",
		"/viamissing/dots":       "/",
	} {
		got, err := ResolveInRoot(fd, in, true)
		if err != nil || got != want {
			t.Errorf("ResolveInRoot(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if got, _ := ResolveInRoot(fd, "/etc/evil", false); got != "/etc/evil" {
		t.Errorf("no-follow final = %q", got)
	}
	if _, err := ResolveInRoot(fd, "/loop1/x", true); !errors.Is(err, unix.ELOOP) {
		t.Errorf("loop: %v", err)
	}
	// Opening through the escapes never reaches the host file.
	for _, p := range []string{"/hostlink/secret", "/viamissing/dots/" + strings.TrimPrefix(outside, "/") + "/secret", "/dots/" + strings.TrimPrefix(outside, "/") + "/secret", "/etc/evil/" + strings.TrimPrefix(outside, "/") + "/secret"} {
		if h, err := OpenInRoot(fd, p); err == nil {
			b := ReadFileInRoot(fd, p, 64)
			h.Close()
			t.Errorf("opened %s: %q", p, b)
		}
	}
}

// Spool takes any of dockerd's compressions and refuses, before anything
// is extracted, a body that is corrupt, cut short or breaks the rules.
func TestSpool(t *testing.T) {
	good := bytes.Buffer{}
	tw := tar.NewWriter(&good)
	for i := range 50 {
		body := bytes.Repeat([]byte{byte(i)}, 10000)
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("f%02d", i), Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write(body)
	}
	tw.Close()
	for _, c := range []Compression{None, Gzip, Bzip2, Xz, Zstd} {
		in := compressed(t, c, good.Bytes())
		f, err := Spool(context.Background(), bytes.NewReader(in), t.TempDir())
		if err != nil {
			t.Fatalf("%s: %v", Name(c), err)
		}
		b, _ := io.ReadAll(f)
		f.Close()
		if !bytes.Equal(b, good.Bytes()) {
			t.Fatalf("%s: spooled %d bytes, want the %d of the tar", Name(c), len(b), good.Len())
		}
		if c == None {
			continue
		}
		for name, bad := range map[string][]byte{
			"truncated": in[:len(in)*2/3],
			"corrupt":   append(append([]byte(nil), in[:len(in)*2/3]...), bytes.Repeat([]byte{0x5a}, 4096)...),
		} {
			if f, err := Spool(context.Background(), bytes.NewReader(bad), t.TempDir()); !cerrdefs.IsInvalidArgument(err) {
				if f != nil {
					f.Close()
				}
				t.Errorf("%s %s: %v, want an invalid argument", Name(c), name, err)
			}
		}
	}
	cut := good.Bytes()[:good.Len()/2]
	if _, err := Spool(context.Background(), bytes.NewReader(cut), t.TempDir()); !cerrdefs.IsInvalidArgument(err) {
		t.Errorf("cut tar: %v", err)
	}
	for _, e := range []tar.Header{
		{Name: "../x", Typeflag: tar.TypeReg},
		{Name: "a/b", Typeflag: tar.TypeSymlink, Linkname: "../../x"},
		{Name: "h", Typeflag: tar.TypeLink, Linkname: "../x"},
	} {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		tw.WriteHeader(&e)
		tw.Close()
		if _, err := Spool(context.Background(), &b, t.TempDir()); !cerrdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "invalid tar entry") {
			t.Errorf("%s: %v, want an invalid tar entry", e.Name, err)
		}
	}
	// The temporary file is never left in the directory.
	dir := t.TempDir()
	f, err := Spool(context.Background(), bytes.NewReader(good.Bytes()), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("spool left %v", ents)
	}
}
