package archive

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth/berth/archive/archivetest"
)

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// The escape suite against the package's own entry points; each user
// runs it again through its own.
func TestSuiteUnpackLayer(t *testing.T) {
	requireRoot(t)
	archivetest.Run(t, archivetest.Target{
		Name: "UnpackLayer", Kind: archivetest.Layer, Devices: true, SameOwner: true,
		Run: func(t *testing.T, _ func(string), tarball []byte) (string, error) {
			dir := filepath.Join(t.TempDir(), "diff")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			_, err := UnpackLayer(context.Background(), dir, bytes.NewReader(tarball))
			return dir, err
		},
	})
}

func TestSuiteExtract(t *testing.T) {
	requireRoot(t)
	for _, tc := range []struct {
		name string
		opts ExtractOptions
	}{
		{"same owner, devices", ExtractOptions{Devices: true}},
		{"no lchown", ExtractOptions{NoLchown: true, NoOverwriteDirNonDir: false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			archivetest.Run(t, archivetest.Target{
				Name: "Extract", Kind: archivetest.Extract, Devices: tc.opts.Devices, SameOwner: !tc.opts.NoLchown,
				Run: func(t *testing.T, plant func(string), tarball []byte) (string, error) {
					dir := t.TempDir()
					if plant != nil {
						plant(dir)
					}
					root, err := os.Open(dir)
					if err != nil {
						t.Fatal(err)
					}
					defer root.Close()
					return dir, Extract(context.Background(), root, "/", bytes.NewReader(tarball), tc.opts)
				},
			})
		})
	}
}
