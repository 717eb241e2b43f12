package container

// UsesDefaultNetworkMode reports whether the container was created without
// a network mode (or with "default"). dockerd up to 25.0 (API 1.44) reports
// such a container's HostConfig.NetworkMode as "default", later ones as
// "bridge", which berth stores.
func (s *Service) UsesDefaultNetworkMode(idOrName string) bool {
	c, err := s.Get(idOrName)
	if err != nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.DefaultNetworkMode
}
