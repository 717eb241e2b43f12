package container

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/berth/berth/archive"
	"github.com/berth/berth/archive/archivetest"
)

// The archive package's escape suite through PUT and GET
// /containers/{id}/archive, on created containers of a real service.
func TestArchiveSuite(t *testing.T) {
	e := newXEnv(t)
	ctx := context.Background()
	upper := func(t *testing.T, id string) string {
		t.Helper()
		dir, _, err := e.svc.layerDirs(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return dir
	}
	t.Run("PUT", func(t *testing.T) {
		archivetest.Run(t, archivetest.Target{
			Name: "PUT archive", Kind: archivetest.Extract, Devices: true, SameOwner: true,
			Run: func(t *testing.T, plant func(string), tarball []byte) (string, error) {
				id := e.create(t, []string{"true"}, nil)
				dir := upper(t, id)
				if plant != nil {
					plant(dir)
				}
				return dir, e.svc.ArchivePut(ctx, id, "/", ExtractOptions{}, bytes.NewReader(tarball))
			},
		})
	})
	t.Run("GET", func(t *testing.T) {
		archivetest.Run(t, archivetest.Target{
			Name: "GET archive", Kind: archivetest.Copy, Devices: true, SameOwner: true,
			Run: func(t *testing.T, _ func(string), tarball []byte) (string, error) {
				id := e.create(t, []string{"true"}, nil)
				if err := os.Mkdir(filepath.Join(upper(t, id), "t"), 0o755); err != nil {
					t.Fatal(err)
				}
				// Whatever PUT lets into the container (it may refuse
				// part of the tar) is what GET then copies out.
				_ = e.svc.ArchivePut(ctx, id, "/t", ExtractOptions{}, bytes.NewReader(tarball))
				_, rc, err := e.svc.ArchiveGet(ctx, id, "/t/.")
				if err != nil {
					return "", err
				}
				defer rc.Close()
				out := t.TempDir()
				root, err := os.Open(out)
				if err != nil {
					t.Fatal(err)
				}
				defer root.Close()
				return out, archive.Extract(ctx, root, "/", rc, archive.ExtractOptions{Devices: true})
			},
		})
	})
}

// PUT takes the compressions dockerd takes; a corrupt or cut body is an
// invalid argument and leaves nothing behind, not even the entries before
// the damage.
func TestArchivePutCompressed(t *testing.T) {
	e := newXEnv(t)
	ctx := context.Background()
	id := e.create(t, []string{"true"}, nil)
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	for i := range 20 {
		body := bytes.Repeat([]byte{'a' + byte(i)}, 20000)
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("f%02d", i), Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write(body)
	}
	tw.Close()
	for _, c := range []archive.Compression{archive.None, archive.Gzip, archive.Bzip2, archive.Xz, archive.Zstd} {
		body := compressWith(t, c, tarball.Bytes())
		dir := "/" + archive.Name(c)
		if err := e.svc.ArchivePut(ctx, id, "/", ExtractOptions{}, xMakeTar(t, xTarFile{name: dir[1:] + "/", typ: tar.TypeDir})); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.ArchivePut(ctx, id, dir, ExtractOptions{}, bytes.NewReader(body)); err != nil {
			t.Fatalf("%s: %v", archive.Name(c), err)
		}
		if _, files := xGet(t, e, id, dir+"/f19"); files["f19"].data != strings.Repeat("t", 20000) {
			t.Fatalf("%s: f19 is not there", archive.Name(c))
		}
		if c == archive.None {
			continue
		}
		bad := append(append([]byte(nil), body[:len(body)*2/3]...), bytes.Repeat([]byte{0x5a}, 4096)...)
		if err := e.svc.ArchivePut(ctx, id, "/", ExtractOptions{}, xMakeTar(t, xTarFile{name: "bad/", typ: tar.TypeDir})); err != nil {
			t.Fatal(err)
		}
		err := e.svc.ArchivePut(ctx, id, "/bad", ExtractOptions{}, bytes.NewReader(bad))
		if !cerrdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "invalid ") {
			t.Errorf("%s, corrupt: %v, want an invalid argument", archive.Name(c), err)
		}
		if _, files := xGet(t, e, id, "/bad/."); len(files) != 1 {
			t.Errorf("%s, corrupt: /bad holds %v after a refused PUT", archive.Name(c), xNames(files))
		}
	}
}

// compressWith compresses b with c (bzip2 and xz through the system's
// tools, which berth does not need otherwise).
func compressWith(t *testing.T, c archive.Compression, b []byte) []byte {
	t.Helper()
	switch c {
	case archive.None:
		return b
	case archive.Bzip2, archive.Xz:
		cmd := exec.Command(archive.Name(c), "-c")
		cmd.Stdin = bytes.NewReader(b)
		out, err := cmd.Output()
		if err != nil {
			t.Skipf("%s: %v", archive.Name(c), err)
		}
		return out
	}
	var buf bytes.Buffer
	w, err := archive.Compress(&buf, c)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// docker cp ctr:path - carries the owner names of the container's own
// passwd and group, as dockerd's; a created, never started container shows
// empty /etc files, as dockerd's init layer does.
func TestArchiveGetNamesAndCreated(t *testing.T) {
	e := newXEnv(t)
	ctx := context.Background()
	id := e.create(t, []string{"true"}, nil)
	for _, p := range []string{"/etc/hostname", "/etc/hosts", "/etc/resolv.conf"} {
		st, files := xGet(t, e, id, p)
		f, ok := files[path.Base(p)]
		if !ok || f.data != "" || st.Size != 0 || st.Mode.Perm() != 0o755 || f.hdr.Uname != "root" {
			t.Errorf("created container, GET %s: stat %+v, entry %+v", p, st, f.hdr)
		}
	}
	xNoSessionMounts(t, e)
	if ents, _ := os.ReadDir(filepath.Join(e.root, "run", "fs")); len(ents) != 0 {
		t.Errorf("stand-in files left: %v", ents)
	}

	// Names: uid 1000 is "app" in the image's passwd, 4242 is nobody's.
	tarball := xMakeTar(t, xTarFile{name: "d/", typ: tar.TypeDir}, xTarFile{name: "d/app", body: "a"}, xTarFile{name: "d/anon", body: "b"})
	if err := e.svc.ArchivePut(ctx, id, "/", ExtractOptions{}, tarball); err != nil {
		t.Fatal(err)
	}
	up, _, err := e.svc.layerDirs(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	os.Lchown(filepath.Join(up, "d", "app"), 1000, 1000)
	os.Lchown(filepath.Join(up, "d", "anon"), 4242, 4242)
	_, files := xGet(t, e, id, "/d")
	for name, want := range map[string][2]string{"d/": {"root", "root"}, "d/app": {"app", "app"}, "d/anon": {"", ""}} {
		if h := files[name].hdr; h == nil || h.Uname != want[0] || h.Gname != want[1] {
			t.Errorf("%s: uname/gname %v, want %v", name, h, want)
		}
	}
}
