package image

import cerrdefs "github.com/containerd/errdefs"

func errInvalid(msg string) error { return cerrdefs.ErrInvalidArgument.WithMessage(msg) }

func errNotImplemented(what string) error {
	return cerrdefs.ErrNotImplemented.WithMessage(what + " is not implemented by berth yet")
}
