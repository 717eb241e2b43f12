package volume

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth/berth/archive"
	"github.com/berth/berth/archive/archivetest"
)

// The archive package's escape suite through CopyUp: each case's tar is
// put into an image directory (confined, by the archive package) and a
// fresh volume is filled from it; nothing from outside that directory may
// come along, nothing outside the volume may change.
func TestCopyUpSuite(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	s := newService(t)
	n := 0
	archivetest.Run(t, archivetest.Target{
		Name: "volume CopyUp", Kind: archivetest.Copy, Devices: true, SameOwner: true,
		Run: func(t *testing.T, _ func(string), tarball []byte) (string, error) {
			img := t.TempDir()
			root, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			_ = archive.Extract(context.Background(), root, "/", bytes.NewReader(tarball), archive.ExtractOptions{Devices: true})
			root.Close()
			n++
			name := fmt.Sprintf("suite%d", n)
			v := mustCreate(t, s, name, nil, nil)
			return v.Mountpoint, s.CopyUp(context.Background(), name, filepath.Join(img, "."))
		},
	})
}
