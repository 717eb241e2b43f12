package spec

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// DefaultPathEnv is the PATH a container gets when neither the image nor the
// request sets one.
const DefaultPathEnv = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// MergeConfig applies an image's config to a create request's Config, as
// Docker does when it creates a container: what the request leaves empty is
// taken from the image (User, Cmd, Entrypoint, WorkingDir, StopSignal, Shell,
// Healthcheck fields), maps are merged with the request winning (ExposedPorts,
// Volumes, Labels), image Env entries are appended unless the request names
// the same variable. A request Entrypoint (even `--entrypoint ""`, sent as
// [""]) drops the image's Cmd; [""] then becomes no entrypoint at all. Neither
// argument is modified.
//
// The result is what `inspect` shows as Config and what Generate expects when
// Input.Image is nil. Merging twice is not the same as merging once (the [""]
// entrypoint is gone after the first merge), so merge exactly once: either
// here at create time, or by passing the image to Generate.
//
// A relative WorkingDir in the request is an InvalidArgument error, and so is
// a container with nothing to run ("No command specified").
func MergeConfig(req *container.Config, img *dockerspec.DockerOCIImageConfig) (*container.Config, error) {
	var c container.Config
	if req != nil {
		c = *req
		c.Env = slices.Clone(req.Env)
		c.Cmd = slices.Clone(req.Cmd)
		c.Entrypoint = slices.Clone(req.Entrypoint)
		c.Shell = slices.Clone(req.Shell)
		c.ExposedPorts = maps.Clone(req.ExposedPorts)
		c.Volumes = maps.Clone(req.Volumes)
		c.Labels = maps.Clone(req.Labels)
		if req.Healthcheck != nil {
			h := *req.Healthcheck
			h.Test = slices.Clone(h.Test)
			c.Healthcheck = &h
		}
	}
	if c.WorkingDir != "" && !strings.HasPrefix(c.WorkingDir, "/") {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("the working directory '%s' is invalid, it needs to be an absolute path", c.WorkingDir))
	}
	if img != nil {
		mergeImage(&c, img)
	}
	if len(c.Entrypoint) == 1 && c.Entrypoint[0] == "" {
		c.Entrypoint = nil
	}
	if len(c.Entrypoint) == 0 && len(c.Cmd) == 0 {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage("No command specified")
	}
	return &c, nil
}

func mergeImage(c *container.Config, img *dockerspec.DockerOCIImageConfig) {
	if c.User == "" {
		c.User = img.User
	}
	if len(img.ExposedPorts) > 0 {
		if c.ExposedPorts == nil {
			c.ExposedPorts = network.PortSet{}
		}
		for p := range img.ExposedPorts {
			if port, err := network.ParsePort(p); err == nil {
				if _, ok := c.ExposedPorts[port]; !ok {
					c.ExposedPorts[port] = struct{}{}
				}
			}
		}
	}
	if len(c.Env) == 0 {
		c.Env = slices.Clone(img.Env)
	} else {
		for _, ie := range img.Env {
			k, _, _ := strings.Cut(ie, "=")
			if !slices.ContainsFunc(c.Env, func(ue string) bool {
				uk, _, _ := strings.Cut(ue, "=")
				return uk == k
			}) {
				c.Env = append(c.Env, ie)
			}
		}
	}
	if len(c.Entrypoint) == 0 {
		if len(c.Cmd) == 0 {
			c.Cmd = slices.Clone(img.Cmd)
			c.ArgsEscaped = img.ArgsEscaped //lint:ignore SA1019 carried over as Docker does
		}
		if c.Entrypoint == nil {
			c.Entrypoint = slices.Clone(img.Entrypoint)
		}
	}
	if c.WorkingDir == "" {
		c.WorkingDir = img.WorkingDir
	}
	if len(img.Volumes) > 0 {
		if c.Volumes == nil {
			c.Volumes = map[string]struct{}{}
		}
		for v := range img.Volumes {
			c.Volumes[v] = struct{}{}
		}
	}
	if len(img.Labels) > 0 {
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		for k, v := range img.Labels {
			if _, ok := c.Labels[k]; !ok {
				c.Labels[k] = v
			}
		}
	}
	if c.StopSignal == "" {
		c.StopSignal = img.StopSignal
	}
	if len(c.Shell) == 0 {
		c.Shell = slices.Clone(img.Shell)
	}
	if ih := img.Healthcheck; ih != nil {
		if c.Healthcheck == nil {
			h := *ih
			h.Test = slices.Clone(ih.Test)
			c.Healthcheck = &h
		} else {
			h := c.Healthcheck
			if len(h.Test) == 0 {
				h.Test = slices.Clone(ih.Test)
			}
			if h.Interval == 0 {
				h.Interval = ih.Interval
			}
			if h.Timeout == 0 {
				h.Timeout = ih.Timeout
			}
			if h.StartPeriod == 0 {
				h.StartPeriod = ih.StartPeriod
			}
			if h.StartInterval == 0 {
				h.StartInterval = ih.StartInterval
			}
			if h.Retries == 0 {
				h.Retries = ih.Retries
			}
		}
	}
}

// ReplaceOrAppendEnv returns base with each override applied in order:
// KEY=value replaces KEY where it is (or is appended), a bare KEY removes it.
// base is not modified.
func ReplaceOrAppendEnv(base []string, overrides ...[]string) []string {
	env := slices.Clone(base)
	for _, list := range overrides {
		for _, o := range list {
			k, _, hasValue := strings.Cut(o, "=")
			i := slices.IndexFunc(env, func(e string) bool {
				ek, _, _ := strings.Cut(e, "=")
				return ek == k
			})
			switch {
			case !hasValue && i >= 0:
				env = slices.Delete(env, i, i+1)
			case !hasValue:
			case i >= 0:
				env[i] = o
			default:
				env = append(env, o)
			}
		}
	}
	return env
}

// containerEnv is Docker's process environment: PATH, HOSTNAME and (with a
// terminal) TERM=xterm, then the container's Env on top.
func containerEnv(hostname string, tty bool, env []string) ([]string, error) {
	for _, e := range env {
		k, _, _ := strings.Cut(e, "=")
		if k == "" || strings.IndexByte(e, 0) >= 0 {
			return nil, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid environment variable: %s", e))
		}
	}
	base := make([]string, 0, 3+len(env))
	base = append(base, "PATH="+DefaultPathEnv, "HOSTNAME="+hostname)
	if tty {
		base = append(base, "TERM=xterm")
	}
	return ReplaceOrAppendEnv(base, env), nil
}
