package container

import (
	"errors"
	"fmt"
	"path/filepath"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/berth/berth/container/logger"
)

// errLogsNotReadable is dockerd's answer to logs (501) for a driver that
// keeps nothing to read back: none, or a remote driver whose local cache
// is disabled.
var errLogsNotReadable = cerrdefs.ErrNotImplemented.WithMessage("configured logging driver does not support reading")

// logPlan is how the shim logs a container.
type logPlan struct {
	// Path is the file the shim writes and docker logs reads: json-file's
	// <id>-json.log (its LogPath), local's local-logs/container.log, a
	// remote driver's local cache container-cached.log (dual logging, as
	// Docker 20.10+); "" when nothing is kept.
	Path string
	// Format is the file's encoding: json-file's lines, or the local
	// format for local and for a remote driver's cache (as dockerd).
	Format logger.Format
	Limits logger.FileLimits
	// Attrs go with every json-file entry (labels, env, tag options).
	Attrs map[string]string
	// Remote is the remote driver the shim sends to, if any.
	Remote *logger.Remote
}

// logInfo is what the log drivers know of c. Call with c.mu held.
func (s *Service) logInfo(c *Container) logger.Info {
	return logger.Info{
		Config:              c.HostConfig.LogConfig.Config,
		ContainerID:         c.ID,
		ContainerName:       c.Name,
		ContainerEntrypoint: c.Path,
		ContainerArgs:       c.Args,
		ContainerImageID:    c.Image.String(),
		ContainerImageName:  c.Config.Image,
		ContainerCreated:    c.Created,
		ContainerEnv:        c.Config.Env,
		ContainerLabels:     c.Config.Labels,
		DaemonName:          "docker",
	}
}

// logSetup plans c's logging from its log configuration. An option that
// does not parse is dockerd's start error. Call with c.mu held.
func (s *Service) logSetup(c *Container) (logPlan, error) {
	lc := c.HostConfig.LogConfig
	dir := s.dir(c.ID)
	var p logPlan
	var err error
	switch lc.Type {
	case logger.None:
		return p, nil
	case logger.JSONFile, "":
		p.Path = c.LogPath
		if p.Path == "" {
			p.Path = filepath.Join(dir, c.ID+"-json.log")
		}
		if p.Limits, err = logger.ParseJSONFile(lc.Config); err != nil {
			break
		}
		info := s.logInfo(c)
		if p.Attrs, err = info.ExtraAttributes(nil); err != nil {
			break
		}
		// json-file tags only when asked to.
		var tag string
		if tag, err = info.Tag(""); err == nil && tag != "" {
			p.Attrs["tag"] = tag
		}
	case logger.Local:
		p.Path = filepath.Join(dir, "local-logs", "container.log")
		p.Format = logger.FormatLocal
		p.Limits, err = logger.ParseLocal(lc.Config)
	default:
		if lc.Type == logger.Journald && !logger.JournalAvailable() {
			err = errors.New("journald is not enabled on this host")
			break
		}
		info := s.logInfo(c)
		r := &logger.Remote{
			Driver: lc.Type, Opts: lc.Config, ContainerID: c.ID, ContainerName: c.Name,
			ImageID: info.ContainerImageID, ImageName: info.ContainerImageName, Command: info.Command(), Created: c.Created,
		}
		if r.Tag, err = info.Tag(logger.DefaultTag); err != nil {
			break
		}
		if r.Extra, err = info.ExtraAttributes(nil); err != nil {
			break
		}
		p.Remote = r
		if !logger.CacheEnabled(lc.Config) {
			return p, nil
		}
		p.Path = filepath.Join(dir, "container-cached.log")
		p.Format = logger.FormatLocal
		p.Limits, err = logger.ParseCache(lc.Config)
	}
	if err != nil {
		return logPlan{}, fmt.Errorf("failed to initialize logging driver: %w", err)
	}
	return p, nil
}
