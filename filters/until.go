package filters

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
)

// Until returns the "until" filter of a prune request as a time: the zero
// time when it is absent, an InvalidArgument error when it is given more
// than once or does not parse (see ParseTime). Durations count back from
// now. Docker's prune handlers (containers, images, networks) all read it so.
func (a Args) Until(now time.Time) (time.Time, error) {
	vs := a["until"]
	switch len(vs) {
	case 0:
		return time.Time{}, nil
	case 1:
		return ParseTime(vs[0], now)
	}
	return time.Time{}, cerrdefs.ErrInvalidArgument.WithMessage("more than one until filter specified")
}

// Layouts of the dates and times ParseTime reads besides RFC 3339. Values
// without a zone are in now's zone.
const (
	layoutLocal          = "2006-01-02T15:04:05"
	layoutNanoLocal      = "2006-01-02T15:04:05.999999999"
	layoutDateWithZone   = "2006-01-02Z07:00"
	layoutDateLocal      = "2006-01-02"
	layoutHourLocal      = "2006-01-02T15"
	layoutMinuteLocal    = "2006-01-02T15:04"
	layoutHourWithZone   = "2006-01-02T15Z07:00"
	layoutMinuteWithZone = "2006-01-02T15:04Z07:00"
)

// ParseTime reads a time value as Docker does for the "until" filter of a
// prune and for the since/until parameters of events and logs: what its
// timetypes.GetTimestamp followed by ParseTimestamps accept together (for
// events and logs the docker client runs GetTimestamp and the daemon
// ParseTimestamps; berth's API takes either form). It is berth's one parser of
// such times:
//
//   - a Go duration ("10m", "1h30m", "-5s"), which counts back from now and
//     is cut to whole seconds; "0" is not a duration but the Unix epoch;
//   - an RFC 3339 date and time, with or without zone ("Z", "+02:00") and
//     fraction, or shortened to the hour ("2024-05-01T10"), the minute
//     ("2024-05-01T10:30") or the date ("2024-05-01", "2024-05-01Z");
//     without a zone it is in now's zone;
//   - Unix seconds, optionally with a fraction of up to nine digits of
//     nanoseconds ("1700000000", "1700000000.5").
//
// A value with a "-" that is not a duration and not such a date is refused
// with the date parser's own message, as Docker does; anything else with
// `failed to parse value as time or duration: "<value>"`. Every error is
// InvalidArgument.
func ParseTime(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); v != "0" && err == nil {
		return time.Unix(now.Add(-d).Unix(), 0), nil
	}

	// A zone is written with Z, + or a third "-" (after the two of the
	// date); without one the value is in now's zone.
	inLocation := !strings.ContainsAny(v, "zZ+") && strings.Count(v, "-") != 3
	var layout string
	switch {
	case strings.Contains(v, "."):
		layout = time.RFC3339Nano
		if inLocation {
			layout = layoutNanoLocal
		}
	case strings.Contains(v, "T"):
		colons := strings.Count(v, ":")
		if !inLocation && !strings.ContainsAny(v, "zZ") && colons > 0 {
			colons-- // the zone offset's own colon
		}
		switch {
		case colons == 0 && inLocation:
			layout = layoutHourLocal
		case colons == 0:
			layout = layoutHourWithZone
		case colons == 1 && inLocation:
			layout = layoutMinuteLocal
		case colons == 1:
			layout = layoutMinuteWithZone
		case inLocation:
			layout = layoutLocal
		default:
			layout = time.RFC3339
		}
	case inLocation:
		layout = layoutDateLocal
	default:
		layout = layoutDateWithZone
	}
	var t time.Time
	var err error
	if inLocation {
		t, err = time.ParseInLocation(layout, v, time.FixedZone(now.Zone()))
	} else {
		t, err = time.Parse(layout, v)
	}
	if err == nil {
		return t, nil
	}
	if strings.Contains(v, "-") {
		// Meant as a date: the date parser says what is wrong with it.
		return time.Time{}, cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	if t, ok := parseUnix(v); ok {
		return t, nil
	}
	return time.Time{}, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("failed to parse value as time or duration: %q", v))
}

// parseUnix reads "seconds" or "seconds.fraction", the fraction being
// nanoseconds written with up to nine digits (more are cut off).
func parseUnix(v string) (time.Time, bool) {
	s, frac, hasFrac := strings.Cut(v, ".")
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	if !hasFrac {
		return time.Unix(sec, 0), true
	}
	if frac == "" {
		return time.Time{}, false
	}
	for _, c := range frac {
		if c < '0' || c > '9' {
			return time.Time{}, false
		}
	}
	frac = (frac + "000000000")[:9]
	nsec, _ := strconv.ParseInt(frac, 10, 64)
	return time.Unix(sec, nsec), true
}
