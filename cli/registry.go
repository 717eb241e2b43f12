package cli

import (
	"encoding/base64"
	"encoding/json"

	"github.com/berth/berth/cli/config"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/registry"
)

// IndexServer is the key under which Docker Hub credentials are stored,
// as in docker's config.json.
const IndexServer = "https://index.docker.io/v1/"

// indexServerFor returns the credential key of the registry that holds a
// repository: IndexServer for Docker Hub, the host[:port] otherwise.
func indexServerFor(domain string) string {
	switch domain {
	case "docker.io", "index.docker.io", "registry-1.docker.io":
		return IndexServer
	}
	return domain
}

// normalizeServer turns what the user typed after login/logout into the
// credential key: Docker Hub's spellings become IndexServer, anything else
// is reduced to host[:port].
func normalizeServer(server string) string {
	if server == "" || server == IndexServer {
		return IndexServer
	}
	return indexServerFor(config.Hostname(server))
}

// registryAuth returns the X-Registry-Auth value for pulling or pushing
// named: the stored credentials of its registry, or "{}" when none are
// stored, base64url-encoded.
func (c *CLI) registryAuth(named reference.Named) string {
	ac, _ := c.ConfigFile().GetAuth(indexServerFor(reference.Domain(named)))
	return encodeAuth(ac)
}

// encodeAuth encodes credentials for the X-Registry-Auth header.
func encodeAuth(ac registry.AuthConfig) string {
	b, err := json.Marshal(ac)
	if err != nil {
		return ""
	}
	return base64.URLEncoding.EncodeToString(b)
}
