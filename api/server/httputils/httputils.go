// Package httputils holds the small helpers every router uses: the request's
// API version, JSON bodies in and out, boolean query values, and the JSON
// message stream used by pull, push, load and build.
package httputils

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
)

type versionKey struct{}

// WithVersion returns ctx carrying the API version of the request.
func WithVersion(ctx context.Context, v string) context.Context {
	return context.WithValue(ctx, versionKey{}, v)
}

// VersionFromContext returns the API version the client asked for.
func VersionFromContext(ctx context.Context) string {
	v, _ := ctx.Value(versionKey{}).(string)
	return v
}

// MaxJSONBody bounds every JSON request body.
const MaxJSONBody = 10 << 20

// ReadJSON decodes r's JSON body into v. An empty body leaves v untouched.
// Malformed JSON is an invalid parameter (400), a body over MaxJSONBody a
// BodyTooLargeError (413), one that stopped coming ErrBodyTimeout (408).
func ReadJSON(r *http.Request, v any) error {
	if r.Body == nil {
		return nil
	}
	body := http.MaxBytesReader(nil, r.Body, MaxJSONBody)
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &BodyTooLargeError{Limit: MaxJSONBody, Err: tooBig}
		}
		if errors.Is(err, ErrBodyTimeout) {
			return err
		}
		return cerrdefs.ErrInvalidArgument.WithMessage("invalid JSON: " + err.Error())
	}
	return nil
}

// errEmptyBody is dockerd's answer to an empty body where one is needed.
var errEmptyBody = cerrdefs.ErrInvalidArgument.WithMessage("invalid JSON: got EOF while reading request body")

// ReadJSONBody is ReadJSON for the requests dockerd refuses without a body
// (network create, connect and disconnect, volume create, exec create and
// start): an empty body is a 400 "got EOF while reading request body",
// and nothing is created. The Content-Type must be JSON (CheckForJSON),
// as dockerd checks it on these endpoints.
func ReadJSONBody(r *http.Request, v any) error {
	if err := CheckForJSON(r); err != nil {
		return err
	}
	if r.Body == nil || r.Body == http.NoBody {
		return errEmptyBody
	}
	body := http.MaxBytesReader(nil, r.Body, MaxJSONBody)
	if err := json.NewDecoder(body).Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errEmptyBody
		}
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &BodyTooLargeError{Limit: MaxJSONBody, Err: tooBig}
		}
		if errors.Is(err, ErrBodyTimeout) {
			return err
		}
		return cerrdefs.ErrInvalidArgument.WithMessage("invalid JSON: " + err.Error())
	}
	return nil
}

// WriteJSON writes v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// DrainBody reads what is left of a request body that a handler gave up
// on (a corrupt upload), up to 1 GiB, so that a client still sending it
// gets to read the error answer instead of a broken pipe.
func DrainBody(r *http.Request) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<30))
}

// BoolValue reports whether query parameter k is set to a true value, as
// Docker reads it: anything but "", "0", "no", "false" and "none" is true.
func BoolValue(r *http.Request, k string) bool {
	s := strings.ToLower(strings.TrimSpace(r.FormValue(k)))
	return !(s == "" || s == "0" || s == "no" || s == "false" || s == "none")
}

// IntValue parses query parameter k, returning def when it is absent.
func IntValue(r *http.Request, k string, def int) (int, error) {
	s := r.FormValue(k)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid value for %s: %q", k, s))
	}
	return n, nil
}

// StreamWriter writes a JSON message stream: one JSON object and "\r\n" per
// message, each flushed at once so clients can draw progress as it happens.
// It is safe for concurrent use.
type StreamWriter struct {
	mu      sync.Mutex
	w       io.Writer
	f       http.Flusher
	started bool
	err     error
}

// NewStreamWriter returns a StreamWriter on w. The 200 status and headers are
// sent with the first message.
func NewStreamWriter(w http.ResponseWriter) *StreamWriter {
	f, _ := w.(http.Flusher)
	return &StreamWriter{w: w, f: f}
}

// Start sends the headers now (for streams whose first message may be late).
func (s *StreamWriter) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.startLocked()
}

func (s *StreamWriter) startLocked() {
	if s.started {
		return
	}
	s.started = true
	if rw, ok := s.w.(http.ResponseWriter); ok {
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(http.StatusOK)
	}
}

// Started reports whether anything has been sent.
func (s *StreamWriter) Started() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started
}

// Write sends one message.
func (s *StreamWriter) Write(msg any) error {
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.startLocked()
	b = append(b, '\r', '\n')
	if _, err := s.w.Write(b); err != nil {
		s.err = err
		return err
	}
	if s.f != nil {
		s.f.Flush()
	}
	return nil
}

// ErrorMessage is the in-stream form of an error after the 200 was sent.
type ErrorMessage struct {
	ErrorDetail struct {
		Code    int    `json:"code,omitempty"`
		Message string `json:"message"`
	} `json:"errorDetail"`
	Error string `json:"error"`
}

// WriteError sends err as the stream's final error message.
func (s *StreamWriter) WriteError(err error) error {
	var m ErrorMessage
	m.ErrorDetail.Message = err.Error()
	m.Error = err.Error()
	return s.Write(m)
}

// HijackedConn is a hijacked client connection. Reads see any bytes the
// HTTP server had already buffered.
type HijackedConn struct {
	net.Conn
	r *bufio.Reader
}

func (h *HijackedConn) Read(p []byte) (int, error) { return h.r.Read(p) }

// CloseWrite half-closes the connection when the transport allows it.
func (h *HijackedConn) CloseWrite() error {
	if cw, ok := h.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Hijack takes over the connection for a raw stream, answering as Docker
// does: "101 UPGRADED" when the client asked for an upgrade, else 200.
func Hijack(w http.ResponseWriter, r *http.Request) (*HijackedConn, error) {
	h, ok := w.(http.Hijacker)
	if !ok {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage("connection cannot be hijacked")
	}
	// The request's own body (dockerode sends its attach options as JSON)
	// is not part of the stream: discard what is left of it, as dockerd
	// does (per its Content-Length), so the container's stdin never sees it.
	if r.Body != nil && r.ContentLength > 0 {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return nil, cerrdefs.ErrInvalidArgument.WithMessage("read the request body: " + err.Error())
		}
	}
	conn, rw, err := h.Hijack()
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	upgrade := strings.EqualFold(r.Header.Get("Connection"), "Upgrade") || r.Header.Get("Upgrade") != ""
	var head strings.Builder
	if upgrade {
		head.WriteString("HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n")
	} else {
		head.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n")
	}
	for _, k := range []string{"Api-Version", "Docker-Experimental", "Ostype", "Server"} {
		if v := w.Header().Get(k); v != "" {
			head.WriteString(k + ": " + v + "\r\n")
		}
	}
	head.WriteString("\r\n")
	if _, err := conn.Write([]byte(head.String())); err != nil {
		conn.Close()
		return nil, err
	}
	return &HijackedConn{Conn: conn, r: rw.Reader}, nil
}

// VersionLess compares dotted API versions; an empty version is the newest.
func VersionLess(a, b string) bool {
	if a == "" {
		return false
	}
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}
