package cli

import (
	"bytes"
	"context"
	"testing"

	goarchive "github.com/moby/go-archive"

	"github.com/berth/berth/archive/archivetest"
)

// The archive package's escape suite through the CLI's side of
// `cp CONTAINER:SRC DEST`: what a container sends must stay under DEST.
func TestCpExtractSuite(t *testing.T) {
	archivetest.Run(t, archivetest.Target{
		Name: "berth cp extraction", Kind: archivetest.Extract, Devices: false, SameOwner: false,
		Run: func(t *testing.T, plant func(string), tarball []byte) (string, error) {
			dir := t.TempDir()
			if plant != nil {
				plant(dir)
			}
			src := goarchive.CopyInfo{Path: "/t", Exists: true, IsDir: true}
			dst, err := goarchive.CopyInfoDestinationPath(dir)
			if err != nil {
				t.Fatal(err)
			}
			return dir, extractCopy(context.Background(), bytes.NewReader(tarball), src, dst)
		},
	})
}
