package system

import (
	"context"
	"net/http"

	"github.com/berth/berth/api/server/httputils"
	"github.com/berth/berth/api/server/router"
	"github.com/berth/berth/system"
)

// DiskUsageBackend answers GET /system/df.
type DiskUsageBackend interface {
	Usage(ctx context.Context, types []string) (*system.DiskUsageReport, error)
}

type dfRouter struct{ b DiskUsageBackend }

// NewDiskUsage returns GET /system/df.
func NewDiskUsage(b DiskUsageBackend) router.Router { return &dfRouter{b: b} }

func (d *dfRouter) Routes() []router.Route {
	return []router.Route{
		{Method: http.MethodGet, Path: "/system/df", Handler: d.df},
	}
}

func (d *dfRouter) df(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	rep, err := d.b.Usage(ctx, r.Form["type"])
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, rep)
}
