package container

import (
	"context"
	"io"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/berth/berth/container/logger"
)

// LogsOptions are GET /containers/{id}/logs's parameters.
type LogsOptions struct {
	Stdout, Stderr bool
	Follow         bool
	Timestamps     bool
	Since, Until   time.Time
	Tail           int // < 0: all
}

// Logs writes the container's log to w: stdcopy frames without a TTY,
// raw with one. With Follow it keeps going until the container stops or
// ctx ends. It returns whether the output is raw (TTY) before writing,
// through started, so the caller can set headers.
func (s *Service) Logs(ctx context.Context, idOrName string, o LogsOptions, started func(tty bool), w io.Writer, flush func()) error {
	if !o.Stdout && !o.Stderr {
		return cerrdefs.ErrInvalidArgument.WithMessage("Bad parameters: you must choose at least one stream")
	}
	c, err := s.Get(idOrName)
	if err != nil {
		return err
	}
	c.mu.Lock()
	tty := c.Config.Tty
	logPath := c.LogPath
	running := c.State.Running || c.State.Restarting
	maxFiles := 1
	if c.HostConfig != nil {
		_, maxFiles = logLimits(c.HostConfig.LogConfig.Config)
	}
	c.mu.Unlock()
	started(tty)
	var stop chan struct{}
	if o.Follow {
		stop = make(chan struct{})
		if !running {
			close(stop)
		} else {
			go func() {
				defer close(stop)
				for {
					ch := c.waitChange()
					c.mu.Lock()
					done := (!c.State.Running && !c.State.Restarting) || c.removed
					c.mu.Unlock()
					if done {
						return
					}
					select {
					case <-ch:
					case <-ctx.Done():
						return
					}
				}
			}()
		}
	}
	ro := logger.ReadOptions{Since: o.Since, Until: o.Until, Tail: o.Tail, Follow: o.Follow, Stop: stop}
	err = logger.Read(ctx, logPath, maxFiles, ro, func(e logger.Entry) error {
		if (e.Stream == "stdout" && !o.Stdout) || (e.Stream == "stderr" && !o.Stderr) {
			return nil
		}
		line := e.Log
		if o.Timestamps {
			line = e.Time.UTC().Format("2006-01-02T15:04:05.000000000Z") + " " + line
		}
		if err := writeOut(w, e.Stream, []byte(line), tty); err != nil {
			return err
		}
		if flush != nil && o.Follow {
			flush()
		}
		return nil
	})
	if ctx.Err() != nil {
		return nil
	}
	return err
}
