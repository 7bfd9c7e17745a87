package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// timeHelp is the accepted forms of a time flag, for help texts and errors.
const timeHelp = `RFC 3339 (2026-11-30T10:00:00Z, 2026-11-30T11:00:00+01:00) or relative to now:
'now', '+30m', '+2h', '+1h30m', '+7d', '+1d12h', '-15m' (d is 24h)`

// relativeTime is now, or a signed offset of days and a Go duration: +7d, +1d12h, -15m.
var relativeTime = regexp.MustCompile(`^([+-])(?:(\d+)d)?(.*)$`)

// parseTime reads a time flag and returns it as the API wants it: RFC 3339 in UTC,
// whole seconds. Relative forms save marketing from typing today's date in UTC.
func parseTime(s string, now time.Time) (string, error) {
	s = strings.TrimSpace(s)
	var t time.Time
	switch m := relativeTime.FindStringSubmatch(s); {
	case strings.EqualFold(s, "now"):
		t = now
	case m != nil:
		offset, err := relativeOffset(m[2], m[3])
		if err != nil {
			return "", fmt.Errorf("%q: %v", s, err)
		}
		if m[1] == "-" {
			offset = -offset
		}
		t = now.Add(offset)
	default:
		parsed, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return "", fmt.Errorf("%q is not a time: want %s", s, timeHelp)
		}
		t = parsed
	}
	return t.UTC().Truncate(time.Second).Format(time.RFC3339), nil
}

func relativeOffset(days, rest string) (time.Duration, error) {
	if days == "" && rest == "" {
		return 0, fmt.Errorf("no offset after the sign: want %s", timeHelp)
	}
	var offset time.Duration
	if days != "" {
		n, err := strconv.Atoi(days)
		if err != nil || n > 100*365 {
			return 0, fmt.Errorf("too many days")
		}
		offset = time.Duration(n) * 24 * time.Hour
	}
	if rest != "" {
		d, err := time.ParseDuration(rest)
		if err != nil || d < 0 {
			return 0, fmt.Errorf("bad offset %q: want %s", rest, timeHelp)
		}
		offset += d
	}
	return offset, nil
}
