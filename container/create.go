package container

// docker create: a container record and its writable layer (the state
// role, with lifecycle.go).

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth/berth/container/logger"
	"github.com/berth/berth/internal/osutil"
	rtspec "github.com/berth/berth/runtime/spec"
)

// CreateRequest is what POST /containers/create carries.
type CreateRequest struct {
	Name          string
	Config        *container.Config
	HostConfig    *container.HostConfig
	NetworkConfig *network.NetworkingConfig
	// MacAddress is Config.MacAddress of clients before API 1.44.
	MacAddress string
	// Platform is the ?platform= of API 1.41 and later: the image must
	// be of it.
	Platform *ocispec.Platform
}

// requestedMAC is the MAC address the request asks for on its network.
func (r CreateRequest) requestedMAC() string {
	if r.MacAddress != "" {
		return r.MacAddress
	}
	if r.NetworkConfig != nil {
		for _, ep := range r.NetworkConfig.EndpointsConfig {
			if ep != nil && len(ep.MacAddress) > 0 {
				return ep.MacAddress.String()
			}
		}
	}
	return ""
}

// Create makes a container record and its writable layer.
func (s *Service) Create(ctx context.Context, req CreateRequest) (string, []string, error) {
	if req.Config == nil {
		req.Config = &container.Config{}
	}
	if req.HostConfig == nil {
		req.HostConfig = &container.HostConfig{}
	}
	if req.Config.Image == "" {
		return "", nil, cerrdefs.ErrInvalidArgument.WithMessage("config cannot be empty in order to create a container")
	}
	if err := validateNetMode(req.Config, req.HostConfig, req.requestedMAC()); err != nil {
		return "", nil, err
	}
	if err := validateHealthcheck(req.Config.Healthcheck); err != nil {
		return "", nil, err
	}
	if rt := req.HostConfig.Runtime; rt != "" && rt != "runc" {
		return "", nil, invalidf("Unknown runtime specified %s", rt)
	}
	if err := validateHostConfig(req.HostConfig); err != nil {
		return "", nil, err
	}
	// The daemon's default fills in the log configuration, which is
	// then checked, as dockerd does; inspect shows the result.
	lc := &req.HostConfig.LogConfig
	lc.Type, lc.Config = logger.MergeDefaults(lc.Type, lc.Config, s.cfg.LogDriver, s.cfg.LogOpts)
	if err := logger.Validate(lc.Type, lc.Config); err != nil {
		return "", nil, cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	defaultNet := req.HostConfig.NetworkMode == "" || req.HostConfig.NetworkMode == "default"
	if defaultNet {
		req.HostConfig.NetworkMode = "bridge"
	}
	// Docker records the containers whose namespaces are shared by ID (so
	// a rename keeps them); one not found is reported at start.
	hc := req.HostConfig
	if hc.NetworkMode.IsContainer() {
		if other, err := s.Get(hc.NetworkMode.ConnectedContainer()); err == nil {
			hc.NetworkMode = container.NetworkMode("container:" + other.ID)
		}
	}
	// A PID or IPC donor must exist now (dockerd: 400).
	if hc.IpcMode.IsContainer() {
		other, err := s.Get(hc.IpcMode.Container())
		if err != nil {
			return "", nil, cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
		hc.IpcMode = container.IpcMode("container:" + other.ID)
	}
	if hc.PidMode.IsContainer() {
		other, err := s.Get(hc.PidMode.Container())
		if err != nil {
			return "", nil, cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
		hc.PidMode = container.PidMode("container:" + other.ID)
	}
	if nc := req.NetworkConfig; nc != nil {
		// The docker CLI names the default network "default".
		if ep, ok := nc.EndpointsConfig["default"]; ok {
			delete(nc.EndpointsConfig, "default")
			if _, dup := nc.EndpointsConfig["bridge"]; !dup {
				nc.EndpointsConfig["bridge"] = ep
			}
		}
	}
	if mac := req.MacAddress; mac != "" {
		// The config's MAC (API < 1.44) is the endpoint's on the
		// container's network, as dockerd 25+ moves it.
		hw, err := net.ParseMAC(mac)
		if err != nil {
			return "", nil, invalidf("%s is not a valid mac address", mac)
		}
		name := string(req.HostConfig.NetworkMode)
		if req.NetworkConfig == nil {
			req.NetworkConfig = &network.NetworkingConfig{}
		}
		if req.NetworkConfig.EndpointsConfig == nil {
			req.NetworkConfig.EndpointsConfig = map[string]*network.EndpointSettings{}
		}
		ep := req.NetworkConfig.EndpointsConfig[name]
		if ep == nil {
			ep = &network.EndpointSettings{}
			req.NetworkConfig.EndpointsConfig[name] = ep
		}
		if len(ep.MacAddress) == 0 {
			ep.MacAddress = network.HardwareAddr(hw)
		}
	}
	if s.network != nil {
		// An unknown network is found out at start, as in Docker (a 404
		// here would make the docker CLI pull the image).
		if err := s.network.Validate(ctx, NetworkRequest{Name: strings.TrimPrefix(req.Name, "/"), Config: req.Config, HostConfig: req.HostConfig, Networking: req.NetworkConfig}); err != nil && !cerrdefs.IsNotFound(err) {
			return "", nil, err
		}
	}
	img, err := s.cfg.Images.Resolve(ctx, req.Config.Image)
	if err != nil {
		return "", nil, err
	}
	imgCfg, err := s.cfg.Images.Config(ctx, img)
	if err != nil {
		return "", nil, err
	}
	if err := matchPlatform(req.Config.Image, req.Platform, imgCfg); err != nil {
		return "", nil, err
	}
	links, err := s.resolveLinks(req.HostConfig)
	if err != nil {
		return "", nil, err
	}
	merged, err := rtspec.MergeConfig(req.Config, &imgCfg.Config)
	if err != nil {
		return "", nil, err
	}
	merged.Image = req.Config.Image
	// Everything the spec would reject at start (capabilities, ulimits,
	// devices, sysctls...) is rejected now, as Docker does at create.
	// The namespaces of other containers are looked up at start.
	dryNetNS, dryNS := "", map[specs.LinuxNamespaceType]string{}
	if req.HostConfig.NetworkMode.IsContainer() {
		dryNetNS = "/proc/self/ns/net"
	}
	if req.HostConfig.PidMode.IsContainer() {
		dryNS[specs.PIDNamespace] = "/proc/self/ns/pid"
	}
	if req.HostConfig.IpcMode.IsContainer() {
		dryNS[specs.IPCNamespace] = "/proc/self/ns/ipc"
	}
	if _, err := rtspec.Generate(rtspec.Input{
		ID: newID(), Config: merged, HostConfig: req.HostConfig, DryRun: true, NetNSPath: dryNetNS, NSPaths: dryNS,
		CgroupsPath: "/berth/validate", InitPath: s.cfg.InitPath,
	}); err != nil {
		return "", nil, err
	}
	warnings := rtspec.CreateDefaults(req.HostConfig, nil)
	path, args := commandLine(merged)
	c := newContainer()
	c.ID = newID()
	c.Created = time.Now().UTC()
	c.Config = merged
	c.HostConfig = req.HostConfig
	if c.HostConfig.Runtime == "" {
		c.HostConfig.Runtime = "runc"
	}
	c.DefaultNetworkMode = defaultNet
	c.NetworkConfig = req.NetworkConfig
	c.Image = img.ID
	c.ImageName = req.Config.Image
	c.TopChain = img.TopChain
	c.Path, c.Args = path, args
	c.State.Status = container.StateCreated
	for _, l := range links {
		c.Links = append(c.Links, LegacyLink{ChildID: l.child.ID, Alias: l.alias})
	}
	if c.Config.Hostname == "" {
		if c.HostConfig.NetworkMode.IsHost() {
			// The host's network, the host's name, as in Docker.
			c.Config.Hostname, _ = os.Hostname()
		} else {
			c.Config.Hostname = c.ID[:12]
		}
	}

	s.mu.Lock()
	name, err := s.reserveNameLocked(req.Name, c.ID)
	s.mu.Unlock()
	if err != nil {
		return "", nil, err
	}
	c.Name = name
	// The container's directory is made under a staging name and renamed
	// into place with its record: a crash never leaves a directory
	// without one (restore removes staging directories).
	staged := s.stagingDir(c.ID)
	ok := false
	defer func() {
		if !ok {
			s.mu.Lock()
			delete(s.byName, name)
			s.mu.Unlock()
			_ = s.cfg.Snapshots.RemoveContainer(context.WithoutCancel(ctx), c.ID)
			_ = os.RemoveAll(staged)
			_ = os.RemoveAll(s.dir(c.ID))
		}
	}()
	prepare := s.cfg.Snapshots.Prepare
	if c.HostConfig.AutoRemove {
		prepare = s.cfg.Snapshots.PrepareEphemeral
	}
	if _, err := prepare(ctx, c.ID, img.TopChain); err != nil {
		return "", nil, err
	}
	if err := os.MkdirAll(staged, 0o700); err != nil {
		return "", nil, err
	}
	if c.HostConfig.LogConfig.Type == logger.JSONFile {
		// Only json-file's path is shown (dockerd's LogPath): the other
		// drivers' files are theirs (see logFile).
		c.LogPath = filepath.Join(s.dir(c.ID), c.ID+"-json.log")
	}
	if err := s.setupMounts(ctx, c, imgCfg); err != nil {
		return "", nil, err
	}
	c.mu.Lock()
	err = c.save(staged)
	c.mu.Unlock()
	if err != nil {
		return "", nil, err
	}
	if err := os.Rename(staged, s.dir(c.ID)); err != nil {
		return "", nil, err
	}
	if !c.HostConfig.AutoRemove {
		if err := osutil.SyncDir(s.cfg.Root); err != nil {
			return "", nil, err
		}
	}
	s.noteCgroupParent(c)
	s.mu.Lock()
	s.byID[c.ID] = c
	s.mu.Unlock()
	ok = true
	s.emit(c, "create", nil)
	if warnings == nil {
		warnings = []string{}
	}
	return c.ID, warnings, nil
}

func (s *Service) reserveNameLocked(name, id string) (string, error) {
	if name == "" {
		for i := 0; ; i++ {
			n := "/" + randomName(i)
			if _, taken := s.byName[n]; !taken {
				s.byName[n] = id
				return n, nil
			}
		}
	}
	if !validName.MatchString(name) {
		return "", cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name))
	}
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	if other, taken := s.byName[name]; taken {
		return "", cerrdefs.ErrConflict.WithMessage(fmt.Sprintf("Conflict. The container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.", name, other))
	}
	s.byName[name] = id
	return name, nil
}

// commandLine is the merged config's entrypoint and cmd as one command.
func commandLine(c *container.Config) (string, []string) {
	all := append(append([]string{}, c.Entrypoint...), c.Cmd...)
	if len(all) == 0 {
		return "", nil
	}
	return all[0], all[1:]
}
