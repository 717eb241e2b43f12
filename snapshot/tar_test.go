package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth/berth/archive"
)

func readTar(t *testing.T, s *Store, chainID digest.Digest) []byte {
	t.Helper()
	l, err := s.Get(context.Background(), chainID)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := archive.TarDir(context.Background(), l.Dir, archive.WriterOptions{Layer: true})
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

	// The layer tar (archive.TarDir) uses Docker's whiteout format.
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
	if _, ok := names["var/lib/"].PAXRecords["SCHILY.xattr."+archive.OpaqueXattr]; ok {
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
