package container

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

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
