package container

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	rtspec "github.com/berth/berth/runtime/spec"
)

// cgroupsPath is where runc puts the container's cgroups (cgroupfs driver).
func cgroupsPath(id string) string { return "/berth/" + id }

// cgroupPaths lists the container's memory cgroup directories on the host,
// where the shim looks for OOM kills (v1 memory.oom_control, v2
// memory.events): the directory stats reads (cgroupDir), so that a
// configured cgroup root moves both.
func (s *Service) cgroupPaths(id string) []string {
	return []string{s.cgroupDir(id, "memory")}
}

func writeSpec(bundle string, spec *specs.Spec) error {
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o600)
}

// netNSPath is the network namespace a container joins ("" = a new one).
// Call with c.mu held.
func (s *Service) netNSPath(ctx context.Context, c *Container) (string, error) {
	mode := c.HostConfig.NetworkMode
	switch {
	case mode.IsHost():
		return "host", nil
	case mode.IsContainer():
		other, err := s.Get(mode.ConnectedContainer())
		if err != nil {
			return "", err
		}
		other.mu.Lock()
		pid, running := other.State.Pid, other.State.Running
		other.mu.Unlock()
		if !running {
			return "", cerrdefs.ErrInvalidArgument.WithMessage("cannot join network of a non running container: " + other.ID)
		}
		return filepath.Join("/proc", itoa(pid), "ns", "net"), nil
	}
	if s.network != nil {
		return s.network.Setup(ctx, s.networkRequest(c))
	}
	return "", nil
}

// networkRequest describes c to the network service. Call with c.mu held.
func (s *Service) networkRequest(c *Container) NetworkRequest {
	return NetworkRequest{
		ContainerID: c.ID,
		Name:        strings.TrimPrefix(c.Name, "/"),
		Hostname:    c.Config.Hostname,
		Config:      c.Config,
		HostConfig:  c.HostConfig,
		Networking:  c.NetworkConfig,
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// generateSpec builds the OCI spec for c on rootfs.
func (s *Service) generateSpec(ctx context.Context, c *Container, rootfs string) (*specs.Spec, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// The network first: /etc/hosts and resolv.conf depend on it.
	nsPath, err := s.netNSPath(ctx, c)
	if err != nil {
		return nil, err
	}
	mounts, err := s.specMounts(ctx, c, rootfs)
	if err != nil {
		return nil, err
	}
	return rtspec.Generate(rtspec.Input{
		ID:          c.ID,
		Config:      c.Config,
		HostConfig:  c.HostConfig,
		Rootfs:      rootfs,
		Hostname:    c.Config.Hostname,
		Mounts:      mounts,
		NetNSPath:   nsPath,
		CgroupsPath: cgroupsPath(c.ID),
		InitPath:    s.cfg.InitPath,
		Users:       rtspec.RootfsUsers(rootfs),
	})
}

// execProcess builds the process of an exec in c.
func (s *Service) execProcess(ctx context.Context, c *Container, cfg container.ExecCreateRequest) (*specs.Process, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := os.ReadFile(filepath.Join(s.stateDir(c.ID), "config.json"))
	if err != nil {
		return nil, err
	}
	var base specs.Spec
	if err := json.Unmarshal(b, &base); err != nil {
		return nil, err
	}
	return rtspec.ExecProcess(&base, rtspec.ExecInput{
		Cmd:        cfg.Cmd,
		Env:        cfg.Env,
		User:       cfg.User,
		WorkingDir: cfg.WorkingDir,
		Tty:        cfg.Tty,
		Privileged: cfg.Privileged,
		GroupAdd:   c.HostConfig.GroupAdd,
		Pid:        c.State.Pid,
		Users:      rtspec.RootfsUsers(s.rootfs(c.ID)),
	})
}
