package container

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/container"

	rtspec "github.com/berth/berth/runtime/spec"
)

// frozen reports whether the freezer of container id's cgroup is frozen
// (or freezing); ok is false when it cannot be read (no such cgroup).
func (s *Service) frozen(id string) (frozen, ok bool) {
	if rtspec.DetectHost().CgroupV2 {
		b, err := os.ReadFile(filepath.Join(s.cgroupDir(id, ""), "cgroup.freeze"))
		if err != nil {
			return false, false
		}
		return strings.TrimSpace(string(b)) == "1", true
	}
	b, err := os.ReadFile(filepath.Join(s.cgroupDir(id, "freezer"), "freezer.state"))
	if err != nil {
		return false, false
	}
	st := strings.TrimSpace(string(b))
	return st == "FROZEN" || st == "FREEZING", true
}

// thaw thaws the freezer of container id's cgroup, if it has one: a
// frozen process dies of SIGKILL only once thawed. berthd does it itself
// only where the runtime cannot (its shim died, runc's state lost).
func (s *Service) thaw(id string) {
	if rtspec.DetectHost().CgroupV2 {
		_ = os.WriteFile(filepath.Join(s.cgroupDir(id, ""), "cgroup.freeze"), []byte("0"), 0o644)
		return
	}
	_ = os.WriteFile(filepath.Join(s.cgroupDir(id, "freezer"), "freezer.state"), []byte("THAWED"), 0o644)
}

// reconcilePause brings the recorded pause of a running container in line
// with its cgroup's freezer, which is what the runtime did: a pause or
// unpause that a crash cut short between the runtime's change and the
// record's save (crash loop finding) left a frozen container recorded
// running and not paused (its stop and rm -f then waited on it forever:
// they thaw only a paused one) or a thawed one recorded paused. The
// freezer wins, as containerd's task status does for dockerd. Called by
// restore for the running containers it keeps, after thawCommitPause.
func (s *Service) reconcilePause(c *Container) {
	frozen, ok := s.frozen(c.ID)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.State.Running || c.State.Paused == frozen {
		return
	}
	s.log.Info("restore: the container's freezer disagrees with its record (a pause or unpause cut short); recorded as the freezer says",
		"id", c.ID, "frozen", frozen)
	c.State.Paused = frozen
	c.State.Status = container.StateRunning
	if frozen {
		c.State.Status = container.StatePaused
	}
	if err := c.save(s.dir(c.ID)); err != nil {
		s.log.Warn("restore: save the container's pause state", "id", c.ID, "err", err)
	}
}
