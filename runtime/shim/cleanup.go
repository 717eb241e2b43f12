package shim

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// removeRuncState does what `runc delete` does for a container whose init
// has exited and been reaped, without the cost of running runc (a process
// start, ~5 ms of CPU per container): it removes the container's cgroups
// and runc's state directory. It reads runc's state.json, and only takes
// the cases it fully understands: a private PID namespace (so no process
// can be left in the cgroups once the init is gone), no poststop hooks, no
// Intel RDT group. It reports false when the caller must run `runc delete`
// instead (another runtime's state, anything unexpected, a cgroup that
// will not go).
func removeRuncState(runtimeRoot, id string) bool {
	dir := filepath.Join(runtimeRoot, id)
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return errors.Is(err, os.ErrNotExist) && !exists(dir)
	}
	var st struct {
		CgroupPaths  map[string]string `json:"cgroup_paths"`
		IntelRdtPath string            `json:"intel_rdt_path"`
		Config       struct {
			Namespaces []struct {
				Type string `json:"type"`
				Path string `json:"path"`
			} `json:"namespaces"`
			Hooks map[string][]json.RawMessage `json:"Hooks"`
		} `json:"config"`
	}
	if err := json.Unmarshal(b, &st); err != nil || st.CgroupPaths == nil || st.IntelRdtPath != "" {
		return false
	}
	if len(st.Config.Hooks["poststop"]) > 0 {
		return false
	}
	privatePID := false
	for _, ns := range st.Config.Namespaces {
		if ns.Type == "NEWPID" && ns.Path == "" {
			privatePID = true
		}
	}
	if !privatePID {
		return false
	}
	for _, p := range st.CgroupPaths {
		if !strings.HasPrefix(p, "/sys/fs/cgroup/") || !removeCgroup(p) {
			return false
		}
	}
	return os.RemoveAll(dir) == nil
}

// removeCgroup removes a cgroup directory and any below it (deepest
// first). rmdir of a cgroup whose last tasks are still being torn down can
// fail with EBUSY for a moment; it is retried briefly.
func removeCgroup(path string) bool {
	var dirs []string
	_ = filepath.WalkDir(path, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	for _, d := range dirs {
		var err error
		for try := 0; try < 10; try++ {
			if err = unix.Rmdir(d); err == nil || errors.Is(err, unix.ENOENT) {
				err = nil
				break
			}
			if !errors.Is(err, unix.EBUSY) {
				break
			}
			time.Sleep(time.Duration(try+1) * 5 * time.Millisecond)
		}
		if err != nil {
			return false
		}
	}
	return true
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
