package image

import "github.com/berth/berth/errdefs"

func errInvalid(msg string) error { return errdefs.InvalidParameter(msg) }

func errNotImplemented(what string) error {
	return errdefs.NotImplemented(what + " is not implemented by berth yet")
}
