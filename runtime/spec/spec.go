package spec

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// Input is everything Generate needs to know about one container.
type Input struct {
	// ID is the container's full ID.
	ID string
	// Image is the image's config. When it is set, Config is the create
	// request's own Config and the two are merged here (MergeConfig); when
	// it is nil, Config must already be the merged config.
	Image *dockerspec.DockerOCIImageConfig
	// Config and HostConfig come from the create request; nil means empty.
	Config     *container.Config
	HostConfig *container.HostConfig
	// Rootfs is the mounted root filesystem (the overlay's merged dir).
	Rootfs string
	// Hostname is the container's hostname; "" means Config.Hostname, then
	// the first 12 characters of ID.
	Hostname string
	// Mounts are the mounts the caller has resolved: binds, volumes (named,
	// anonymous, from the image's VOLUME), /etc/hosts, /etc/resolv.conf,
	// /etc/hostname, and a /dev/shm to share. They replace a default mount
	// at the same destination and come after the defaults and the tmpfs
	// mounts of --tmpfs and --mount type=tmpfs (which this package builds),
	// parents before children; of two at one destination the later wins.
	Mounts []specs.Mount
	// NetNSPath selects the network namespace: "" for a new one, "host"
	// for none (the host's), or the path of one to join (/proc/PID/ns/net,
	// a bind-mounted netns). HostConfig.NetworkMode "host" also means host.
	NetNSPath string
	// ShmPath is a host directory (a tmpfs the caller mounted) bound at
	// /dev/shm in place of the container's own tmpfs: a shareable IPC
	// namespace's /dev/shm, or the donor's for --ipc container:X, so that
	// the containers sharing an IPC namespace share /dev/shm, as dockerd's.
	// A user mount at /dev/shm still wins.
	ShmPath string
	// NSPaths are the namespaces to join for --pid container:X and
	// --ipc container:X (keys specs.PIDNamespace, specs.IPCNamespace).
	NSPaths map[specs.LinuxNamespaceType]string
	// CgroupsPath is the container's cgroup; "" means
	// HostConfig.CgroupParent/ID, or /berth/ID.
	CgroupsPath string
	// InitPath is the host path of the init binary --init mounts at
	// /sbin/docker-init (for example Debian's /usr/bin/tini-static). It is
	// required only when --init is asked for.
	InitPath string
	// Users resolves the user; nil means RootfsUsers(Rootfs).
	Users UserResolver
	// Host describes this machine; nil means DetectHost().
	Host *Host
	// DryRun checks the request as Docker does at create time, before there
	// is a rootfs: nothing is read from disk, the user is not resolved (the
	// spec says root), the working directory is checked by name only, and
	// --device, blkio device and privileged host device nodes are left out
	// (Docker reports a missing device at start too). Rootfs may be empty.
	// The spec returned is not meant to be run.
	DryRun bool
}

// DefaultMaskedPaths returns the paths Docker hides from a container
// (covered with /dev/null, or an empty read-only tmpfs for a directory, by
// runc, which skips those the kernel lacks), so that a container service
// can fill HostConfig with it at create, as Docker does. It is current
// Docker's list: Docker 20.10's plus /proc/interrupts and each CPU's
// thermal_throttle directory this host has (GHSA-6fw5-f8r9-fgfm: thermal
// interrupt counts leak what other tenants run), in Docker's order.
func DefaultMaskedPaths() []string { return slices.Clone(defaultMaskedPaths()) }

var defaultMaskedPaths = sync.OnceValue(func() []string {
	paths := []string{
		"/proc/acpi",
		"/proc/asound",
		"/proc/interrupts",
		"/proc/kcore",
		"/proc/keys",
		"/proc/latency_stats",
		"/proc/sched_debug",
		"/proc/scsi",
		"/proc/timer_list",
		"/proc/timer_stats",
		"/sys/devices/virtual/powercap",
		"/sys/firmware",
	}
	return append(paths, thermalThrottleDirs("/sys/devices/system/cpu")...)
})

// thermalThrottleDirs lists <cpuDir>/cpuN/thermal_throttle for each CPU
// that has one, by CPU number.
func thermalThrottleDirs(cpuDir string) []string {
	ents, err := os.ReadDir(cpuDir)
	if err != nil {
		return nil
	}
	var cpus []int
	for _, e := range ents {
		n, err := strconv.Atoi(strings.TrimPrefix(e.Name(), "cpu"))
		if err != nil || !strings.HasPrefix(e.Name(), "cpu") {
			continue
		}
		if _, err := os.Stat(filepath.Join(cpuDir, e.Name(), "thermal_throttle")); err == nil {
			cpus = append(cpus, n)
		}
	}
	slices.Sort(cpus)
	out := make([]string, 0, len(cpus))
	for _, n := range cpus {
		out = append(out, filepath.Join(cpuDir, "cpu"+strconv.Itoa(n), "thermal_throttle"))
	}
	return out
}

// DefaultReadonlyPaths returns the paths Docker makes read-only in a
// container (HostConfig.ReadonlyPaths after create).
func DefaultReadonlyPaths() []string {
	return []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
}

// Generate builds the OCI runtime spec of a container. Errors in the request
// are cerrdefs.ErrInvalidArgument with Docker's wording; see the package
// documentation for the I/O it does.
func Generate(in Input) (*specs.Spec, error) {
	if in.ID == "" {
		return nil, errors.New("generate spec: empty container ID")
	}
	if in.DryRun && in.Rootfs == "" {
		in.Rootfs = "/"
	}
	if !path.IsAbs(in.Rootfs) {
		return nil, fmt.Errorf("generate spec: rootfs %q is not an absolute path", in.Rootfs)
	}
	host := in.Host
	if host == nil {
		host = DetectHost()
	}
	hc := in.HostConfig
	if hc == nil {
		hc = &container.HostConfig{}
	}
	// With no image this only normalizes (an [""] entrypoint) and checks.
	cfg, err := MergeConfig(in.Config, in.Image)
	if err != nil {
		return nil, err
	}
	sec, systemPathsUnconfined, err := parseSecurityOpts(hc.SecurityOpt)
	if err != nil {
		return nil, err
	}

	hostname := in.Hostname
	if hostname == "" {
		hostname = cfg.Hostname
	}
	if hostname == "" {
		hostname = in.ID[:min(12, len(in.ID))]
	}

	s := &specs.Spec{
		Version:  specs.Version,
		Root:     &specs.Root{Path: in.Rootfs, Readonly: hc.ReadonlyRootfs},
		Hostname: hostname,
		Process: &specs.Process{
			Terminal:        cfg.Tty,
			Cwd:             "/",
			NoNewPrivileges: sec.noNewPrivileges,
		},
		Linux: &specs.Linux{},
	}
	if cfg.Domainname != "" {
		s.Domainname = cfg.Domainname
	}
	if len(hc.Annotations) > 0 {
		s.Annotations = maps.Clone(hc.Annotations)
	}
	p := s.Process

	// Command.
	p.Args = append(slices.Clone(cfg.Entrypoint), cfg.Cmd...)
	if hc.Init != nil && *hc.Init {
		if in.InitPath == "" {
			return nil, cerrdefs.ErrInternal.WithMessage("--init was requested but no init binary is configured")
		}
		p.Args = append([]string{InitDest, "--"}, p.Args...)
	}
	if p.Args[0] == "" && !in.DryRun {
		// Cmd [""] is a command (dockerd creates the container, and
		// commits it: moby's TestRemoveImageOrphaning); it cannot start.
		return nil, cerrdefs.ErrInvalidArgument.WithMessage("No command specified")
	}
	if p.Env, err = containerEnv(hostname, cfg.Tty, cfg.Env); err != nil {
		return nil, err
	}
	if cfg.WorkingDir != "" {
		p.Cwd = path.Clean(cfg.WorkingDir)
	}
	if cfg.Tty && (hc.ConsoleSize[0] > 0 || hc.ConsoleSize[1] > 0) {
		p.ConsoleSize = &specs.Box{Height: hc.ConsoleSize[0], Width: hc.ConsoleSize[1]}
	}
	if hc.OomScoreAdj < -1000 || hc.OomScoreAdj > 1000 {
		return nil, invalid("Invalid value %d, range for oom score adj is [-1000, 1000]", hc.OomScoreAdj)
	}
	p.OOMScoreAdj = ptr(hc.OomScoreAdj)

	// User.
	users := in.Users
	switch {
	case in.DryRun:
		users = func(string, []string) (specs.User, error) { return specs.User{}, nil }
	case users == nil:
		users = RootfsUsers(in.Rootfs)
	}
	if p.User, err = users(cfg.User, hc.GroupAdd); err != nil {
		return nil, err
	}
	if hc.Umask != nil {
		p.User.Umask = ptr(*hc.Umask)
	}

	// Capabilities: the same set bounding, effective and permitted;
	// inheritable and ambient stay empty (CVE-2022-24769).
	caps, err := computeCaps(host, hc.CapAdd, hc.CapDrop, hc.Privileged)
	if err != nil {
		return nil, err
	}
	p.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: slices.Clone(caps), Permitted: slices.Clone(caps)}

	if p.Rlimits, err = rlimits(host, hc.Ulimits); err != nil {
		return nil, err
	}

	// Namespaces.
	netHost := in.NetNSPath == "host" || hc.NetworkMode.IsHost()
	ns := []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	if !netHost {
		n := specs.LinuxNamespace{Type: specs.NetworkNamespace}
		if in.NetNSPath != "" {
			n.Path = in.NetNSPath
		} else if hc.NetworkMode.IsContainer() {
			return nil, errors.New("generate spec: --network container: needs the path of that container's network namespace")
		}
		ns = append(ns, n)
	}
	utsHost := false
	switch hc.UTSMode {
	case "":
		ns = append(ns, specs.LinuxNamespace{Type: specs.UTSNamespace})
	case "host":
		utsHost = true
		s.Hostname, s.Domainname = "", ""
	default:
		return nil, invalid("invalid UTS mode: %s", hc.UTSMode)
	}
	switch {
	case hc.PidMode == "":
		ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace})
	case hc.PidMode.IsHost():
	case hc.PidMode.IsContainer() && hc.PidMode.Container() != "":
		pp := in.NSPaths[specs.PIDNamespace]
		if pp == "" {
			return nil, errors.New("generate spec: --pid container: needs the path of that container's PID namespace")
		}
		ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace, Path: pp})
	default:
		return nil, invalid("invalid PID mode: %s", hc.PidMode)
	}
	ipcHost, ipcNone := false, false
	switch {
	case hc.IpcMode == "" || hc.IpcMode.IsPrivate() || hc.IpcMode.IsShareable():
		ns = append(ns, specs.LinuxNamespace{Type: specs.IPCNamespace})
	case hc.IpcMode.IsNone():
		ipcNone = true
		ns = append(ns, specs.LinuxNamespace{Type: specs.IPCNamespace})
	case hc.IpcMode.IsHost():
		ipcHost = true
	case hc.IpcMode.IsContainer() && hc.IpcMode.Container() != "":
		ip := in.NSPaths[specs.IPCNamespace]
		if ip == "" {
			return nil, errors.New("generate spec: --ipc container: needs the path of that container's IPC namespace")
		}
		ns = append(ns, specs.LinuxNamespace{Type: specs.IPCNamespace, Path: ip})
	default:
		return nil, invalid("invalid IPC mode: %s", hc.IpcMode)
	}
	switch hc.CgroupnsMode {
	case "":
		if host.CgroupV2 {
			ns = append(ns, specs.LinuxNamespace{Type: specs.CgroupNamespace})
		}
	case container.CgroupnsModePrivate:
		ns = append(ns, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	case container.CgroupnsModeHost:
	default:
		return nil, invalid("invalid cgroup namespace mode: %s", hc.CgroupnsMode)
	}
	if hc.UsernsMode != "" && hc.UsernsMode != "host" {
		return nil, cerrdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("user namespace mode %q is not supported", hc.UsernsMode))
	}
	s.Linux.Namespaces = ns

	// Mounts.
	shm := hc.ShmSize
	if shm < 0 {
		return nil, invalid("SHM size can not be less than 0")
	}
	if shm == 0 {
		shm = DefaultShmSize
	}
	defaults := defaultMounts(shm, in.ShmPath, ipcHost, ipcNone)
	if hc.Privileged {
		for i := range defaults {
			if defaults[i].Destination == "/sys" || defaults[i].Type == "cgroup" {
				defaults[i].Options = slices.DeleteFunc(slices.Clone(defaults[i].Options), func(o string) bool { return o == "ro" })
			}
		}
	}
	user, err := userTmpfs(hc)
	if err != nil {
		return nil, err
	}
	user = append(user, in.Mounts...)
	if hc.Init != nil && *hc.Init {
		user = append(user, specs.Mount{Destination: InitDest, Type: "bind", Source: in.InitPath, Options: []string{"bind", "ro"}})
	}
	if s.Mounts, err = combineMounts(defaults, user); err != nil {
		return nil, err
	}

	// The working directory, checked against what the container will see.
	var v *view // DryRun: by name only
	if !in.DryRun {
		v = newView(in.Rootfs, s.Mounts)
	}
	if err := checkCwd(v, p.Cwd); err != nil {
		return nil, err
	}

	// Masked and read-only paths: an explicit list in the request wins
	// (even empty); privileged and systempaths=unconfined get none.
	switch {
	case hc.MaskedPaths != nil:
		s.Linux.MaskedPaths = slices.Clone(hc.MaskedPaths)
	case !hc.Privileged && !systemPathsUnconfined:
		s.Linux.MaskedPaths = DefaultMaskedPaths()
	}
	switch {
	case hc.ReadonlyPaths != nil:
		s.Linux.ReadonlyPaths = slices.Clone(hc.ReadonlyPaths)
	case !hc.Privileged && !systemPathsUnconfined:
		s.Linux.ReadonlyPaths = DefaultReadonlyPaths()
	}

	// Resources and devices.
	if s.Linux.Resources, err = resources(host, &hc.Resources, in.DryRun); err != nil {
		return nil, err
	}
	if hc.Privileged && in.DryRun {
		s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	} else if hc.Privileged {
		if s.Linux.Devices, err = hostDevices(); err != nil {
			return nil, cerrdefs.ErrInternal.WithMessage("list host devices: " + err.Error())
		}
		// As Docker: a --device that only repeats a host node is already
		// there; one mapped to another path is added; permissions are moot.
		var moved []container.DeviceMapping
		for _, d := range hc.Devices {
			if d.PathInContainer != "" && d.PathInContainer != d.PathOnHost {
				d.CgroupPermissions = "rwm"
				moved = append(moved, d)
			}
		}
		devs, _, err := userDevices(moved, false)
		if err != nil {
			return nil, err
		}
		s.Linux.Devices = append(s.Linux.Devices, devs...)
		s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	} else {
		rules := defaultDeviceRules()
		devs, devRules, err := userDevices(hc.Devices, in.DryRun)
		if err != nil {
			return nil, err
		}
		s.Linux.Devices = devs
		rules = append(rules, devRules...)
		for _, r := range hc.DeviceCgroupRules {
			rule, err := parseDeviceCgroupRule(r)
			if err != nil {
				return nil, err
			}
			rules = append(rules, rule)
		}
		s.Linux.Resources.Devices = rules
	}
	ownNetNS := !netHost && !hc.NetworkMode.IsContainer()
	if s.Linux.Sysctl, err = sysctls(hc.Sysctls, netHost, ownNetNS, ipcHost, utsHost); err != nil {
		return nil, err
	}
	if _, set := s.Linux.Sysctl["kernel.domainname"]; s.Domainname != "" && !set {
		// The NIS domain name through its sysctl, as dockerd sets it: runc
		// before 1.2 ignores the spec's Domainname.
		if s.Linux.Sysctl == nil {
			s.Linux.Sysctl = map[string]string{}
		}
		s.Linux.Sysctl["kernel.domainname"] = s.Domainname
	}

	switch {
	case in.CgroupsPath != "":
		s.Linux.CgroupsPath = in.CgroupsPath
	case hc.CgroupParent != "":
		s.Linux.CgroupsPath = path.Join("/", hc.CgroupParent, in.ID)
	default:
		s.Linux.CgroupsPath = "/berth/" + in.ID
	}

	// Seccomp last: the default profile depends on the capabilities.
	if !hc.Privileged {
		if s.Linux.Seccomp, err = seccompFor(s, sec.seccomp, host); err != nil {
			return nil, err
		}
	}

	if in.DryRun && p.Args[0] == "" {
		// Checked as if it had a command: it cannot start (see above).
		args := p.Args
		p.Args = append([]string{"-"}, args[1:]...)
		defer func() { p.Args = args }()
	}
	if err := Validate(s); err != nil {
		return nil, err
	}
	return s, nil
}
