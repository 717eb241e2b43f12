package volume

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"syscall"
)

type devIno struct{ dev, ino uint64 }

// dirSize sums the sizes of everything under dir but directories, counting
// each inode once, like Docker's volume sizes.
func dirSize(ctx context.Context, dir string) (int64, error) {
	seen := map[devIno]bool{}
	var size int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && path != dir {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			key := devIno{uint64(st.Dev), st.Ino}
			if seen[key] {
				return nil
			}
			seen[key] = true
		}
		size += fi.Size()
		return nil
	})
	return size, err
}
