package container

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/moby/moby/api/types/container"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth/berth/image"
)

// Create-time checks dockerd makes before anything exists, with its words
// (issue 14 item 5). Each returns an error of class invalid argument
// unless dockerd answers otherwise.

func invalidf(format string, args ...any) error {
	return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf(format, args...))
}

// validateNetMode is dockerd's check of the options a network mode rules
// out (runconfig.validateNetMode): a container-type network brings its
// own hostname, DNS, hosts, MAC, links and ports; the host's network has
// no links and no MAC of the container's own.
// mac is the MAC address the request asks for (Config.MacAddress up to
// API 1.43, the endpoint's since).
func validateNetMode(cfg *container.Config, hc *container.HostConfig, mac string) error {
	mode := hc.NetworkMode
	if parts := strings.Split(string(mode), ":"); parts[0] == "container" && (len(parts) < 2 || parts[1] == "") {
		return invalidf("Invalid network mode: invalid container format container:<name|id>")
	}
	isContainer := mode.IsContainer()
	switch {
	case isContainer && cfg.Hostname != "":
		return invalidf("conflicting options: hostname and the network mode")
	case isContainer && len(hc.Links) > 0:
		return invalidf("conflicting options: container type network can't be used with links. This would result in undefined behavior")
	case isContainer && len(hc.DNS) > 0:
		return invalidf("conflicting options: dns and the network mode")
	case isContainer && len(hc.ExtraHosts) > 0:
		return invalidf("conflicting options: custom host-to-IP mapping and the network mode")
	case (isContainer || mode.IsHost()) && mac != "":
		return invalidf("conflicting options: mac-address and the network mode")
	case isContainer && (len(hc.PortBindings) > 0 || hc.PublishAllPorts):
		return invalidf("conflicting options: port publishing and the container type network mode")
	case isContainer && len(cfg.ExposedPorts) > 0:
		return invalidf("conflicting options: port exposing and the container type network mode")
	case hc.UTSMode.IsHost() && cfg.Hostname != "":
		return invalidf("conflicting options: hostname and the UTS mode")
	case mode.IsHost() && len(hc.Links) > 0:
		return invalidf("conflicting options: host type networking can't be used with links. This would result in undefined behavior")
	}
	return nil
}

// minHealthDuration is dockerd's container.MinimumDuration.
const minHealthDuration = time.Millisecond

// validateHealthcheck is dockerd's validateHealthCheck, in its order.
func validateHealthcheck(h *container.HealthConfig) error {
	if h == nil {
		return nil
	}
	short := func(name string, v time.Duration) error {
		if v != 0 && v < minHealthDuration {
			return invalidf("%s in Healthcheck cannot be less than %s", name, minHealthDuration)
		}
		return nil
	}
	if err := short("Interval", h.Interval); err != nil {
		return err
	}
	if err := short("Timeout", h.Timeout); err != nil {
		return err
	}
	if h.Retries < 0 {
		return invalidf("Retries in Healthcheck cannot be negative")
	}
	if err := short("StartPeriod", h.StartPeriod); err != nil {
		return err
	}
	// StartInterval (API 1.44; an older client's is dropped at create).
	return short("StartInterval", h.StartInterval)
}

// parseLink splits a --link value as dockerd's opts.ParseLink: "name",
// "name:alias", or the stored form "/name:/parent/alias".
func parseLink(val string) (name, alias string, err error) {
	if val == "" {
		return "", "", errors.New("empty string specified for links")
	}
	arr := strings.Split(val, ":")
	switch {
	case len(arr) > 2:
		return "", "", fmt.Errorf("bad format for links: %s", val)
	case len(arr) == 1:
		return val, val, nil
	case strings.HasPrefix(arr[0], "/"):
		_, alias := path.Split(arr[1])
		return arr[0][1:], alias, nil
	}
	return arr[0], arr[1], nil
}

// link is one legacy link: the container linked to and its alias.
type link struct {
	child *Container
	alias string
}

// resolveLinks finds the containers hc's links name, as dockerd's
// registerLinks: not on a user-defined network (links there are aliases),
// a missing one is invalid (400, so that the docker CLI does not go and
// pull the image), one on the host's network is refused. A container that
// shares another's network is followed to it.
func (s *Service) resolveLinks(hc *container.HostConfig) ([]link, error) {
	if mode := hc.NetworkMode; !(mode.IsDefault() || mode.IsBridge() || mode.IsHost() || mode.IsNone() || mode.IsContainer()) {
		return nil, nil
	}
	var out []link
	for _, l := range hc.Links {
		name, alias, err := parseLink(l)
		if err != nil {
			return nil, err
		}
		child, err := s.Get(name)
		if err != nil {
			return nil, invalidf("could not get container for %s: %s", name, err.Error())
		}
		seen := map[*Container]bool{}
		for !seen[child] {
			seen[child] = true
			child.mu.Lock()
			mode := child.HostConfig.NetworkMode
			child.mu.Unlock()
			if !mode.IsContainer() {
				if mode.IsHost() {
					return nil, invalidf("conflicting options: host type networking can't be used with links. This would result in undefined behavior")
				}
				break
			}
			next := mode.ConnectedContainer()
			if child, err = s.Get(next); err != nil {
				return nil, invalidf("Could not get container for %s: %s", next, err.Error())
			}
		}
		out = append(out, link{child: child, alias: alias})
	}
	return out, nil
}

// matchPlatform refuses an image of another platform than the one the
// request names, as dockerd's image lookup: not found, with its words.
func matchPlatform(ref string, want *ocispec.Platform, img *image.ImageConfig) error {
	if want == nil {
		return nil
	}
	have := ocispec.Platform{OS: img.OS, Architecture: img.Architecture, Variant: img.Variant}
	if platforms.Only(*want).Match(have) {
		return nil
	}
	return cerrdefs.ErrNotFound.WithMessage(fmt.Sprintf("image with reference %s was found but does not match the specified platform: wanted %s, actual: %s", ref, platforms.Format(*want), platforms.Format(have)))
}
