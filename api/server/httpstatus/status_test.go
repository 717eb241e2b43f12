package httpstatus

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
)

func TestFromError(t *testing.T) {
	cases := []struct {
		err  error
		want int
	}{
		{nil, http.StatusOK},
		{cerrdefs.ErrNotFound.WithMessage("No such image: x"), http.StatusNotFound},
		{fmt.Errorf("ctr: %w", cerrdefs.ErrConflict), http.StatusConflict},
		{fmt.Errorf("ctr: %w", cerrdefs.ErrAlreadyExists), http.StatusConflict},
		{cerrdefs.ErrInvalidArgument.WithMessage("bad"), http.StatusBadRequest},
		{cerrdefs.ErrUnauthenticated.WithMessage("no"), http.StatusUnauthorized},
		{fmt.Errorf("net: %w", cerrdefs.ErrPermissionDenied), http.StatusForbidden},
		{cerrdefs.ErrUnavailable.WithMessage("later"), http.StatusServiceUnavailable},
		{cerrdefs.ErrNotImplemented.WithMessage("later"), http.StatusNotImplemented},
		{cerrdefs.ErrNotModified.WithMessage("container already started"), http.StatusNotModified},
		{cerrdefs.ErrInternal.WithMessage("boom"), http.StatusInternalServerError},
		{fmt.Errorf("stop: %w", context.DeadlineExceeded), http.StatusInternalServerError},
		{fmt.Errorf("pull: %w", context.Canceled), http.StatusInternalServerError},
		{errors.New("plain"), http.StatusInternalServerError},
	}
	for _, c := range cases {
		if got := FromError(c.err); got != c.want {
			t.Errorf("FromError(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

// The message of a WithMessage error is exactly Docker's wording (no class
// suffix), and its class survives wrapping.
func TestWithMessageKeepsWordingAndClass(t *testing.T) {
	err := cerrdefs.ErrNotFound.WithMessage("No such image: x:latest")
	if err.Error() != "No such image: x:latest" {
		t.Fatalf("message = %q", err.Error())
	}
	if got := FromError(fmt.Errorf("pull: %w", err)); got != http.StatusNotFound {
		t.Fatalf("wrapped: status %d", got)
	}
}
