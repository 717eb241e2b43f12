package snapshot

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// VolatileMounts is Mounts for a writable layer that is thrown away with
// its container (`run --rm`): the overlay gets the "volatile" option
// (Linux 5.10+), so neither unmounting it nor an fsync inside the
// container flushes the host's filesystem. Unmounting an overlay
// otherwise syncs the whole filesystem under the upper dir, which costs
// milliseconds per container exit and far more while other work writes.
// After a crash such a layer may be incomplete; it is removed, never used
// again. Podman mounts the layers of --rm containers the same way.
//
// overlayfs leaves a marker in the work dir that refuses any later mount
// of the same upper dir. This process unmounted that layer cleanly (a
// restart of the same container), so the marker is removed first.
func (s *Store) VolatileMounts(ctx context.Context, key string) (Mount, error) {
	m, err := s.Mounts(ctx, key)
	if err != nil || m.Type != "overlay" || !volatileSupported() {
		return m, err
	}
	if err := os.RemoveAll(filepath.Join(m.option("workdir"), "work", "incompat")); err != nil {
		return Mount{}, err
	}
	opts := append(append([]string(nil), m.Options...), "volatile")
	if !fitsPage(opts) {
		return m, nil
	}
	m.Options = opts
	return m, nil
}

var volatileSupported = sync.OnceValue(func() bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false
	}
	return kernelAtLeast(unix.ByteSliceToString(u.Release[:]), 5, 10)
})

// kernelAtLeast reports whether a kernel release string ("6.1.0-13-amd64")
// is at least major.minor.
func kernelAtLeast(release string, major, minor int) bool {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return false
	}
	lead := func(s string) string {
		if i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
			return s[:i]
		}
		return s
	}
	ma, err1 := strconv.Atoi(lead(parts[0]))
	mi, err2 := strconv.Atoi(lead(parts[1]))
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || (ma == major && mi >= minor)
}
