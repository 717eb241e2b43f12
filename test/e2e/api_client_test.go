package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"
)

// apiClient is a tiny raw Engine API client on a unix socket: the suite
// checks status codes, headers and JSON shapes itself.
type apiClient struct {
	sock string
	hc   *http.Client
}

func newAPI(sock string) *apiClient {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		DisableKeepAlives: true,
	}
	return &apiClient{sock: sock, hc: &http.Client{Transport: tr}}
}

// apiResp is a complete, read response.
type apiResp struct {
	Method, Path string
	Status       int
	Header       http.Header
	Body         []byte
}

// do sends one request and reads the whole answer.
func (a *apiClient) do(ctx context.Context, method, path string, body []byte, hdr http.Header) (*apiResp, error) {
	resp, err := a.stream(ctx, method, path, body, hdr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	return &apiResp{Method: method, Path: path, Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// stream sends one request and returns the response with its body unread.
func (a *apiClient) stream(ctx context.Context, method, path string, body []byte, hdr http.Header) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://api.moby.localhost"+path, rd)
	if err != nil {
		return nil, err
	}
	for k, vs := range hdr {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return resp, nil
}

// call is do for tests: transport errors are fatal; each call is bounded.
func (a *apiClient) call(t *testing.T, method, path string, body []byte, hdr http.Header) *apiResp {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, err := a.do(ctx, method, path, body, hdr)
	if err != nil {
		t.Fatalf("API: %v", err)
	}
	return r
}

func (r *apiResp) String() string {
	b := string(r.Body)
	if len(b) > 600 {
		b = b[:600] + "…"
	}
	return fmt.Sprintf("%s %s -> %d %s", r.Method, r.Path, r.Status, strings.TrimSpace(b))
}

// decode unmarshals the JSON body into v.
func (r *apiResp) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("%s: body is not the expected JSON: %v", r, err)
	}
}

// message is the "message" of a JSON error body, or "" if the body is not
// such an object.
func (r *apiResp) message() string {
	var e struct {
		Message *string `json:"message"`
	}
	if json.Unmarshal(r.Body, &e) != nil || e.Message == nil {
		return ""
	}
	return *e.Message
}

// wantStatus fails the test unless the status is want.
func (r *apiResp) wantStatus(t *testing.T, want int) *apiResp {
	t.Helper()
	if r.Status != want {
		t.Fatalf("%s: status %d, want %d", r, r.Status, want)
	}
	return r
}

// wantError checks an error answer: the status, Docker's JSON error body
// ({"message": ...}, Content-Type application/json) and that the message
// contains every one of parts. Mismatches are reported, not fatal, so one
// request shows everything that differs.
func (r *apiResp) wantError(t *testing.T, status int, parts ...string) string {
	t.Helper()
	if r.Status != status {
		t.Errorf("%s: status %d, want %d", r, r.Status, status)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want application/json", r, ct)
	}
	msg := r.message()
	if msg == "" {
		t.Errorf(`%s: body is not {"message": "..."}`, r)
		return ""
	}
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("%s: message %q does not contain %q", r, msg, p)
		}
	}
	return msg
}

// jsonMessage is one line of a pull/push/load progress stream.
type jsonMessage struct {
	Status         string `json:"status"`
	ID             string `json:"id"`
	Progress       string `json:"progress"`
	ProgressDetail *struct {
		Current int64 `json:"current"`
		Total   int64 `json:"total"`
	} `json:"progressDetail"`
	Stream      string `json:"stream"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
	Aux json.RawMessage `json:"aux"`
}

// parseMessages decodes a progress stream. Every line must be JSON.
func parseMessages(t *testing.T, body []byte) []jsonMessage {
	t.Helper()
	var msgs []jsonMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		var m jsonMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return msgs
			}
			t.Fatalf("progress stream is not a sequence of JSON objects: %v\n%s", err, body)
		}
		msgs = append(msgs, m)
	}
}

// streamError is the first error carried inside a progress stream.
func streamError(msgs []jsonMessage) string {
	for _, m := range msgs {
		if m.Error != "" {
			return m.Error
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return m.ErrorDetail.Message
		}
	}
	return ""
}

// registryAuth is the X-Registry-Auth header value: base64url of the JSON
// auth config, as the docker CLI sends it.
func registryAuth(user, password, server string) string {
	b, _ := json.Marshal(map[string]string{"username": user, "password": password, "serveraddress": server})
	return base64.URLEncoding.EncodeToString(b)
}

// pullAPI pulls through POST /images/create and returns the status and the
// messages. repo is sent as fromImage, tag (or a digest) as tag.
func pullAPI(t *testing.T, a *apiClient, repo, tag string, hdr http.Header) (*apiResp, []jsonMessage) {
	t.Helper()
	if hdr == nil {
		hdr = http.Header{}
	}
	if hdr.Get("X-Registry-Auth") == "" {
		hdr.Set("X-Registry-Auth", "e30=") // what the docker CLI sends with no credentials
	}
	q := url.Values{"fromImage": {repo}}
	if tag != "" {
		q.Set("tag", tag)
	}
	r := a.call(t, "POST", "/images/create?"+q.Encode(), nil, hdr)
	if r.Status != 200 {
		return r, nil
	}
	return r, parseMessages(t, r.Body)
}

// imageSummary is the part of GET /images/json the suite looks at.
type imageSummary struct {
	ID          string   `json:"Id"`
	RepoTags    []string `json:"RepoTags"`
	RepoDigests []string `json:"RepoDigests"`
	Size        int64    `json:"Size"`
	Created     int64    `json:"Created"`
}

// imageInspect is the part of GET /images/{name}/json the suite looks at.
type imageInspect struct {
	ID           string   `json:"Id"`
	RepoTags     []string `json:"RepoTags"`
	RepoDigests  []string `json:"RepoDigests"`
	Created      string   `json:"Created"`
	Architecture string   `json:"Architecture"`
	Os           string   `json:"Os"`
	Size         int64    `json:"Size"`
	Config       struct {
		Cmd        []string          `json:"Cmd"`
		Entrypoint []string          `json:"Entrypoint"`
		Env        []string          `json:"Env"`
		Labels     map[string]string `json:"Labels"`
	} `json:"Config"`
	RootFS struct {
		Type   string   `json:"Type"`
		Layers []string `json:"Layers"`
	} `json:"RootFS"`
}

// listImages returns GET /images/json.
func listImages(t *testing.T, a *apiClient) []imageSummary {
	t.Helper()
	var out []imageSummary
	a.call(t, "GET", "/images/json", nil, nil).wantStatus(t, 200).decode(t, &out)
	return out
}

// imageState is a comparable summary of the image store: sorted
// "id tags digests" lines.
func imageState(t *testing.T, a *apiClient) string {
	t.Helper()
	var ls []string
	for _, im := range listImages(t, a) {
		tags := append([]string(nil), im.RepoTags...)
		digests := append([]string(nil), im.RepoDigests...)
		sort.Strings(tags)
		sort.Strings(digests)
		ls = append(ls, fmt.Sprintf("%s %v %v\n", im.ID, tags, digests))
	}
	sort.Strings(ls)
	return strings.Join(ls, "")
}

// inspectImage returns GET /images/{ref}/json, failing unless it is 200.
func inspectImage(t *testing.T, a *apiClient, ref string) imageInspect {
	t.Helper()
	var out imageInspect
	a.call(t, "GET", "/images/"+ref+"/json", nil, nil).wantStatus(t, 200).decode(t, &out)
	return out
}

// exists reports whether GET path answers 200 (404: false; anything else
// fails the test).
func (a *apiClient) exists(t *testing.T, path string) bool {
	t.Helper()
	r := a.call(t, "GET", path, nil, nil)
	switch r.Status {
	case 200:
		return true
	case 404:
		return false
	}
	t.Fatalf("%s: want 200 or 404", r)
	return false
}

// imageExists reports whether image ref exists.
func imageExists(t *testing.T, a *apiClient, ref string) bool {
	t.Helper()
	return a.exists(t, "/images/"+ref+"/json")
}

// ensureImage pulls ref (a docker.io short name such as "busybox:latest",
// resolved through the mirror) unless it is present.
func ensureImage(t *testing.T, a *apiClient, ref string) imageInspect {
	t.Helper()
	if !imageExists(t, a, ref) {
		repo, tag, _ := strings.Cut(ref, ":")
		r, msgs := pullAPI(t, a, repo, tag, nil)
		if r.Status != 200 {
			t.Fatalf("pull %s: %s", ref, r)
		}
		if e := streamError(msgs); e != "" {
			t.Fatalf("pull %s: %s", ref, e)
		}
	}
	return inspectImage(t, a, ref)
}

// removeImage removes ref with force, if present.
func removeImage(t *testing.T, a *apiClient, ref string) {
	t.Helper()
	r := a.call(t, "DELETE", "/images/"+ref+"?force=1", nil, nil)
	if r.Status != 200 && r.Status != 404 {
		t.Fatalf("remove %s: %s", ref, r)
	}
}

// removeImageEverywhere removes the image that ref names (all its tags), if
// present.
func removeImageEverywhere(t *testing.T, a *apiClient, ref string) {
	t.Helper()
	if !imageExists(t, a, ref) {
		return
	}
	id := inspectImage(t, a, ref).ID
	removeImage(t, a, id)
	if imageExists(t, a, id) {
		t.Fatalf("image %s (%s) still exists after a forced removal", ref, id)
	}
}

// pingVersion is the daemon's API version as /_ping advertises it.
func pingVersion(t *testing.T, a *apiClient) string {
	t.Helper()
	r := a.call(t, "GET", "/_ping", nil, nil).wantStatus(t, 200)
	v := r.Header.Get("Api-Version")
	if v == "" {
		t.Fatalf("%s: no Api-Version header", r)
	}
	return v
}
