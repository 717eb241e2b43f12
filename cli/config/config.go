// Package config reads and writes the berth CLI's configuration file. It
// is docker's config.json, in docker's place: $DOCKER_CONFIG/config.json or
// ~/.docker/config.json ($BERTH_CONFIG overrides the directory for berth
// alone), so the berth and docker CLIs share settings and credentials:
//
//	{
//		"auths": {
//			"registry.example.com": {"auth": "<base64 of user:password>"}
//		},
//		"credsStore": "pass",
//		"credHelpers": {"ghcr.io": "secretservice"},
//		"imagesFormat": "table {{.Repository}}\t{{.Tag}}"
//	}
//
// Credentials go to a credential helper (docker-credential-<name> on PATH)
// when credHelpers names one for the registry or credsStore names one for
// all, through docker's own helper client; otherwise into "auths", in
// plain text. Keys this package does not know are kept as they are when
// the file is written back, so a file shared with other tools loses
// nothing.
package config

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/registry"

	"github.com/berth/berth/internal/osutil"
)

const (
	// FileName is the name of the configuration file inside its directory.
	FileName = "config.json"
	// EnvDir names the environment variable that overrides the directory
	// for berth alone.
	EnvDir = "BERTH_CONFIG"
	// EnvDockerDir is docker's variable for the same directory.
	EnvDockerDir = "DOCKER_CONFIG"
	// dirName is the directory in the user's home: docker's.
	dirName = ".docker"
)

// DirFrom returns the configuration directory, the environment read
// through getenv: $BERTH_CONFIG if set, else $DOCKER_CONFIG, else
// ~/.docker.
func DirFrom(getenv func(string) string) string {
	for _, k := range []string{EnvDir, EnvDockerDir} {
		if d := getenv(k); d != "" {
			return d
		}
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		home = "/root"
	}
	return filepath.Join(home, dirName)
}

// AuthEntry is one registry's stored credentials, as found under "auths".
type AuthEntry struct {
	// Auth is base64("username:password").
	Auth string `json:"auth,omitempty"`
	// IdentityToken replaces the password when the registry handed one out.
	IdentityToken string `json:"identitytoken,omitempty"`
	// Email is obsolete; it is kept for files written by old docker versions.
	Email string `json:"email,omitempty"`
}

// File is a loaded configuration file.
type File struct {
	// Auths maps a registry address to its credentials.
	Auths map[string]AuthEntry
	// ImagesFormat is the default --format of `images`.
	ImagesFormat string
	// PsFormat is the default --format of `ps`.
	PsFormat string
	// StatsFormat is the default --format of `stats`.
	StatsFormat string
	// VolumesFormat is the default --format of `volume ls`.
	VolumesFormat string
	// NetworksFormat is the default --format of `network ls`.
	NetworksFormat string
	// DetachKeys overrides the ctrl-p,ctrl-q detach sequence of run,
	// attach, start and exec.
	DetachKeys string
	// CredsStore names the credential helper for every registry
	// (docker-credential-<name>).
	CredsStore string
	// CredHelpers names a credential helper per registry host.
	CredHelpers map[string]string

	path  string
	extra map[string]json.RawMessage // keys not interpreted here, kept on Save
}

// known lists the keys File interprets; everything else lands in extra.
var known = map[string]bool{"auths": true, "credHelpers": true}

// stringKeys maps the plain string settings to their fields.
func (f *File) stringKeys() map[string]*string {
	return map[string]*string{
		"imagesFormat": &f.ImagesFormat, "psFormat": &f.PsFormat, "statsFormat": &f.StatsFormat,
		"volumesFormat": &f.VolumesFormat, "networksFormat": &f.NetworksFormat, "detachKeys": &f.DetachKeys,
		"credsStore": &f.CredsStore,
	}
}

// New returns an empty configuration that Save writes to dir/config.json.
func New(dir string) *File {
	return &File{
		Auths: map[string]AuthEntry{},
		path:  filepath.Join(dir, FileName),
		extra: map[string]json.RawMessage{},
	}
}

// Load reads dir/config.json. A missing file is not an error: it yields an
// empty configuration that Save will create.
func Load(dir string) (*File, error) {
	f := New(dir)
	data, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, err
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return f, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("loading config file %s: %w", f.path, err)
	}
	strs := f.stringKeys()
	for k, v := range raw {
		if _, ok := strs[k]; !known[k] && !ok {
			f.extra[k] = v
		}
	}
	if v, ok := raw["auths"]; ok && string(v) != "null" {
		if err := json.Unmarshal(v, &f.Auths); err != nil {
			return nil, fmt.Errorf("loading config file %s: auths: %w", f.path, err)
		}
	}
	if v, ok := raw["credHelpers"]; ok && string(v) != "null" {
		if err := json.Unmarshal(v, &f.CredHelpers); err != nil {
			return nil, fmt.Errorf("loading config file %s: credHelpers: %w", f.path, err)
		}
	}
	for k, dst := range strs {
		if v, ok := raw[k]; ok {
			if err := json.Unmarshal(v, dst); err != nil {
				return nil, fmt.Errorf("loading config file %s: %s: %w", f.path, k, err)
			}
		}
	}
	return f, nil
}

// Path returns the file's location.
func (f *File) Path() string { return f.path }

// Save writes the file atomically (a temporary file renamed over the old
// one), with mode 0600 in a 0700 directory: it holds credentials.
func (f *File) Save() error {
	out := make(map[string]any, len(f.extra)+3)
	for k, v := range f.extra {
		out[k] = v
	}
	auths := f.Auths
	if auths == nil {
		auths = map[string]AuthEntry{}
	}
	out["auths"] = auths
	if len(f.CredHelpers) > 0 {
		out["credHelpers"] = f.CredHelpers
	}
	for k, v := range f.stringKeys() {
		if *v != "" {
			out[k] = *v
		}
	}
	data, err := json.MarshalIndent(out, "", "\t")
	if err != nil {
		return err
	}
	dir := filepath.Dir(f.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// Follow a symlinked config file instead of replacing the link; the
	// temporary file goes next to the real file, so the rename stays on
	// its filesystem.
	target := f.path
	if resolved, err := filepath.EvalSymlinks(f.path); err == nil {
		target = resolved
	}
	return osutil.WriteFileAtomic(target, data)
}

// fileAuth returns the credentials stored in the file for a registry.
// server may be a bare host ("registry.example.com:5000") or a URL; an
// entry stored under either form matches.
func (f *File) fileAuth(server string) (registry.AuthConfig, bool) {
	key, ok := f.findKey(server)
	if !ok {
		return registry.AuthConfig{}, false
	}
	e := f.Auths[key]
	ac := registry.AuthConfig{ServerAddress: key, IdentityToken: e.IdentityToken}
	if e.Auth != "" {
		user, pass, err := decodeAuth(e.Auth)
		if err != nil {
			return registry.AuthConfig{}, false
		}
		ac.Username, ac.Password = user, pass
	}
	if ac.Username == "" && ac.Password == "" && ac.IdentityToken == "" {
		return registry.AuthConfig{}, false // an entry a credential helper left
	}
	return ac, true
}

// setFileAuth stores credentials for server in the file (not saved yet).
// An identity token, when present, is stored instead of the password.
func (f *File) setFileAuth(server string, ac registry.AuthConfig) {
	if f.Auths == nil {
		f.Auths = map[string]AuthEntry{}
	}
	e := AuthEntry{IdentityToken: ac.IdentityToken}
	pass := ac.Password
	if ac.IdentityToken != "" {
		pass = ""
	}
	if ac.Username != "" || pass != "" {
		e.Auth = base64.StdEncoding.EncodeToString([]byte(ac.Username + ":" + pass))
	}
	f.Auths[server] = e
}

// removeFileAuth deletes every entry that matches server (as fileAuth
// matches) and reports whether there was one.
func (f *File) removeFileAuth(server string) bool {
	removed := false
	host := Hostname(server)
	for k := range f.Auths {
		if k == server || Hostname(k) == host {
			delete(f.Auths, k)
			removed = true
		}
	}
	return removed
}

func (f *File) findKey(server string) (string, bool) {
	if _, ok := f.Auths[server]; ok {
		return server, true
	}
	host := Hostname(server)
	for k := range f.Auths {
		if Hostname(k) == host {
			return k, true
		}
	}
	return "", false
}

// Hostname reduces a registry address to its host[:port]: the scheme and any
// path are dropped ("https://index.docker.io/v1/" → "index.docker.io").
func Hostname(server string) string {
	s := strings.TrimPrefix(server, "http://")
	s = strings.TrimPrefix(s, "https://")
	s, _, _ = strings.Cut(s, "/")
	return s
}

func decodeAuth(auth string) (string, string, error) {
	b, err := base64.StdEncoding.DecodeString(auth)
	if err != nil {
		return "", "", err
	}
	user, pass, ok := strings.Cut(string(b), ":")
	if !ok {
		return "", "", errors.New("invalid auth configuration file")
	}
	return user, strings.Trim(pass, "\x00"), nil
}
