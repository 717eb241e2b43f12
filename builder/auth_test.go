package builder

import (
	"testing"

	"github.com/moby/buildkit/session/auth"
	"github.com/moby/moby/api/types/registry"
)

func TestRegistryAuthsCredentials(t *testing.T) {
	a := &registryAuths{auths: map[string]registry.AuthConfig{
		"https://index.docker.io/v1/": {Username: "hub", Password: "hubpw"},
		"127.0.0.1:5001":              {Username: "u", Password: "p"},
		"https://reg.example:443/v2/": {IdentityToken: "tok"},
	}}
	for host, want := range map[string][2]string{
		"registry-1.docker.io": {"hub", "hubpw"},
		"docker.io":            {"hub", "hubpw"},
		"127.0.0.1:5001":       {"u", "p"},
		"reg.example:443":      {"", "tok"},
		"127.0.0.1:5000":       {"", ""},
	} {
		resp, err := a.Credentials(t.Context(), &auth.CredentialsRequest{Host: host})
		if err != nil || resp.Username != want[0] || resp.Secret != want[1] {
			t.Errorf("%s: %+v %v, want %v", host, resp, err, want)
		}
	}
}
