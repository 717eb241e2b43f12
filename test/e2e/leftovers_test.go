package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// What a removed container must not leave behind (issue 3, bad input:
// "no mount, cgroup, shim process or runc state is left behind after rm,
// after a failed start, or after berthd is killed and restarted").

var containerPathRE = regexp.MustCompile(`/containers/([0-9a-f]{64})\b`)

// daemonContainerIDs are the container IDs a daemon's log names (berthd
// logs every request path at debug level) plus those the suite noted.
func daemonContainerIDs(d *daemon) map[string]bool {
	ids := map[string]bool{}
	if b, err := os.ReadFile(d.logPath); err == nil {
		for _, m := range containerPathRE.FindAllStringSubmatch(string(b), -1) {
			ids[m[1]] = true
		}
	}
	seenContainers.Lock()
	for id := range seenContainers.ids {
		ids[id] = true
	}
	seenContainers.Unlock()
	return ids
}

// containerLeftovers lists what berth left of containers that no longer
// exist: mounts under the daemon's directories, berth-shim processes
// serving them, runc state, cgroups named after a gone container, and
// files under the data and exec roots named after one.
func containerLeftovers(d *daemon, gone map[string]bool) []string {
	var out []string
	roots := []string{d.dir, d.dataRoot, d.execRoot}
	under := func(p string) bool {
		for _, r := range roots {
			if p == r || strings.HasPrefix(p, r+"/") {
				return true
			}
		}
		return false
	}
	// Mounts. The exec root's netns directory is the daemon's own shared
	// mount (as /run/docker/netns is dockerd's); what is mounted in it is
	// per container.
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 5 {
				continue
			}
			p := unescapeMountPath(fields[4])
			if under(p) && p != filepath.Join(d.execRoot, "netns") {
				out = append(out, "mount "+p)
			}
		}
		f.Close()
	}
	// Shims: their command line names the daemon's directories, or (a
	// spare shim berthd booted ahead and then gave a container) their
	// working directory is the container's state directory. An idle spare
	// (cwd /) is the daemon's own, like its other processes.
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), "berth-shim") {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		cwd, _ := os.Readlink(filepath.Join(filepath.Dir(p), "cwd"))
		if slices.ContainsFunc(args, under) || (cwd != "" && under(cwd)) {
			out = append(out, fmt.Sprintf("shim process %s (in %s): %s", filepath.Base(filepath.Dir(p)), cwd, strings.Join(args, " ")))
		}
	}
	// runc state (a state.json under the exec root) and files named
	// after a gone container.
	for _, root := range []string{d.execRoot, d.dataRoot} {
		filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if de.Name() == "state.json" && root == d.execRoot {
				out = append(out, "runc state "+p)
			}
			for id := range gone {
				if strings.Contains(de.Name(), id[:16]) {
					out = append(out, "file "+p)
					if de.IsDir() {
						return filepath.SkipDir
					}
					break
				}
			}
			return nil
		})
	}
	// cgroups.
	for id := range gone {
		for _, pat := range []string{"/sys/fs/cgroup/*/berth/*" + id + "*", "/sys/fs/cgroup/berth/*" + id + "*", "/sys/fs/cgroup/*/berth/*/*" + id + "*"} {
			m, _ := filepath.Glob(pat)
			for _, p := range m {
				out = append(out, "cgroup "+p)
			}
		}
	}
	sort.Strings(out)
	return out
}

// suiteLeftovers runs after every test: no container or volume of the
// suite is left on the daemon, and (berth) nothing of the removed
// containers is left on the host.
func suiteLeftovers(d *daemon) []string {
	var out []string
	a := d.api()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	existing := map[string]bool{}
	if r, err := a.do(ctx, "GET", "/containers/json?all=1", nil, nil); err == nil && r.Status == 200 {
		var cs []struct {
			Id    string
			Names []string
		}
		json.Unmarshal(r.Body, &cs)
		for _, c := range cs {
			existing[c.Id] = true
			out = append(out, fmt.Sprintf("container %s %v is still there", c.Id, c.Names))
		}
	} else {
		out = append(out, fmt.Sprintf("GET /containers/json: %v %v", r, err))
	}
	if r, err := a.do(ctx, "GET", "/volumes", nil, nil); err == nil && r.Status == 200 {
		var vs struct{ Volumes []struct{ Name string } }
		json.Unmarshal(r.Body, &vs)
		for _, v := range vs.Volumes {
			out = append(out, "volume "+v.Name+" is still there")
		}
	}
	if d.kind != "berth" {
		return out
	}
	gone := map[string]bool{}
	for id := range daemonContainerIDs(d) {
		if !existing[id] {
			gone[id] = true
		}
	}
	// Give a just-removed container's shim a moment to exit.
	var left []string
	poll(10*time.Second, func() bool {
		left = containerLeftovers(d, gone)
		return len(left) == 0
	})
	return append(out, left...)
}
