package container

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	rtspec "github.com/berth/berth/runtime/spec"
)

// cgroupsPath is where runc puts the container's cgroups (cgroupfs
// driver): /berth/<id>, or <--cgroup-parent>/<id> made absolute and
// cleaned, so that "../" never climbs out of the hierarchy's root. It
// takes no container lock (callers hold one): the parents are noted in
// cgroupParents at create and load.
func (s *Service) cgroupsPath(id string) string {
	if p, ok := s.cgroupParents.Load(id); ok {
		return path.Join("/", p.(string), id)
	}
	return "/berth/" + id
}

// noteCgroupParent remembers a container's --cgroup-parent (it never
// changes) for cgroupsPath.
func (s *Service) noteCgroupParent(c *Container) {
	if c.HostConfig != nil && c.HostConfig.CgroupParent != "" {
		s.cgroupParents.Store(c.ID, c.HostConfig.CgroupParent)
	}
}

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

// joined are the namespaces a container takes from others (--network,
// --pid, --ipc container:X), found before its own lock is taken.
type joined struct {
	netNS string                              // /proc/PID/ns/net, or ""
	ns    map[specs.LinuxNamespaceType]string // PID and IPC namespaces
	// The network namespace's container: its ID, hostname and domain
	// name, which the joiner takes (dockerd's initializeNetworking).
	netDonor, hostname, domainname string
	// shm is the IPC donor's host /dev/shm to bind ("" = none).
	shm string
}

// joinedNamespaces looks up the containers whose namespaces c joins, with
// Docker's errors. It must be called without c.mu held and takes each
// other container's lock alone: a container may name itself (Docker:
// "cannot join own network"; its own PID or IPC namespace: not running)
// and two may name each other, so holding one container's lock while
// taking another's could deadlock.
func (s *Service) joinedNamespaces(c *Container) (joined, error) {
	c.mu.Lock()
	netMode, pidMode, ipcMode := c.HostConfig.NetworkMode, c.HostConfig.PidMode, c.HostConfig.IpcMode
	c.mu.Unlock()
	var j joined
	// running returns the PID of a running other container, or Docker's
	// error for one that is not (notRunning words the usual case).
	running := func(other *Container, notRunning string) (int, error) {
		other.mu.Lock()
		defer other.mu.Unlock()
		switch {
		case other.State.Restarting:
			return 0, cerrdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is restarting, wait until the container is running", other.ID))
		case !other.State.Running:
			if notRunning == "" {
				notRunning = fmt.Sprintf("container %s is not running", other.ID)
			}
			return 0, cerrdefs.ErrConflict.WithMessage(notRunning)
		}
		return other.State.Pid, nil
	}
	if netMode.IsContainer() {
		ref := netMode.ConnectedContainer()
		other, err := s.Get(ref)
		if err != nil {
			return j, err
		}
		if other == c {
			return j, errors.New("cannot join own network")
		}
		pid, err := running(other, "cannot join network of a non running container: "+ref)
		if err != nil {
			return j, err
		}
		j.netNS = nsPath(pid, "net")
		other.mu.Lock()
		j.netDonor, j.hostname, j.domainname = other.ID, other.Config.Hostname, other.Config.Domainname
		other.mu.Unlock()
	}
	// dockerd answers 500 for a PID or IPC donor that is not running.
	if pidMode.IsContainer() {
		ref := pidMode.Container()
		other, err := s.Get(ref)
		if err != nil {
			return j, fmt.Errorf("cannot join PID of a non running container: %s: %w", ref, err)
		}
		pid, err := running(other, "")
		if err != nil {
			return j, errors.New(err.Error())
		}
		j.ns = map[specs.LinuxNamespaceType]string{specs.PIDNamespace: nsPath(pid, "pid")}
	}
	if ipcMode.IsContainer() {
		ref := ipcMode.Container()
		msg := "can't join IPC of container " + ref
		other, err := s.Get(ref)
		if err != nil {
			return j, fmt.Errorf("%s: %w", msg, err)
		}
		pid, err := running(other, "")
		if err != nil {
			return j, errors.New(msg + ": " + err.Error())
		}
		other.mu.Lock()
		shareable := other.HostConfig.IpcMode.IsShareable()
		other.mu.Unlock()
		if !shareable {
			return j, errors.New(msg + ": non-shareable IPC (hint: use IpcMode:shareable for the donor container)")
		}
		if j.ns == nil {
			j.ns = map[specs.LinuxNamespaceType]string{}
		}
		// The IPC namespace, and the donor's /dev/shm: its host tmpfs
		// (shm.go), as dockerd's.
		j.ns[specs.IPCNamespace] = nsPath(pid, "ipc")
		j.shm = s.donorShm(other.ID)
	}
	return j, nil
}

func nsPath(pid int, ns string) string { return filepath.Join("/proc", itoa(pid), "ns", ns) }

// netNSPath is the network namespace a container joins ("" = a new one),
// given what joinedNamespaces found. Call with c.mu held.
func (s *Service) netNSPath(ctx context.Context, c *Container, j joined) (string, error) {
	mode := c.HostConfig.NetworkMode
	switch {
	case mode.IsHost():
		return "host", nil
	case mode.IsContainer():
		return j.netNS, nil
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

// generateSpec builds the OCI spec for c on rootfs; shm is c's own host
// /dev/shm (mountShm), "" for none.
func (s *Service) generateSpec(ctx context.Context, c *Container, rootfs, shm string) (*specs.Spec, error) {
	j, err := s.joinedNamespaces(c)
	if err != nil {
		return nil, err
	}
	children, err := s.linkedChildren(c)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.specHook != nil {
		s.specHook(c) // tests: work queued against c.mu meanwhile
	}
	c.EtcFrom = j.netDonor
	if j.netDonor != "" {
		// One network namespace, one name: the donor's hostname and
		// /etc files (the UTS namespace stays the container's own).
		cp := *c.Config
		cp.Hostname, cp.Domainname = j.hostname, j.domainname
		c.Config = &cp
	}
	cfg := c.Config
	c.linkHosts = linkHostsLines(children)
	if len(children) > 0 {
		// The links' variables come first; the container's own win.
		var env []string
		for _, lc := range children {
			env = append(env, linkEnv(lc)...)
		}
		cp := *cfg
		cp.Env = rtspec.ReplaceOrAppendEnv(env, cfg.Env)
		cfg = &cp
	}
	// The network first: /etc/hosts and resolv.conf depend on it.
	netNS, err := s.netNSPath(ctx, c, j)
	if err != nil {
		return nil, err
	}
	mounts, err := s.specMounts(ctx, c, rootfs)
	if err != nil {
		return nil, err
	}
	return rtspec.Generate(rtspec.Input{
		ID:          c.ID,
		Config:      cfg,
		HostConfig:  c.HostConfig,
		Rootfs:      rootfs,
		Hostname:    c.Config.Hostname,
		Mounts:      mounts,
		NetNSPath:   netNS,
		NSPaths:     j.ns,
		ShmPath:     cmp.Or(shm, j.shm),
		CgroupsPath: s.cgroupsPath(c.ID),
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
