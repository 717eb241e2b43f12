package container

import (
	"context"
	"io"
	"net/url"
	"sort"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/berth/berth/container/logger"
)

// LogsOptions are GET /containers/{id}/logs's parameters.
type LogsOptions struct {
	Stdout, Stderr bool
	Follow         bool
	Timestamps     bool
	// Details puts each entry's attributes (k=v,... url-escaped, sorted)
	// and a space before its line, as dockerd's --details.
	Details      bool
	Since, Until time.Time
	Tail         int // < 0: all
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
	lp, err := s.logSetup(c)
	running := c.State.Running || c.State.Restarting
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if lp.Path == "" {
		return errLogsNotReadable
	}
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
	ro := logger.ReadOptions{Since: o.Since, Until: o.Until, Tail: o.Tail, Follow: o.Follow, Stop: stop, Format: lp.Format}
	err = logger.Read(ctx, lp.Path, lp.Limits.MaxFiles, ro, func(e logger.Entry) error {
		if (e.Stream == "stdout" && !o.Stdout) || (e.Stream == "stderr" && !o.Stderr) {
			return nil
		}
		line := e.Log
		if o.Details {
			line = detailsPrefix(e.Attrs) + " " + line
		}
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

// detailsPrefix is an entry's attributes as --details shows them:
// k=v pairs sorted by key, url-escaped, joined by commas.
func detailsPrefix(attrs map[string]string) string {
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(url.QueryEscape(k))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(attrs[k]))
	}
	return b.String()
}
