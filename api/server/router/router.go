// Package router defines what a group of Engine API routes looks like. Each
// resource (system, image, container ...) has its own package under router/
// that declares the small backend interface it needs and returns its routes.
package router

import (
	"context"
	"net/http"
)

// HandlerFunc serves one API request. vars holds the path's named parts.
// It returns an error instead of writing one: the server maps the error's
// class to a status in one place.
type HandlerFunc func(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error

// Route is one method and path pattern. A pattern's segment "{name}" matches
// one path segment; "{name:.*}" matches one or more segments (image names
// hold slashes and ports, e.g. /images/127.0.0.1:5000/x/y/push), as few as
// needed for the rest of the pattern to match.
type Route struct {
	Method  string
	Path    string
	Handler HandlerFunc
}

// Router is a group of routes.
type Router interface {
	Routes() []Route
}
