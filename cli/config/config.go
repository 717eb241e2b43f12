// Package config reads and writes the berth CLI's configuration file,
// ~/.berth/config.json. The file has the shape of docker's config.json:
//
//	{
//		"auths": {
//			"registry.example.com": {"auth": "<base64 of user:password>"}
//		},
//		"imagesFormat": "table {{.Repository}}\t{{.Tag}}"
//	}
//
// Keys this package does not know are kept as they are when the file is
// written back, so a file shared with other tools loses nothing.
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
	// EnvDir names the environment variable that overrides the directory.
	EnvDir = "BERTH_CONFIG"
	// dirName is the directory in the user's home.
	dirName = ".berth"
)

// Dir returns the configuration directory: $BERTH_CONFIG if set, otherwise
// ~/.berth.
func Dir() string {
	if d := os.Getenv(EnvDir); d != "" {
		return d
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

	path  string
	extra map[string]json.RawMessage // keys not interpreted here, kept on Save
}

// known lists the keys File interprets; everything else lands in extra.
var known = map[string]bool{"auths": true}

// stringKeys maps the plain string settings to their fields.
func (f *File) stringKeys() map[string]*string {
	return map[string]*string{
		"imagesFormat": &f.ImagesFormat, "psFormat": &f.PsFormat, "statsFormat": &f.StatsFormat,
		"volumesFormat": &f.VolumesFormat, "networksFormat": &f.NetworksFormat, "detachKeys": &f.DetachKeys,
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

// GetAuth returns the credentials stored for a registry. server may be a
// bare host ("registry.example.com:5000") or a URL; an entry stored under
// either form matches.
func (f *File) GetAuth(server string) (registry.AuthConfig, bool) {
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
	return ac, true
}

// SetAuth stores credentials for server. An identity token, when present,
// is stored instead of the password.
func (f *File) SetAuth(server string, ac registry.AuthConfig) {
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

// RemoveAuth deletes every entry that matches server (as GetAuth matches)
// and reports whether there was one.
func (f *File) RemoveAuth(server string) bool {
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
