package httputils

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"

	cerrdefs "github.com/containerd/errdefs"
)

// ErrBodyTimeout is the class of a request whose body stopped coming (see
// PaceBody): 408 Request Timeout.
var ErrBodyTimeout = errors.New("request body timed out")

// Body pacing: a request body must deliver at least PaceBytes every
// PaceTimeout, or end. Headers have their own timeout (the server's
// ReadHeaderTimeout); without this a client sending a body at a byte a
// second would hold its connection, and a handler, for ever. A JSON body
// (at most MaxJSONBody) must so arrive whole within PaceTimeout unless
// larger than PaceBytes; an upload (image load, archive, build context)
// may take as long as it needs while it keeps a modest pace.
const (
	PaceTimeout = 30 * time.Second
	PaceBytes   = 16 << 10
)

// PaceBody makes r's body subject to the pace rule, with timeout and
// bytes per window. The connection's read deadline is moved as the body
// arrives and cleared when it ends, so a long request (a commit, a build's
// output) and a hijacked stream are never cut by it; Hijack reads the
// body's rest through it too.
func PaceBody(w http.ResponseWriter, r *http.Request, timeout time.Duration, bytes int64) {
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	rc := http.NewResponseController(w)
	if rc.SetReadDeadline(time.Now().Add(timeout)) != nil {
		return // not a connection with deadlines (tests' recorders)
	}
	r.Body = &pacedBody{ReadCloser: r.Body, rc: rc, timeout: timeout, window: bytes}
}

type pacedBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	window  int64
	n       int64 // bytes since the deadline was last moved
	done    bool
}

func (b *pacedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	if err == io.EOF {
		if !b.done {
			// The body is over: the server reads the connection on its
			// own from here (to see the client go), with no deadline.
			b.done = true
			_ = b.rc.SetReadDeadline(time.Time{})
		}
		return n, err
	}
	if err != nil {
		// The deadline stays passed: the server drops the connection
		// after the answer instead of reading the rest of the trickle.
		var te interface{ Timeout() bool }
		if errors.As(err, &te) && te.Timeout() {
			return n, fmt.Errorf("%w: fewer than %d bytes in %s", ErrBodyTimeout, b.window, b.timeout)
		}
		return n, err
	}
	if b.n >= b.window {
		b.n = 0
		_ = b.rc.SetReadDeadline(time.Now().Add(b.timeout))
	}
	return n, nil
}

// CheckForJSON refuses a request body that does not say it is JSON, as
// dockerd does on its JSON endpoints: a Content-Type other than
// application/json (parameters allowed), or none on a body that is not
// empty, is an invalid parameter (400).
func CheckForJSON(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" && (r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0) {
		return nil
	}
	if mt, _, err := mime.ParseMediaType(ct); err == nil && mt == "application/json" {
		return nil
	}
	return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Content-Type specified (%s) must be 'application/json'", ct))
}

// BodyTooLargeError is a request body over its limit: 413.
type BodyTooLargeError struct {
	Limit int64
	Err   *http.MaxBytesError
}

func (e *BodyTooLargeError) Error() string {
	return fmt.Sprintf("request body too large: limit is %d bytes", e.Limit)
}

func (e *BodyTooLargeError) Unwrap() error { return e.Err }

// ReadJSONTyped is ReadJSON on an endpoint where dockerd insists on a JSON
// Content-Type (CheckForJSON first) but takes an empty body: container
// create, update, commit. ReadJSONBody checks the type as well.
func ReadJSONTyped(r *http.Request, v any) error {
	if err := CheckForJSON(r); err != nil {
		return err
	}
	return ReadJSON(r, v)
}
