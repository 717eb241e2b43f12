package container_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/api/server"
	containerrouter "github.com/berth/berth/api/server/router/container"
	ctr "github.com/berth/berth/container"
)

// logsFake records the options of a logs request.
type logsFake struct {
	containerrouter.Backend
	got ctr.LogsOptions
}

func (f *logsFake) Logs(ctx context.Context, id string, o ctr.LogsOptions, started func(tty bool), w io.Writer, flush func()) error {
	f.got = o
	started(false)
	return nil
}

// TestLogsTimes: since and until take what filters.ParseTime reads; "" and
// "0" are no bound; anything else is refused with Docker's words and a 400.
func TestLogsTimes(t *testing.T) {
	get := func(q string) (*logsFake, *httptest.ResponseRecorder) {
		t.Helper()
		f := &logsFake{}
		srv := server.New(server.Config{Version: "test"}, containerrouter.New(f))
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1.50/containers/c1/logs?stdout=1&"+q, nil))
		return f, rec
	}
	rfc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		q            string
		since, until time.Time
	}{
		{"", time.Time{}, time.Time{}},
		{"since=0&until=0", time.Time{}, time.Time{}},
		{"since=1700000000.5&until=1700000001", time.Unix(1700000000, 5e8), time.Unix(1700000001, 0)},
		{"since=1700000000.000000001", time.Unix(1700000000, 1), time.Time{}},
		{"since=2023-11-14T22:13:20Z&until=2023-11-14T22:13:20.25%2B01:00", rfc("2023-11-14T22:13:20Z"), rfc("2023-11-14T21:13:20.25Z")},
	} {
		f, rec := get(tc.q)
		if rec.Code != 200 || !f.got.Since.Equal(tc.since) || !f.got.Until.Equal(tc.until) {
			t.Errorf("%s: %d since %v until %v, want %v %v", tc.q, rec.Code, f.got.Since, f.got.Until, tc.since, tc.until)
		}
	}

	before := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	f, rec := get("since=10m")
	after := time.Now().Add(-10 * time.Minute)
	if rec.Code != 200 || f.got.Since.Before(before) || f.got.Since.After(after) {
		t.Errorf("since=10m: %d %v, want between %v and %v", rec.Code, f.got.Since, before, after)
	}

	for q, msg := range map[string]string{
		"since=tomorrow":    `failed to parse value as time or duration: \"tomorrow\"`,
		"until=1700000000.": `failed to parse value as time or duration: \"1700000000.\"`,
		"since=2024-13-01":  `parsing time \"2024-13-01\": month out of range`,
	} {
		_, rec := get(q)
		if rec.Code != 400 || !strings.Contains(rec.Body.String(), msg) {
			t.Errorf("%s: %d %s, want 400 with %s", q, rec.Code, rec.Body, msg)
		}
	}
}
