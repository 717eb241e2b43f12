// Package progress carries the messages of long operations (pull, push, load,
// build) from a service to whoever shows them: the API layer turns them into
// Docker's JSON message stream. Services depend only on Output.
package progress

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	units "github.com/docker/go-units"
)

// Detail is a message's machine-readable progress.
type Detail struct {
	Current int64 `json:"current,omitempty"`
	Total   int64 `json:"total,omitempty"`
}

// ErrorDetail is the in-stream form of a failure.
type ErrorDetail struct {
	Code    int    `json:"code,omitempty"`
	Message string `json:"message"`
}

// Message is one entry of a JSON message stream, shaped as Docker's.
type Message struct {
	Stream         string           `json:"stream,omitempty"`
	Status         string           `json:"status,omitempty"`
	ProgressDetail *Detail          `json:"progressDetail,omitempty"`
	Progress       string           `json:"progress,omitempty"`
	ID             string           `json:"id,omitempty"`
	ErrorDetail    *ErrorDetail     `json:"errorDetail,omitempty"`
	Error          string           `json:"error,omitempty"`
	Aux            *json.RawMessage `json:"aux,omitempty"`
}

// Output receives messages. Implementations must be safe for concurrent use.
type Output interface {
	WriteMessage(Message) error
}

// Discard is an Output that drops everything.
var Discard Output = discard{}

type discard struct{}

func (discard) WriteMessage(Message) error { return nil }

// Status sends a plain status line for id (id may be empty): "Pulling
// from library/busybox", "Digest: ...". It carries no progressDetail.
func Status(out Output, id, status string) error {
	return out.WriteMessage(Message{ID: id, Status: status})
}

// Update sends a step of id's progress that has no byte count ("Pulling fs
// layer", "Waiting", "Download complete", "Pull complete"). As Docker's, it
// carries an empty "progressDetail":{}: the docker CLI draws such messages
// on id's own line and updates it in place on a terminal, where a message
// without progressDetail is printed as a new line.
func Update(out Output, id, action string) error {
	return out.WriteMessage(Message{ID: id, Status: action, ProgressDetail: &Detail{}})
}

// Bar renders the text progress bar older clients display, as Docker does:
// "[=====>     ]  1.2MB/3.4MB".
func Bar(current, total int64) string {
	if total <= 0 {
		return fmt.Sprintf("%8v", units.HumanSize(float64(current)))
	}
	const width = 50
	n := int(float64(width) * float64(current) / float64(total))
	if n > width {
		n = width
	}
	bar := strings.Repeat("=", n)
	if n < width {
		bar += ">" + strings.Repeat(" ", width-n-1)
	}
	return fmt.Sprintf("[%s] %8v/%v", bar, units.HumanSize(float64(current)), units.HumanSize(float64(total)))
}

// Reporter throttles byte-count updates for one id to at most one message
// every interval, always letting the final one through.
type Reporter struct {
	out      Output
	id       string
	status   string
	total    int64
	interval time.Duration

	mu      sync.Mutex
	current int64
	last    time.Time
}

// NewReporter returns a Reporter sending status (e.g. "Downloading") for id.
func NewReporter(out Output, id, status string, total int64) *Reporter {
	return &Reporter{out: out, id: id, status: status, total: total, interval: 100 * time.Millisecond}
}

// Add records n more bytes and maybe sends a message.
func (r *Reporter) Add(n int64) {
	r.mu.Lock()
	r.current += n
	now := time.Now()
	if now.Sub(r.last) < r.interval && (r.total <= 0 || r.current < r.total) {
		r.mu.Unlock()
		return
	}
	r.last = now
	cur := r.current
	r.mu.Unlock()
	_ = r.out.WriteMessage(Message{ID: r.id, Status: r.status, ProgressDetail: &Detail{Current: cur, Total: r.total}, Progress: Bar(cur, r.total)})
}

// Write implements io.Writer so a Reporter can sit behind an io.TeeReader.
func (r *Reporter) Write(p []byte) (int, error) {
	r.Add(int64(len(p)))
	return len(p), nil
}
