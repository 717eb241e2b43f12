package builder

import (
	"net"
	"net/url"
	"strings"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/moby/buildkit/util/resolver"
	resolverconfig "github.com/moby/buildkit/util/resolver/config"

	"github.com/berth/berth/image"
)

// RegistryHosts resolves registries for builds with berth's registry
// settings, read at each resolution so a reload applies to the next
// build: Docker Hub's mirrors (and berth's mirrors of other registries)
// are tried first, insecure registries and loopback ones over plain http.
func RegistryHosts(settings func() image.RegistryConfig) docker.RegistryHosts {
	return func(host string) ([]docker.RegistryHost, error) {
		return resolver.NewRegistryConfig(resolverConfig(settings()))(host)
	}
}

func resolverConfig(c image.RegistryConfig) map[string]resolverconfig.RegistryConfig {
	m := map[string]resolverconfig.RegistryConfig{}
	plain := true
	addMirrors := func(host string, mirrors []string) {
		rc := m[host]
		for _, u := range mirrors {
			h, path, isHTTP := mirrorHost(u)
			if h == "" {
				continue
			}
			rc.Mirrors = append(rc.Mirrors, h+path)
			if isHTTP {
				mc := m[h]
				mc.PlainHTTP = &plain
				m[h] = mc
			}
		}
		m[host] = rc
	}
	addMirrors("docker.io", c.Mirrors)
	for host, mirrors := range c.HostMirrors {
		addMirrors(host, mirrors)
	}
	for _, in := range c.Insecure {
		if _, _, err := net.ParseCIDR(in); err == nil {
			continue
		}
		rc := m[in]
		rc.PlainHTTP = &plain
		m[in] = rc
	}
	return m
}

// mirrorHost splits a mirror URL into host[:port] and path, and says
// whether it is plain http.
func mirrorHost(u string) (host, path string, isHTTP bool) {
	if !strings.Contains(u, "://") {
		u = "https://" + u
	}
	p, err := url.Parse(u)
	if err != nil {
		return "", "", false
	}
	return p.Host, strings.TrimSuffix(p.Path, "/"), p.Scheme == "http"
}
