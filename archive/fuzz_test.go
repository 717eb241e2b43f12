package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func tarOf(entries ...*tar.Header) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range entries {
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(h.Linkname))
			body := h.Linkname
			h.Linkname = ""
			tw.WriteHeader(h)
			io.WriteString(tw, body)
			continue
		}
		tw.WriteHeader(h)
	}
	tw.Close()
	return b.Bytes()
}

// FuzzUnpackLayer unpacks arbitrary layer tars (escapes through "..",
// absolute names, symlinks and hard links, whiteouts and opaque
// directories, device nodes) into a directory beside a sentinel file:
// no panic, nothing written outside the directory, the sentinel intact.
func FuzzUnpackLayer(f *testing.F) {
	if os.Geteuid() != 0 {
		f.Skip("unpacking layers needs root")
	}
	reg := func(name, body string) *tar.Header {
		return &tar.Header{Typeflag: tar.TypeReg, Name: name, Linkname: body, Mode: 0o644}
	}
	f.Add(tarOf(&tar.Header{Typeflag: tar.TypeDir, Name: "etc/", Mode: 0o755}, reg("etc/passwd", "root:x:0:0\n")))
	f.Add(tarOf(reg("../escape", "x"), reg("/abs", "y")))
	f.Add(tarOf(&tar.Header{Typeflag: tar.TypeSymlink, Name: "l", Linkname: "../../"}, reg("l/sentinel", "overwritten")))
	f.Add(tarOf(&tar.Header{Typeflag: tar.TypeSymlink, Name: "d", Linkname: "/"}, reg("d/escape", "x")))
	f.Add(tarOf(&tar.Header{Typeflag: tar.TypeLink, Name: "h", Linkname: "../sentinel"}))
	f.Add(tarOf(&tar.Header{Typeflag: tar.TypeDir, Name: "a/", Mode: 0o755}, reg("a/.wh..wh..opq", ""), reg(".wh.a", ""), reg("a/.wh.b", ""), reg(".wh...", "")))
	f.Add(tarOf(&tar.Header{Typeflag: tar.TypeChar, Name: "kmsg", Devmajor: 1, Devminor: 11, Mode: 0o666}, &tar.Header{Typeflag: tar.TypeFifo, Name: "fifo", Mode: 0o600}))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Entries may declare (sparse) sizes far beyond their bytes: keep
		// the fuzzer's disk use small.
		tr := tar.NewReader(bytes.NewReader(data))
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			if h.Size > 1<<20 {
				return
			}
		}
		parent := t.TempDir()
		sentinel := filepath.Join(parent, "sentinel")
		if err := os.WriteFile(sentinel, []byte("keep"), 0o644); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(parent, "layer")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		_, err := UnpackLayer(context.Background(), dir, bytes.NewReader(data))
		ents, rerr := os.ReadDir(parent)
		if rerr != nil {
			t.Fatal(rerr)
		}
		if len(ents) != 2 {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Fatalf("unpack wrote beside its directory: %q (err %v)", names, err)
		}
		if b, err := os.ReadFile(sentinel); err != nil || string(b) != "keep" {
			t.Fatalf("the sentinel beside the layer changed: %q, %v", b, err)
		}
	})
}
