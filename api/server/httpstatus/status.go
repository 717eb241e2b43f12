// Package httpstatus maps berth's error classes to HTTP status codes. It is
// the only place where that decision is made: handlers return errors and
// never pick a status themselves.
package httpstatus

import (
	"context"
	"errors"
	"net/http"

	"github.com/berth/berth/errdefs"
)

// FromError returns the HTTP status code for err's class.
func FromError(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, errdefs.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, errdefs.ErrInvalidParameter):
		return http.StatusBadRequest
	case errors.Is(err, errdefs.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, errdefs.ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, errdefs.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, errdefs.ErrUnavailable):
		return http.StatusServiceUnavailable
	case errors.Is(err, errdefs.ErrNotImplemented):
		return http.StatusNotImplemented
	case errors.Is(err, errdefs.ErrNotModified):
		return http.StatusNotModified
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this status, but 499-like
		// codes are not standard, so report a plain server error.
		return http.StatusInternalServerError
	default:
		return http.StatusInternalServerError
	}
}
