package spec

import (
	"strings"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// securityOpts is what --security-opt says.
type securityOpts struct {
	noNewPrivileges bool
	// seccomp is "" (the default profile), "unconfined", or a profile's JSON.
	seccomp string
}

// parseSecurityOpts reads --security-opt values as Docker's daemon does:
// "key=value" (or the old "key:value"), and a bare "no-new-privileges".
//
// seccomp takes "unconfined", "builtin" (the default profile) or the JSON of
// a profile: the docker CLI reads `seccomp=/path/profile.json` on the client
// and sends the file's content, so the daemon never opens a path it is given.
// apparmor= and label= are accepted and ignored: this engine does not apply
// AppArmor or SELinux (as Docker on a host without them).
// systempaths=unconfined clears the masked and read-only paths.
func parseSecurityOpts(opts []string) (securityOpts, bool, error) {
	var so securityOpts
	systemPathsUnconfined := false
	for _, opt := range opts {
		if opt == "no-new-privileges" {
			so.noNewPrivileges = true
			continue
		}
		k, v, ok := strings.Cut(opt, "=")
		if !ok {
			k, v, ok = strings.Cut(opt, ":")
		}
		if !ok {
			return so, false, invalid("invalid --security-opt 1: %q", opt)
		}
		switch k {
		case "no-new-privileges":
			switch v {
			case "true", "":
				so.noNewPrivileges = true
			case "false":
				so.noNewPrivileges = false
			default:
				return so, false, invalid("invalid --security-opt 2: %q", opt)
			}
		case "seccomp":
			if v == "builtin" {
				v = ""
			}
			so.seccomp = v
		case "systempaths":
			if v != "unconfined" {
				return so, false, invalid("invalid --security-opt 2: %q", opt)
			}
			systemPathsUnconfined = true
		case "apparmor", "label":
		default:
			return so, false, invalid("invalid --security-opt 2: %q", opt)
		}
	}
	return so, systemPathsUnconfined, nil
}

// seccompCache holds the default profile converted for one capability set
// (the profile allows some syscalls only with some capabilities). Building
// one costs tens of µs and a few hundred allocations; a container start should
// not pay it.
var seccompCache struct {
	sync.Mutex
	m map[uint64]*specs.LinuxSeccomp
}

// seccompFor returns the seccomp filter for s, whose capabilities must be
// final. A cached default is shared between specs: treat it as read-only.
// On a kernel without the x32 ABI (host.NoX32), the profile's x32
// architecture is left out (see withoutX32).
func seccompFor(s *specs.Spec, profile string, host *Host) (*specs.LinuxSeccomp, error) {
	noX32 := host != nil && host.NoX32
	switch profile {
	case "unconfined":
		return nil, nil
	case "":
		key := capMask(s.Process.Capabilities.Bounding)
		if noX32 {
			key |= 1 << 63 // no capability has that bit
		}
		seccompCache.Lock()
		defer seccompCache.Unlock()
		if p, ok := seccompCache.m[key]; ok {
			return p, nil
		}
		p, err := seccomp.GetDefaultProfile(s)
		if err != nil {
			return nil, cerrdefs.ErrInternal.WithMessage(err.Error())
		}
		if noX32 {
			withoutX32(p)
		}
		if seccompCache.m == nil {
			seccompCache.m = map[uint64]*specs.LinuxSeccomp{}
		}
		seccompCache.m[key] = p
		return p, nil
	default:
		p, err := seccomp.LoadProfile(profile, s)
		if err != nil {
			return nil, cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
		if noX32 {
			withoutX32(p)
		}
		return p, nil
	}
}

// withoutX32 drops SCMP_ARCH_X32 from p's architectures, on a kernel that
// has no x32 ABI. There no x32 executable can run (execve refuses it) and
// an x32 system call fails with ENOSYS, so the x32 half of the filter
// never allows anything real. Leaving it out saves runc about 10 ms of
// CPU per container start (libseccomp 2.5 builds each architecture's
// filter separately; x86-64, x86 and x32 together cost ~20 ms). The one
// observable difference: a process that issues an x32 system call by hand
// (a number with bit 30 set) gets the filter's bad-architecture action
// instead of ENOSYS.
func withoutX32(p *specs.LinuxSeccomp) {
	if p == nil {
		return
	}
	archs := p.Architectures[:0:0]
	for _, a := range p.Architectures {
		if a != specs.ArchX32 {
			archs = append(archs, a)
		}
	}
	p.Architectures = archs
}

// seccompProfileUncached converts the default profile without the cache
// (benchmarks measure what the cache saves).
func seccompProfileUncached(s *specs.Spec) (*specs.LinuxSeccomp, error) {
	return seccomp.GetDefaultProfile(s)
}
