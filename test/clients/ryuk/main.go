// Command ryuk is a stand-in for testcontainers' Ryuk (the resource reaper)
// for berth's offline client tier: the real image cannot be fetched here,
// and its module is not on the Go module proxy. It speaks Ryuk's protocol:
// it listens on RYUK_PORT (8080), logs "Started" once it does, answers
// "ACK\n" to each line of label filters a client sends
// ("label=k=v&label=k2=v2"), and when every client has gone and none came
// back within RYUK_RECONNECTION_TIMEOUT (10s) it removes the containers,
// networks, volumes and images that match any filter set, through the
// Engine API on /var/run/docker.sock, and exits. With no client at all
// within RYUK_CONNECTION_TIMEOUT (60s) it exits too.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

func main() {
	log.SetFlags(log.LstdFlags)
	port := envOr("RYUK_PORT", "8080")
	connTimeout := durationEnv("RYUK_CONNECTION_TIMEOUT", 60*time.Second)
	reconnTimeout := durationEnv("RYUK_RECONNECTION_TIMEOUT", 10*time.Second)
	l, err := net.Listen("tcp", ":"+port)
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	log.Printf("Started on port %s", port)
	r := &reaper{idle: make(chan struct{}, 1), seen: map[string]bool{}}
	go r.accept(l)

	// Wait for a first client, then for all clients to be gone long enough.
	select {
	case <-r.firstClient():
	case <-time.After(connTimeout):
		log.Printf("no client within %s: exiting", connTimeout)
		return
	}
	for {
		<-r.idle
		select {
		case <-time.After(reconnTimeout):
			if r.active() == 0 {
				r.prune()
				return
			}
		case <-r.reconnected():
		}
	}
}

type reaper struct {
	mu      sync.Mutex
	clients int
	first   chan struct{}
	back    chan struct{}
	idle    chan struct{}
	filters []url.Values
	seen    map[string]bool
}

func (r *reaper) firstClient() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.first == nil {
		r.first = make(chan struct{})
	}
	return r.first
}

func (r *reaper) reconnected() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.back = make(chan struct{})
	return r.back
}

func (r *reaper) active() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.clients
}

func (r *reaper) accept(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			log.Fatalf("accept: %v", err)
		}
		r.mu.Lock()
		r.clients++
		if r.first == nil {
			r.first = make(chan struct{})
		}
		select {
		case <-r.first:
		default:
			close(r.first)
		}
		if r.back != nil {
			close(r.back)
			r.back = nil
		}
		r.mu.Unlock()
		go r.serve(c)
	}
}

func (r *reaper) serve(c net.Conn) {
	defer func() {
		c.Close()
		r.mu.Lock()
		r.clients--
		n := r.clients
		r.mu.Unlock()
		if n == 0 {
			select {
			case r.idle <- struct{}{}:
			default:
			}
		}
	}()
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		q, err := url.ParseQuery(line)
		if err != nil {
			log.Printf("bad filter %q: %v", line, err)
			continue
		}
		r.mu.Lock()
		if !r.seen[line] {
			r.seen[line] = true
			r.filters = append(r.filters, q)
		}
		r.mu.Unlock()
		log.Printf("filter %s", line)
		if _, err := c.Write([]byte("ACK\n")); err != nil {
			return
		}
	}
}

// prune removes what every filter set matches.
func (r *reaper) prune() {
	r.mu.Lock()
	filters := append([]url.Values(nil), r.filters...)
	r.mu.Unlock()
	api := newAPI("/var/run/docker.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var removed int
	for _, f := range filters {
		fj, _ := json.Marshal(map[string][]string(f))
		args := "filters=" + url.QueryEscape(string(fj))
		var ctrs []struct{ Id string }
		api.get(ctx, "/containers/json?all=1&"+args, &ctrs)
		for _, c := range ctrs {
			if api.do(ctx, "DELETE", "/containers/"+c.Id+"?force=1&v=1") {
				removed++
			}
		}
		var nets []struct{ Id string }
		api.get(ctx, "/networks?"+args, &nets)
		for _, n := range nets {
			if api.do(ctx, "DELETE", "/networks/"+n.Id) {
				removed++
			}
		}
		var vols struct{ Volumes []struct{ Name string } }
		api.get(ctx, "/volumes?"+args, &vols)
		for _, v := range vols.Volumes {
			if api.do(ctx, "DELETE", "/volumes/"+v.Name+"?force=1") {
				removed++
			}
		}
		var imgs []struct{ Id string }
		api.get(ctx, "/images/json?"+args, &imgs)
		for _, im := range imgs {
			if api.do(ctx, "DELETE", "/images/"+im.Id+"?force=1") {
				removed++
			}
		}
	}
	log.Printf("Removed %d resources", removed)
}

type api struct{ hc *http.Client }

func newAPI(sock string) *api {
	return &api{hc: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}}
}

func (a *api) get(ctx context.Context, path string, v any) {
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://docker"+path, nil)
	resp, err := a.hc.Do(req)
	if err != nil {
		log.Printf("GET %s: %v", path, err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		log.Printf("GET %s: %s %s", path, resp.Status, b)
		return
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		log.Printf("GET %s: %v", path, err)
	}
}

func (a *api) do(ctx context.Context, method, path string) bool {
	req, _ := http.NewRequestWithContext(ctx, method, "http://docker"+path, nil)
	resp, err := a.hc.Do(req)
	if err != nil {
		log.Printf("%s %s: %v", method, path, err)
		return false
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusNotFound {
		log.Printf("%s %s: %s", method, path, resp.Status)
		return false
	}
	return resp.StatusCode < 300
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func durationEnv(k string, def time.Duration) time.Duration {
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ryuk: %s=%q: %v; using %s\n", k, v, err, def)
		return def
	}
	return d
}
