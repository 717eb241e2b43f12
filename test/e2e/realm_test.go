package e2e

import (
	"encoding/base64"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestPullCredentialsNotSentToForeignRealm (issue 12, item 10): a
// registry reached over plain http whose challenge names a token service
// on another host, also over plain http, never gets the user's
// credentials sent there: the pull fails saying why. dockerd sends them.
func TestPullCredentialsNotSentToForeignRealm(t *testing.T) {
	d := requireEnv(t)
	onlyBerth(t, "dockerd follows any realm the registry names, credentials included (README: a deliberate difference)")
	var mu sync.Mutex
	var sent []string
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tokens := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sent = append(sent, r.Method+" "+r.URL.Path+" auth="+r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"token":"t"}`))
	})}
	go tokens.Serve(tl)
	t.Cleanup(func() { tokens.Close() })
	// Another host as far as names go: "localhost", not the registry's 127.0.0.1.
	realm := "http://localhost:" + strings.Split(tl.Addr().String(), ":")[1] + "/token"
	rl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm+`",service="e2e"`)
		w.WriteHeader(http.StatusUnauthorized)
	})}
	go reg.Serve(rl)
	t.Cleanup(func() { reg.Close() })

	auth := base64.URLEncoding.EncodeToString([]byte(`{"username":"printfchamp","password":"secret123","serveraddress":"` + rl.Addr().String() + `"}`))
	r, msgs := pullAPI(t, d.api(), rl.Addr().String()+"/team/app", "1", http.Header{"X-Registry-Auth": {auth}})
	out := string(r.Body)
	if e := streamError(msgs); e != "" {
		out = e
	}
	mu.Lock()
	defer mu.Unlock()
	for _, s := range sent {
		if !strings.HasSuffix(s, "auth=") {
			t.Errorf("the token service on another host got credentials over plain http: %s", s)
		}
	}
	if !strings.Contains(out, "refusing to send credentials") {
		t.Errorf("pull: %d %s; want it refused, saying why", r.Status, out)
	}
}
