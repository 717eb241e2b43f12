package container

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/moby/moby/api/types/container"

	rtspec "github.com/berth/berth/runtime/spec"
)

// TestCgroupPathsFollowCgroupDir: the shim looks for OOM kills where
// stats reads memory, on either cgroup version and under a configured
// root.
func TestCgroupPathsFollowCgroupDir(t *testing.T) {
	id := "0123456789abcdef"
	s := &Service{cfg: Config{CgroupRoots: map[string]string{"memory": "/cg/memory", "": "/cg/unified"}}}
	want := "/cg/memory/berth/" + id
	if rtspec.DetectHost().CgroupV2 {
		want = "/cg/unified/berth/" + id
	}
	if got := s.cgroupPaths(id); !slices.Equal(got, []string{want}) || got[0] != s.cgroupDir(id, "memory") {
		t.Errorf("cgroupPaths %q, want [%s] (cgroupDir %s)", got, want, s.cgroupDir(id, "memory"))
	}
	s = &Service{}
	want = filepath.Join("/sys/fs/cgroup/memory", s.cgroupsPath(id))
	if rtspec.DetectHost().CgroupV2 {
		want = filepath.Join("/sys/fs/cgroup", s.cgroupsPath(id))
	}
	if got := s.cgroupPaths(id); !slices.Equal(got, []string{want}) {
		t.Errorf("default cgroupPaths %q, want %s", got, want)
	}
}

// TestCgroupParentPath: --cgroup-parent places the cgroup, cleaned so that
// "../" cannot climb out of the hierarchy.
func TestCgroupParentPath(t *testing.T) {
	s := &Service{}
	for parent, want := range map[string]string{"": "/berth/x", "test": "/test/x", "/a/b": "/a/b/x", "../../../../evil": "/evil/x"} {
		c := &Container{ID: "x", HostConfig: &container.HostConfig{}}
		c.HostConfig.CgroupParent = parent
		s.cgroupParents.Delete("x")
		s.noteCgroupParent(c)
		if got := s.cgroupsPath("x"); got != want {
			t.Errorf("--cgroup-parent %q: %s, want %s", parent, got, want)
		}
	}
}
