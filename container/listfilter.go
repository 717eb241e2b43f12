package container

// The filters of GET /containers/json that look at a container's
// configuration rather than its state (issue 14 item 8), as dockerd 20.10's
// daemon/list.go reads them.

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/go-connections/nat"
	"github.com/moby/moby/api/types/container"

	"github.com/berth/berth/filters"
)

// configFilters are the parsed publish=, expose=, volume=, network=,
// exited= and is-task= filters of one listing. publish= and expose= are
// matched, as by dockerd 20.10, against the summary's Ports: a published
// host port, a container port.
type configFilters struct {
	publish, expose map[string]bool // "80/tcp"
	volumes         []string
	networks        []string
	exited          map[int]bool
	// isTask is set when is-task= is given: berth runs no swarm tasks,
	// so is-task=true matches nothing and is-task=false everything.
	isTask *bool
}

// parseConfigFilters validates and parses the filters, with dockerd's
// answers for bad values.
func parseConfigFilters(f filters.Args) (*configFilters, error) {
	cf := &configFilters{volumes: f.Get("volume"), networks: f.Get("network")}
	var err error
	if cf.publish, err = portFilter(f, "publish"); err != nil {
		return nil, err
	}
	if cf.expose, err = portFilter(f, "expose"); err != nil {
		return nil, err
	}
	for _, v := range f.Get("exited") {
		code, err := strconv.Atoi(v)
		if err != nil {
			// dockerd answers strconv's error, unclassed (500).
			return nil, err
		}
		if cf.exited == nil {
			cf.exited = map[int]bool{}
		}
		cf.exited[code] = true
	}
	if vs := f.Get("is-task"); len(vs) > 0 {
		var t bool
		switch {
		case contains(vs, "true"):
			t = true
		case contains(vs, "false"):
		default:
			return nil, invalidFilter("is-task", fmt.Sprint(f.Get("is-task")))
		}
		cf.isTask = &t
	}
	return cf, nil
}

// portFilter reads "80", "80/udp" or "8000-8010/tcp" values into the set
// of ports they name.
func portFilter(f filters.Args, key string) (map[string]bool, error) {
	vs := f.Get(key)
	if len(vs) == 0 {
		return nil, nil
	}
	set := map[string]bool{}
	for _, v := range vs {
		if strings.Contains(v, ":") {
			return nil, fmt.Errorf("filter for '%s' should not contain ':': %s", key, v)
		}
		proto, port := nat.SplitProtoPort(v)
		start, end, err := nat.ParsePortRange(port)
		if err != nil {
			return nil, fmt.Errorf("error while looking up for %s %s: %s", key, v, err)
		}
		for i := start; i <= end; i++ {
			set[strconv.FormatUint(i, 10)+"/"+proto] = true
		}
	}
	return set, nil
}

// matchLocked tells whether c passes the filters on its record (exited=,
// volume=, is-task=); c.mu is held.
func (cf *configFilters) matchLocked(c *Container) bool {
	if cf.isTask != nil && *cf.isTask {
		return false
	}
	if cf.exited != nil {
		if c.State.Running || !c.HasBeenStarted || !cf.exited[c.State.ExitCode] {
			return false
		}
	}
	if len(cf.volumes) > 0 && !matchVolume(c.Mounts, cf.volumes) {
		return false
	}
	return true
}

// matchSummary applies the filters dockerd applies to what ps shows:
// network= (a network the summary lists, by name or ID prefix), publish=
// (a published host port) and expose= (a container port the Ports column
// lists).
func (cf *configFilters) matchSummary(sum *container.Summary) bool {
	if len(cf.networks) > 0 && !matchNetwork(sum, cf.networks) {
		return false
	}
	if cf.publish == nil && cf.expose == nil {
		return true
	}
	for _, p := range sum.Ports {
		if cf.publish[fmt.Sprintf("%d/%s", p.PublicPort, p.Type)] || cf.expose[fmt.Sprintf("%d/%s", p.PrivatePort, p.Type)] {
			return true
		}
	}
	return false
}

// matchVolume: a mount whose volume name (a bind: its source) or
// destination is one of the values, exactly.
func matchVolume(mounts []container.MountPoint, values []string) bool {
	for _, m := range mounts {
		key := m.Name
		if key == "" {
			key = m.Source
		}
		for _, v := range values {
			if v == key || (m.Destination != "" && v == m.Destination) {
				return true
			}
		}
	}
	return false
}

// matchNetwork: the summary lists a network of that name, or whose ID
// starts with the value.
func matchNetwork(sum *container.Summary, values []string) bool {
	if sum.NetworkSettings == nil {
		return false
	}
	for _, v := range values {
		if _, ok := sum.NetworkSettings.Networks[v]; ok {
			return true
		}
		for _, ep := range sum.NetworkSettings.Networks {
			if ep != nil && ep.NetworkID != "" && strings.HasPrefix(ep.NetworkID, v) {
				return true
			}
		}
	}
	return false
}

// snapshotFilter resolves a before= or since= value to the container it
// names: dockerd answers 404 for one that does not exist.
func (s *Service) snapshotFilter(v string) (*Container, error) {
	c, err := s.Get(v)
	if err != nil && cerrdefs.IsNotFound(err) {
		return nil, cerrdefs.ErrNotFound.WithMessage("No such container: " + v)
	}
	return c, err
}

// imageRefs answers, once per listing and reference, what image a
// container's image reference names now.
type imageRefs struct {
	s   *Service
	ids map[string]string
}

// refresh is the IMAGE column: the reference the container was created
// from while it still names the container's image, else the image's ID
// (dockerd's refreshImage: a tag moved away or removed).
func (r imageRefs) refresh(ctx context.Context, ref, imageID string) string {
	if ref == "" || ref == imageID {
		return imageID
	}
	id, ok := r.ids[ref]
	if !ok {
		if img, err := r.s.cfg.Images.Resolve(ctx, ref); err == nil {
			id = img.ID.String()
		}
		r.ids[ref] = id
	}
	if id != imageID {
		return imageID
	}
	return ref
}
