package container

import (
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
)

// Store is the index of the containers berthd knows, by ID and by name
// (moby's container.Store). It is made first, before the services that
// ask about containers, so that they are wired through their
// constructors (issue 8 item 6): the image service asks which containers
// use an image or a layer (ImageUsage, LayerUsage), the network service
// resolves connect's container (Lookup). New fills it with the restored
// containers and the service keeps it; until then it is empty.
type Store struct {
	// mu is the service lock of the lock order written down at
	// Service: it guards the maps, Service.corrupt and every
	// container's Links. Take it before any Container.mu, never while
	// holding one.
	mu     sync.RWMutex
	byID   map[string]*Container
	byName map[string]string // "/name" → id
}

// NewStore makes an empty store, for New's Config.Store.
func NewStore() *Store {
	return &Store{byID: map[string]*Container{}, byName: map[string]string{}}
}

// Get finds a container by full ID, name, or unique ID prefix.
func (s *Store) Get(idOrName string) (*Container, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.getLocked(idOrName)
}

func (s *Store) getLocked(idOrName string) (*Container, error) {
	if idOrName == "" {
		return nil, cerrdefs.ErrNotFound.WithMessage("No such container: ")
	}
	if c, ok := s.byID[idOrName]; ok {
		return c, nil
	}
	name := idOrName
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	if id, ok := s.byName[name]; ok {
		if c, ok := s.byID[id]; ok {
			return c, nil
		}
		// The name is reserved by a create under way.
		return nil, cerrdefs.ErrNotFound.WithMessage("No such container: " + idOrName)
	}
	if strings.Count(name, "/") > 1 {
		// A link's name, "/parent/alias": the linked container.
		if c, ok := s.childByLinkLocked(name); ok {
			return c, nil
		}
		return nil, cerrdefs.ErrNotFound.WithMessage("No such container: " + idOrName)
	}
	var found *Container
	for id, c := range s.byID {
		if strings.HasPrefix(id, idOrName) {
			if found != nil {
				return nil, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("multiple IDs found with provided prefix: %s", idOrName))
			}
			found = c
		}
	}
	if found == nil {
		return nil, cerrdefs.ErrNotFound.WithMessage("No such container: " + idOrName)
	}
	return found, nil
}

// childByLinkLocked resolves "/parent/alias" to the linked container.
// Call with s.mu held (it guards the links).
func (s *Store) childByLinkLocked(name string) (*Container, bool) {
	parentName, alias := path.Split(name)
	parentName = strings.TrimSuffix(parentName, "/")
	if parentName == "" || alias == "" {
		return nil, false
	}
	p := s.byID[s.byName[parentName]]
	if p == nil {
		// No such name, or reserved by a create under way.
		return nil, false
	}
	for _, l := range p.Links {
		if l.Alias == alias {
			c, ok := s.byID[l.ChildID]
			return c, ok
		}
	}
	return nil, false
}

// Brief is what another service needs to know of a container (network
// connect and disconnect).
type Brief struct {
	ID          string
	Name        string // with its leading slash
	Running     bool
	NetworkMode string
}

// Lookup resolves a container name or ID as Get does (404 if unknown) and
// describes it.
func (s *Store) Lookup(idOrName string) (Brief, error) {
	c, err := s.Get(idOrName)
	if err != nil {
		return Brief{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b := Brief{ID: c.ID, Name: c.Name, Running: c.State.Running}
	if c.HostConfig != nil {
		b.NetworkMode = string(c.HostConfig.NetworkMode)
	}
	return b, nil
}

// Running maps every container's ID to whether it is running, for the
// network and volume services to reconcile against at start.
func (s *Store) Running() map[string]bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]bool, len(s.byID))
	for id, c := range s.byID {
		c.mu.Lock()
		out[id] = c.State.Running || c.State.Restarting
		c.mu.Unlock()
	}
	return out
}

// Counts reports containers by state for /info.
func (s *Store) Counts() (total, running, paused, stopped int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, c := range s.byID {
		c.mu.Lock()
		switch {
		case c.State.Paused:
			paused++
		case c.State.Running:
			running++
		default:
			stopped++
		}
		c.mu.Unlock()
		total++
	}
	return
}

// ImageUsage reports the containers using an image, for image removal.
func (s *Store) ImageUsage(id digest.Digest) (running, stopped []string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, c := range s.byID {
		c.mu.Lock()
		if c.Image == id {
			if c.State.Running {
				running = append(running, c.ID)
			} else {
				stopped = append(stopped, c.ID)
			}
		}
		c.mu.Unlock()
	}
	sort.Strings(running)
	sort.Strings(stopped)
	return
}

// LayerUsage lists the layer chains containers stand on.
func (s *Store) LayerUsage() []digest.Digest {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []digest.Digest
	for _, c := range s.byID {
		if c.TopChain != "" {
			out = append(out, c.TopChain)
		}
	}
	return out
}
