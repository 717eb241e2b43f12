package container

import (
	"fmt"
	"path"
	"sort"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
)

// Legacy links (--link on the default bridge), as dockerd keeps them: the
// parent records each link by the child's ID and an alias; the link's name
// is "/<parent name>/<alias>", so a rename of either side keeps the link
// and shows the new names. A link name resolves to the child (inspect,
// DELETE ?link=1), and is among the child's Names. At the parent's start
// the child must run; the parent gets an /etc/hosts line for it and
// <ALIAS>_NAME, <ALIAS>_PORT_* and <ALIAS>_ENV_* variables.

// LegacyLink is one link a container holds to another.
type LegacyLink struct {
	ChildID string
	Alias   string
}

// linkName is the link's name under the parent's current name.
func linkName(parentName, alias string) string { return parentName + "/" + alias }

// linkNamesLocked maps each linked container's ID to its link names.
// Call with s.mu held.
func (s *Service) linkNamesLocked() map[string][]string {
	out := map[string][]string{}
	for _, p := range s.byID {
		for _, l := range p.Links {
			if _, ok := s.byID[l.ChildID]; ok {
				out[l.ChildID] = append(out[l.ChildID], linkName(p.Name, l.Alias))
			}
		}
	}
	return out
}

// containerNames is a container's Names in a listing: its own name and
// its link names, sorted as dockerd sorts them.
func containerNames(own string, links []string) []string {
	names := append([]string{own}, links...)
	sort.Strings(names)
	return names
}

// hostConfigLinks is HostConfig.Links as dockerd shows it:
// "/<child>:/<parent>/<alias>", with the current names.
func (s *Service) hostConfigLinks(c *Container) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for _, l := range c.Links {
		if child, ok := s.byID[l.ChildID]; ok {
			out = append(out, child.Name+":"+linkName(c.Name, l.Alias))
		}
	}
	return out
}

// RemoveLink removes the link "/parent/alias" (DELETE
// /containers/{parent}/{alias}?link=1).
func (s *Service) RemoveLink(name string) error {
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	parentName, alias := path.Split(name)
	if parentName == "/" {
		return fmt.Errorf("Conflict, cannot remove the default link name of the container") //nolint:staticcheck // dockerd's words
	}
	parentName = strings.TrimSuffix(parentName, "/")
	s.mu.Lock()
	defer s.mu.Unlock()
	notFound := cerrdefs.ErrNotFound.WithMessage("No such container: " + strings.TrimPrefix(name, "/"))
	p := s.byID[s.byName[parentName]]
	if p == nil {
		return notFound
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, l := range p.Links {
		if l.Alias == alias {
			if _, ok := s.byID[l.ChildID]; !ok {
				break
			}
			p.Links = append(p.Links[:i:i], p.Links[i+1:]...)
			return p.save(s.dir(p.ID))
		}
	}
	return notFound
}

// linkedChild is what a parent needs of a running linked container.
type linkedChild struct {
	name     string // "/parent/alias"
	alias    string
	ip       string
	hostname string
	own      string // the child's own name, without "/"
	env      []string
	ports    network.PortSet
}

// linkedChildren finds the running children of c's links for its start,
// with dockerd's error for one that is not running. Call without c.mu
// held; it takes each child's lock alone.
func (s *Service) linkedChildren(c *Container) ([]linkedChild, error) {
	s.mu.RLock()
	links := append([]LegacyLink(nil), c.Links...)
	parentName := c.Name
	children := make([]*Container, len(links))
	for i, l := range links {
		children[i] = s.byID[l.ChildID]
	}
	s.mu.RUnlock()
	c.mu.Lock()
	bridge := c.HostConfig.NetworkMode.IsBridge() || c.HostConfig.NetworkMode.IsDefault()
	c.mu.Unlock()
	if !bridge || len(links) == 0 {
		return nil, nil
	}
	var out []linkedChild
	for i, l := range links {
		child := children[i]
		if child == nil {
			continue
		}
		child.mu.Lock()
		lc := linkedChild{
			name: linkName(parentName, l.Alias), alias: l.Alias, hostname: child.Config.Hostname,
			own: strings.TrimPrefix(child.Name, "/"), env: child.Config.Env, ports: child.Config.ExposedPorts,
		}
		running := child.State.Running
		childName := child.Name
		child.mu.Unlock()
		if !running {
			return nil, fmt.Errorf("Cannot link to a non running container: %s AS %s", childName, lc.name) //nolint:staticcheck // dockerd's words
		}
		if s.network != nil {
			lc.ip = s.network.ContainerIP(child.ID)
		}
		out = append(out, lc)
	}
	return out, nil
}

// hostsLines are the /etc/hosts lines of the links: the child's address,
// then the alias, its hostname and its name unless that is the alias.
func linkHostsLines(children []linkedChild) string {
	var b strings.Builder
	for _, lc := range children {
		if lc.ip == "" {
			continue
		}
		names := lc.alias + " " + lc.hostname
		if lc.alias != lc.own {
			names += " " + lc.own
		}
		fmt.Fprintf(&b, "%s\t%s\n", lc.ip, names)
	}
	return b.String()
}

// linkEnv is the environment a link gives the parent, in dockerd's order
// (its links.Link.ToEnv).
func linkEnv(lc linkedChild) []string {
	alias := strings.ReplaceAll(strings.ToUpper(lc.alias), "-", "_")
	ports := make([]network.Port, 0, len(lc.ports))
	for p := range lc.ports {
		ports = append(ports, p)
	}
	// By number; tcp before another protocol on the same number.
	sort.SliceStable(ports, func(i, j int) bool {
		if ports[i].Num() != ports[j].Num() {
			return ports[i].Num() < ports[j].Num()
		}
		return ports[i].Proto() == "tcp" && ports[j].Proto() != "tcp"
	})
	var env []string
	ip := lc.ip
	proto := func(p network.Port) string { return string(p.Proto()) }
	upper := func(p network.Port) string { return strings.ToUpper(proto(p)) }
	if len(ports) > 0 {
		p := ports[0]
		env = append(env, fmt.Sprintf("%s_PORT=%s://%s:%s", alias, proto(p), ip, p.Port()))
	}
	for i := 0; i < len(ports); {
		p := ports[i]
		j := nextContiguous(ports, int(p.Num()), i)
		if j > i+1 {
			env = append(env,
				fmt.Sprintf("%s_PORT_%s_%s_START=%s://%s:%s", alias, p.Port(), upper(p), proto(p), ip, p.Port()),
				fmt.Sprintf("%s_PORT_%s_%s_ADDR=%s", alias, p.Port(), upper(p), ip),
				fmt.Sprintf("%s_PORT_%s_%s_PROTO=%s", alias, p.Port(), upper(p), proto(p)),
				fmt.Sprintf("%s_PORT_%s_%s_PORT_START=%s", alias, p.Port(), upper(p), p.Port()))
			q := ports[j]
			env = append(env,
				fmt.Sprintf("%s_PORT_%s_%s_END=%s://%s:%s", alias, p.Port(), upper(q), proto(q), ip, q.Port()),
				fmt.Sprintf("%s_PORT_%s_%s_PORT_END=%s", alias, p.Port(), upper(q), q.Port()))
			i = j + 1
			continue
		}
		i++
	}
	for _, p := range ports {
		env = append(env,
			fmt.Sprintf("%s_PORT_%s_%s=%s://%s:%s", alias, p.Port(), upper(p), proto(p), ip, p.Port()),
			fmt.Sprintf("%s_PORT_%s_%s_ADDR=%s", alias, p.Port(), upper(p), ip),
			fmt.Sprintf("%s_PORT_%s_%s_PORT=%s", alias, p.Port(), upper(p), p.Port()),
			fmt.Sprintf("%s_PORT_%s_%s_PROTO=%s", alias, p.Port(), upper(p), proto(p)))
	}
	env = append(env, fmt.Sprintf("%s_NAME=%s", alias, lc.name))
	for _, v := range lc.env {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "HOME" || k == "PATH" {
			continue
		}
		env = append(env, fmt.Sprintf("%s_ENV_%s=%s", alias, k, val))
	}
	return env
}

// nextContiguous is the index of the last port of the run of consecutive
// numbers starting at index (dockerd's).
func nextContiguous(ports []network.Port, value, index int) int {
	if index+1 == len(ports) {
		return index
	}
	for i := index + 1; i < len(ports); i++ {
		if int(ports[i].Num()) > value+1 {
			return i - 1
		}
		value++
	}
	return len(ports) - 1
}
