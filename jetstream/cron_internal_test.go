package jetstream

import (
	"testing"
	"time"
)

// TestCronNext checks next firings against hand-computed times, across a
// daylight saving change, and that a pattern that never matches ends.
func TestCronNext(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skip("no time zone data:", err)
	}
	base := time.Date(2026, 3, 28, 23, 59, 59, 0, time.UTC) // a Saturday
	for _, tc := range []struct {
		pattern string
		loc     *time.Location
		from    time.Time
		want    string // RFC 3339 in UTC; "" invalid
	}{
		{"* * * * * *", nil, base, "2026-03-29T00:00:00Z"},
		{"0 30 9 * * MON", nil, base, "2026-03-30T09:30:00Z"},
		{"*/20 0-30/15 9-17 ? JAN-MAR MON-FRI", nil, base, "2026-03-30T09:00:00Z"},
		{"0 0 0 1 1 *", nil, base, "2027-01-01T00:00:00Z"},
		{"@hourly", nil, base, "2026-03-29T00:00:00Z"},
		{"0 0 1 13 * 5", nil, base, "2026-04-03T01:00:00Z"},                                               // day 13 or a Friday
		{"0 30 2 * * *", paris, base, "2026-03-30T00:30:00Z"},                                             // 02:30 does not exist on the 29th in Paris
		{"0 30 2 * * *", paris, time.Date(2026, 10, 24, 23, 59, 59, 0, time.UTC), "2026-10-25T00:30:00Z"}, // the first of two 02:30s
		{"0 0 0 30 2 *", nil, base, ""},
		{"0 0 0 * * 7", nil, base, ""},
		{"60 * * * * *", nil, base, ""},
		{"*/0 * * * * *", nil, base, ""},
		{"5-1 * * * * *", nil, base, ""},
		{"", nil, base, ""},
	} {
		next, _, ok := nextFire(tc.pattern, tc.loc, tc.from.UnixNano(), tc.from)
		got := ""
		if ok && !next.IsZero() {
			got = next.UTC().Format(time.RFC3339)
		}
		if got != tc.want {
			t.Errorf("%q from %v: got %q, want %q", tc.pattern, tc.from, got, tc.want)
		}
	}
}

// TestScheduleFarFuture: a time past what int64 nanoseconds hold is
// indexed as never, not wrapped into the past (which fired it at once).
func TestScheduleFarFuture(t *testing.T) {
	for _, at := range []string{"9999-12-31T23:59:59Z", "2262-04-12T00:00:00Z"} {
		tm, err := time.Parse(time.RFC3339, at)
		if err != nil {
			t.Fatal(err)
		}
		if n := unixNanos(tm); n < time.Now().UnixNano() {
			t.Errorf("%s: %d is in the past", at, n)
		}
	}
	if n := unixNanos(time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)); n > 0 {
		t.Errorf("year 1: %d", n)
	}
}
