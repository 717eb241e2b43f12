// Package container serves the /containers and /exec endpoints.
package container

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/berth/berth/api/server/httputils"
	"github.com/berth/berth/api/server/router"
	ctr "github.com/berth/berth/container"
	"github.com/berth/berth/filters"
	"github.com/berth/berth/internal/stdcopy"
)

type containerRouter struct{ b Backend }

// New returns the container and exec routes.
func New(b Backend) router.Router { return &containerRouter{b: b} }

func (cr *containerRouter) Routes() []router.Route {
	return append(cr.coreRoutes(), cr.extraRoutes()...)
}

func (cr *containerRouter) coreRoutes() []router.Route {
	return []router.Route{
		{Method: http.MethodPost, Path: "/containers/create", Handler: cr.create},
		{Method: http.MethodGet, Path: "/containers/json", Handler: cr.list},
		{Method: http.MethodPost, Path: "/containers/prune", Handler: cr.prune},
		{Method: http.MethodGet, Path: "/containers/{id:.*}/json", Handler: cr.inspect},
		{Method: http.MethodPost, Path: "/containers/{id}/start", Handler: cr.start},
		{Method: http.MethodPost, Path: "/containers/{id}/stop", Handler: cr.stop},
		{Method: http.MethodPost, Path: "/containers/{id}/restart", Handler: cr.restart},
		{Method: http.MethodPost, Path: "/containers/{id}/kill", Handler: cr.kill},
		{Method: http.MethodPost, Path: "/containers/{id}/wait", Handler: cr.wait},
		{Method: http.MethodPost, Path: "/containers/{id}/attach", Handler: cr.attach},
		{Method: http.MethodGet, Path: "/containers/{id}/attach/ws", Handler: cr.wsAttach},
		{Method: http.MethodGet, Path: "/containers/{id}/logs", Handler: cr.logs},
		{Method: http.MethodPost, Path: "/containers/{id}/resize", Handler: cr.resize},
		{Method: http.MethodPost, Path: "/containers/{id}/pause", Handler: cr.pause},
		{Method: http.MethodPost, Path: "/containers/{id}/unpause", Handler: cr.unpause},
		{Method: http.MethodPost, Path: "/containers/{id}/rename", Handler: cr.rename},
		{Method: http.MethodPost, Path: "/containers/{id}/exec", Handler: cr.execCreate},
		{Method: http.MethodPost, Path: "/containers/{id:.*}/copy", Handler: copyGone},
		// A link's name holds a "/" (parent/alias), as in dockerd's routes.
		{Method: http.MethodDelete, Path: "/containers/{id:.*}", Handler: cr.remove},
		{Method: http.MethodPost, Path: "/exec/{id}/start", Handler: cr.execStart},
		{Method: http.MethodPost, Path: "/exec/{id}/resize", Handler: cr.execResize},
		{Method: http.MethodGet, Path: "/exec/{id}/json", Handler: cr.execInspect},
	}
}

// copyGone answers the copy endpoint that API 1.24 removed (GET
// /containers/{id}/archive replaced it) as dockerd does at 1.24 and later:
// 404 with an empty body, whatever the container.
func copyGone(_ context.Context, w http.ResponseWriter, _ *http.Request, _ map[string]string) error {
	w.WriteHeader(http.StatusNotFound)
	return nil
}

// badPortKey finds a key of ExposedPorts or HostConfig.PortBindings in a
// create body that is no port ("abc/tcp", "99999"), and returns its port
// part: the decoding of the body failed on it. It looks at the keys, not
// at the decoder's error text.
func badPortKey(body []byte) (string, bool) {
	var b struct {
		ExposedPorts map[string]json.RawMessage
		HostConfig   *struct{ PortBindings map[string]json.RawMessage }
	}
	if json.Unmarshal(body, &b) != nil {
		return "", false
	}
	var keys []string
	for k := range b.ExposedPorts {
		keys = append(keys, k)
	}
	if b.HostConfig != nil {
		for k := range b.HostConfig.PortBindings {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if k == "" {
			continue // "invalid port: value is empty", as it comes
		}
		if _, err := network.ParsePort(k); err != nil {
			port, _, _ := strings.Cut(k, "/")
			return port, true
		}
	}
	return "", false
}

type createBody struct {
	container.Config
	// MacAddress: clients before API 1.44 send it in the config.
	MacAddress       string                    `json:",omitempty"`
	HostConfig       *container.HostConfig     `json:"HostConfig,omitempty"`
	NetworkingConfig *network.NetworkingConfig `json:"NetworkingConfig,omitempty"`
}

func (cr *containerRouter) create(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	var body createBody
	var raw bytes.Buffer
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.TeeReader(r.Body, &raw), r.Body}
	if err := httputils.ReadJSONTyped(r, &body); err != nil {
		// A bad port key fails while decoding; say it as Docker does.
		if port, ok := badPortKey(raw.Bytes()); ok {
			return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid port specification: %q", port))
		}
		return err
	}
	cfg := body.Config
	version := httputils.VersionFromContext(ctx)
	adjustCreate(version, body.HostConfig)
	if httputils.VersionLess(version, "1.44") && cfg.Healthcheck != nil {
		// StartInterval came with API 1.44: an older client's is dropped,
		// as dockerd does.
		hc := *cfg.Healthcheck
		hc.StartInterval = 0
		cfg.Healthcheck = &hc
	}
	req := ctr.CreateRequest{Name: r.Form.Get("name"), Config: &cfg, HostConfig: body.HostConfig, NetworkConfig: body.NetworkingConfig}
	if httputils.VersionLess(version, "1.44") {
		req.MacAddress = body.MacAddress
	}
	if v := r.Form.Get("platform"); v != "" && !httputils.VersionLess(version, "1.41") {
		p, err := platforms.Parse(v)
		if err != nil {
			return cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
		req.Platform = &p
	}
	id, warnings, err := cr.b.Create(ctx, req)
	if err != nil {
		return err
	}
	if warnings == nil {
		warnings = []string{}
	}
	return httputils.WriteJSON(w, http.StatusCreated, container.CreateResponse{ID: id, Warnings: warnings})
}

// adjustCreate does to a create request what dockerd does for the API
// version the client speaks: up to 1.24 the client removes an AutoRemove
// container itself; before 1.40 BindOptions.NonRecursive did not exist and
// the default IPC mode was "shareable"; and a PidsLimit of 0 or less, at
// any version, means no limit (stored as none).
func adjustCreate(version string, hc *container.HostConfig) {
	if hc == nil {
		return
	}
	if httputils.VersionLess(version, "1.25") {
		hc.AutoRemove = false
	}
	if httputils.VersionLess(version, "1.40") {
		for i := range hc.Mounts {
			if bo := hc.Mounts[i].BindOptions; bo != nil {
				bo.NonRecursive = false
			}
		}
		if hc.IpcMode == "" {
			hc.IpcMode = container.IPCModeShareable
		}
	}
	if hc.PidsLimit != nil && *hc.PidsLimit <= 0 {
		hc.PidsLimit = nil
	}
}

func (cr *containerRouter) list(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	args, err := filters.Parse(r.Form.Get("filters"))
	if err != nil {
		return err
	}
	limit, err := httputils.IntValue(r, "limit", 0)
	if err != nil {
		return err
	}
	list, err := cr.b.List(ctx, ctr.ListOptions{All: httputils.BoolValue(r, "all"), Limit: limit, Size: httputils.BoolValue(r, "size"), Filters: args})
	if err != nil {
		return err
	}
	cr.listNetworkMode(ctx, list)
	return httputils.WriteJSON(w, http.StatusOK, list)
}

func (cr *containerRouter) inspect(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	resp, err := cr.b.Inspect(ctx, vars["id"], httputils.BoolValue(r, "size"))
	if err != nil {
		return err
	}
	cr.inspectNetworkMode(ctx, resp)
	return httputils.WriteJSON(w, http.StatusOK, withLegacyNetworkFields(resp))
}

// withLegacyNetworkFields adds the top-level NetworkSettings fields that
// Docker still sent up to API 1.51 (IPAddress, Gateway, MacAddress...):
// tutorials use `inspect -f '{{.NetworkSettings.IPAddress}}'`. They mirror
// the default bridge endpoint, as in Docker.
func withLegacyNetworkFields(resp *container.InspectResponse) any {
	if resp.NetworkSettings == nil {
		return resp
	}
	out := inspectWithLegacy{InspectResponse: resp}
	if resp.Config != nil {
		out.Config = &configWithOnBuild{Config: resp.Config, OnBuild: resp.Config.OnBuild}
	}
	out.NetworkSettings.NetworkSettings = resp.NetworkSettings
	if ep := resp.NetworkSettings.Networks["bridge"]; ep != nil {
		out.NetworkSettings.EndpointID = ep.EndpointID
		out.NetworkSettings.MacAddress = ep.MacAddress.String()
		out.NetworkSettings.IPPrefixLen = ep.IPPrefixLen
		if ep.IPAddress.IsValid() {
			out.NetworkSettings.IPAddress = ep.IPAddress.String()
		}
		if ep.Gateway.IsValid() {
			out.NetworkSettings.Gateway = ep.Gateway.String()
		}
		if ep.GlobalIPv6Address.IsValid() {
			out.NetworkSettings.GlobalIPv6Address = ep.GlobalIPv6Address.String()
			out.NetworkSettings.GlobalIPv6PrefixLen = ep.GlobalIPv6PrefixLen
		}
		if ep.IPv6Gateway.IsValid() {
			out.NetworkSettings.IPv6Gateway = ep.IPv6Gateway.String()
		}
	}
	return out
}

type inspectWithLegacy struct {
	*container.InspectResponse
	Config          *configWithOnBuild `json:",omitempty"`
	NetworkSettings legacyNetworkSettings
}

// configWithOnBuild always carries "OnBuild", null when empty, as Docker's.
type configWithOnBuild struct {
	*container.Config
	OnBuild []string
}

type legacyNetworkSettings struct {
	*container.NetworkSettings
	EndpointID          string
	Gateway             string
	GlobalIPv6Address   string
	GlobalIPv6PrefixLen int
	IPAddress           string
	IPPrefixLen         int
	IPv6Gateway         string
	MacAddress          string
}

func (cr *containerRouter) start(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	if err := cr.b.Start(ctx, vars["id"]); err != nil {
		if cerrdefs.IsNotModified(err) {
			w.WriteHeader(http.StatusNotModified)
			return nil
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func timeoutParam(r *http.Request) (*int, error) {
	v := r.Form.Get("t")
	if v == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage("invalid value for t: " + v)
	}
	return &n, nil
}

func (cr *containerRouter) stop(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	t, err := timeoutParam(r)
	if err != nil {
		return err
	}
	if err := cr.b.Stop(ctx, vars["id"], r.Form.Get("signal"), t); err != nil {
		if cerrdefs.IsNotModified(err) {
			w.WriteHeader(http.StatusNotModified)
			return nil
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (cr *containerRouter) restart(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	t, err := timeoutParam(r)
	if err != nil {
		return err
	}
	if err := cr.b.Restart(ctx, vars["id"], r.Form.Get("signal"), t); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (cr *containerRouter) kill(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	if err := cr.b.Kill(ctx, vars["id"], r.Form.Get("signal")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (cr *containerRouter) wait(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	cond := container.WaitCondition(r.Form.Get("condition"))
	switch cond {
	case "", container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
	default:
		return cerrdefs.ErrInvalidArgument.WithMessage("invalid condition: " + string(cond))
	}
	ch, err := cr.b.Wait(ctx, vars["id"], cond)
	if err != nil {
		return err
	}
	// Headers go out at once: the client knows the wait is in place
	// before it starts the container.
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	res, ok := <-ch
	if !ok {
		return nil
	}
	resp := container.WaitResponse{StatusCode: res.StatusCode}
	if res.Error != "" {
		resp.Error = &container.WaitExitError{Message: res.Error}
	}
	return json.NewEncoder(w).Encode(resp)
}

func (cr *containerRouter) remove(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	if httputils.BoolValue(r, "link") {
		if err := cr.b.RemoveLink(vars["id"]); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if err := cr.b.Remove(ctx, vars["id"], ctr.RemoveOptions{Force: httputils.BoolValue(r, "force"), Volumes: httputils.BoolValue(r, "v")}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (cr *containerRouter) attach(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	id := vars["id"]
	if _, err := cr.b.Inspect(ctx, id, false); err != nil {
		return err
	}
	keys, err := ctr.ParseDetachKeys(r.Form.Get("detachKeys"))
	if err != nil {
		return err
	}
	o := ctr.AttachOptions{
		Stdin: httputils.BoolValue(r, "stdin"), Stdout: httputils.BoolValue(r, "stdout"), Stderr: httputils.BoolValue(r, "stderr"),
		Stream: httputils.BoolValue(r, "stream"), Logs: httputils.BoolValue(r, "logs"), DetachKeys: keys,
	}
	// The 101 goes out once the attach is in place (see Attach). The
	// stream outlives this request's context only as long as the client's
	// connection lives.
	hijacked := false
	err = cr.b.Attach(context.WithoutCancel(ctx), id, o, func() (ctr.Stream, error) {
		conn, err := httputils.Hijack(w, r)
		hijacked = err == nil
		return conn, err
	})
	if hijacked {
		return nil
	}
	return err
}

// logTime reads the since and until parameters of logs: "" and "0" are the
// zero time (no bound; Docker ignores until=0 too), anything else what
// filters.ParseTime reads (Unix seconds with an optional fraction, as the
// docker client sends them, RFC 3339 times or durations back from now).
func logTime(v string, now time.Time) (time.Time, error) {
	if v == "" || v == "0" {
		return time.Time{}, nil
	}
	return filters.ParseTime(v, now)
}

func (cr *containerRouter) logs(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	now := time.Now()
	since, err := logTime(r.Form.Get("since"), now)
	if err != nil {
		return err
	}
	until, err := logTime(r.Form.Get("until"), now)
	if err != nil {
		return err
	}
	// As dockerd: a tail that is not a number ("all", "random") is all.
	tail := -1
	if n, err := strconv.Atoi(r.Form.Get("tail")); err == nil {
		tail = n
	}
	o := ctr.LogsOptions{
		Stdout: httputils.BoolValue(r, "stdout"), Stderr: httputils.BoolValue(r, "stderr"),
		Follow: httputils.BoolValue(r, "follow"), Timestamps: httputils.BoolValue(r, "timestamps"),
		Details: httputils.BoolValue(r, "details"),
		Since:   since, Until: until, Tail: tail,
	}
	flusher, _ := w.(http.Flusher)
	flush := func() {
		if flusher != nil {
			flusher.Flush()
		}
	}
	return cr.b.Logs(ctx, vars["id"], o, func(tty bool) {
		if tty {
			w.Header().Set("Content-Type", "application/vnd.docker.raw-stream")
		} else {
			w.Header().Set("Content-Type", "application/vnd.docker.multiplexed-stream")
		}
		w.WriteHeader(http.StatusOK)
		flush()
	}, w, flush)
}

func sizeParams(r *http.Request) (uint16, uint16, error) {
	h, err := strconv.Atoi(r.Form.Get("h"))
	if err != nil || h < 0 || h > 65535 {
		return 0, 0, cerrdefs.ErrInvalidArgument.WithMessage("invalid resize height: " + r.Form.Get("h"))
	}
	wd, err := strconv.Atoi(r.Form.Get("w"))
	if err != nil || wd < 0 || wd > 65535 {
		return 0, 0, cerrdefs.ErrInvalidArgument.WithMessage("invalid resize width: " + r.Form.Get("w"))
	}
	return uint16(h), uint16(wd), nil
}

func (cr *containerRouter) resize(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	h, wd, err := sizeParams(r)
	if err != nil {
		return err
	}
	if err := cr.b.Resize(ctx, vars["id"], h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (cr *containerRouter) pause(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	if err := cr.b.Pause(ctx, vars["id"]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (cr *containerRouter) unpause(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	if err := cr.b.Unpause(ctx, vars["id"]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (cr *containerRouter) rename(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	if err := cr.b.Rename(ctx, vars["id"], r.Form.Get("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (cr *containerRouter) prune(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	args, err := filters.Parse(r.Form.Get("filters"))
	if err != nil {
		return err
	}
	rep, err := cr.b.Prune(ctx, args)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, rep)
}

func (cr *containerRouter) execCreate(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	var req container.ExecCreateRequest
	if err := httputils.ReadJSONBody(r, &req); err != nil {
		return err
	}
	if _, err := ctr.ParseDetachKeys(req.DetachKeys); err != nil {
		return cerrdefs.ErrInvalidArgument.WithMessage("Invalid escape keys (" + req.DetachKeys + ") provided")
	}
	id, err := cr.b.ExecCreate(ctx, vars["id"], req)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusCreated, container.ExecCreateResponse{ID: id})
}

func (cr *containerRouter) execStart(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	var req container.ExecStartRequest
	if err := httputils.ReadJSONBody(r, &req); err != nil {
		return err
	}
	if _, err := cr.b.ExecInspect(ctx, vars["id"]); err != nil {
		return err
	}
	if req.Detach {
		if err := cr.b.ExecStart(context.WithoutCancel(ctx), vars["id"], ctr.ExecStartOptions{}); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
	conn, err := httputils.Hijack(w, r)
	if err != nil {
		return err
	}
	if err := cr.b.ExecStart(context.WithoutCancel(ctx), vars["id"], ctr.ExecStartOptions{Conn: conn, Tty: req.Tty}); err != nil {
		// Past the hijack the error can only go into the stream, as
		// dockerd puts it: on stdout, in a frame unless the start request
		// asked for a TTY (raw text in a multiplexed stream is read as a
		// frame header).
		msg := []byte(err.Error() + "\r\n")
		if req.Tty {
			_, _ = conn.Write(msg)
		} else {
			_ = stdcopy.WriteFrame(conn, stdcopy.Stdout, msg)
		}
		conn.Close()
	}
	return nil
}

func (cr *containerRouter) execResize(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	h, wd, err := sizeParams(r)
	if err != nil {
		return err
	}
	if err := cr.b.ExecResize(ctx, vars["id"], h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (cr *containerRouter) execInspect(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	resp, err := cr.b.ExecInspect(ctx, vars["id"])
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, resp)
}
