// Package events serves GET /events: a stream of JSON event messages, one
// per line, replaying remembered events when asked for a past "since" and
// ending at "until" (or when the client goes away).
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berth/berth/api/server/router"
	"github.com/berth/berth/errdefs"
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

// ParseTimestamp reads Docker's event time parameters: Unix seconds with an
// optional fraction ("1700000000.5"), or an RFC 3339 time. "" is the zero
// time.
func ParseTimestamp(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if sec, frac, _ := strings.Cut(v, "."); sec != "" && isDigits(sec) && (frac == "" || isDigits(frac)) {
		s, err := strconv.ParseInt(sec, 10, 64)
		if err != nil {
			return time.Time{}, errdefs.InvalidParameter("invalid timestamp: " + v)
		}
		var ns int64
		if frac != "" {
			frac = (frac + "000000000")[:9]
			ns, _ = strconv.ParseInt(frac, 10, 64)
		}
		return time.Unix(s, ns), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errdefs.InvalidParameter("invalid timestamp: " + v)
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

func (e *eventsRouter) events(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	since, err := ParseTimestamp(r.Form.Get("since"))
	if err != nil {
		return err
	}
	until, err := ParseTimestamp(r.Form.Get("until"))
	if err != nil {
		return err
	}
	if !since.IsZero() && !until.IsZero() && until.Before(since) {
		return errdefs.InvalidParameter(fmt.Sprintf("`since` time (%s) cannot be after `until` time (%s)", r.Form.Get("since"), r.Form.Get("until")))
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
