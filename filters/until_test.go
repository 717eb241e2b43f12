package filters

import (
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
)

func TestParseTime(t *testing.T) {
	zone := time.FixedZone("X", 2*3600)
	now := time.Date(2024, 5, 1, 12, 0, 0, 700_000_000, zone)
	utc := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		// Durations count back from now, cut to whole seconds.
		{"10m", time.Unix(now.Unix()-600, 0)},
		{"1h30m", time.Unix(now.Unix()-5400, 0)},
		{"0s", time.Unix(now.Unix(), 0)},
		{"-5s", time.Unix(now.Unix()+5, 0)},
		{"1.5h", time.Unix(now.Unix()-5400, 0)},
		// Unix seconds, with an optional fraction of nanoseconds.
		{"0", time.Unix(0, 0)},
		{"1700000000", time.Unix(1700000000, 0)},
		{"1700000000.5", time.Unix(1700000000, 500_000_000)},
		{"1700000000.000000001", time.Unix(1700000000, 1)},
		{"1700000000.1234567891", time.Unix(1700000000, 123_456_789)},
		// RFC 3339 with a zone.
		{"2024-04-30T10:20:30Z", utc("2024-04-30T10:20:30Z")},
		{"2024-04-30T10:20:30.25Z", utc("2024-04-30T10:20:30.25Z")},
		{"2024-04-30T10:20:30+01:00", utc("2024-04-30T09:20:30Z")},
		{"2024-04-30T10:20:30-01:00", utc("2024-04-30T11:20:30Z")},
		{"2024-04-30T10:20:30.123456789-01:00", utc("2024-04-30T11:20:30.123456789Z")},
		{"2024-04-30T10:20Z", utc("2024-04-30T10:20:00Z")},
		{"2024-04-30T10:20+01:00", utc("2024-04-30T09:20:00Z")},
		{"2024-04-30T10Z", utc("2024-04-30T10:00:00Z")},
		{"2024-04-30Z", utc("2024-04-30T00:00:00Z")},
		{"2024-04-30+02:00", utc("2024-04-29T22:00:00Z")},
		// Without a zone: now's zone (UTC+2 here).
		{"2024-04-30T10:20:30", utc("2024-04-30T08:20:30Z")},
		{"2024-04-30T10:20:30.5", utc("2024-04-30T08:20:30.5Z")},
		{"2024-04-30T10:20", utc("2024-04-30T08:20:00Z")},
		{"2024-04-30T10", utc("2024-04-30T08:00:00Z")},
		{"2024-04-30", utc("2024-04-29T22:00:00Z")},
	} {
		got, err := ParseTime(tc.in, now)
		if err != nil {
			t.Errorf("ParseTime(%q): %v", tc.in, err)
			continue
		}
		if !got.Equal(tc.want) {
			t.Errorf("ParseTime(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseTimeRefuses(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct{ in, msg string }{
		// Docker's words for a value that is no time at all.
		{"", `failed to parse value as time or duration: ""`},
		{"yesterday", `failed to parse value as time or duration: "yesterday"`},
		{"10x", `failed to parse value as time or duration: "10x"`},
		{"1700000000.", `failed to parse value as time or duration: "1700000000."`},
		{"1700000000.5x", `failed to parse value as time or duration: "1700000000.5x"`},
		{"1.2.3", `failed to parse value as time or duration: "1.2.3"`},
		{"99999999999999999999", `failed to parse value as time or duration: "99999999999999999999"`},
		// A value with "-" was meant as a date: the date parser's words.
		{"2024-13-01", `parsing time "2024-13-01": month out of range`},
		{"2024-04-3x", `parsing time "2024-04-3x" as "2006-01-02": cannot parse "3x" as "02"`},
		{"-1", `parsing time "-1" as "2006-01-02": cannot parse "-1" as "2006"`},
		{"2024-04-30T10:20:30z", `parsing time "2024-04-30T10:20:30z" as "2006-01-02T15:04:05Z07:00": cannot parse "z" as "Z07:00"`},
		{"2024-04-30T25:00:00Z", `parsing time "2024-04-30T25:00:00Z": hour out of range`},
	} {
		_, err := ParseTime(tc.in, now)
		if err == nil {
			t.Errorf("ParseTime(%q) accepted", tc.in)
			continue
		}
		if err.Error() != tc.msg {
			t.Errorf("ParseTime(%q) error %q, want %q", tc.in, err, tc.msg)
		}
		if !cerrdefs.IsInvalidArgument(err) {
			t.Errorf("ParseTime(%q) error %v is not InvalidArgument", tc.in, err)
		}
	}
}

func TestArgsUntil(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	if got, err := (Args{}).Until(now); err != nil || !got.IsZero() {
		t.Errorf("no until: %v %v, want zero", got, err)
	}
	if got, err := (Args{"until": {"1h"}}).Until(now); err != nil || !got.Equal(now.Add(-time.Hour)) {
		t.Errorf("until=1h: %v %v", got, err)
	}
	_, err := (Args{"until": {"1h", "2h"}}).Until(now)
	if err == nil || err.Error() != "more than one until filter specified" || !cerrdefs.IsInvalidArgument(err) {
		t.Errorf("two untils: %v", err)
	}
	if _, err := (Args{"until": {"soon"}}).Until(now); !cerrdefs.IsInvalidArgument(err) {
		t.Errorf("bad until: %v", err)
	}
}
