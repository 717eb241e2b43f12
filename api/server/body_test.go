package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/api/server/httputils"
	"github.com/berth/berth/api/server/router"
)

// serveOn runs s on a real loopback listener (deadlines need a real
// connection) and returns its address.
func serveOn(t *testing.T, s *Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.Serve(l); close(done) }()
	t.Cleanup(func() { s.Close(); <-done })
	return l.Addr().String()
}

// TestBodyPace: a body that trickles is cut with 408; one that keeps the
// pace may take longer than the timeout; a handler that works on after
// reading its body is not cut by the pace's deadline (the server then
// reads the connection itself); an oversized JSON body is 413.
func TestBodyPace(t *testing.T) {
	var readErr error
	s := New(Config{Version: "test", BodyTimeout: 300 * time.Millisecond, BodyPace: 1024}, fakeRouter{
		{Method: "POST", Path: "/sink", Handler: func(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
			n, err := io.Copy(io.Discard, r.Body)
			if err != nil {
				readErr = err
				return err
			}
			fmt.Fprintf(w, "%d", n)
			return nil
		}},
		{Method: "POST", Path: "/json-then-work", Handler: func(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
			var v map[string]any
			if err := httputils.ReadJSONBody(r, &v); err != nil {
				return err
			}
			io.Copy(io.Discard, r.Body)
			select {
			case <-time.After(time.Second): // three timeouts long
			case <-ctx.Done():
				return ctx.Err()
			}
			fmt.Fprint(w, "done")
			return nil
		}},
	})
	addr := serveOn(t, s)

	send := func(path string, chunks []string, gap time.Duration) (string, time.Duration) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		total := 0
		for _, ch := range chunks {
			total += len(ch)
		}
		start := time.Now()
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, total)
		go func() {
			for _, ch := range chunks {
				if _, err := io.WriteString(c, ch); err != nil {
					return
				}
				time.Sleep(gap)
			}
		}()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return "error: " + err.Error(), time.Since(start)
		}
		b, _ := io.ReadAll(resp.Body)
		return fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b))), time.Since(start)
	}

	slow := strings.Split(strings.Repeat("x", 40), "")
	got, took := send("/sink", slow, 50*time.Millisecond) // 20 bytes a second
	if !strings.HasPrefix(got, "408 ") || took > 1500*time.Millisecond {
		t.Errorf("a trickling body: %q after %s, want 408 after about 300ms", got, took)
	}
	var paced []string
	for range 12 {
		paced = append(paced, strings.Repeat("y", 2048))
	}
	if got, took := send("/sink", paced, 100*time.Millisecond); got != "200 24576" {
		t.Errorf("a body at 20 KiB/s over %s: %q (handler saw %v), want all of it", took, got, readErr)
	}
	if got, _ := send("/json-then-work", []string{`{"a":1}`}, 0); got != "200 done" {
		t.Errorf("a handler working past the body's deadline: %q", got)
	}
}

// TestJSONBodyTooLarge: a JSON body over MaxJSONBody is 413.
func TestJSONBodyTooLarge(t *testing.T) {
	s := New(Config{Version: "test"}, fakeRouter{
		{Method: "POST", Path: "/json", Handler: func(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
			var v map[string]any
			return httputils.ReadJSONBody(r, &v)
		}},
	})
	addr := serveOn(t, s)
	big := `{"a":"` + strings.Repeat("z", httputils.MaxJSONBody) + `"}`
	resp, err := http.Post("http://"+addr+"/json", "application/json", strings.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 413 || !strings.Contains(string(b), "request body too large") {
		t.Errorf("an oversized JSON body: %d %.80q, want 413", resp.StatusCode, b)
	}
}

// TestEscapedSegments: a name holding "/" sent escaped ("%2F") stays one
// segment; sent as is, a greedy pattern takes it.
func TestEscapedSegments(t *testing.T) {
	var got []string
	s := New(Config{Version: "test"}, fakeRouter{
		{Method: "DELETE", Path: "/networks/{id:.*}", Handler: func(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
			got = append(got, vars["id"])
			w.WriteHeader(http.StatusNoContent)
			return nil
		}},
		{Method: "POST", Path: "/networks/{id:.*}/connect", Handler: func(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
			got = append(got, "connect "+vars["id"])
			w.WriteHeader(http.StatusOK)
			return nil
		}},
	})
	addr := serveOn(t, s)
	for _, p := range []string{"/v1.50/networks/a%2Fb", "/v1.50/networks/a/b", "/networks/plain"} {
		req, _ := http.NewRequest("DELETE", "http://"+addr+p, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := http.Post("http://"+addr+"/networks/x%2Fy/connect", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := []string{"a/b", "a/b", "plain", "connect x/y"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("ids %q, want %q", got, want)
	}
}

var _ router.Router = fakeRouter{}
