package jetstream

// Concurrency: pure functions; any goroutine, no locks.

import (
	"strconv"
	"strings"
	"time"
)

// Schedule patterns of Nats-Schedule, as nats-server 2.12 reads them:
//
//   - "@at <RFC 3339 time>": once;
//   - "@every <Go duration>" (at least 1 s): repeating;
//   - a cron pattern of six fields (second minute hour day-of-month month
//     day-of-week), each "*", "?", a number, a name (JAN..DEC, SUN..SAT), a
//     range "a-b", a step "/n" or a comma list of those; or one of @yearly,
//     @annually, @monthly, @weekly, @daily, @midnight, @hourly.
//
// A time zone (Nats-Schedule-Time-Zone) applies to cron patterns only.
// A repeating pattern whose next firing is already past (after a restart)
// skips what it missed and counts on from now.

// nextFire returns when pattern fires after ts (unix nanoseconds), whether
// it repeats, and whether it is valid; "" is valid and never fires.
func nextFire(pattern string, loc *time.Location, ts int64, now time.Time) (time.Time, bool, bool) {
	if pattern == "" {
		return time.Time{}, false, true
	}
	if at, ok := strings.CutPrefix(pattern, "@at "); ok {
		t, err := time.Parse(time.RFC3339, at)
		return t, false, loc == nil && err == nil
	}
	if every, ok := strings.CutPrefix(pattern, "@every "); ok {
		d, err := time.ParseDuration(every)
		if loc != nil || err != nil || d < time.Second {
			return time.Time{}, false, false
		}
		next := time.Unix(0, ts).UTC().Round(time.Second).Add(d)
		if next.Before(now) {
			next = now.UTC().Round(time.Second).Add(d)
		}
		return next, true, true
	}
	if p, ok := cronShorthands[pattern]; ok {
		pattern = p
	}
	spec, ok := parseCronSpec(pattern)
	if !ok {
		return time.Time{}, false, false
	}
	if loc == nil {
		loc = time.UTC
	}
	from := time.Unix(0, ts).In(loc)
	if from.Before(now) {
		from = now.Round(time.Second).In(loc)
	}
	next, ok := spec.after(from)
	return next, true, ok
}

var cronShorthands = map[string]string{
	"@yearly": "0 0 0 1 1 *", "@annually": "0 0 0 1 1 *", "@monthly": "0 0 0 1 * *",
	"@weekly": "0 0 0 * * 0", "@daily": "0 0 0 * * *", "@midnight": "0 0 0 * * *", "@hourly": "0 0 * * * *",
}

// cronSpec holds, per field, the set of values that match (bit n: n).
type cronSpec struct {
	sec, min, hour, dom, month, dow uint64
	anyDom, anyDow                  bool // "*" or "?": the other day field decides alone
}

type cronField struct {
	lo, hi int
	names  []string // names of lo, lo+1, ... (months, weekdays)
}

var cronFields = [6]cronField{
	{0, 59, nil}, {0, 59, nil}, {0, 23, nil}, {1, 31, nil},
	{1, 12, []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}},
	{0, 6, []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}},
}

func parseCronSpec(pattern string) (cronSpec, bool) {
	f := strings.Fields(pattern)
	if len(f) != 6 {
		return cronSpec{}, false
	}
	var bits [6]uint64
	for i, s := range f {
		b, ok := parseCronField(s, cronFields[i])
		if !ok {
			return cronSpec{}, false
		}
		bits[i] = b
	}
	return cronSpec{sec: bits[0], min: bits[1], hour: bits[2], dom: bits[3], month: bits[4], dow: bits[5],
		anyDom: f[3] == "*" || f[3] == "?", anyDow: f[5] == "*" || f[5] == "?"}, true
}

// parseCronField reads one field: a comma list of "*", "?", "n", "a-b",
// each optionally "/step".
func parseCronField(s string, fd cronField) (uint64, bool) {
	var bits uint64
	for _, part := range strings.Split(s, ",") {
		rng, stepStr, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepStr)
			if err != nil || n < 1 || n > fd.hi-fd.lo+1 {
				return 0, false
			}
			step = n
		}
		lo, hi := fd.lo, fd.hi
		switch {
		case rng == "*" || rng == "?":
		default:
			a, b, isRange := strings.Cut(rng, "-")
			var ok bool
			if lo, ok = cronValue(a, fd); !ok {
				return 0, false
			}
			hi = lo
			if isRange {
				if hi, ok = cronValue(b, fd); !ok || hi < lo {
					return 0, false
				}
			} else if hasStep {
				hi = fd.hi // "n/step": from n to the end
			}
		}
		for v := lo; v <= hi; v += step {
			bits |= 1 << uint(v)
		}
	}
	return bits, bits != 0
}

func cronValue(s string, fd cronField) (int, bool) {
	for i, name := range fd.names {
		if strings.EqualFold(s, name) {
			return fd.lo + i, true
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < fd.lo || n > fd.hi {
		return 0, false
	}
	return n, true
}

func has(bits uint64, v int) bool { return bits&(1<<uint(v)) != 0 }

// dayMatches applies cron's rule for the two day fields: when both are
// restricted, either matching is enough.
func (c *cronSpec) dayMatches(t time.Time) bool {
	dom, dow := has(c.dom, t.Day()), has(c.dow, int(t.Weekday()))
	if c.anyDom || c.anyDow {
		return dom && dow
	}
	return dom || dow
}

// after returns the first matching second after from, searching five
// years ahead (a pattern such as "0 0 0 30 2 *" never matches).
func (c *cronSpec) after(from time.Time) (time.Time, bool) {
	loc := from.Location()
	t := from.Truncate(time.Second).Add(time.Second)
	limit := t.AddDate(5, 0, 0)
	for t.Before(limit) {
		y, mo, d := t.Date()
		h, mi, _ := t.Clock()
		var next time.Time
		switch {
		case !has(c.month, int(mo)):
			next = time.Date(y, mo+1, 1, 0, 0, 0, 0, loc)
		case !c.dayMatches(t):
			next = time.Date(y, mo, d+1, 0, 0, 0, 0, loc)
		case !has(c.hour, h):
			next = time.Date(y, mo, d, h+1, 0, 0, 0, loc)
		case !has(c.min, mi):
			// By the clock, not the calendar: a wall time that occurs twice
			// (DST ends) would be read as its second occurrence.
			next = t.Truncate(time.Minute).Add(time.Minute)
		case !has(c.sec, t.Second()):
			next = t.Add(time.Second)
		default:
			return t, true
		}
		if !next.After(t) { // a wall clock that repeats (DST ends): go on by the second
			next = t.Add(time.Second)
		}
		t = next
	}
	return time.Time{}, false
}
