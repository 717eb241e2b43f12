package events_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/api/server"
	eventsrouter "github.com/berth/berth/api/server/router/events"
	"github.com/berth/berth/events"
)

// TestEventTimes: since and until take what filters.ParseTime reads (Unix
// seconds as the docker client sends them, RFC 3339, durations back from
// now) and refuse anything else with Docker's words and a 400.
func TestEventTimes(t *testing.T) {
	bus := events.New(0)
	srv := httptest.NewServer(server.New(server.Config{Version: "test"}, eventsrouter.New(bus)))
	defer srv.Close()
	bus.Publish("container", "create", "c1", nil)

	// A past until ends the stream by itself.
	for _, q := range []string{
		"since=1700000000&until=1700000000.5",
		"since=1700000000.000000001&until=2023-11-14T22:13:21Z",
		"since=2023-11-14T22:13:20Z&until=2023-11-14T22:13:20.5Z",
		"since=2h&until=1h",
		"until=0",
	} {
		resp, err := http.Get(srv.URL + "/v1.50/events?" + q)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(body) != 0 {
			t.Errorf("%s: %d %q, want 200 and no events", q, resp.StatusCode, body)
		}
	}
	// The live event is within since=10m&until=<in a second>.
	until := strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10)
	resp, err := http.Get(srv.URL + "/v1.50/events?since=10m&until=" + until)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"id":"c1"`) {
		t.Errorf("since=10m: %q, want the create event", body)
	}

	for q, msg := range map[string]string{
		"since=tomorrow":     `failed to parse value as time or duration: \"tomorrow\"`,
		"until=1700000000.":  `failed to parse value as time or duration: \"1700000000.\"`,
		"since=2024-13-01":   `parsing time \"2024-13-01\": month out of range`,
		"since=20&until=10":  "`since` time (20) cannot be after `until` time (10)",
		"since=10m&until=1h": "`since` time (10m) cannot be after `until` time (1h)",
	} {
		resp, err := http.Get(srv.URL + "/v1.50/events?" + q)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(body), msg) {
			t.Errorf("%s: %d %s, want 400 with %s", q, resp.StatusCode, body, msg)
		}
	}
}

func TestEventsRoute(t *testing.T) {
	bus := events.New(0)
	srv := httptest.NewServer(server.New(server.Config{Version: "test"}, eventsrouter.New(bus)))
	defer srv.Close()

	bus.Publish("container", "create", "c1", map[string]string{"image": "busybox", "name": "one"})
	bus.Publish("image", "pull", "busybox:latest", map[string]string{"name": "busybox:latest"})
	since := strconv.FormatInt(time.Now().Add(-time.Minute).Unix(), 10)

	// Replay with since and a past until: the stream ends by itself.
	until := strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10)
	resp, err := http.Get(srv.URL + "/v1.50/events?since=" + since + "&until=" + until)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []map[string]any
	dec := json.NewDecoder(resp.Body)
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			break
		}
		msgs = append(msgs, m)
	}
	resp.Body.Close()
	if len(msgs) != 2 || msgs[0]["Type"] != "container" || msgs[0]["status"] != "create" || msgs[0]["id"] != "c1" || msgs[0]["from"] != "busybox" || msgs[0]["scope"] != "local" {
		t.Fatalf("replay: %v", msgs)
	}
	if msgs[0]["Actor"].(map[string]any)["Attributes"].(map[string]any)["name"] != "one" || msgs[0]["timeNano"] == nil {
		t.Fatalf("actor: %v", msgs[0])
	}

	// Live, filtered by type: only matching events arrive.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := url.QueryEscape(`{"type":{"container":true},"event":{"start":true}}`)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events?filters="+f, nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for bus.Subscribers() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	bus.Publish("image", "start", "x", nil)
	bus.Publish("container", "stop", "c1", nil)
	bus.Publish("container", "start", "c2", map[string]string{"image": "alpine"})
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(line, `"id":"c2"`) || !strings.Contains(line, `"Action":"start"`) {
		t.Fatalf("live: %s", line)
	}
	cancel()
	resp.Body.Close()

	// Bad filters and times.
	for _, q := range []string{"filters=" + url.QueryEscape(`{"bogus":{"x":true}}`), "since=tomorrow", "since=20&until=10"} {
		resp, err := http.Get(srv.URL + "/events?" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("%s: %d", q, resp.StatusCode)
		}
	}
}
