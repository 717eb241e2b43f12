package image

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestTokenRealmAllowed(t *testing.T) {
	for _, tc := range []struct {
		registry string
		insecure bool
		realm    string
		ok       bool
	}{
		{"registry.example.com", false, "https://auth.example.net/token", true},
		{"127.0.0.1:5001", true, "https://auth.example.net/token", true},
		{"127.0.0.1:5001", true, "http://127.0.0.1:5002/token", true}, // its own host, another port
		{"127.0.0.1:5001", true, "http://localhost:5002/token", false},
		{"127.0.0.1:5001", true, "http://auth.example.net/token", false},
		{"registry.example.com", false, "http://registry.example.com/token", false}, // a secure registry: never plain http
		{"registry.example.com", false, "ftp://registry.example.com/token", false},
	} {
		u, _ := url.Parse(tc.realm)
		if err := tokenRealmAllowed(tc.registry, tc.insecure, u); (err == nil) != tc.ok {
			t.Errorf("registry %s (insecure %v), realm %s: %v, want allowed %v", tc.registry, tc.insecure, tc.realm, err, tc.ok)
		}
	}
}

// TestPullCredentialsStayHome: an insecure registry whose challenge names
// a token service on another host over plain http gets no credentials
// sent there through berth's guard (go-containerregistry alone sends them).
func TestPullCredentialsStayHome(t *testing.T) {
	var gotAuth atomic.Value
	gotAuth.Store("")
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth.Store(r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"token":"t"}`))
	}))
	defer tokens.Close()
	// The same server, named "localhost": another host than 127.0.0.1 as
	// far as the registry's name goes.
	realm := strings.Replace(tokens.URL, "127.0.0.1", "localhost", 1) + "/token"
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm+`",service="test"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer reg.Close()
	ref, err := name.ParseReference(strings.TrimPrefix(reg.URL, "http://")+"/team/app:1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	creds := authn.FromConfig(authn.AuthConfig{Username: "printfchamp", Password: "secret123"})

	// Without the guard, the password goes to the other host.
	remote.Get(ref, remote.WithAuth(creds), remote.WithTransport(http.DefaultTransport))
	if gotAuth.Load().(string) == "" {
		t.Fatal("the control pull sent no credentials to the token service: the test proves nothing")
	}
	gotAuth.Store("")
	_, err = remote.Get(ref, remote.WithAuth(creds), remote.WithTransport(credentialGuard{inner: http.DefaultTransport, registry: ref.Context().RegistryStr(), insecure: true}))
	if a := gotAuth.Load().(string); a != "" {
		t.Errorf("credentials went to the token service on another host over plain http: %q", a)
	}
	if err == nil || !strings.Contains(err.Error(), "refusing to send credentials") {
		t.Errorf("pull through the guard: %v, want the refusal", err)
	}
}
