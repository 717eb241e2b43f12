package container

import (
	"path/filepath"
	"slices"
	"testing"

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
	want = filepath.Join("/sys/fs/cgroup/memory", cgroupsPath(id))
	if rtspec.DetectHost().CgroupV2 {
		want = filepath.Join("/sys/fs/cgroup", cgroupsPath(id))
	}
	if got := s.cgroupPaths(id); !slices.Equal(got, []string{want}) {
		t.Errorf("default cgroupPaths %q, want %s", got, want)
	}
}
