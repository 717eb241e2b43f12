// Package events serves GET /events: a stream of JSON event messages, one
// per line, replaying remembered events when asked for a past "since" and
// ending at "until" (or when the client goes away).
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/berth/berth/api/server/router"
	"github.com/berth/berth/events"
	"github.com/berth/berth/filters"
)

// Backend is what the events route needs: *events.Bus.
type Backend interface {
	Subscribe(f events.Filter, since time.Time) (past []events.Message, ch <-chan events.Message, cancel func())
}

type eventsRouter struct{ b Backend }

// New returns the events route.
func New(b Backend) router.Router { return &eventsRouter{b: b} }

func (e *eventsRouter) Routes() []router.Route {
	return []router.Route{{Method: http.MethodGet, Path: "/events", Handler: e.events}}
}

// eventTime reads the since and until parameters: "" is the zero time (no
// bound), anything else what filters.ParseTime reads (Unix seconds with an
// optional fraction, as the docker client sends them, RFC 3339 times or
// durations back from now).
func eventTime(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	return filters.ParseTime(v, now)
}

func (e *eventsRouter) events(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	now := time.Now()
	since, err := eventTime(r.Form.Get("since"), now)
	if err != nil {
		return err
	}
	until, err := eventTime(r.Form.Get("until"), now)
	if err != nil {
		return err
	}
	if !since.IsZero() && !until.IsZero() && until.Before(since) {
		return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("`since` time (%s) cannot be after `until` time (%s)", r.Form.Get("since"), r.Form.Get("until")))
	}
	args, err := filters.Parse(r.Form.Get("filters"))
	if err != nil {
		return err
	}
	if err := args.Validate(events.FilterKeys...); err != nil {
		return err
	}
	past, ch, cancel := e.b.Subscribe(events.Filter{Args: args}, since)
	defer cancel()

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	flush := func() {
		if flusher != nil {
			flusher.Flush()
		}
	}
	flush()
	enc := json.NewEncoder(w)
	beyond := func(m events.Message) bool { return !until.IsZero() && m.TimeNano > until.UnixNano() }
	for _, m := range past {
		if beyond(m) {
			return nil
		}
		if err := enc.Encode(m); err != nil {
			return nil
		}
	}
	flush()
	var deadline <-chan time.Time
	if !until.IsZero() {
		d := time.Until(until)
		if d <= 0 {
			return nil
		}
		t := time.NewTimer(d)
		defer t.Stop()
		deadline = t.C
	}
	for {
		select {
		case m, ok := <-ch:
			if !ok || beyond(m) {
				return nil
			}
			if err := enc.Encode(m); err != nil {
				return nil
			}
			flush()
		case <-deadline:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}
