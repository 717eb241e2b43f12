package container

import (
	"fmt"
	"slices"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

// --volumes-from, as dockerd does it: every bind and volume of each named
// container (running or not) is mounted at the same place in the new one,
// read-only if it was or if the entry says ":ro"; a -v or --mount for the
// same destination takes its place, and so does nothing of the image's
// VOLUMEs. The new container holds its own reference on each volume, so
// the volumes stay while it exists, whatever happens to the source; a
// named volume so taken is never removed with the new container (rm -v),
// an anonymous one is when nobody else holds it.

// parseVolumesFrom splits "container[:mode]". The mode is ro or rw, with
// an SELinux label option at most; propagation and nocopy are refused.
func parseVolumesFrom(spec string) (ref string, rw bool, err error) {
	if spec == "" {
		return "", false, cerrdefs.ErrInvalidArgument.WithMessage("volumes-from specification cannot be an empty string")
	}
	ref, mode, hasMode := strings.Cut(spec, ":")
	rw = true
	if !hasMode {
		return ref, rw, nil
	}
	bad := cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid mode: %s", mode))
	var rwSet, labelSet bool
	for _, o := range strings.Split(mode, ",") {
		switch o {
		case "ro", "rw":
			if rwSet {
				return "", false, bad
			}
			rwSet, rw = true, o == "rw"
		case "z", "Z":
			if labelSet {
				return "", false, bad
			}
			labelSet = true
		default:
			return "", false, bad
		}
	}
	return ref, rw, nil
}

// volumesFrom collects the mounts c takes from the containers its
// HostConfig.VolumesFrom names, by destination (a later entry wins). A
// missing container is "No such container" (400, as dockerd).
func (s *Service) volumesFrom(c *Container) (map[string]container.MountPoint, error) {
	out := map[string]container.MountPoint{}
	c.NamedFrom = nil
	for _, spec := range c.HostConfig.VolumesFrom {
		ref, rw, err := parseVolumesFrom(spec)
		if err != nil {
			return nil, err
		}
		src, err := s.Get(ref)
		if err == nil && (src == nil || src.ID == c.ID) {
			// The name reserved for c itself: not a container yet.
			err = cerrdefs.ErrNotFound.WithMessage("No such container: " + ref)
		}
		if err != nil {
			// dockerd: 400 with the lookup's words (a 404 would have the
			// CLI pull the image and try again).
			return nil, cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
		src.mu.Lock()
		for _, m := range src.Mounts {
			if m.Type != mount.TypeBind && m.Type != mount.TypeVolume {
				continue
			}
			m.RW = m.RW && rw
			m.Mode = ""
			out[m.Destination] = m
			c.NamedFrom = slices.DeleteFunc(c.NamedFrom, func(d string) bool { return d == m.Destination })
			if m.Type == mount.TypeVolume && !isAnonymous(src, m) {
				c.NamedFrom = append(c.NamedFrom, m.Destination)
			}
		}
		src.mu.Unlock()
	}
	return out, nil
}
