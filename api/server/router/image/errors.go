package image

import cerrdefs "github.com/containerd/errdefs"

func errInvalid(msg string) error { return cerrdefs.ErrInvalidArgument.WithMessage(msg) }
