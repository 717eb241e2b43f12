package events_test

import (
	"bufio"
	"context"
	"encoding/json"
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

func TestParseTimestamp(t *testing.T) {
	for in, want := range map[string]time.Time{
		"1700000000":           time.Unix(1700000000, 0),
		"1700000000.5":         time.Unix(1700000000, 5e8),
		"1700000000.000000001": time.Unix(1700000000, 1),
		"2023-11-14T22:13:20Z": time.Unix(1700000000, 0),
	} {
		got, err := eventsrouter.ParseTimestamp(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
	if _, err := eventsrouter.ParseTimestamp("yesterday"); err == nil {
		t.Error("bad time accepted")
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
