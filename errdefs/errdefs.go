// Package errdefs defines the classes of errors berth reports. Code anywhere
// wraps one of these sentinels with %w; the API layer maps the class to an
// HTTP status in exactly one place (api/server/httpstatus).
package errdefs

import "errors"

// The error classes. Wrap them: fmt.Errorf("no such image: %s: %w", ref, errdefs.ErrNotFound).
var (
	ErrNotFound         = errors.New("not found")
	ErrInvalidParameter = errors.New("invalid parameter")
	ErrConflict         = errors.New("conflict")
	ErrUnauthorized     = errors.New("unauthorized")
	ErrForbidden        = errors.New("forbidden")
	ErrUnavailable      = errors.New("unavailable")
	ErrNotImplemented   = errors.New("not implemented")
	ErrNotModified      = errors.New("not modified")
	ErrSystem           = errors.New("system error")
)

// classed is an error whose message is exactly the wrapped text, while still
// matching its class with errors.Is. Use it when the user-facing message must
// not carry a ": not found" suffix (Docker's wording is matched verbatim).
type classed struct {
	msg   string
	class error
	cause error
}

func (e *classed) Error() string { return e.msg }

func (e *classed) Is(target error) bool { return target == e.class }

func (e *classed) Unwrap() error { return e.cause }

func wrap(class error, msg string, cause error) error {
	return &classed{msg: msg, class: class, cause: cause}
}

// NotFound returns an error with message msg and class ErrNotFound.
func NotFound(msg string) error { return wrap(ErrNotFound, msg, nil) }

// InvalidParameter returns an error with message msg and class ErrInvalidParameter.
func InvalidParameter(msg string) error { return wrap(ErrInvalidParameter, msg, nil) }

// Conflict returns an error with message msg and class ErrConflict.
func Conflict(msg string) error { return wrap(ErrConflict, msg, nil) }

// Unauthorized returns an error with message msg and class ErrUnauthorized.
func Unauthorized(msg string) error { return wrap(ErrUnauthorized, msg, nil) }

// Unavailable returns an error with message msg and class ErrUnavailable.
func Unavailable(msg string) error { return wrap(ErrUnavailable, msg, nil) }

// NotImplemented returns an error with message msg and class ErrNotImplemented.
func NotImplemented(msg string) error { return wrap(ErrNotImplemented, msg, nil) }

// As re-classes err: the message stays err's, the class becomes class.
func As(class error, err error) error {
	if err == nil {
		return nil
	}
	return wrap(class, err.Error(), err)
}

// IsNotFound reports whether err is of class ErrNotFound.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsConflict reports whether err is of class ErrConflict.
func IsConflict(err error) bool { return errors.Is(err, ErrConflict) }

// IsInvalidParameter reports whether err is of class ErrInvalidParameter.
func IsInvalidParameter(err error) bool { return errors.Is(err, ErrInvalidParameter) }

// IsNotModified reports whether err is of class ErrNotModified.
func IsNotModified(err error) bool { return errors.Is(err, ErrNotModified) }
