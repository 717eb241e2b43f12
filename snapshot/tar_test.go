package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

func readTar(t *testing.T, s *Store, chainID digest.Digest) []byte {
	t.Helper()
	rc, err := s.Tar(context.Background(), chainID)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTarRoundTrip(t *testing.T) {
	s := newTestStore(t)
	xf := fileEnt("etc/conf", "key=value\n", 0o640)
	xf.hdr.Uid, xf.hdr.Gid = 7, 8
	xf.hdr.PAXRecords = map[string]string{"SCHILY.xattr.user.a": "1", "SCHILY.xattr.trusted.b": "2"}
	suid := fileEnt("bin/tool", string(bytes.Repeat([]byte("elf"), 500000)), 0o4755)
	chr := ent{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/tty", Mode: 0o620, Devmajor: 5, Devminor: 0, Gid: 5, ModTime: testTime}}
	l := applyTar(t, s, "",
		dirEnt("bin/", 0o755),
		suid,
		linkEnt("bin/tool-alias", "bin/tool"),
		dirEnt("etc/", 0o755),
		xf,
		fileEnt("etc/.wh.removed", "", 0o600),
		dirEnt("var/lib/", 0o700),
		fileEnt("var/lib/.wh..wh..opq", "", 0o600),
		fileEnt("var/lib/state", "s", 0o600),
		symlinkEnt("lib", "usr/lib"),
		chr,
		ent{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "run/ctl", Mode: 0o600, ModTime: testTime}},
		dirEnt("tmp/", 0o1777),
		fileEnt("empty", "", 0o644),
	)

	t1 := readTar(t, s, l.ChainID)
	d1 := digest.FromBytes(t1)
	if again := readTar(t, s, l.ChainID); !bytes.Equal(again, t1) {
		t.Fatal("Tar is not deterministic")
	}

	// The exported stream uses Docker's whiteout format.
	names := map[string]*tar.Header{}
	tr := tar.NewReader(bytes.NewReader(t1))
	var order []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names[h.Name] = h
		order = append(order, h.Name)
	}
	for _, want := range []string{"etc/.wh.removed", "var/lib/.wh..wh..opq", "bin/tool-alias", "dev/tty", "tmp/"} {
		if names[want] == nil {
			t.Fatalf("tar lacks %s; has %v", want, order)
		}
	}
	if h := names["bin/tool-alias"]; h.Typeflag != tar.TypeLink || h.Linkname != "bin/tool" {
		t.Errorf("hardlink exported as %+v", h)
	}
	if h := names["etc/conf"]; h.PAXRecords["SCHILY.xattr.user.a"] != "1" || h.PAXRecords["SCHILY.xattr.trusted.b"] != "2" || h.Uid != 7 {
		t.Errorf("xattrs/owner not exported: %+v", h)
	}
	if _, ok := names["var/lib/"].PAXRecords["SCHILY.xattr."+opaqueXattr]; ok {
		t.Error("opaque xattr exported as an xattr")
	}
	if h := names["bin/tool"]; h.Mode != 0o4755 {
		t.Errorf("setuid mode exported as %o", h.Mode)
	}

	// Apply it as a fresh base layer: same tree, same tar.
	l2, err := s.Apply(context.Background(), "", d1, bytes.NewReader(t1))
	if err != nil {
		t.Fatal(err)
	}
	if l2.ChainID == l.ChainID {
		t.Fatal("test needs a distinct layer")
	}
	if a, b := describeTree(t, l.Dir), describeTree(t, l2.Dir); a != b {
		t.Fatalf("trees differ:\n--- original\n%s\n--- round trip\n%s", a, b)
	}
	if t2 := readTar(t, s, l2.ChainID); !bytes.Equal(t1, t2) {
		t.Fatal("Tar(Apply(Tar(x))) != Tar(x)")
	}
	if l2.Size != l.Size {
		t.Errorf("size %d after round trip, want %d", l2.Size, l.Size)
	}
}

func TestTarMissingLayer(t *testing.T) {
	s := newTestStore(t)
	if _, err := s.Tar(context.Background(), digest.FromString("x")); !cerrdefs.IsNotFound(err) {
		t.Fatalf("err = %v", err)
	}
}

func TestTarCloseEarly(t *testing.T) {
	s := newTestStore(t)
	l := applyTar(t, s, "", fileEnt("big", string(bytes.Repeat([]byte("x"), 4<<20)), 0o644))
	rc, err := s.Tar(context.Background(), l.ChainID)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1024)
	if _, err := io.ReadFull(rc, buf); err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err) // the writer goroutine sees the closed pipe and exits
	}
}

func TestDecompress(t *testing.T) {
	payload := bytes.Repeat([]byte("layer data "), 10000)
	var gz, zs bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(payload)
	gw.Close()
	zw, _ := zstd.NewWriter(&zs)
	zw.Write(payload)
	zw.Close()

	for _, tc := range []struct {
		in   []byte
		want Compression
		out  []byte
	}{
		{gz.Bytes(), Gzip, payload},
		{zs.Bytes(), Zstd, payload},
		{payload, Uncompressed, payload},
		{[]byte{0x1f}, Uncompressed, []byte{0x1f}},
		{nil, Uncompressed, nil},
	} {
		rc, c, err := Decompress(bytes.NewReader(tc.in))
		if err != nil || c != tc.want {
			t.Fatalf("Decompress = %v, %v; want %v", c, err, tc.want)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, tc.out) {
			t.Fatalf("%v: read %d bytes, %v", c, len(got), err)
		}
	}

	for _, cut := range [][]byte{gz.Bytes()[:gz.Len()-5], zs.Bytes()[:zs.Len()/2]} {
		rc, c, err := Decompress(bytes.NewReader(cut))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(rc); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("%v: truncated stream: %v, want unexpected EOF", c, err)
		}
		rc.Close()
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

	var h TarHeaders
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
	var fresh TarHeaders
	var st unix.Stat_t
	must(unix.Fstatat(dfd, "g", &st, unix.AT_SYMLINK_NOFOLLOW))
	if hdr, err := fresh.Header(dfd, "g", "g", &st); err != nil || hdr.Typeflag != tar.TypeReg {
		t.Errorf("first name in a fresh tar: %+v %v", hdr, err)
	}
}
