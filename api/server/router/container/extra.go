package container

import "github.com/berth/berth/api/server/router"

// extraRoutes are the endpoints beyond the core lifecycle: archive (cp),
// export, changes (diff), top, stats, update, commit.
func (cr *containerRouter) extraRoutes() []router.Route {
	return nil
}
