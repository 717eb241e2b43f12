package httpstatus

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/berth/berth/errdefs"
)

func TestFromError(t *testing.T) {
	cases := []struct {
		err  error
		want int
	}{
		{errdefs.NotFound("No such image: x"), http.StatusNotFound},
		{fmt.Errorf("ctr: %w", errdefs.ErrConflict), http.StatusConflict},
		{errdefs.InvalidParameter("bad"), http.StatusBadRequest},
		{errdefs.Unauthorized("no"), http.StatusUnauthorized},
		{errdefs.NotImplemented("later"), http.StatusNotImplemented},
		{errors.New("plain"), http.StatusInternalServerError},
	}
	for _, c := range cases {
		if got := FromError(c.err); got != c.want {
			t.Errorf("FromError(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}
