// Package system answers /info and /version: facts about the host and the
// daemon, gathered from the kernel and the services.
package system

import (
	"bufio"
	"context"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/system"
	"golang.org/x/sys/unix"

	rtspec "github.com/berth/berth/runtime/spec"
)

// Counts reports how many objects of a kind exist.
type Counts interface {
	Count() int
}

// ContainerCounts reports containers by state.
type ContainerCounts interface {
	Counts() (total, running, paused, stopped int)
}

// Config is what /info and /version report about the daemon itself.
type Config struct {
	Version    string
	APIVersion string
	MinAPI     string
	GitCommit  string
	DataRoot   string
	// Runtime is the OCI runtime berthd found at start (ProbeRuntime).
	Runtime      Runtime
	Debug        bool
	Registry     func() *registry.ServiceConfig
	Images       Counts
	Containers   ContainerCounts
	StartedAt    time.Time
	CgroupDriver string
	// Warnings are the daemon's own, found at start (an API served
	// without client verification): /info reports them after the host's,
	// and the runtime's after them, then those of WarningSources (asked
	// at each /info: unreadable container records).
	Warnings       []string
	WarningSources []WarningSource
	// LogDriver is the default logging driver; LogDrivers those berth has.
	LogDriver  string
	LogDrivers []string
}

// WarningSource is a service with something to say in /info's Warnings.
type WarningSource interface {
	Warnings() []string
}

// Service answers /info and /version.
type Service struct {
	cfg Config
	id  string
	// cgroups reports the cgroup version and what it can limit (this
	// machine's; tests set their own).
	cgroups func() cgroupFacts
}

// cgroupFacts is what /info says about the host's cgroups.
type cgroupFacts struct {
	v2        bool
	swapLimit bool
	support   rtspec.CgroupSupport
}

func detectCgroups() cgroupFacts {
	h := rtspec.DetectHost()
	return cgroupFacts{v2: h.CgroupV2, swapLimit: h.SwapLimit, support: rtspec.CgroupSupportOf(h)}
}

// New returns the system service.
func New(cfg Config) *Service {
	return &Service{cfg: cfg, id: hostID(cfg.DataRoot), cgroups: detectCgroups}
}

func hostID(root string) string {
	b, err := os.ReadFile("/etc/machine-id")
	if err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b))
	}
	return root
}

func kernelVersion() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func osRelease() (name, version string) {
	f, err := os.Open("/etc/os-release")
	if err != nil {
		return "Linux", ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"`)
		switch k {
		case "PRETTY_NAME":
			name = v
		case "VERSION_ID":
			version = v
		}
	}
	return name, version
}

// CgroupVersion reports "2" on a unified hierarchy, else "1".
func CgroupVersion() string {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "2"
	}
	return "1"
}

// SystemVersion answers GET /version.
func (s *Service) SystemVersion(ctx context.Context) system.VersionResponse {
	kv := kernelVersion()
	return system.VersionResponse{
		Platform: system.PlatformInfo{Name: "berth"},
		Components: []system.ComponentVersion{
			{Name: "Engine", Version: s.cfg.Version, Details: map[string]string{
				"ApiVersion": s.cfg.APIVersion, "MinAPIVersion": s.cfg.MinAPI, "Arch": runtime.GOARCH, "Os": runtime.GOOS,
				"GoVersion": runtime.Version(), "GitCommit": s.cfg.GitCommit, "KernelVersion": kv, "Experimental": "false",
			}},
			{Name: "runc", Version: s.cfg.Runtime.Version, Details: map[string]string{"GitCommit": s.cfg.Runtime.Commit}},
		},
		Version:       s.cfg.Version,
		APIVersion:    s.cfg.APIVersion,
		MinAPIVersion: s.cfg.MinAPI,
		GitCommit:     s.cfg.GitCommit,
		GoVersion:     runtime.Version(),
		Os:            runtime.GOOS,
		Arch:          runtime.GOARCH,
		KernelVersion: kv,
	}
}

// SystemInfo answers GET /info.
func (s *Service) SystemInfo(ctx context.Context) (*system.Info, error) {
	osName, osVersion := osRelease()
	var si unix.Sysinfo_t
	_ = unix.Sysinfo(&si)
	hostname, _ := os.Hostname()
	info := &system.Info{
		ID:             s.id,
		Driver:         "overlay2",
		DriverStatus:   [][2]string{{"Backing Filesystem", "extfs"}, {"Supports d_type", "true"}},
		IPv4Forwarding: true,
		Debug:          s.cfg.Debug,
		NGoroutines:    runtime.NumGoroutine(),
		SystemTime:     time.Now().Format(time.RFC3339Nano),
		LoggingDriver:  s.cfg.LogDriver,
		CgroupDriver:   s.cfg.CgroupDriver,

		KernelVersion:      kernelVersion(),
		OperatingSystem:    osName,
		OSVersion:          osVersion,
		OSType:             "linux",
		Architecture:       "x86_64",
		IndexServerAddress: "https://index.docker.io/v1/",
		NCPU:               runtime.NumCPU(),
		MemTotal:           int64(si.Totalram) * int64(si.Unit),
		DockerRootDir:      s.cfg.DataRoot,
		Name:               hostname,
		Labels:             []string{},
		ServerVersion:      s.cfg.Version,
		DefaultRuntime:     "runc",
		Runtimes:           map[string]system.RuntimeWithStatus{"runc": {Runtime: system.Runtime{Path: s.cfg.Runtime.Path}}},
		RuncCommit:         system.Commit{ID: s.cfg.Runtime.Commit},
		SecurityOptions:    []string{"name=seccomp,profile=builtin"},
	}
	s.fillCgroupInfo(info)
	info.Warnings = append(info.Warnings, s.cfg.Warnings...)
	info.Warnings = append(info.Warnings, s.cfg.Runtime.Warnings()...)
	for _, ws := range s.cfg.WarningSources {
		info.Warnings = append(info.Warnings, ws.Warnings()...)
	}
	info.Swarm.LocalNodeState = "inactive"
	info.Plugins.Volume = []string{"local"}
	info.Plugins.Network = []string{"bridge", "host", "null"}
	info.Plugins.Log = s.cfg.LogDrivers
	if runtime.GOARCH != "amd64" {
		info.Architecture = runtime.GOARCH
	}
	if s.cfg.Registry != nil {
		info.RegistryConfig = s.cfg.Registry()
	}
	if s.cfg.Images != nil {
		info.Images = s.cfg.Images.Count()
	}
	if s.cfg.Containers != nil {
		info.Containers, info.ContainersRunning, info.ContainersPaused, info.ContainersStopped = s.cfg.Containers.Counts()
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		info.NFd = len(fds)
	}
	return info, nil
}

// fillCgroupInfo reports the cgroup version, the limits the host's cgroups
// can apply and, for those they cannot, Docker's warnings (its
// fillPlatformInfo): a cgroup v2 host without the memory controller says
// "WARNING: No memory limit support", and create discards the limit (see
// rtspec.CreateDefaults). On v2 containers get a private cgroup namespace by
// default, which Docker reports as the "name=cgroupns" security option.
func (s *Service) fillCgroupInfo(info *system.Info) {
	cg := s.cgroups()
	sup := cg.support
	info.CgroupVersion = "1"
	if cg.v2 {
		info.CgroupVersion = "2"
		info.SecurityOptions = append(info.SecurityOptions, "name=cgroupns")
	}
	info.MemoryLimit = sup.Memory
	info.SwapLimit = sup.Memory && cg.swapLimit
	info.OomKillDisable = sup.Memory && !cg.v2
	info.CPUCfsPeriod, info.CPUCfsQuota, info.CPUShares = sup.CPU, sup.CPU, sup.CPU
	info.CPUSet = sup.Cpuset
	info.PidsLimit = sup.Pids
	warn := func(ok bool, msg string) {
		if !ok {
			info.Warnings = append(info.Warnings, "WARNING: "+msg)
		}
	}
	warn(info.MemoryLimit, "No memory limit support")
	warn(info.SwapLimit, "No swap limit support")
	warn(info.CPUCfsQuota, "No cpu cfs quota support")
	warn(info.CPUCfsPeriod, "No cpu cfs period support")
	warn(info.CPUShares, "No cpu shares support")
	warn(info.CPUSet, "No cpuset support")
	// Docker names the v2 files; on v1 it says nothing of blkio weights.
	if cg.v2 {
		warn(sup.IOWeight, "No io.weight support")
		warn(sup.IOWeightDevice, "No io.weight (per device) support")
		warn(sup.IOThrottle, "No io.max (rbps) support")
		warn(sup.IOThrottle, "No io.max (wbps) support")
		warn(sup.IOThrottle, "No io.max (riops) support")
		warn(sup.IOThrottle, "No io.max (wiops) support")
	} else {
		warn(sup.IOThrottle, "No blkio throttle.read_bps_device support")
		warn(sup.IOThrottle, "No blkio throttle.write_bps_device support")
		warn(sup.IOThrottle, "No blkio throttle.read_iops_device support")
		warn(sup.IOThrottle, "No blkio throttle.write_iops_device support")
	}
}
