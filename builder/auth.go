package builder

import (
	"context"
	"net"
	"net/url"
	"strings"
	"sync"

	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth"
	"github.com/moby/moby/api/types/registry"
	"google.golang.org/grpc"
)

// registryAuths answers a build's credential requests from the
// credentials a classic POST /build sent (X-Registry-Config), keyed as
// the docker CLI keys them ("https://index.docker.io/v1/", "host:port",
// "https://host:port"). Only Credentials is served: BuildKit then fetches
// registry tokens itself with them.
type registryAuths struct {
	auth.UnimplementedAuthServer
	auths map[string]registry.AuthConfig
}

func (a *registryAuths) Register(s *grpc.Server) { auth.RegisterAuthServer(s, a) }

func (a *registryAuths) Credentials(_ context.Context, req *auth.CredentialsRequest) (*auth.CredentialsResponse, error) {
	ac, ok := lookupAuth(a.auths, req.GetHost())
	if !ok {
		return &auth.CredentialsResponse{}, nil
	}
	if ac.IdentityToken != "" {
		return &auth.CredentialsResponse{Secret: ac.IdentityToken}, nil
	}
	return &auth.CredentialsResponse{Username: ac.Username, Secret: ac.Password}, nil
}

// lookupAuth finds host's credentials among auths, whatever spelling of
// the registry their key uses (a URL, host[:port], Docker Hub's names).
func lookupAuth(auths map[string]registry.AuthConfig, host string) (registry.AuthConfig, bool) {
	want := authHost(host)
	for k, ac := range auths {
		if authHost(k) == want {
			return ac, true
		}
	}
	return registry.AuthConfig{}, false
}

// authHost reduces a registry key to host[:port], Docker Hub's names to
// "docker.io".
func authHost(k string) string {
	h := k
	if strings.Contains(k, "://") {
		if u, err := url.Parse(k); err == nil {
			h = u.Host
		}
	} else if i := strings.IndexByte(h, '/'); i >= 0 {
		h = h[:i]
	}
	switch h {
	case "docker.io", "index.docker.io", "registry-1.docker.io":
		return "docker.io"
	}
	return h
}

// credentialSession runs a BuildKit session inside berthd that serves
// auths to a build with no client session of its own (a classic POST
// /build with X-Registry-Config). stop ends it and waits for its
// goroutines.
func (b *Builder) credentialSession(ctx context.Context, auths map[string]registry.AuthConfig) (id string, stop func(), err error) {
	s, err := session.NewSession(ctx, "")
	if err != nil {
		return "", nil, err
	}
	s.Allow(&registryAuths{auths: auths})
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = s.Run(ctx, func(ctx context.Context, _ string, meta map[string][]string) (net.Conn, error) {
			client, server := net.Pipe()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer server.Close()
				_ = b.sessions.HandleConn(ctx, server, meta)
			}()
			return client, nil
		})
	}()
	return s.ID(), func() {
		_ = s.Close()
		cancel()
		wg.Wait()
	}, nil
}
