// Package system serves /_ping, /version, /info and /auth.
package system

import (
	"context"
	"net/http"

	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/system"

	"github.com/berth/berth/api/server/httputils"
	"github.com/berth/berth/api/server/router"
)

// Backend is what the system routes need from the daemon.
type Backend interface {
	SystemInfo(ctx context.Context) (*system.Info, error)
	SystemVersion(ctx context.Context) system.VersionResponse
}

// AuthBackend checks registry credentials for POST /auth.
type AuthBackend interface {
	Login(ctx context.Context, cfg registry.AuthConfig) (registry.AuthResponse, error)
}

type sysRouter struct {
	b    Backend
	auth AuthBackend
}

// New returns the system routes.
func New(b Backend, auth AuthBackend) router.Router { return &sysRouter{b: b, auth: auth} }

func (s *sysRouter) Routes() []router.Route {
	return []router.Route{
		{Method: http.MethodGet, Path: "/_ping", Handler: s.ping},
		{Method: http.MethodHead, Path: "/_ping", Handler: s.ping},
		{Method: http.MethodGet, Path: "/version", Handler: s.version},
		{Method: http.MethodGet, Path: "/info", Handler: s.info},
		{Method: http.MethodPost, Path: "/auth", Handler: s.login},
	}
}

func (s *sysRouter) ping(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	h := w.Header()
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if r.Method == http.MethodHead {
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	w.WriteHeader(http.StatusOK)
	_, err := w.Write([]byte("OK"))
	return err
}

func (s *sysRouter) version(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	return httputils.WriteJSON(w, http.StatusOK, s.b.SystemVersion(ctx))
}

func (s *sysRouter) info(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	info, err := s.b.SystemInfo(ctx)
	if err != nil {
		return err
	}
	if httputils.VersionLess(httputils.VersionFromContext(ctx), "1.49") {
		return httputils.WriteJSON(w, http.StatusOK, withExpectedCommits(info))
	}
	return httputils.WriteJSON(w, http.StatusOK, info)
}

// legacyCommit is a Commit as Docker sent it before API 1.49: with
// Expected, the commit dockerd was built for, which is the one found.
type legacyCommit struct {
	ID       string
	Expected string
}

// infoBefore149 shadows the commit fields of the Info it embeds.
type infoBefore149 struct {
	*system.Info
	ContainerdCommit legacyCommit
	RuncCommit       legacyCommit
	InitCommit       legacyCommit
}

func withExpectedCommits(info *system.Info) infoBefore149 {
	c := func(c system.Commit) legacyCommit { return legacyCommit{ID: c.ID, Expected: c.ID} }
	return infoBefore149{Info: info, ContainerdCommit: c(info.ContainerdCommit), RuncCommit: c(info.RuncCommit), InitCommit: c(info.InitCommit)}
}

func (s *sysRouter) login(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	var cfg registry.AuthConfig
	if err := httputils.ReadJSON(r, &cfg); err != nil {
		return err
	}
	resp, err := s.auth.Login(ctx, cfg)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, resp)
}
