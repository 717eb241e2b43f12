package spec

import (
	"fmt"
	"path"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// Validate checks the invariants a spec from this package always has, so
// that a mistake shows up here rather than as a runc failure: an absolute
// root; a command and an absolute working directory; known capabilities with
// empty inheritable and ambient sets; one rlimit per type; absolute, clean
// and unique mount destinations; one namespace per type, joined by absolute
// paths; a hostname only with a UTS namespace. Errors are of class
// cerrdefs.ErrInvalidArgument.
func Validate(s *specs.Spec) error {
	bad := func(format string, a ...any) error {
		return cerrdefs.ErrInvalidArgument.WithMessage("invalid runtime spec: " + fmt.Sprintf(format, a...))
	}
	if s.Root == nil || !path.IsAbs(s.Root.Path) {
		return bad("root path must be absolute")
	}
	p := s.Process
	if p == nil {
		return bad("no process")
	}
	if err := validateProcess(p); err != nil {
		return bad("%v", err)
	}
	seen := make(map[string]bool, len(s.Mounts))
	for _, m := range s.Mounts {
		if !path.IsAbs(m.Destination) || path.Clean(m.Destination) != m.Destination {
			return bad("mount destination %q must be a clean absolute path", m.Destination)
		}
		if seen[m.Destination] {
			return bad("duplicate mount destination %q", m.Destination)
		}
		seen[m.Destination] = true
	}
	if s.Linux == nil {
		return bad("no linux section")
	}
	types := map[specs.LinuxNamespaceType]bool{}
	for _, n := range s.Linux.Namespaces {
		if types[n.Type] {
			return bad("duplicate %s namespace", n.Type)
		}
		types[n.Type] = true
		if n.Path != "" && !path.IsAbs(n.Path) {
			return bad("%s namespace path %q is not absolute", n.Type, n.Path)
		}
	}
	if !types[specs.MountNamespace] {
		return bad("no mount namespace")
	}
	if (s.Hostname != "" || s.Domainname != "") && !types[specs.UTSNamespace] {
		return bad("a hostname needs a UTS namespace")
	}
	if s.Linux.CgroupsPath == "" {
		return bad("no cgroups path")
	}
	return nil
}

func validateProcess(p *specs.Process) error {
	if len(p.Args) == 0 || p.Args[0] == "" {
		return fmt.Errorf("no command")
	}
	if !path.IsAbs(p.Cwd) {
		return fmt.Errorf("working directory %q is not absolute", p.Cwd)
	}
	if c := p.Capabilities; c != nil {
		if len(c.Inheritable) > 0 || len(c.Ambient) > 0 {
			return fmt.Errorf("inheritable and ambient capabilities must be empty")
		}
		for _, set := range [][]string{c.Bounding, c.Effective, c.Permitted} {
			for _, name := range set {
				if _, ok := capBit[name]; !ok {
					return fmt.Errorf("unknown capability %q", name)
				}
			}
		}
	}
	rl := map[string]bool{}
	for _, r := range p.Rlimits {
		if rl[r.Type] {
			return fmt.Errorf("duplicate rlimit %s", r.Type)
		}
		rl[r.Type] = true
		if r.Soft > r.Hard {
			return fmt.Errorf("rlimit %s: soft limit above hard limit", r.Type)
		}
	}
	return nil
}
