// Package httpstatus maps error classes to HTTP status codes. It is the only
// place where that decision is made: handlers return errors and never pick a
// status themselves.
//
// The classes are containerd's (github.com/containerd/errdefs): code anywhere
// wraps one of its sentinels with %w (fmt.Errorf("no such image: %s: %w", ref,
// cerrdefs.ErrNotFound)), or, when the message must be exactly Docker's
// wording without a class suffix, uses the sentinel's WithMessage
// (cerrdefs.ErrNotFound.WithMessage("No such image: " + ref)). Callers test a
// class with the IsXxx helpers (cerrdefs.IsNotFound) or errors.Is.
package httpstatus

import (
	"context"
	"errors"
	"net/http"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/berth/berth/api/server/httputils"
)

// FromError returns the HTTP status code for err's class.
func FromError(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case cerrdefs.IsNotFound(err):
		return http.StatusNotFound
	case cerrdefs.IsInvalidArgument(err):
		return http.StatusBadRequest
	case cerrdefs.IsConflict(err), cerrdefs.IsAlreadyExists(err):
		return http.StatusConflict
	case cerrdefs.IsUnauthorized(err):
		return http.StatusUnauthorized
	case cerrdefs.IsPermissionDenied(err):
		return http.StatusForbidden
	case cerrdefs.IsUnavailable(err):
		return http.StatusServiceUnavailable
	case cerrdefs.IsNotImplemented(err):
		return http.StatusNotImplemented
	case cerrdefs.IsNotModified(err):
		return http.StatusNotModified
	case cerrdefs.IsFailedPrecondition(err):
		return http.StatusPreconditionFailed
	case cerrdefs.IsResourceExhausted(err):
		return http.StatusTooManyRequests
	case errors.As(err, new(*http.MaxBytesError)):
		// A request body over its limit (httputils.BodyTooLargeError).
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, httputils.ErrBodyTimeout):
		return http.StatusRequestTimeout
	case errors.Is(err, context.DeadlineExceeded):
		// A deadline berthd set itself (a registry that does not answer,
		// a stop that outlived its timeout) is a server-side failure.
		return http.StatusInternalServerError
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this status, and 499-like
		// codes are not standard, so report a plain server error.
		return http.StatusInternalServerError
	default:
		return http.StatusInternalServerError
	}
}
