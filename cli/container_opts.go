package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-connections/nat"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/spf13/pflag"
)

// containerOptions are the flags shared by `run` and `create`.
type containerOptions struct {
	attach            *listOpts
	volumes           *listOpts
	tmpfs             *listOpts
	blkioWeightDevice *listOpts
	deviceReadBps     *listOpts
	deviceWriteBps    *listOpts
	deviceReadIOps    *listOpts
	deviceWriteIOps   *listOpts
	env               *listOpts
	labels            *listOpts
	deviceCgroupRules *listOpts
	devices           *listOpts
	gpus              gpuOpts
	ulimits           *ulimitOpt
	sysctls           *mapOpts
	annotations       *mapOpts
	publish           *listOpts
	expose            *listOpts
	dns               *listOpts
	dnsSearch         *listOpts
	dnsOptions        *listOpts
	extraHosts        *listOpts
	volumesFrom       *listOpts
	envFile           *listOpts
	capAdd            *listOpts
	capDrop           *listOpts
	groupAdd          *listOpts
	securityOpt       *listOpts
	storageOpt        *listOpts
	labelsFile        *listOpts
	loggingOpts       *listOpts
	links             *listOpts
	aliases           *listOpts
	linkLocalIPs      *listOpts
	mounts            mountOpt
	netMode           networkOpt

	privileged         bool
	pidMode            string
	utsMode            string
	usernsMode         string
	cgroupnsMode       string
	publishAll         bool
	stdin              bool
	tty                bool
	oomKillDisable     bool
	oomScoreAdj        int
	containerIDFile    string
	entrypoint         string
	hostname           string
	domainname         string
	memory             memBytes
	memoryReservation  memBytes
	memorySwap         memSwapBytes
	kernelMemory       memBytes
	user               string
	workingDir         string
	cpuCount           int64
	cpuShares          int64
	cpuPercent         int64
	cpuPeriod          int64
	cpuRealtimePeriod  int64
	cpuRealtimeRuntime int64
	cpuQuota           int64
	cpus               nanoCPUs
	cpusetCpus         string
	cpusetMems         string
	blkioWeight        uint16Value
	ioMaxBandwidth     memBytes
	ioMaxIOps          uint64
	swappiness         int64
	macAddress         string
	ipv4Address        string
	ipv6Address        string
	ipcMode            string
	pidsLimit          int64
	restartPolicy      string
	readonlyRootfs     bool
	loggingDriver      string
	cgroupParent       string
	volumeDriver       string
	stopSignal         string
	stopTimeout        int
	isolation          string
	shmSize            memBytes
	noHealthcheck      bool
	healthCmd          string
	healthInterval     durationValue
	healthTimeout      durationValue
	healthStartPeriod  durationValue
	healthStartIntv    durationValue
	healthRetries      int
	runtime            string
	autoRemove         bool
	init               bool
	useAPISocket       bool

	// set by the caller
	Image string
	Args  []string
}

// addContainerFlags defines the flags of run and create on fs.
func addContainerFlags(fs *pflag.FlagSet, getenv func(string) (string, bool)) *containerOptions {
	o := &containerOptions{
		attach:            newListOpts(validateAttach),
		blkioWeightDevice: &listOpts{showEmpty: true},
		capAdd:            newListOpts(nil),
		capDrop:           newListOpts(nil),
		dns:               newListOpts(validateIPAddress),
		dnsOptions:        newListOpts(nil),
		dnsSearch:         newListOpts(nil),
		deviceCgroupRules: newListOpts(nil),
		deviceReadBps:     &listOpts{showEmpty: true},
		deviceReadIOps:    &listOpts{showEmpty: true},
		deviceWriteBps:    &listOpts{showEmpty: true},
		deviceWriteIOps:   &listOpts{showEmpty: true},
		devices:           newListOpts(nil),
		env:               newListOpts(validateEnv(getenv)),
		envFile:           newListOpts(nil),
		expose:            newListOpts(nil),
		extraHosts:        newListOpts(validateExtraHost),
		groupAdd:          newListOpts(nil),
		labels:            newListOpts(validateLabel),
		labelsFile:        newListOpts(nil),
		linkLocalIPs:      newListOpts(nil),
		links:             newListOpts(nil),
		loggingOpts:       newListOpts(nil),
		publish:           newListOpts(nil),
		securityOpt:       newListOpts(nil),
		storageOpt:        newListOpts(nil),
		sysctls:           newMapOpts(validateSysctl),
		annotations:       newMapOpts(nil),
		tmpfs:             newListOpts(nil),
		ulimits:           newUlimitOpt(),
		volumes:           newListOpts(nil),
		volumesFrom:       newListOpts(nil),
		aliases:           newListOpts(nil),
	}

	// General
	fs.VarP(o.attach, "attach", "a", "Attach to STDIN, STDOUT or STDERR")
	fs.Var(o.deviceCgroupRules, "device-cgroup-rule", "Add a rule to the cgroup allowed devices list")
	fs.Var(o.devices, "device", "Add a host device to the container")
	fs.Var(&o.gpus, "gpus", "GPU devices to add to the container ('all' to pass all GPUs)")
	fs.VarP(o.env, "env", "e", "Set environment variables")
	fs.Var(o.envFile, "env-file", "Read in a file of environment variables")
	fs.StringVar(&o.entrypoint, "entrypoint", "", "Overwrite the default ENTRYPOINT of the image")
	fs.Var(o.groupAdd, "group-add", "Add additional groups to join")
	fs.StringVarP(&o.hostname, "hostname", "h", "", "Container host name")
	fs.StringVar(&o.domainname, "domainname", "", "Container NIS domain name")
	fs.BoolVarP(&o.stdin, "interactive", "i", false, "Keep STDIN open even if not attached")
	fs.VarP(o.labels, "label", "l", "Set meta data on a container")
	fs.Var(o.labelsFile, "label-file", "Read in a line delimited file of labels")
	fs.BoolVar(&o.readonlyRootfs, "read-only", false, "Mount the container's root filesystem as read only")
	fs.StringVar(&o.restartPolicy, "restart", "no", "Restart policy to apply when a container exits")
	fs.StringVar(&o.stopSignal, "stop-signal", "", "Signal to stop the container")
	fs.IntVar(&o.stopTimeout, "stop-timeout", 0, "Timeout (in seconds) to stop a container")
	fs.Var(o.sysctls, "sysctl", "Sysctl options")
	fs.BoolVarP(&o.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	fs.Var(o.ulimits, "ulimit", "Ulimit options")
	fs.StringVarP(&o.user, "user", "u", "", "Username or UID (format: <name|uid>[:<group|gid>])")
	fs.StringVarP(&o.workingDir, "workdir", "w", "", "Working directory inside the container")
	fs.BoolVar(&o.autoRemove, "rm", false, "Automatically remove the container and its associated anonymous volumes when it exits")

	// Security
	fs.Var(o.capAdd, "cap-add", "Add Linux capabilities")
	fs.Var(o.capDrop, "cap-drop", "Drop Linux capabilities")
	fs.BoolVar(&o.privileged, "privileged", false, "Give extended privileges to this container")
	fs.Var(o.securityOpt, "security-opt", "Security Options")
	fs.StringVar(&o.usernsMode, "userns", "", "User namespace to use")
	fs.StringVar(&o.cgroupnsMode, "cgroupns", "", `Cgroup namespace to use (host|private)
'host':    Run the container in the Docker host's cgroup namespace
'private': Run the container in its own private cgroup namespace
'':        Use the cgroup namespace as configured by the
           default-cgroupns-mode option on the daemon (default)`)

	// Network and port publishing
	fs.Var(o.extraHosts, "add-host", "Add a custom host-to-IP mapping (host:ip)")
	fs.Var(o.dns, "dns", "Set custom DNS servers")
	fs.Var(o.dnsOptions, "dns-option", "Set DNS options")
	fs.Var(o.dnsSearch, "dns-search", "Set custom DNS search domains")
	fs.Var(o.expose, "expose", "Expose a port or a range of ports")
	fs.StringVar(&o.ipv4Address, "ip", "", "IPv4 address (e.g., 172.30.100.104)")
	fs.StringVar(&o.ipv6Address, "ip6", "", "IPv6 address (e.g., 2001:db8::33)")
	fs.Var(o.links, "link", "Add link to another container")
	fs.Var(o.linkLocalIPs, "link-local-ip", "Container IPv4/IPv6 link-local addresses")
	fs.StringVar(&o.macAddress, "mac-address", "", "Container MAC address (e.g., 92:d0:c6:0a:29:33)")
	fs.VarP(o.publish, "publish", "p", "Publish a container's port(s) to the host")
	fs.BoolVarP(&o.publishAll, "publish-all", "P", false, "Publish all exposed ports to random ports")
	fs.Var(&o.netMode, "network", "Connect a container to a network")
	fs.Var(&o.netMode, "net", "Connect a container to a network")
	_ = fs.MarkHidden("net")
	fs.Var(o.aliases, "network-alias", "Add network-scoped alias for the container")
	fs.Var(o.aliases, "net-alias", "Add network-scoped alias for the container")
	_ = fs.MarkHidden("net-alias")

	// Logging and storage
	fs.StringVar(&o.loggingDriver, "log-driver", "", "Logging driver for the container")
	fs.StringVar(&o.volumeDriver, "volume-driver", "", "Optional volume driver for the container")
	fs.Var(o.loggingOpts, "log-opt", "Log driver options")
	fs.Var(o.storageOpt, "storage-opt", "Storage driver options for the container")
	fs.Var(o.tmpfs, "tmpfs", "Mount a tmpfs directory")
	fs.Var(o.volumesFrom, "volumes-from", "Mount volumes from the specified container(s)")
	fs.VarP(o.volumes, "volume", "v", "Bind mount a volume")
	fs.Var(&o.mounts, "mount", "Attach a filesystem mount to the container")

	// Health-checking
	fs.StringVar(&o.healthCmd, "health-cmd", "", "Command to run to check health")
	fs.Var(&o.healthInterval, "health-interval", "Time between running the check (ms|s|m|h)")
	fs.IntVar(&o.healthRetries, "health-retries", 0, "Consecutive failures needed to report unhealthy")
	fs.Var(&o.healthTimeout, "health-timeout", "Maximum time to allow one check to run (ms|s|m|h)")
	fs.Var(&o.healthStartPeriod, "health-start-period", "Start period for the container to initialize before starting health-retries countdown (ms|s|m|h)")
	fs.Var(&o.healthStartIntv, "health-start-interval", "Time between running the check during the start period (ms|s|m|h)")
	fs.BoolVar(&o.noHealthcheck, "no-healthcheck", false, "Disable any container-specified HEALTHCHECK")

	// Resource management
	fs.Var(&o.blkioWeight, "blkio-weight", "Block IO (relative weight), between 10 and 1000, or 0 to disable")
	withDefaultNote(fs, "blkio-weight", "0")
	fs.Var(o.blkioWeightDevice, "blkio-weight-device", "Block IO weight (relative device weight)")
	fs.StringVar(&o.containerIDFile, "cidfile", "", "Write the container ID to the file")
	fs.StringVar(&o.cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fs.StringVar(&o.cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	fs.Int64Var(&o.cpuCount, "cpu-count", 0, "CPU count (Windows only)")
	fs.Int64Var(&o.cpuPercent, "cpu-percent", 0, "CPU percent (Windows only)")
	fs.Int64Var(&o.cpuPeriod, "cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	fs.Int64Var(&o.cpuQuota, "cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	fs.Int64Var(&o.cpuRealtimePeriod, "cpu-rt-period", 0, "Limit CPU real-time period in microseconds")
	fs.Int64Var(&o.cpuRealtimeRuntime, "cpu-rt-runtime", 0, "Limit CPU real-time runtime in microseconds")
	fs.Int64VarP(&o.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fs.Var(&o.cpus, "cpus", "Number of CPUs")
	fs.Var(o.deviceReadBps, "device-read-bps", "Limit read rate (bytes per second) from a device")
	fs.Var(o.deviceReadIOps, "device-read-iops", "Limit read rate (IO per second) from a device")
	fs.Var(o.deviceWriteBps, "device-write-bps", "Limit write rate (bytes per second) to a device")
	fs.Var(o.deviceWriteIOps, "device-write-iops", "Limit write rate (IO per second) to a device")
	fs.Var(&o.ioMaxBandwidth, "io-maxbandwidth", "Maximum IO bandwidth limit for the system drive (Windows only)")
	fs.Uint64Var(&o.ioMaxIOps, "io-maxiops", 0, "Maximum IOps limit for the system drive (Windows only)")
	// Windows-only settings, hidden as docker hides them for a Linux daemon.
	for _, n := range []string{"cpu-count", "cpu-percent", "io-maxbandwidth", "io-maxiops"} {
		_ = fs.MarkHidden(n)
	}
	fs.Var(&o.kernelMemory, "kernel-memory", "Kernel memory limit")
	fs.VarP(&o.memory, "memory", "m", "Memory limit")
	fs.Var(&o.memoryReservation, "memory-reservation", "Memory soft limit")
	fs.Var(&o.memorySwap, "memory-swap", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
	fs.Int64Var(&o.swappiness, "memory-swappiness", -1, "Tune container memory swappiness (0 to 100)")
	fs.BoolVar(&o.oomKillDisable, "oom-kill-disable", false, "Disable OOM Killer")
	fs.IntVar(&o.oomScoreAdj, "oom-score-adj", 0, "Tune host's OOM preferences (-1000 to 1000)")
	fs.Int64Var(&o.pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")

	// Low-level execution (cgroups, namespaces, ...)
	fs.StringVar(&o.cgroupParent, "cgroup-parent", "", "Optional parent cgroup for the container")
	fs.StringVar(&o.ipcMode, "ipc", "", "IPC mode to use")
	fs.StringVar(&o.isolation, "isolation", "", "Container isolation technology")
	fs.StringVar(&o.pidMode, "pid", "", "PID namespace to use")
	fs.Var(&o.shmSize, "shm-size", "Size of /dev/shm")
	fs.StringVar(&o.utsMode, "uts", "", "UTS namespace to use")
	fs.StringVar(&o.runtime, "runtime", "", "Runtime to use for this container")
	fs.BoolVar(&o.init, "init", false, "Run an init inside the container that forwards signals and reaps processes")
	fs.Var(o.annotations, "annotation", "Add an annotation to the container (passed through to the OCI runtime)")
	fs.BoolVar(&o.useAPISocket, "use-api-socket", false, "Bind mount Docker API socket and required auth")
	return o
}

// containerConfig is what the flags turn into: the three parts of a
// create request.
type containerConfig struct {
	Config           *container.Config
	HostConfig       *container.HostConfig
	NetworkingConfig *network.NetworkingConfig
}

// parseContainerOptions checks the flags against each other and builds the
// create request. Errors here are reported as "berth: <error>" with exit
// status 125 by the caller.
func parseContainerOptions(fs *pflag.FlagSet, o *containerOptions, getenv func(string) (string, bool)) (*containerConfig, error) {
	var (
		attachStdin  = false
		attachStdout = false
		attachStderr = false
	)
	for _, s := range o.attach.GetAll() {
		switch s {
		case "stdin":
			attachStdin = true
		case "stdout":
			attachStdout = true
		case "stderr":
			attachStderr = true
		}
	}
	if o.stdin && o.attach.Len() == 0 {
		attachStdin = true
	}

	// Volumes: binds, anonymous volumes.
	var binds []string
	volumes := map[string]struct{}{}
	for _, spec := range o.volumes.GetAll() {
		bind, anon, err := parseVolumeSpec(spec)
		if err != nil {
			return nil, err
		}
		if bind != "" {
			binds = append(binds, bind)
		} else {
			volumes[anon] = struct{}{}
		}
	}

	tmpfs := map[string]string{}
	for _, t := range o.tmpfs.GetAll() {
		if k, v, ok := strings.Cut(t, ":"); ok {
			tmpfs[k] = v
		} else {
			tmpfs[t] = ""
		}
	}
	if len(tmpfs) == 0 {
		tmpfs = nil
	}

	var (
		cmd        []string
		entrypoint []string
	)
	if len(o.Args) > 0 {
		cmd = o.Args
	}
	if fs.Changed("entrypoint") {
		if o.entrypoint == "" {
			entrypoint = []string{""}
		} else {
			entrypoint = []string{o.entrypoint}
		}
	}

	// Ports.
	exposed := network.PortSet{}
	bindings := network.PortMap{}
	for _, spec := range o.publish.GetAll() {
		spec, err := convertPublishLongSyntax(spec)
		if err != nil {
			return nil, err
		}
		mappings, err := nat.ParsePortSpec(spec)
		if err != nil {
			return nil, err
		}
		for _, m := range mappings {
			p, err := network.ParsePort(string(m.Port))
			if err != nil {
				return nil, err
			}
			var ip netip.Addr
			if m.Binding.HostIP != "" {
				ip, err = netip.ParseAddr(m.Binding.HostIP)
				if err != nil {
					return nil, fmt.Errorf("invalid IP address: %s", m.Binding.HostIP)
				}
			}
			exposed[p] = struct{}{}
			bindings[p] = append(bindings[p], network.PortBinding{HostIP: ip, HostPort: m.Binding.HostPort})
		}
	}
	for _, e := range o.expose.GetAll() {
		proto, port := nat.SplitProtoPort(e)
		start, end, err := parseExposeRange(port)
		if err != nil {
			return nil, fmt.Errorf("invalid range format for --expose: %s, error: %w", e, err)
		}
		for i := start; i <= end; i++ {
			p, err := network.ParsePort(strconv.FormatUint(i, 10) + "/" + proto)
			if err != nil {
				return nil, err
			}
			exposed[p] = struct{}{}
		}
	}

	// Devices and block I/O throttles.
	var devices []container.DeviceMapping
	for _, d := range o.devices.GetAll() {
		dm, err := parseDevice(d)
		if err != nil {
			return nil, err
		}
		devices = append(devices, dm)
	}
	weightDevices, err := parseWeightDevices(o.blkioWeightDevice.GetAll())
	if err != nil {
		return nil, err
	}
	readBps, err := parseThrottleDevices(o.deviceReadBps.GetAll(), true)
	if err != nil {
		return nil, err
	}
	writeBps, err := parseThrottleDevices(o.deviceWriteBps.GetAll(), true)
	if err != nil {
		return nil, err
	}
	readIOps, err := parseThrottleDevices(o.deviceReadIOps.GetAll(), false)
	if err != nil {
		return nil, err
	}
	writeIOps, err := parseThrottleDevices(o.deviceWriteIOps.GetAll(), false)
	if err != nil {
		return nil, err
	}

	// Environment and labels, files first so that flags win.
	var env []string
	for _, f := range o.envFile.GetAll() {
		lines, err := readKVFile(f, getenv)
		if err != nil {
			if os.IsNotExist(err) || errors.Is(err, os.ErrPermission) {
				return nil, err
			}
			return nil, fmt.Errorf("invalid env file (%s): %w", f, err)
		}
		env = append(env, lines...)
	}
	env = append(env, o.env.GetAll()...)

	labels := map[string]string{}
	for _, f := range o.labelsFile.GetAll() {
		lines, err := readKVFile(f, func(string) (string, bool) { return "", false })
		if err != nil {
			if os.IsNotExist(err) || errors.Is(err, os.ErrPermission) {
				return nil, err
			}
			return nil, fmt.Errorf("invalid label file (%s): %w", f, err)
		}
		for _, l := range lines {
			k, v, _ := strings.Cut(l, "=")
			labels[k] = v
		}
	}
	for _, l := range o.labels.GetAll() {
		k, v, _ := strings.Cut(l, "=")
		labels[k] = v
	}

	pidMode := container.PidMode(o.pidMode)
	if !pidMode.Valid() {
		return nil, errors.New("--pid: invalid PID mode")
	}
	utsMode := container.UTSMode(o.utsMode)
	if !utsMode.Valid() {
		return nil, errors.New("--uts: invalid UTS mode")
	}
	usernsMode := container.UsernsMode(o.usernsMode)
	if !usernsMode.Valid() {
		return nil, errors.New("--userns: invalid USER mode")
	}
	cgroupnsMode := container.CgroupnsMode(o.cgroupnsMode)
	if !cgroupnsMode.Valid() {
		return nil, errors.New("--cgroupns: invalid CGROUP mode")
	}

	restart, err := parseRestartPolicy(o.restartPolicy)
	if err != nil {
		return nil, err
	}
	if o.autoRemove && !restart.IsNone() {
		return nil, errors.New("conflicting options: cannot specify both --restart and --rm")
	}

	logOpts := map[string]string{}
	for _, l := range o.loggingOpts.GetAll() {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			return nil, fmt.Errorf("invalid key/value pair format in log options: %s", l)
		}
		logOpts[k] = v
	}

	securityOpts, maskedPaths, readonlyPaths, err := parseSecurityOpts(o.securityOpt.GetAll())
	if err != nil {
		return nil, err
	}

	storageOpts := map[string]string{}
	for _, s := range o.storageOpt.GetAll() {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return nil, errors.New("invalid storage option")
		}
		storageOpts[k] = v
	}
	if len(storageOpts) == 0 {
		storageOpts = nil
	}

	var healthConfig *container.HealthConfig
	haveHealthSettings := o.healthCmd != "" || o.healthInterval != 0 || o.healthTimeout != 0 ||
		o.healthStartPeriod != 0 || o.healthRetries != 0 || o.healthStartIntv != 0
	if o.noHealthcheck {
		if haveHealthSettings {
			return nil, errors.New("--no-healthcheck conflicts with --health-* options")
		}
		healthConfig = &container.HealthConfig{Test: []string{"NONE"}}
	} else if haveHealthSettings {
		var probe []string
		if o.healthCmd != "" {
			probe = []string{"CMD-SHELL", o.healthCmd}
		}
		if o.healthInterval < 0 {
			return nil, errors.New("--health-interval cannot be negative")
		}
		if o.healthTimeout < 0 {
			return nil, errors.New("--health-timeout cannot be negative")
		}
		if o.healthRetries < 0 {
			return nil, errors.New("--health-retries cannot be negative")
		}
		if o.healthStartPeriod < 0 {
			return nil, errors.New("--health-start-period cannot be negative")
		}
		healthConfig = &container.HealthConfig{
			Test: probe, Interval: timeDuration(o.healthInterval), Timeout: timeDuration(o.healthTimeout),
			StartPeriod: timeDuration(o.healthStartPeriod), StartInterval: timeDuration(o.healthStartIntv),
			Retries: o.healthRetries,
		}
	}

	var dns []netip.Addr
	for _, d := range o.dns.GetAll() {
		a, err := netip.ParseAddr(d)
		if err != nil {
			return nil, fmt.Errorf("IP address is not correctly formatted: %s", d)
		}
		dns = append(dns, a)
	}
	if dns == nil {
		dns = []netip.Addr{}
	}

	config := &container.Config{
		Hostname:     o.hostname,
		Domainname:   o.domainname,
		ExposedPorts: exposed,
		User:         o.user,
		Tty:          o.tty,
		OpenStdin:    o.stdin,
		AttachStdin:  attachStdin,
		AttachStdout: attachStdout,
		AttachStderr: attachStderr,
		Env:          env,
		Cmd:          cmd,
		Image:        o.Image,
		Volumes:      volumes,
		Entrypoint:   entrypoint,
		WorkingDir:   o.workingDir,
		Labels:       labels,
		StopSignal:   o.stopSignal,
		Healthcheck:  healthConfig,
	}
	if fs.Changed("stop-timeout") {
		t := o.stopTimeout
		config.StopTimeout = &t
	}
	if len(exposed) == 0 {
		config.ExposedPorts = nil
	}

	resources := container.Resources{
		CgroupParent:         o.cgroupParent,
		Memory:               int64(o.memory),
		MemoryReservation:    int64(o.memoryReservation),
		MemorySwap:           int64(o.memorySwap),
		MemorySwappiness:     &o.swappiness,
		OomKillDisable:       &o.oomKillDisable,
		NanoCPUs:             int64(o.cpus),
		CPUCount:             o.cpuCount,
		CPUPercent:           o.cpuPercent,
		CPUShares:            o.cpuShares,
		CPUPeriod:            o.cpuPeriod,
		CpusetCpus:           o.cpusetCpus,
		CpusetMems:           o.cpusetMems,
		CPUQuota:             o.cpuQuota,
		CPURealtimePeriod:    o.cpuRealtimePeriod,
		CPURealtimeRuntime:   o.cpuRealtimeRuntime,
		BlkioWeight:          uint16(o.blkioWeight),
		BlkioWeightDevice:    weightDevices,
		BlkioDeviceReadBps:   readBps,
		BlkioDeviceReadIOps:  readIOps,
		BlkioDeviceWriteBps:  writeBps,
		BlkioDeviceWriteIOps: writeIOps,
		Ulimits:              o.ulimits.GetList(),
		Devices:              devices,
		DeviceCgroupRules:    o.deviceCgroupRules.GetAll(),
		IOMaximumIOps:        o.ioMaxIOps,
		IOMaximumBandwidth:   uint64(o.ioMaxBandwidth),
		DeviceRequests:       o.gpus.values,
	}
	if devices == nil {
		resources.Devices = []container.DeviceMapping{}
	}
	pl := o.pidsLimit
	resources.PidsLimit = &pl

	hostConfig := &container.HostConfig{
		Binds:           binds,
		ContainerIDFile: o.containerIDFile,
		OomScoreAdj:     o.oomScoreAdj,
		AutoRemove:      o.autoRemove,
		Privileged:      o.privileged,
		PortBindings:    bindings,
		Links:           o.links.GetAll(),
		PublishAllPorts: o.publishAll,
		DNS:             dns,
		DNSSearch:       nonNil(o.dnsSearch.GetAll()),
		DNSOptions:      nonNil(o.dnsOptions.GetAll()),
		ExtraHosts:      o.extraHosts.GetAll(),
		VolumesFrom:     o.volumesFrom.GetAll(),
		IpcMode:         container.IpcMode(o.ipcMode),
		NetworkMode:     "default",
		PidMode:         pidMode,
		UTSMode:         utsMode,
		UsernsMode:      usernsMode,
		CgroupnsMode:    cgroupnsMode,
		CapAdd:          o.capAdd.GetAll(),
		CapDrop:         o.capDrop.GetAll(),
		GroupAdd:        o.groupAdd.GetAll(),
		RestartPolicy:   restart,
		SecurityOpt:     securityOpts,
		StorageOpt:      storageOpts,
		ReadonlyRootfs:  o.readonlyRootfs,
		LogConfig:       container.LogConfig{Type: o.loggingDriver, Config: logOpts},
		VolumeDriver:    o.volumeDriver,
		Isolation:       container.Isolation(o.isolation),
		ShmSize:         int64(o.shmSize),
		Resources:       resources,
		Tmpfs:           tmpfs,
		Sysctls:         o.sysctls.values,
		Runtime:         o.runtime,
		Mounts:          o.mounts.values,
		MaskedPaths:     maskedPaths,
		ReadonlyPaths:   readonlyPaths,
		Annotations:     o.annotations.values,
	}
	if len(hostConfig.Sysctls) == 0 {
		hostConfig.Sysctls = nil
	}
	if len(hostConfig.Annotations) == 0 {
		hostConfig.Annotations = nil
	}
	if o.init {
		t := true
		hostConfig.Init = &t
	}
	if o.autoRemove && !hostConfig.RestartPolicy.IsNone() {
		return nil, errors.New("conflicting options: cannot specify both --restart and --rm")
	}
	// Without a TTY there is no console to size.
	if !o.tty {
		hostConfig.ConsoleSize = [2]uint{0, 0}
	}

	netConfig, err := parseNetworkOpts(o)
	if err != nil {
		return nil, err
	}
	hostConfig.NetworkMode = container.NetworkMode(netConfig.mode)
	return &containerConfig{Config: config, HostConfig: hostConfig, NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: netConfig.endpoints}}, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func timeDuration(d durationValue) time.Duration { return time.Duration(d) }

type netParseResult struct {
	mode      string
	endpoints map[string]*network.EndpointSettings
}

// parseNetworkOpts turns --network, --network-alias, --ip, --ip6,
// --link-local-ip and --mac-address into the network mode and endpoint
// settings. The per-network flags apply to the first network.
func parseNetworkOpts(o *containerOptions) (netParseResult, error) {
	res := netParseResult{mode: "default", endpoints: map[string]*network.EndpointSettings{}}
	nets := o.netMode.options
	if len(nets) == 0 {
		nets = []networkAttachOpt{{Target: "default"}}
	}
	hasUserDefined := false
	for i, n := range nets {
		mode := container.NetworkMode(n.Target)
		if n.Target == "" {
			return res, errors.New("invalid network: network name must not be empty")
		}
		if i == 0 {
			res.mode = n.Target
		}
		if mode.IsUserDefined() {
			hasUserDefined = true
		} else if len(nets) > 1 {
			return res, fmt.Errorf("conflicting options: cannot attach both user-defined and non-user-defined network-modes")
		}
		if _, dup := res.endpoints[n.Target]; dup {
			return res, fmt.Errorf("network %q is specified multiple times", n.Target)
		}
		ep := &network.EndpointSettings{Aliases: n.Aliases, DriverOpts: n.DriverOpts, GwPriority: n.GwPriority}
		ipam := &network.EndpointIPAMConfig{}
		if n.IPv4Address != "" {
			a, err := netip.ParseAddr(n.IPv4Address)
			if err != nil {
				return res, fmt.Errorf("invalid IPv4 address: %s", n.IPv4Address)
			}
			ipam.IPv4Address = a
		}
		if n.IPv6Address != "" {
			a, err := netip.ParseAddr(n.IPv6Address)
			if err != nil {
				return res, fmt.Errorf("invalid IPv6 address: %s", n.IPv6Address)
			}
			ipam.IPv6Address = a
		}
		if n.MacAddress != "" {
			mac, err := parseMAC(n.MacAddress)
			if err != nil {
				return res, err
			}
			ep.MacAddress = mac
		}
		if i == 0 {
			if o.aliases.Len() > 0 {
				ep.Aliases = append(ep.Aliases, o.aliases.GetAll()...)
			}
			if o.ipv4Address != "" {
				a, err := netip.ParseAddr(o.ipv4Address)
				if err != nil || !a.Is4() {
					return res, fmt.Errorf("invalid IPv4 address: %s", o.ipv4Address)
				}
				ipam.IPv4Address = a
			}
			if o.ipv6Address != "" {
				a, err := netip.ParseAddr(o.ipv6Address)
				if err != nil || !a.Is6() {
					return res, fmt.Errorf("invalid IPv6 address: %s", o.ipv6Address)
				}
				ipam.IPv6Address = a
			}
			for _, l := range o.linkLocalIPs.GetAll() {
				a, err := netip.ParseAddr(l)
				if err != nil {
					return res, fmt.Errorf("invalid link-local IP address: %s", l)
				}
				ipam.LinkLocalIPs = append(ipam.LinkLocalIPs, a)
			}
			if o.macAddress != "" {
				mac, err := parseMAC(o.macAddress)
				if err != nil {
					return res, err
				}
				ep.MacAddress = mac
			}
			if len(ep.Aliases) > 0 && !mode.IsUserDefined() {
				return res, errors.New("network-scoped aliases are only supported for user-defined networks")
			}
		}
		if ipam.IPv4Address.IsValid() || ipam.IPv6Address.IsValid() || len(ipam.LinkLocalIPs) > 0 {
			ep.IPAMConfig = ipam
		}
		res.endpoints[n.Target] = ep
	}
	_ = hasUserDefined
	return res, nil
}

func parseMAC(s string) (network.HardwareAddr, error) {
	var mac network.HardwareAddr
	if err := mac.UnmarshalText([]byte(s)); err != nil {
		return nil, fmt.Errorf("%s is not a valid mac address", s)
	}
	return mac, nil
}

// parseVolumeSpec splits a -v value: "SRC:DST[:MODE]" is a bind mount or a
// named volume (returned whole as a bind), "DST" an anonymous volume.
// Relative host paths ("./data") are made absolute, as docker does.
func parseVolumeSpec(spec string) (bind, anonymous string, err error) {
	parts := strings.Split(spec, ":")
	switch len(parts) {
	case 1:
		if parts[0] == "" {
			return "", "", fmt.Errorf("invalid spec: %s: empty section between colons", spec)
		}
		return "", parts[0], nil
	case 2, 3:
		for _, p := range parts[:2] {
			if p == "" {
				return "", "", fmt.Errorf("invalid spec: %s: empty section between colons", spec)
			}
		}
		src := parts[0]
		if strings.HasPrefix(src, ".") {
			abs, err := filepath.Abs(src)
			if err != nil {
				return "", "", err
			}
			parts[0] = abs
		}
		return strings.Join(parts, ":"), "", nil
	default:
		return "", "", fmt.Errorf("invalid spec: %s: too many colons", spec)
	}
}

// convertPublishLongSyntax turns "target=80,published=8080,protocol=udp"
// into "8080:80/udp"; short specs are returned unchanged.
func convertPublishLongSyntax(spec string) (string, error) {
	if !strings.Contains(spec, "=") {
		return spec, nil
	}
	var target, published, proto, hostIP string
	for _, f := range strings.Split(spec, ",") {
		k, v, _ := strings.Cut(f, "=")
		switch strings.ToLower(k) {
		case "target":
			target = v
		case "published":
			published = v
		case "protocol":
			proto = v
		case "host-ip":
			hostIP = v
		case "mode":
		default:
			return "", fmt.Errorf("invalid field key: %s", k)
		}
	}
	if target == "" {
		return "", errors.New("missing mandatory field 'target'")
	}
	out := target
	if proto != "" {
		out += "/" + proto
	}
	if published != "" {
		out = published + ":" + out
	} else if hostIP != "" {
		out = ":" + out
	}
	if hostIP != "" {
		out = hostIP + ":" + out
	}
	return out, nil
}

// parseRestartPolicy reads --restart: "no", "always", "unless-stopped",
// "on-failure[:max-retries]". The daemon validates the name.
func parseRestartPolicy(policy string) (container.RestartPolicy, error) {
	p := container.RestartPolicy{}
	k, v, ok := strings.Cut(policy, ":")
	if ok && k == "" {
		return p, errors.New("invalid restart policy format: no policy provided before colon")
	}
	if v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return p, errors.New("invalid restart policy format: maximum retry count must be an integer")
		}
		p.MaximumRetryCount = n
	}
	p.Name = container.RestartPolicyMode(k)
	return p, nil
}

// parseSecurityOpts checks --security-opt values and loads a seccomp
// profile from its file. "systempaths=unconfined" clears the masked and
// read-only paths.
func parseSecurityOpts(opts []string) (out, masked, readonly []string, err error) {
	for _, opt := range opts {
		if opt == "systempaths=unconfined" {
			masked, readonly = []string{}, []string{}
			continue
		}
		if opt == "no-new-privileges" {
			out = append(out, opt)
			continue
		}
		k, v, ok := strings.Cut(opt, "=")
		if !ok {
			k, v, ok = strings.Cut(opt, ":")
		}
		if !ok {
			return nil, nil, nil, fmt.Errorf("Invalid --security-opt: %q", opt)
		}
		if k == "seccomp" && v != "unconfined" && v != "builtin" {
			data, err := os.ReadFile(v)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("opening seccomp profile (%s) failed: %w", v, err)
			}
			var b bytes.Buffer
			if err := json.Compact(&b, data); err != nil {
				return nil, nil, nil, fmt.Errorf("compacting json for seccomp profile (%s) failed: %w", v, err)
			}
			opt = "seccomp=" + b.String()
		}
		out = append(out, opt)
	}
	return out, masked, readonly, nil
}

// parseDevice reads --device HOST[:CONTAINER[:PERMISSIONS]].
func parseDevice(d string) (container.DeviceMapping, error) {
	parts := strings.Split(d, ":")
	dm := container.DeviceMapping{CgroupPermissions: "rwm"}
	switch len(parts) {
	case 1:
		dm.PathOnHost, dm.PathInContainer = parts[0], parts[0]
	case 2:
		dm.PathOnHost = parts[0]
		if isDevicePerms(parts[1]) {
			dm.PathInContainer, dm.CgroupPermissions = parts[0], parts[1]
		} else {
			dm.PathInContainer = parts[1]
		}
	case 3:
		if !isDevicePerms(parts[2]) {
			return dm, fmt.Errorf("invalid device mode: %s", parts[2])
		}
		dm.PathOnHost, dm.PathInContainer, dm.CgroupPermissions = parts[0], parts[1], parts[2]
	default:
		return dm, fmt.Errorf("invalid device specification: %s", d)
	}
	return dm, nil
}

func isDevicePerms(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c != 'r' && c != 'w' && c != 'm' {
			return false
		}
	}
	return true
}

func parseWeightDevices(vals []string) ([]*blkiodev.WeightDevice, error) {
	out := []*blkiodev.WeightDevice{}
	for _, v := range vals {
		p, w, ok := strings.Cut(v, ":")
		if !ok || !strings.HasPrefix(p, "/dev/") {
			return nil, fmt.Errorf("bad format: %s", v)
		}
		n, err := strconv.ParseUint(w, 10, 16)
		if err != nil || (n > 0 && (n < 10 || n > 1000)) {
			return nil, fmt.Errorf("invalid weight for device: %s", v)
		}
		out = append(out, &blkiodev.WeightDevice{Path: p, Weight: uint16(n)})
	}
	return out, nil
}

func parseThrottleDevices(vals []string, bytes bool) ([]*blkiodev.ThrottleDevice, error) {
	out := []*blkiodev.ThrottleDevice{}
	for _, v := range vals {
		p, r, ok := strings.Cut(v, ":")
		if !ok || !strings.HasPrefix(p, "/dev/") {
			return nil, fmt.Errorf("bad format: %s", v)
		}
		var n uint64
		if bytes {
			b, err := units.RAMInBytes(r)
			if err != nil || b < 0 {
				return nil, fmt.Errorf("invalid rate for device: %s. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb", v)
			}
			n = uint64(b)
		} else {
			u, err := strconv.ParseUint(r, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("invalid rate for device: %s. The correct format is <device-path>:<number>. Number must be a positive integer", v)
			}
			n = u
		}
		out = append(out, &blkiodev.ThrottleDevice{Path: p, Rate: n})
	}
	return out, nil
}

var _ = mount.TypeBind

// parseExposeRange reads "80" or "8000-8010" as --expose does.
func parseExposeRange(s string) (uint64, uint64, error) {
	if s == "" {
		return 0, 0, errors.New("empty string specified for ports")
	}
	a, b, isRange := strings.Cut(s, "-")
	start, err := strconv.ParseUint(a, 10, 16)
	if err != nil {
		return 0, 0, err
	}
	if !isRange {
		return start, start, nil
	}
	end, err := strconv.ParseUint(b, 10, 16)
	if err != nil {
		return 0, 0, err
	}
	if end < start {
		return 0, 0, fmt.Errorf("invalid range specified for port: %s", s)
	}
	return start, end, nil
}
