package container

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/storage"
	"github.com/opencontainers/go-digest"

	"github.com/berth/berth/filters"
)

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// Inspect answers GET /containers/{id}/json.
func (s *Service) Inspect(ctx context.Context, idOrName string, size bool) (*container.InspectResponse, error) {
	c, err := s.Get(idOrName)
	if err != nil {
		return nil, err
	}
	links := s.hostConfigLinks(c)
	c.mu.Lock()
	defer c.mu.Unlock()
	hc := c.HostConfig
	if hc != nil {
		// Links as dockerd shows them: "/child:/parent/alias", live names.
		cp := *hc
		cp.Links = links
		hc = &cp
	}
	st := c.State
	status := st.Status
	if st.Paused {
		status = container.StatePaused
	}
	if c.removing && !st.Running {
		// A removal under way (waiting out a start, stopping).
		status = container.StateRemoving
	}
	resp := &container.InspectResponse{
		ID:      c.ID,
		Created: formatTime(c.Created),
		Path:    c.Path,
		Args:    nonNilStrings(c.Args),
		State: &container.State{
			Status:     status,
			Running:    st.Running,
			Paused:     st.Paused,
			Restarting: st.Restarting,
			OOMKilled:  st.OOMKilled,
			Dead:       st.Dead,
			Pid:        st.Pid,
			ExitCode:   st.ExitCode,
			Error:      st.Error,
			StartedAt:  formatTime(st.StartedAt),
			FinishedAt: formatTime(st.FinishedAt),
			Health:     inspectHealthLocked(c),
		},
		Image:          c.Image.String(),
		ResolvConfPath: s.etcDir(c) + "/resolv.conf",
		HostnamePath:   s.etcDir(c) + "/hostname",
		HostsPath:      s.etcDir(c) + "/hosts",
		LogPath:        c.LogPath,
		Name:           c.Name,
		RestartCount:   c.RestartCount,
		Driver:         "overlay2",
		Platform:       "linux",
		ExecIDs:        s.execIDs(c.ID),
		HostConfig:     hc,
		GraphDriver:    &storage.DriverData{Name: "overlay2", Data: s.graphData(ctx, c)},
		Mounts:         shownMounts(c),
		Config:         c.Config,
		NetworkSettings: &container.NetworkSettings{
			Networks: map[string]*network.EndpointSettings{},
		},
	}
	if size {
		rw, _ := s.cfg.Snapshots.Usage(ctx, c.ID)
		rootfs := rw + s.imageSize(ctx, c)
		resp.SizeRw, resp.SizeRootFs = &rw, &rootfs
	}
	if s.network != nil {
		s.network.FillInspect(c.ID, resp)
	}
	return resp, nil
}

func (s *Service) graphData(ctx context.Context, c *Container) map[string]string {
	m, err := s.cfg.Snapshots.Mounts(ctx, c.ID)
	data := map[string]string{"MergedDir": s.rootfs(c.ID)}
	if err != nil {
		return data
	}
	for _, o := range m.Options {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "lowerdir":
			data["LowerDir"] = v
		case "upperdir":
			data["UpperDir"] = v
		case "workdir":
			data["WorkDir"] = v
		}
	}
	return data
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// shownMounts is what inspect and ps list as a container's mounts: never
// nil, and without the --tmpfs ones (HostConfig.Tmpfs), which dockerd
// leaves out (those of --mount type=tmpfs are listed). Call with c.mu held.
func shownMounts(c *Container) []container.MountPoint {
	out := make([]container.MountPoint, 0, len(c.Mounts))
	for _, mp := range c.Mounts {
		if mp.Type == mount.TypeTmpfs && isTmpfsOption(c, mp.Destination) {
			continue
		}
		out = append(out, mp)
	}
	return out
}

// isTmpfsOption reports whether dst is one of c's --tmpfs (HostConfig.Tmpfs).
func isTmpfsOption(c *Container, dst string) bool {
	for t := range c.HostConfig.Tmpfs {
		if path.Clean(t) == dst {
			return true
		}
	}
	return false
}

// ListOptions are GET /containers/json's parameters.
type ListOptions struct {
	All     bool
	Limit   int
	Size    bool
	Latest  bool
	Filters filters.Args
}

// List answers GET /containers/json, newest first.
func (s *Service) List(ctx context.Context, o ListOptions) ([]container.Summary, error) {
	if err := o.Filters.Validate("status", "name", "label", "ancestor", "exited", "id", "before", "since", "volume", "network", "health", "is-task", "publish", "expose", "isolation"); err != nil {
		return nil, err
	}
	for _, st := range o.Filters.Get("status") {
		if err := container.ValidateContainerState(container.ContainerState(st)); err != nil {
			return nil, invalidFilter("status", st)
		}
	}
	if err := healthFilter(o.Filters.Get("health")); err != nil {
		return nil, err
	}
	cf, err := parseConfigFilters(o.Filters)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	all := make([]*Container, 0, len(s.byID))
	for _, c := range s.byID {
		all = append(all, c)
	}
	linkNames := s.linkNamesLocked()
	s.mu.RUnlock()
	sort.Slice(all, func(i, j int) bool { return all[i].Created.After(all[j].Created) })
	var beforeT, sinceT time.Time
	for _, v := range o.Filters.Get("before") {
		c, err := s.snapshotFilter(v)
		if err != nil {
			return nil, err
		}
		beforeT = c.Created
	}
	for _, v := range o.Filters.Get("since") {
		c, err := s.snapshotFilter(v)
		if err != nil {
			return nil, err
		}
		sinceT = c.Created
	}
	// ancestor=: containers of the images named or of images built on
	// them; an image that does not exist matches nothing (dockerd).
	var ancestors map[digest.Digest]bool
	if o.Filters.Has("ancestor") {
		var ids []digest.Digest
		for _, a := range o.Filters.Get("ancestor") {
			if r, err := s.cfg.Images.Resolve(ctx, a); err == nil {
				ids = append(ids, r.ID)
			}
		}
		var err error
		if ancestors, err = s.cfg.Images.Descendants(ids); err != nil {
			return nil, err
		}
	}
	images := imageRefs{s: s, ids: map[string]string{}}
	out := []container.Summary{}
	if o.Latest {
		o.Limit = 1
		o.All = true
	}
	if o.Limit > 0 || len(o.Filters.Get("status")) > 0 || o.Filters.Has("exited") {
		o.All = true
	}
	for _, c := range all {
		c.mu.Lock()
		sum, keep := s.summaryLocked(c, o, cf, ancestors, beforeT, sinceT)
		c.mu.Unlock()
		if !keep {
			continue
		}
		if !cf.matchSummary(&sum) {
			continue
		}
		sum.Image = images.refresh(ctx, sum.Image, sum.ImageID)
		if ln := linkNames[c.ID]; len(ln) > 0 {
			sum.Names = containerNames(sum.Names[0], ln)
		}
		if o.Size {
			rw, _ := s.cfg.Snapshots.Usage(ctx, c.ID)
			sum.SizeRw = rw
			sum.SizeRootFs = rw + s.imageSize(ctx, c)
		}
		out = append(out, sum)
		if o.Limit > 0 && len(out) >= o.Limit {
			break
		}
	}
	return out, nil
}

func invalidFilter(k, v string) error {
	return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Invalid filter '%s=%s'", k, v))
}

func (s *Service) summaryLocked(c *Container, o ListOptions, cf *configFilters, ancestors map[digest.Digest]bool, beforeT, sinceT time.Time) (container.Summary, bool) {
	st := c.State
	status := st.Status
	if st.Paused {
		status = container.StatePaused
	}
	if c.removing && !st.Running {
		// A removal under way (waiting out a start, stopping).
		status = container.StateRemoving
	}
	if !o.All && !st.Running && !st.Restarting {
		return container.Summary{}, false
	}
	f := o.Filters
	if vs := f.Get("status"); len(vs) > 0 && !contains(vs, string(status)) {
		return container.Summary{}, false
	}
	if vs := f.Get("name"); len(vs) > 0 {
		ok := false
		for _, v := range vs {
			// Docker matches names as regular expressions.
			if re, err := regexp.Compile(strings.TrimPrefix(v, "/")); err == nil && re.MatchString(strings.TrimPrefix(c.Name, "/")) {
				ok = true
			} else if err != nil && strings.Contains(c.Name, v) {
				ok = true
			}
		}
		if !ok {
			return container.Summary{}, false
		}
	}
	if vs := f.Get("id"); len(vs) > 0 {
		ok := false
		for _, v := range vs {
			if strings.HasPrefix(c.ID, v) {
				ok = true
			}
		}
		if !ok {
			return container.Summary{}, false
		}
	}
	if !f.MatchLabels("label", c.Config.Labels) {
		return container.Summary{}, false
	}
	if vs := f.Get("health"); len(vs) > 0 && !contains(vs, string(healthStatusLocked(c))) {
		return container.Summary{}, false
	}
	if !cf.matchLocked(c) {
		return container.Summary{}, false
	}
	if ancestors != nil && !ancestors[c.Image] {
		return container.Summary{}, false
	}
	if !beforeT.IsZero() && !c.Created.Before(beforeT) {
		return container.Summary{}, false
	}
	if !sinceT.IsZero() && !c.Created.After(sinceT) {
		return container.Summary{}, false
	}
	cmd := shellQuote(c.Path)
	for _, a := range c.Args {
		cmd += " " + shellQuote(a)
	}
	labels := c.Config.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	sum := container.Summary{
		ID:      c.ID,
		Names:   []string{c.Name},
		Image:   c.ImageName,
		ImageID: c.Image.String(),
		Command: cmd,
		Created: c.Created.Unix(),
		Ports:   []container.PortSummary{},
		Labels:  labels,
		State:   status,
		Status:  statusString(c),
		Mounts:  shownMounts(c),
		NetworkSettings: &container.NetworkSettingsSummary{
			Networks: map[string]*network.EndpointSettings{},
		},
	}
	sum.HostConfig.NetworkMode = string(c.HostConfig.NetworkMode)
	if s.network != nil {
		s.network.FillSummary(c.ID, &sum)
	}
	return sum, true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// statusString is the STATUS column: "Up 3 seconds", "Exited (0) 5 seconds ago".
func statusString(c *Container) string {
	st := c.State
	switch {
	case st.Restarting:
		return fmt.Sprintf("Restarting (%d) %s ago", st.ExitCode, units.HumanDuration(time.Since(st.FinishedAt)))
	case st.Running && st.Paused:
		return fmt.Sprintf("Up %s (Paused)", units.HumanDuration(time.Since(st.StartedAt)))
	case st.Running:
		return "Up " + units.HumanDuration(time.Since(st.StartedAt)) + healthSuffixLocked(c)
	case st.Status == container.StateRemoving:
		return "Removal In Progress"
	case st.Dead:
		return "Dead"
	case !c.HasBeenStarted || st.FinishedAt.IsZero():
		return "Created"
	default:
		return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, units.HumanDuration(time.Since(st.FinishedAt)))
	}
}

// imageSize is the size of the container's image, for SizeRootFs.
func (s *Service) imageSize(ctx context.Context, c *Container) int64 {
	r, err := s.cfg.Images.Resolve(ctx, c.Image.String())
	if err != nil {
		return 0
	}
	return r.Size
}

// shellQuote quotes an argument for ps's COMMAND as Docker shows it:
// `sh -c 'exit 3'`.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$;&|<>(){}*?!#~`") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
