package container

import (
	"strings"
)

// EventPublisher receives the service's events (events.Bus implements it).
// Publish must not block.
type EventPublisher interface {
	Publish(typ, action, id string, attrs map[string]string)
}

func (s *Service) publisher() EventPublisher { return s.events }

// emit publishes a container event with Docker's attributes: the
// container's labels, "image" and "name", plus extra ("exitCode",
// "signal" ...). Call without c.mu held.
func (s *Service) emit(c *Container, action string, extra map[string]string) {
	p := s.publisher()
	if p == nil {
		return
	}
	c.mu.Lock()
	attrs := eventAttrsLocked(c, extra)
	c.mu.Unlock()
	p.Publish("container", action, c.ID, attrs)
}

// emitLocked is emit for callers holding c.mu.
func (s *Service) emitLocked(c *Container, action string, extra map[string]string) {
	if p := s.publisher(); p != nil {
		p.Publish("container", action, c.ID, eventAttrsLocked(c, extra))
	}
}

func eventAttrsLocked(c *Container, extra map[string]string) map[string]string {
	attrs := map[string]string{}
	if c.Config != nil {
		for k, v := range c.Config.Labels {
			attrs[k] = v
		}
		attrs["image"] = c.Config.Image
	}
	if attrs["image"] == "" {
		attrs["image"] = c.ImageName
	}
	attrs["name"] = strings.TrimPrefix(c.Name, "/")
	for k, v := range extra {
		attrs[k] = v
	}
	return attrs
}
