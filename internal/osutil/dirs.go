package osutil

import (
	"fmt"
	"io/fs"
	"os"
)

// Modes of berthd's state directories (issue 12, item 1). A running
// container's filesystem, its setuid binaries and device nodes, the image
// layers and the content store all live below the data root and the exec
// root, so no user but root may walk into either: the data root is 0710
// (as dockerd's), the exec root 0711 because the default API socket lives
// in it (its own mode and group say who may use it), and every directory
// below either is 0700.
const (
	DataRootMode fs.FileMode = 0o710
	ExecRootMode fs.FileMode = 0o711
	PrivateMode  fs.FileMode = 0o700
)

// MkdirPrivate creates dir (and missing parents, with the same mode) with
// mode perm, and sets perm on an existing dir whose mode differs: state
// left by an older berthd with looser modes is closed at the next start.
// A path that exists and is not a directory is an error.
func MkdirPrivate(dir string, perm fs.FileMode) error {
	if err := os.MkdirAll(dir, perm); err != nil {
		return err
	}
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if st.Mode().Perm() != perm || st.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
		if err := os.Chmod(dir, perm); err != nil {
			return err
		}
	}
	return nil
}
