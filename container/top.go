package container

// docker top: the host's ps, restricted to the container's processes.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"

	rtspec "github.com/berth/berth/runtime/spec"
)

// Top answers GET /containers/{id}/top: `ps psArgs` (default "-ef") on the
// host, keeping the rows of the container's processes (those in its
// cgroup), with ps's header as Titles.
func (s *Service) Top(ctx context.Context, name, psArgs string) (*container.TopResponse, error) {
	c, err := s.Get(name)
	if err != nil {
		return nil, err
	}
	if psArgs == "" {
		psArgs = "-ef"
	}
	if err := validatePSArgs(psArgs); err != nil {
		return nil, err
	}
	c.mu.Lock()
	running, restarting := c.State.Running, c.State.Restarting
	c.mu.Unlock()
	if restarting {
		return nil, cerrdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is restarting, wait until the container is running", c.ID))
	}
	if !running {
		return nil, cerrdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is not running", c.ID))
	}
	pids, err := s.containerPids(c.ID)
	if err != nil {
		return nil, err
	}
	args := asciiFields(psArgs)
	out, err := exec.CommandContext(ctx, "ps", append(args, pidsArg(pids))...).Output()
	if err != nil {
		// Some options (such as f) don't go with -q: ask for everything.
		out, err = exec.CommandContext(ctx, "ps", args...).Output()
		if err != nil {
			msg := err.Error()
			if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
				msg = strings.TrimSpace(string(ee.Stderr))
			}
			return nil, fmt.Errorf("Error running ps: %s", msg)
		}
	}
	resp, err := parsePS(out, pids)
	if err != nil {
		return nil, err
	}
	s.emit(c, "top", nil)
	return resp, nil
}

var psArgPID = regexp.MustCompile(`\s+([^\s]*)=\s*(PID[^\s]*)`)

// validatePSArgs refuses renaming another column PID ("-o user=PID"),
// which would make the filtering show the wrong processes, as Docker.
func validatePSArgs(a string) error {
	for _, m := range psArgPID.FindAllStringSubmatch(a, -1) {
		if m[1] != "pid" {
			return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("specifying \"%s=%s\" is not allowed", m[1], m[2]))
		}
	}
	return nil
}

// asciiFields splits on ASCII white space only (ps output may hold other
// bytes that strings.Fields would split on).
func asciiFields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f'
	})
}

func pidsArg(pids []int) string {
	var b strings.Builder
	b.WriteString("-q")
	for i, p := range pids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(p))
	}
	return b.String()
}

// parsePS keeps the rows of ps output whose PID is one of pids. A row
// with more fields than titles has the overflow joined into its last
// column (the command line); a thread row ("-" for PID, with ps -m)
// belongs to the process row above it.
func parsePS(out []byte, pids []int) (*container.TopResponse, error) {
	lines := strings.Split(string(out), "\n")
	resp := &container.TopResponse{Titles: asciiFields(lines[0])}
	pidCol := -1
	for i, t := range resp.Titles {
		if t == "PID" {
			pidCol = i
			break
		}
	}
	if pidCol < 0 {
		return nil, fmt.Errorf("Couldn't find PID field in ps output")
	}
	want := make(map[int]bool, len(pids))
	for _, p := range pids {
		want[p] = true
	}
	inside := false
	for _, line := range lines[1:] {
		f := asciiFields(line)
		if len(f) <= pidCol {
			continue
		}
		row := func() {
			n := len(resp.Titles)
			if len(f) > n {
				f = append(f[:n-1:n-1], strings.Join(f[n-1:], " "))
			}
			resp.Processes = append(resp.Processes, f)
		}
		if f[pidCol] == "-" {
			if inside {
				row()
			}
			continue
		}
		p, err := strconv.Atoi(f[pidCol])
		if err != nil {
			return nil, fmt.Errorf("Unexpected pid '%s': %s", f[pidCol], err)
		}
		inside = want[p]
		if inside {
			row()
		}
	}
	return resp, nil
}

// cgroupDir is the container's cgroup directory for a v1 controller
// (ignored on v2, where there is one directory).
func (s *Service) cgroupDir(id, controller string) string {
	if rtspec.DetectHost().CgroupV2 {
		root := "/sys/fs/cgroup"
		if r, ok := s.cfg.CgroupRoots[""]; ok && r != "" {
			root = r
		}
		return filepath.Join(root, s.cgroupsPath(id))
	}
	if r, ok := s.cfg.CgroupRoots[controller]; ok && r != "" {
		return filepath.Join(r, s.cgroupsPath(id))
	}
	dir := filepath.Join("/sys/fs/cgroup", controller)
	if _, err := os.Stat(dir); err != nil && (controller == "cpu" || controller == "cpuacct") {
		dir = "/sys/fs/cgroup/cpu,cpuacct"
	}
	return filepath.Join(dir, s.cgroupsPath(id))
}

// containerPids lists the processes in the container's cgroup and its
// sub-cgroups, sorted.
func (s *Service) containerPids(id string) ([]int, error) {
	root := s.cgroupDir(id, "pids")
	var pids []int
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		f, err := os.Open(filepath.Join(p, "cgroup.procs"))
		if err != nil {
			return nil
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if n, err := strconv.Atoi(strings.TrimSpace(sc.Text())); err == nil {
				pids = append(pids, n)
			}
		}
		return nil
	})
	sort.Ints(pids)
	return pids, err
}
