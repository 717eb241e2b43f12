package container

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth/berth/image"
)

var volumeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// parseBind parses one -v value: "/host:/ctr[:opts]", "name:/ctr[:opts]"
// or "/ctr" (anonymous).
func parseBind(spec string) (container.MountPoint, error) {
	bad := cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid volume specification: '%s'", spec))
	parts := strings.Split(spec, ":")
	mp := container.MountPoint{RW: true, Propagation: mount.PropagationRPrivate}
	var opts string
	switch len(parts) {
	case 1:
		mp.Type, mp.Destination = mount.TypeVolume, parts[0]
	case 2:
		if isModeList(parts[1]) {
			// "/ctr:ro": an anonymous volume with a mode.
			mp.Type, mp.Destination, opts = mount.TypeVolume, parts[0], parts[1]
		} else {
			mp.Source, mp.Destination = parts[0], parts[1]
			if !path.IsAbs(mp.Destination) {
				kind := "volume"
				if path.IsAbs(mp.Source) {
					kind = "bind"
				}
				return mp, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid volume specification: '%s': invalid mount config for type %q: invalid mount path: '%s' mount path must be absolute", spec, kind, mp.Destination))
			}
		}
	case 3:
		mp.Source, mp.Destination, opts = parts[0], parts[1], parts[2]
	default:
		return mp, bad
	}
	if mp.Destination == "" || !path.IsAbs(mp.Destination) {
		if mp.Destination == "" {
			return mp, bad
		}
		return mp, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid mount config for type \"volume\": invalid mount path: '%s' mount path must be absolute", mp.Destination))
	}
	if mp.Source != "" || len(parts) > 1 && mp.Type == "" {
		switch {
		case mp.Source == "":
			return mp, bad
		case path.IsAbs(mp.Source):
			mp.Type = mount.TypeBind
			mp.Propagation = mount.PropagationRPrivate
		case volumeName.MatchString(mp.Source):
			mp.Type, mp.Name = mount.TypeVolume, mp.Source
			mp.Source = ""
		default:
			return mp, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("create %s: %q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path", mp.Source, mp.Source))
		}
	}
	explicitProp := false
	for _, o := range strings.Split(opts, ",") {
		switch o {
		case "":
		case "ro":
			mp.RW = false
		case "rw":
			mp.RW = true
		case "z", "Z", "nocopy", "private", "rprivate", "shared", "rshared", "slave", "rslave":
			if strings.Contains(o, "private") || strings.Contains(o, "shared") || strings.Contains(o, "slave") {
				mp.Propagation = mount.Propagation(o)
				explicitProp = true
			}
			mp.Mode = o
		default:
			return mp, bad
		}
	}
	if opts != "" {
		mp.Mode = opts
	}
	if mp.Type == mount.TypeVolume && explicitProp {
		// dockerd: a plain error (500), its mount parser's words.
		return mp, fmt.Errorf("invalid volume specification: '%s': invalid mount config for type \"volume\": field BindOptions must not be specified", spec)
	}
	mp.Destination = path.Clean(mp.Destination)
	if mp.Destination == "/" {
		return mp, cerrdefs.ErrInvalidArgument.WithMessage("invalid specification: destination can't be '/'")
	}
	return mp, nil
}

// parseMount converts one --mount entry.
func parseMount(m mount.Mount) (container.MountPoint, error) {
	mp := container.MountPoint{Type: m.Type, Destination: m.Target, RW: !m.ReadOnly}
	if m.Target == "" {
		return mp, cerrdefs.ErrInvalidArgument.WithMessage("invalid mount config: Target must not be empty")
	}
	if !path.IsAbs(m.Target) {
		return mp, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid mount config for type %q: invalid mount path: '%s' mount path must be absolute", m.Type, m.Target))
	}
	mp.Destination = path.Clean(m.Target)
	extra := func(field string) error {
		return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid mount config for type %q: field %s must not be specified", m.Type, field))
	}
	switch {
	case m.Type == mount.TypeBind && m.VolumeOptions != nil:
		return mp, extra("VolumeOptions")
	case (m.Type == mount.TypeVolume || m.Type == mount.TypeTmpfs) && m.BindOptions != nil:
		return mp, extra("BindOptions")
	case m.Type == mount.TypeVolume && m.Source == "" && m.ReadOnly:
		return mp, cerrdefs.ErrInvalidArgument.WithMessage("invalid mount config for type \"volume\": must not set ReadOnly mode when using anonymous volumes")
	}
	switch m.Type {
	case mount.TypeBind:
		if m.Source == "" {
			return mp, cerrdefs.ErrInvalidArgument.WithMessage("invalid mount config for type \"bind\": field Source must not be empty")
		}
		if _, err := os.Stat(m.Source); err != nil {
			return mp, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid mount config for type \"bind\": bind source path does not exist: %s", m.Source))
		}
		mp.Source = m.Source
		mp.Propagation = mount.PropagationRPrivate
		if m.BindOptions != nil && m.BindOptions.Propagation != "" {
			mp.Propagation = m.BindOptions.Propagation
		}
	case mount.TypeVolume:
		if m.Source != "" && !volumeName.MatchString(m.Source) {
			return mp, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid mount config for type \"volume\": invalid volume name %q", m.Source))
		}
		mp.Name = m.Source
	case mount.TypeTmpfs:
		if m.Source != "" {
			return mp, cerrdefs.ErrInvalidArgument.WithMessage("invalid mount config for type \"tmpfs\": field Source must not be specified")
		}
		mp.Source = "tmpfs"
		if m.TmpfsOptions != nil {
			var o []string
			if m.TmpfsOptions.SizeBytes > 0 {
				o = append(o, fmt.Sprintf("size=%d", m.TmpfsOptions.SizeBytes))
			}
			if m.TmpfsOptions.Mode != 0 {
				o = append(o, fmt.Sprintf("mode=%o", m.TmpfsOptions.Mode))
			}
			mp.Mode = strings.Join(o, ",")
		}
	default:
		return mp, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid mount config for type %q: mount type unknown", m.Type))
	}
	return mp, nil
}

// setupMounts resolves every bind, volume and tmpfs of a new container,
// creating anonymous volumes, and records them in c.Mounts.
func (s *Service) setupMounts(ctx context.Context, c *Container, img *image.ImageConfig) (retErr error) {
	byDest := map[string]container.MountPoint{}
	for _, b := range c.HostConfig.Binds {
		mp, err := parseBind(b)
		if err != nil {
			return err
		}
		if _, dup := byDest[mp.Destination]; dup {
			return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Duplicate mount point: %s", mp.Destination))
		}
		byDest[mp.Destination] = mp
	}
	for _, m := range c.HostConfig.Mounts {
		mp, err := parseMount(m)
		if err != nil {
			return err
		}
		if _, dup := byDest[mp.Destination]; dup {
			return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Duplicate mount point: %s", mp.Destination))
		}
		byDest[mp.Destination] = mp
	}
	for dst, opts := range c.HostConfig.Tmpfs {
		if !path.IsAbs(dst) {
			return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid mount config for type \"tmpfs\": invalid mount path: '%s' mount path must be absolute", dst))
		}
		dst = path.Clean(dst)
		byDest[dst] = container.MountPoint{Type: mount.TypeTmpfs, Source: "tmpfs", Destination: dst, RW: true, Mode: opts}
	}
	from, err := s.volumesFrom(c)
	if err != nil {
		return err
	}
	for dst, mp := range from {
		if _, ok := byDest[dst]; ok {
			delete(from, dst) // -v, --mount or --tmpfs wins
			c.NamedFrom = slices.DeleteFunc(c.NamedFrom, func(d string) bool { return d == dst })
			continue
		}
		byDest[dst] = mp
	}
	for v := range c.Config.Volumes {
		v = path.Clean(v)
		if _, ok := byDest[v]; !ok {
			byDest[v] = container.MountPoint{Type: mount.TypeVolume, Destination: v, RW: true}
		}
	}
	var acquired []string
	defer func() {
		if retErr != nil && s.cfg.Volumes != nil {
			for _, n := range acquired {
				_ = s.cfg.Volumes.Release(context.WithoutCancel(ctx), n, c.ID)
			}
		}
	}()
	var out []container.MountPoint
	for _, mp := range byDest {
		if mp.Type == mount.TypeBind {
			if _, err := os.Stat(mp.Source); os.IsNotExist(err) {
				// -v creates a missing host directory, as Docker does.
				if err := os.MkdirAll(mp.Source, 0o755); err != nil {
					return err
				}
			}
		}
		if _, ok := from[mp.Destination]; ok && mp.Type == mount.TypeVolume && s.cfg.Volumes != nil {
			// Another container's volume: one more reference, as it is.
			if _, err := s.cfg.Volumes.Acquire(ctx, mp.Name, c.ID); err != nil {
				return err
			}
			acquired = append(acquired, mp.Name)
			out = append(out, mp)
			continue
		}
		if mp.Type == mount.TypeVolume {
			if s.cfg.Volumes == nil {
				return cerrdefs.ErrNotImplemented.WithMessage("volumes are not available")
			}
			anonymous := mp.Name == ""
			if anonymous {
				v, err := s.cfg.Volumes.Create(ctx, "", "local", map[string]string{"com.docker.volume.anonymous": ""}, nil)
				if err != nil {
					return err
				}
				mp.Name = v.Name
			}
			if !anonymous {
				// -v name:/path creates the volume, as Docker does.
				if _, err := s.cfg.Volumes.Create(ctx, mp.Name, "local", nil, nil); err != nil {
					return err
				}
			}
			src, err := s.cfg.Volumes.Acquire(ctx, mp.Name, c.ID)
			if err != nil {
				return err
			}
			acquired = append(acquired, mp.Name)
			mp.Source = src
			mp.Driver = "local"
			if anonymous {
				mp.Mode = ""
			} else if mp.Mode == "" {
				mp.Mode = "z"
			}
			mp.Propagation = ""
		}
		out = append(out, mp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Destination < out[j].Destination })
	c.Mounts = out
	return nil
}

// unmountVolumes lets tmpfs-style volumes go when the container stops.
func (s *Service) unmountVolumes(ctx context.Context, c *Container) {
	if s.cfg.Volumes == nil {
		return
	}
	c.mu.Lock()
	mounts := c.Mounts
	c.mu.Unlock()
	for _, mp := range mounts {
		if mp.Type == mount.TypeVolume {
			_ = s.cfg.Volumes.Unmount(ctx, mp.Name, c.ID)
		}
	}
}

// releaseMounts lets go of the container's volumes; with removeAnon the
// anonymous ones are deleted too (rm -v, --rm).
func (s *Service) releaseMounts(ctx context.Context, c *Container, removeAnon bool) {
	if s.cfg.Volumes == nil {
		return
	}
	for _, mp := range c.Mounts {
		if mp.Type != mount.TypeVolume {
			continue
		}
		_ = s.cfg.Volumes.Release(ctx, mp.Name, c.ID)
		if removeAnon && isAnonymous(c, mp) {
			_ = s.cfg.Volumes.Remove(ctx, mp.Name, false)
		}
	}
}

func isAnonymous(c *Container, mp container.MountPoint) bool {
	if slices.Contains(c.NamedFrom, mp.Destination) {
		return false
	}
	for _, b := range c.HostConfig.Binds {
		if p, err := parseBind(b); err == nil && p.Destination == mp.Destination && p.Name != "" {
			return false
		}
	}
	for _, m := range c.HostConfig.Mounts {
		if path.Clean(m.Target) == mp.Destination && m.Source != "" {
			return false
		}
	}
	return true
}

// specMounts turns c.Mounts plus the /etc files into OCI mounts, and
// fills empty named volumes from the image first.
func (s *Service) specMounts(ctx context.Context, c *Container, rootfs string) ([]specs.Mount, error) {
	var out []specs.Mount
	etcOpts := []string{"rbind", "rprivate"}
	if c.HostConfig.ReadonlyRootfs {
		// --read-only covers the files berth provides too, as dockerd's.
		etcOpts = append(etcOpts, "ro")
	}
	for _, f := range []struct{ name, dst string }{{"hosts", "/etc/hosts"}, {"hostname", "/etc/hostname"}, {"resolv.conf", "/etc/resolv.conf"}} {
		out = append(out, specs.Mount{Destination: f.dst, Type: "bind", Source: filepath.Join(s.etcDir(c), f.name), Options: etcOpts})
	}
	for _, mp := range c.Mounts {
		switch mp.Type {
		case mount.TypeTmpfs:
			opts := []string{"nosuid", "nodev", "noexec"}
			if mp.Mode != "" {
				opts = append(opts, strings.Split(mp.Mode, ",")...)
			}
			out = append(out, specs.Mount{Destination: mp.Destination, Type: "tmpfs", Source: "tmpfs", Options: opts})
		default:
			if mp.Type == mount.TypeVolume && s.cfg.Volumes != nil {
				// An empty volume takes the image's content at that path.
				if src, err := securePath(rootfs, mp.Destination); err == nil {
					if st, err := os.Stat(src); err == nil && st.IsDir() {
						_ = s.cfg.Volumes.CopyUp(ctx, mp.Name, src)
					}
				}
			}
			opts := []string{"rbind"}
			if mp.RW {
				opts = append(opts, "rw")
			} else {
				opts = append(opts, "ro")
			}
			prop := string(mp.Propagation)
			if prop == "" {
				prop = "rprivate"
			}
			opts = append(opts, prop)
			out = append(out, specs.Mount{Destination: mp.Destination, Type: "bind", Source: mp.Source, Options: opts})
		}
	}
	return out, nil
}

// securePath resolves p inside root without leaving it.
func securePath(root, p string) (string, error) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return "", err
	}
	defer r.Close()
	rel := strings.TrimPrefix(path.Clean("/"+p), "/")
	if rel == "" {
		return root, nil
	}
	f, err := r.Open(rel)
	if err != nil {
		return "", err
	}
	f.Close()
	// Opening through the root succeeded, so no component escaped; the
	// lexical join is the same path the kernel resolved.
	return filepath.Join(root, rel), nil
}

// etcDir is the directory of the /etc files c mounts: its own, or that
// of the container whose network namespace it joined. Call with c.mu held.
func (s *Service) etcDir(c *Container) string {
	if c.EtcFrom != "" {
		return s.dir(c.EtcFrom)
	}
	return s.dir(c.ID)
}

// writeEtcFiles writes the container's /etc/hosts, /etc/hostname and
// /etc/resolv.conf into its directory, to be bind-mounted. A container in
// another's network namespace has that one's files and writes none.
func (s *Service) writeEtcFiles(c *Container) error {
	c.mu.Lock()
	if c.EtcFrom != "" {
		c.mu.Unlock()
		return nil
	}
	hostname := c.Config.Hostname
	domain := c.Config.Domainname
	extra := c.HostConfig.ExtraHosts
	var dns []string
	for _, a := range c.HostConfig.DNS {
		dns = append(dns, a.String())
	}
	search := c.HostConfig.DNSSearch
	opts := c.HostConfig.DNSOptions
	hostNet := c.HostConfig.NetworkMode.IsHost()
	linkHosts := c.linkHosts
	c.mu.Unlock()
	dir := s.dir(c.ID)
	if hostNet {
		hostname, _ = os.Hostname()
	}
	fqdn := hostname
	if domain != "" {
		fqdn = hostname + "." + domain
	}
	var hosts strings.Builder
	if hostNet {
		b, _ := os.ReadFile("/etc/hosts")
		hosts.Write(b)
	} else {
		hosts.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
	}
	for _, h := range extra {
		name, ip, ok := strings.Cut(h, ":")
		if !ok {
			if name, ip, ok = strings.Cut(h, "="); !ok {
				continue
			}
		}
		if ip == "host-gateway" {
			ip = s.hostGateway(c)
		}
		fmt.Fprintf(&hosts, "%s\t%s\n", ip, name)
	}
	hosts.WriteString(linkHosts)
	if ip := s.containerIP(c); ip != "" && !hostNet {
		// dockerd: the FQDN, then the bare name when it has a domain,
		// whether the domain came with --hostname or --domainname.
		names := fqdn
		if short, _, ok := strings.Cut(fqdn, "."); ok {
			names = fqdn + " " + short
		}
		fmt.Fprintf(&hosts, "%s\t%s\n", ip, names)
		if ip6 := s.containerIPv6(c, ip); ip6 != "" {
			// dockerd: the IPv6 address of the same endpoint next.
			fmt.Fprintf(&hosts, "%s\t%s\n", ip6, names)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte(hosts.String()), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "hostname"), []byte(hostname+"\n"), 0o644); err != nil {
		return err
	}
	embedded := ""
	if s.network != nil {
		// On user-defined networks the embedded DNS server answers (and
		// forwards to any --dns servers), as in Docker.
		if e := s.network.ResolvConf(c.ID); len(e) > 0 {
			embedded = e[0]
		}
	}
	if hostNet && len(dns)+len(search)+len(opts) == 0 {
		// The host's network: the host's file as it is (its loopback
		// resolvers are reachable), as dockerd copies it.
		b, _ := os.ReadFile("/etc/resolv.conf")
		return os.WriteFile(filepath.Join(dir, "resolv.conf"), b, 0o644)
	}
	host, _ := os.ReadFile(hostResolvConfPath())
	return os.WriteFile(filepath.Join(dir, "resolv.conf"), makeResolvConf(host, dns, search, opts, embedded), 0o644)
}

// containerIP is the container's address on its network, if any.
func (s *Service) containerIP(c *Container) string {
	if s.network == nil {
		return ""
	}
	return s.network.ContainerIP(c.ID)
}

// containerIPv6 is the IPv6 address of the container's endpoint whose
// IPv4 address is ip (its network has IPv6), "" if none.
func (s *Service) containerIPv6(c *Container, ip string) string {
	var resp container.InspectResponse
	resp.NetworkSettings = &container.NetworkSettings{}
	s.network.FillInspect(c.ID, &resp)
	for _, ep := range resp.NetworkSettings.Networks {
		if ep != nil && ep.IPAddress.String() == ip && ep.GlobalIPv6Address.IsValid() {
			return ep.GlobalIPv6Address.String()
		}
	}
	return ""
}

// hostGateway is what --add-host NAME:host-gateway maps to: the gateway of
// the container's network, the host's address on its bridge.
func (s *Service) hostGateway(c *Container) string {
	if s.network == nil {
		return "127.0.0.1"
	}
	var resp container.InspectResponse
	resp.NetworkSettings = &container.NetworkSettings{}
	s.network.FillInspect(c.ID, &resp)
	for _, ep := range resp.NetworkSettings.Networks {
		if ep != nil && ep.Gateway.IsValid() {
			return ep.Gateway.String()
		}
	}
	return "127.0.0.1"
}

// isModeList reports whether s is a list of -v modes ("ro", "rw,z" ...).
func isModeList(s string) bool {
	if s == "" {
		return false
	}
	for _, m := range strings.Split(s, ",") {
		switch m {
		case "ro", "rw", "z", "Z", "nocopy", "private", "rprivate", "shared", "rshared", "slave", "rslave", "consistent", "cached", "delegated":
		default:
			return false
		}
	}
	return true
}
