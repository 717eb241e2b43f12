// Package events is berth's event bus: services publish Docker-shaped
// events (container start, image pull ...), GET /events streams them.
//
// The bus keeps the most recent events in a ring, so a client asking for
// events "since" a moment in the past gets them replayed, and fans every new
// event out to its subscribers. Publishing never blocks: each subscriber has
// a buffer, and one that falls a whole buffer behind is dropped (its channel
// is closed) rather than slowing the services down or silently missing
// events.
package events

import (
	"strings"
	"sync"
	"time"

	"github.com/berth/berth/filters"
)

// Actor is the object an event is about.
type Actor struct {
	ID         string
	Attributes map[string]string
}

// Message is one event as GET /events sends it: Docker's events.Message,
// plus the legacy status/id/from fields Docker still fills for container
// and image events (older clients read them).
type Message struct {
	Status string `json:"status,omitempty"`
	ID     string `json:"id,omitempty"`
	From   string `json:"from,omitempty"`

	Type     string
	Action   string
	Actor    Actor
	Scope    string `json:"scope,omitempty"`
	Time     int64  `json:"time,omitempty"`
	TimeNano int64  `json:"timeNano,omitempty"`
}

// Event types, as Docker names them.
const (
	TypeContainer = "container"
	TypeImage     = "image"
	TypeVolume    = "volume"
	TypeNetwork   = "network"
	TypeDaemon    = "daemon"
	TypeBuilder   = "builder"
)

// Defaults for New.
const (
	DefaultHistory = 256  // events kept for "since" (Docker keeps 256)
	subscriberBuf  = 1024 // events a subscriber may fall behind
)

// Bus is an in-memory publish/subscribe hub of events. It is safe for
// concurrent use; the zero value is not usable, call New.
type Bus struct {
	mu   sync.Mutex
	ring []Message // oldest first, at most size
	size int
	subs map[*sub]struct{}
	now  func() time.Time
}

type sub struct {
	ch     chan Message
	filter Filter
}

// New returns a bus that remembers the last history events.
func New(history int) *Bus {
	if history <= 0 {
		history = DefaultHistory
	}
	return &Bus{size: history, subs: map[*sub]struct{}{}, now: time.Now}
}

// Publish records an event and hands it to every matching subscriber. It
// never blocks. typ is the event type ("container", "image" ...), action
// Docker's action ("start", "die", "pull" ...), id the actor's ID and attrs
// its attributes (name, image, labels, exitCode ...); attrs is copied.
func (b *Bus) Publish(typ, action, id string, attrs map[string]string) {
	now := b.now().UTC()
	a := make(map[string]string, len(attrs))
	for k, v := range attrs {
		a[k] = v
	}
	m := Message{
		Type:     typ,
		Action:   action,
		Actor:    Actor{ID: id, Attributes: a},
		Scope:    "local",
		Time:     now.Unix(),
		TimeNano: now.UnixNano(),
	}
	switch typ {
	case TypeContainer:
		m.Status, m.ID, m.From = action, id, a["image"]
	case TypeImage:
		m.Status, m.ID = action, id
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.ring) >= b.size {
		copy(b.ring, b.ring[1:])
		b.ring = b.ring[:len(b.ring)-1]
	}
	b.ring = append(b.ring, m)
	for s := range b.subs {
		if !s.filter.Match(m) {
			continue
		}
		select {
		case s.ch <- m:
		default:
			// Too slow: drop it, so the client sees its stream end
			// instead of a stream with holes.
			delete(b.subs, s)
			close(s.ch)
		}
	}
}

// Subscribe returns the remembered events that match f and are not older
// than since (zero: none are replayed), and a channel of the matching events
// published from now on. The channel is closed by cancel, or when the
// subscriber falls too far behind.
func (b *Bus) Subscribe(f Filter, since time.Time) (past []Message, ch <-chan Message, cancel func()) {
	s := &sub{ch: make(chan Message, subscriberBuf), filter: f}
	b.mu.Lock()
	if !since.IsZero() {
		for _, m := range b.ring {
			if m.TimeNano >= since.UnixNano() && f.Match(m) {
				past = append(past, m)
			}
		}
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	var once sync.Once
	return past, s.ch, func() {
		once.Do(func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			if _, ok := b.subs[s]; ok {
				delete(b.subs, s)
				close(s.ch)
			}
		})
	}
}

// Subscribers reports how many subscribers are attached.
func (b *Bus) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// FilterKeys are the filters GET /events accepts.
var FilterKeys = []string{"container", "event", "image", "label", "type", "volume", "network", "daemon", "plugin", "scope", "node", "service", "secret", "config"}

// Filter selects events as Docker's event filters do: values of one key
// are alternatives (OR), different keys must all match (AND).
type Filter struct{ Args filters.Args }

// Match reports whether m passes the filter.
func (f Filter) Match(m Message) bool {
	a := f.Args
	if len(a) == 0 {
		return true
	}
	return exact(a, "type", m.Type) &&
		matchEvent(a, m.Action) &&
		exact(a, "scope", m.Scope) &&
		matchLabels(a, m.Actor.Attributes) &&
		f.matchActor("container", TypeContainer, m) &&
		f.matchActor("volume", TypeVolume, m) &&
		f.matchActor("network", TypeNetwork, m) &&
		f.matchActor("daemon", TypeDaemon, m) &&
		matchImage(a, m)
}

// exact: no values for key, or one equal to v.
func exact(a filters.Args, key, v string) bool {
	vs := a.Get(key)
	if len(vs) == 0 {
		return true
	}
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

// matchEvent matches the action, or its part before ": " ("exec_start: sh
// -c true" matches "exec_start"; "health_status: healthy" matches
// "health_status").
func matchEvent(a filters.Args, action string) bool {
	if exact(a, "event", action) {
		return true
	}
	if i := strings.Index(action, ":"); i > 0 {
		return exact(a, "event", action[:i])
	}
	return false
}

// matchActor applies filter key (an ID prefix or a name) to events of
// type typ; events of other types fail while the key is set.
func (f Filter) matchActor(key, typ string, m Message) bool {
	vs := f.Args.Get(key)
	if len(vs) == 0 {
		return true
	}
	if m.Type != typ {
		return false
	}
	name := m.Actor.Attributes["name"]
	for _, v := range vs {
		if v == m.Actor.ID || v == name || (v != "" && strings.HasPrefix(m.Actor.ID, v)) {
			return true
		}
	}
	return false
}

// matchImage: for container events the "image" attribute, for image events
// the ID or the "name" attribute, each also without its tag.
func matchImage(a filters.Args, m Message) bool {
	vs := a.Get("image")
	if len(vs) == 0 {
		return true
	}
	attr := "image"
	if m.Type == TypeImage {
		attr = "name"
	}
	name := m.Actor.Attributes[attr]
	for _, c := range []string{m.Actor.ID, name, stripTag(m.Actor.ID), stripTag(name)} {
		if c != "" && exact(a, "image", c) {
			return true
		}
	}
	return false
}

// stripTag removes the ":tag" of a reference, leaving digests alone.
func stripTag(ref string) string {
	if strings.Contains(ref, "@") {
		return ref
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i]
	}
	return ref
}

// matchLabels: every "label" value is "key" (present) or "key=value".
func matchLabels(a filters.Args, attrs map[string]string) bool {
	for _, l := range a.Get("label") {
		k, v, hasValue := strings.Cut(l, "=")
		got, ok := attrs[k]
		if !ok || (hasValue && got != v) {
			return false
		}
	}
	return true
}
