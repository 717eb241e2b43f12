package builder

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/moby/buildkit/identity"
)

// contextHostPrefix names, inside BuildKit, the build context a POST /build
// request uploads: the Dockerfile frontend fetches
// http://<prefix><id>/ through BuildKit's HTTP source, whose transport
// (contextBodies) answers with the request's body instead of going to the
// network. The tar is streamed, never held in memory.
const contextHostPrefix = "berth-build-context-"

// contextBodies is the HTTP transport of the worker's HTTP source: it
// serves registered request bodies and sends every other request to next.
type contextBodies struct {
	next http.RoundTripper

	mu     sync.Mutex // leaf lock
	bodies map[string]io.ReadCloser
}

func newContextBodies(next http.RoundTripper) *contextBodies {
	return &contextBodies{next: next, bodies: map[string]io.ReadCloser{}}
}

// add registers body and returns its URL and a function that forgets it
// (and closes it) once the build is over. A body is served once.
func (c *contextBodies) add(body io.ReadCloser) (string, func()) {
	id := identity.NewID()
	c.mu.Lock()
	c.bodies[id] = body
	c.mu.Unlock()
	return "http://" + contextHostPrefix + id + "/", func() {
		c.mu.Lock()
		delete(c.bodies, id)
		c.mu.Unlock()
		body.Close()
	}
}

func (c *contextBodies) RoundTrip(req *http.Request) (*http.Response, error) {
	id, ok := strings.CutPrefix(req.URL.Host, contextHostPrefix)
	if !ok {
		return c.next.RoundTrip(req)
	}
	if req.Method != http.MethodGet {
		return nil, errors.New("build context: only GET")
	}
	c.mu.Lock()
	body, ok := c.bodies[id]
	delete(c.bodies, id)
	c.mu.Unlock()
	if !ok {
		return nil, errors.New("build context: not found (already read)")
	}
	return &http.Response{
		Status:        "200 OK",
		StatusCode:    http.StatusOK,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{},
		Body:          body,
		ContentLength: -1,
		Request:       req,
	}, nil
}
