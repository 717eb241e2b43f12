package config

import (
	"errors"

	"github.com/docker/cli/cli/config/credentials"
	"github.com/docker/cli/cli/config/types"
	helpercreds "github.com/docker/docker-credential-helpers/credentials"
	"github.com/moby/moby/api/types/registry"
)

// Helper returns the credential helper for server (its host in
// credHelpers, else credsStore), or "" when credentials go to the file.
func (f *File) Helper(server string) string {
	if h, ok := f.CredHelpers[server]; ok {
		return h
	}
	if h, ok := f.CredHelpers[Hostname(server)]; ok {
		return h
	}
	return f.CredsStore
}

// helperStore is docker's client of the helper docker-credential-<name>,
// keeping (as docker does) an empty "auths" entry per server in the file.
func (f *File) helperStore(name string) credentials.Store {
	return credentials.NewNativeStore(&helperFile{f: f}, name)
}

// GetAuth returns the credentials stored for server: server is the
// registry's key (a host[:port], or https://index.docker.io/v1/ for Docker
// Hub) or a URL.
func (f *File) GetAuth(server string) (registry.AuthConfig, bool) {
	h := f.Helper(server)
	if h == "" {
		return f.fileAuth(server)
	}
	key := server
	if k, ok := f.findKey(server); ok {
		key = k
	}
	ac, err := f.helperStore(h).Get(key)
	if err != nil || (ac.Username == "" && ac.Password == "" && ac.IdentityToken == "") {
		return registry.AuthConfig{}, false
	}
	return registry.AuthConfig{Username: ac.Username, Password: ac.Password, IdentityToken: ac.IdentityToken, ServerAddress: key}, true
}

// StoreAuth stores credentials for server and saves the file. plaintext
// reports that they went into the file unencrypted (no helper).
func (f *File) StoreAuth(server string, ac registry.AuthConfig) (plaintext bool, err error) {
	if h := f.Helper(server); h != "" {
		err := f.helperStore(h).Store(types.AuthConfig{
			Username: ac.Username, Password: ac.Password, IdentityToken: ac.IdentityToken, ServerAddress: server,
		})
		return false, err
	}
	f.setFileAuth(server, ac)
	return true, f.Save()
}

// EraseAuth removes server's credentials wherever they are (the file, the
// helper) under each of docker's spellings of the address, and saves the
// file. It reports whether anything was removed; an error only when every
// removal failed.
func (f *File) EraseAuth(server string) (bool, error) {
	keys := []string{server}
	if server != "https://index.docker.io/v1/" {
		host := Hostname(server)
		keys = append(keys, host, "http://"+host, "https://"+host)
	}
	removed := false
	var errs []error
	for _, k := range keys {
		if h := f.Helper(k); h != "" {
			if _, err := f.helperStore(h).Get(k); err == nil {
				if err := f.helperStore(h).Erase(k); err != nil && !helpercreds.IsErrCredentialsNotFound(err) {
					errs = append(errs, err)
				} else {
					removed = true
				}
			}
		}
	}
	if f.removeFileAuth(server) {
		removed = true
		if err := f.Save(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 && !removed {
		return false, errors.Join(errs...)
	}
	return removed, nil
}

// helperFile is the file as docker's credential package sees it: a live
// map of auth entries, saved through File.Save.
type helperFile struct {
	f *File
	m map[string]types.AuthConfig
}

func (h *helperFile) GetAuthConfigs() map[string]types.AuthConfig {
	if h.m == nil {
		h.m = map[string]types.AuthConfig{}
		for k := range h.f.Auths {
			if ac, ok := h.f.fileAuth(k); ok {
				h.m[k] = types.AuthConfig{Username: ac.Username, Password: ac.Password, IdentityToken: ac.IdentityToken, ServerAddress: k}
			} else {
				h.m[k] = types.AuthConfig{ServerAddress: k}
			}
		}
	}
	return h.m
}

func (h *helperFile) Save() error {
	for k := range h.f.Auths {
		if _, ok := h.m[k]; !ok {
			delete(h.f.Auths, k)
		}
	}
	for k, ac := range h.m {
		email := h.f.Auths[k].Email
		h.f.setFileAuth(k, registry.AuthConfig{Username: ac.Username, Password: ac.Password, IdentityToken: ac.IdentityToken})
		e := h.f.Auths[k]
		e.Email = email
		h.f.Auths[k] = e
	}
	return h.f.Save()
}

func (h *helperFile) GetFilename() string { return h.f.path }
