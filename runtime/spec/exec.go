package spec

import (
	"errors"
	"path"
	"slices"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// ExecInput is what `docker exec` asks for.
type ExecInput struct {
	// Cmd is the command to run; it must not be empty.
	Cmd []string
	// Env is added to the container's environment (-e); a bare KEY unsets.
	Env []string
	// User is -u; "" runs as the container's user.
	User string
	// GroupAdd is the container's --group-add, applied when User is set
	// (the container's own user already carries it).
	GroupAdd []string
	// WorkingDir is -w; "" means the container's working directory.
	WorkingDir string
	// Tty is -t; ConsoleSize is its initial {height, width}, if known.
	Tty         bool
	ConsoleSize [2]uint
	// Privileged is --privileged: every capability the host has.
	Privileged bool
	// Pid is the host PID of the container's init. When set, the working
	// directory is checked through /proc/PID/root, which sees whatever the
	// running container has done to its filesystem (symlinks planted in a
	// tmpfs included); when 0 it is checked against base's rootfs and
	// mounts only.
	Pid int
	// Users resolves User; nil means RootfsUsers(base.Root.Path).
	Users UserResolver
	// Host describes this machine; nil means DetectHost().
	Host *Host
}

// ExecProcess builds the process of a `docker exec` in a container started
// with spec base. As in Docker it starts from the container's process — its
// rlimits, no-new-privileges, OOM score, capabilities and user — and
// replaces the command, environment, terminal, working directory, user (with
// -u) and capabilities (with --privileged). The environment is the
// container's, with TERM=xterm following this exec's -t, then Env on top.
// base is not modified.
func ExecProcess(base *specs.Spec, in ExecInput) (*specs.Process, error) {
	if base == nil || base.Process == nil || base.Root == nil {
		return nil, errors.New("exec: container spec has no process or root")
	}
	if len(in.Cmd) == 0 || in.Cmd[0] == "" {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage("No exec command specified")
	}
	host := in.Host
	if host == nil {
		host = DetectHost()
	}
	bp := base.Process
	p := &specs.Process{
		Terminal:        in.Tty,
		User:            bp.User,
		Args:            slices.Clone(in.Cmd),
		Cwd:             bp.Cwd,
		Rlimits:         slices.Clone(bp.Rlimits),
		NoNewPrivileges: bp.NoNewPrivileges,
		ApparmorProfile: bp.ApparmorProfile,
		SelinuxLabel:    bp.SelinuxLabel,
	}
	p.User.AdditionalGids = slices.Clone(bp.User.AdditionalGids)
	if bp.OOMScoreAdj != nil {
		p.OOMScoreAdj = ptr(*bp.OOMScoreAdj)
	}
	if in.Tty && (in.ConsoleSize[0] > 0 || in.ConsoleSize[1] > 0) {
		p.ConsoleSize = &specs.Box{Height: in.ConsoleSize[0], Width: in.ConsoleSize[1]}
	}

	env := slices.Clone(bp.Env)
	hasTerm := slices.ContainsFunc(env, func(e string) bool { return len(e) >= 5 && e[:5] == "TERM=" })
	switch {
	case in.Tty && !hasTerm:
		env = append(env, "TERM=xterm")
	case !in.Tty && bp.Terminal:
		// The container's TERM=xterm came from its own -t, not from its Env.
		env = slices.DeleteFunc(env, func(e string) bool { return e == "TERM=xterm" })
	}
	for _, e := range in.Env {
		if k, _, _ := cutEnv(e); k == "" || slices.Contains([]byte(e), 0) {
			return nil, invalid("invalid environment variable: %s", e)
		}
	}
	p.Env = ReplaceOrAppendEnv(env, in.Env)

	if in.User != "" {
		users := in.Users
		if users == nil {
			users = RootfsUsers(base.Root.Path)
		}
		u, err := users(in.User, in.GroupAdd)
		if err != nil {
			return nil, err
		}
		u.Umask = bp.User.Umask
		p.User = u
	}

	switch {
	case in.Privileged:
		p.Capabilities = &specs.LinuxCapabilities{
			Bounding:  slices.Clone(host.Caps),
			Effective: slices.Clone(host.Caps),
			Permitted: slices.Clone(host.Caps),
		}
	case bp.Capabilities != nil:
		c := *bp.Capabilities
		p.Capabilities = &specs.LinuxCapabilities{
			Bounding:  slices.Clone(c.Bounding),
			Effective: slices.Clone(c.Effective),
			Permitted: slices.Clone(c.Permitted),
		}
	}

	if in.WorkingDir != "" {
		if !path.IsAbs(in.WorkingDir) {
			return nil, invalid("the working directory '%s' is invalid, it needs to be an absolute path", in.WorkingDir)
		}
		p.Cwd = path.Clean(in.WorkingDir)
	}
	v := pidView(in.Pid)
	if in.Pid <= 0 {
		v = newView(base.Root.Path, base.Mounts)
	}
	if err := checkCwd(v, p.Cwd); err != nil {
		return nil, err
	}
	if err := validateProcess(p); err != nil {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage("invalid exec process: " + err.Error())
	}
	return p, nil
}

func cutEnv(e string) (string, string, bool) {
	for i := 0; i < len(e); i++ {
		if e[i] == '=' {
			return e[:i], e[i+1:], true
		}
	}
	return e, "", false
}
