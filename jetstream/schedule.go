package jetstream

// Concurrency: runs on the JetStream Manager goroutine only, which owns
// streams and their stores; the time zone cache (zones) has its own mutex,
// a leaf, as Managers of several servers in one process share it.

import (
	"bytes"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/evnats/evnats/router"
)

// Message schedules, as nats-server 2.12's (API level 2). On a stream with
// allow_msg_schedules, a message with Nats-Schedule (a pattern, cron.go)
// and Nats-Schedule-Target (a subject of the stream, not its own) is a
// schedule: it is stored (with Nats-Rollup: sub, so a newer schedule on the
// subject replaces it) and, when the pattern fires, a message is stored on
// the target: the schedule's body and headers (or those of the last
// message on Nats-Schedule-Source), without the scheduling, expectation,
// id, TTL and rollup headers, with Nats-Scheduler (the schedule's subject)
// and Nats-Schedule-Next (the next firing, or "purge" for a one-off), and
// with Nats-Schedule-TTL / Nats-Schedule-Rollup as its Nats-TTL /
// Nats-Rollup. Storing a message with Nats-Schedule-Next: purge purges its
// Nats-Scheduler subject, which ends a one-off schedule (clients may send
// it too, to cancel one).
//
// The schedules are indexed per subject (schedules: seq and next firing),
// rebuilt from the stored headers when the stream opens, and fired by the
// Manager's tick. Differences: after a restart a repeating schedule
// counts from its stored time (nats-server keeps the next firing in a
// snapshot), and the index is scanned on each tick, O(schedules).

const (
	hdrSchedule         = "Nats-Schedule"
	hdrScheduleTimeZone = "Nats-Schedule-Time-Zone"
	hdrScheduleTTL      = "Nats-Schedule-TTL"
	hdrScheduleRollup   = "Nats-Schedule-Rollup"
	hdrScheduleTarget   = "Nats-Schedule-Target"
	hdrScheduleSource   = "Nats-Schedule-Source"
	hdrScheduler        = "Nats-Scheduler"
	hdrScheduleNext     = "Nats-Schedule-Next"
	scheduleNextPurge   = "purge"
)

var (
	errSchedulesDisabled  = errDef{400, 10188, "message schedules is disabled"}
	errSchedulePattern    = errDef{400, 10189, "message schedules pattern is invalid"}
	errScheduleTarget     = errDef{400, 10190, "message schedules target is invalid"}
	errScheduleTTL        = errDef{400, 10191, "message schedules invalid per-message TTL"}
	errScheduleRollup     = errDef{400, 10192, "message schedules invalid rollup"}
	errScheduleSource     = errDef{400, 10203, "message schedules source is invalid"}
	errScheduler          = errDef{400, 10212, "message schedules invalid scheduler"}
	errScheduleTimeZone   = errDef{400, 10223, "message schedules time zone is invalid"}
	errMirrorSchedules    = errDef{400, 10186, "stream mirrors can not also schedule messages"}
	errSourceWithSchedule = errDef{400, 10187, "stream source can not also schedule messages"}
)

// scheduleEntry is a subject's schedule: its message and next firing.
type scheduleEntry struct {
	seq uint64
	at  int64 // unix nanoseconds
}

// scheduleRules checks and completes a schedules config as nats-server
// does outside pedantic mode: schedules roll up, so rollups go on.
func scheduleRules(cfg *StreamConfig) *APIError {
	if !cfg.AllowMsgSchedules {
		return nil
	}
	switch {
	case cfg.Discard == "new":
		return newErr(errStreamConfig, "err", "message scheduling cannot use discard new")
	case cfg.Mirror != nil:
		return newErr(errMirrorSchedules)
	case len(cfg.Sources) > 0:
		return newErr(errSourceWithSchedule)
	}
	if !cfg.AllowRollup {
		cfg.AllowRollup, cfg.DenyPurge = true, false
	}
	return nil
}

func scheduleUpdateRules(old StreamConfig, cfg *StreamConfig) *APIError {
	if old.AllowMsgSchedules && !cfg.AllowMsgSchedules {
		return newErr(errStreamConfig, "err", "message schedules can not be disabled")
	}
	return nil
}

// hasSchedulingHeader reports whether hdr has a key starting with
// "Nats-Schedule" (any case): one scan, so that publishes without any
// skip the several lookups the schedule rules make.
func hasSchedulingHeader(hdr []byte) bool {
	const prefix = "Nats-Schedule"
	_, rest, _ := bytes.Cut(hdr, crlf)
	for len(rest) > 0 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, crlf)
		if len(line) >= len(prefix) && equalFoldASCII(line[:len(prefix)], prefix) {
			return true
		}
	}
	return false
}

// scheduleLocation reads Nats-Schedule-Time-Zone: nil without one.
func scheduleLocation(hdr []byte) (*time.Location, *APIError) {
	tz, ok := headerLookup(hdr, hdrScheduleTimeZone)
	if !ok {
		return nil, nil
	}
	if tz == "" {
		return nil, newErr(errScheduleTimeZone)
	}
	loc, err := loadLocation(tz)
	if err != nil {
		return nil, newErr(errScheduleTimeZone)
	}
	return loc, nil
}

// zones caches the time zones schedules named: time.LoadLocation reads
// the zone database on every call, and a time zone is read on each publish
// and firing of a schedule. Only zones that load are kept, at most
// maxZones (a client can not grow it without bound: there are ~600).
var zones struct {
	sync.Mutex
	m map[string]*time.Location
}

const maxZones = 1024

func loadLocation(name string) (*time.Location, error) {
	zones.Lock()
	loc, ok := zones.m[name]
	zones.Unlock()
	if ok {
		return loc, nil
	}
	loc, err := time.LoadLocation(name) // refuses "..", absolute paths
	if err != nil {
		return nil, err
	}
	zones.Lock()
	if zones.m == nil {
		zones.m = make(map[string]*time.Location)
	}
	if len(zones.m) < maxZones {
		zones.m[name] = loc
	}
	zones.Unlock()
	return loc, nil
}

// scheduleOf is when the schedule in hdr fires after ts (zero: hdr has
// no schedule) and whether it repeats.
func scheduleOf(hdr []byte, ts int64, now time.Time) (time.Time, bool, *APIError) {
	if len(hdr) == 0 {
		return time.Time{}, false, nil
	}
	loc, e := scheduleLocation(hdr)
	if e != nil {
		return time.Time{}, false, e
	}
	next, repeat, ok := nextFire(headerValue(hdr, hdrSchedule), loc, ts, now)
	if !ok {
		return time.Time{}, false, newErr(errSchedulePattern)
	}
	return next, repeat, nil
}

// checkSchedule applies nats-server's checks to the schedule headers of a
// client's publish (sourced and fired messages are not checked) and
// returns the header to store: a schedule rolls up its subject.
func (st *stream) checkSchedule(subject string, hdr []byte, now time.Time) ([]byte, *APIError) {
	if !hasSchedulingHeader(hdr) { // also covers Nats-Scheduler
		return hdr, nil
	}
	allowed := st.cfg.AllowMsgSchedules
	next, _, e := scheduleOf(hdr, now.UnixNano(), now)
	if e != nil {
		if !allowed {
			e = newErr(errSchedulesDisabled)
		}
		return hdr, e
	}
	if !next.IsZero() {
		target, source := headerValue(hdr, hdrScheduleTarget), headerValue(hdr, hdrScheduleSource)
		ttl, rollup := headerValue(hdr, hdrScheduleTTL), headerValue(hdr, hdrScheduleRollup)
		_, ttlOK := parseMsgTTL(ttl)
		switch {
		case !allowed:
			return hdr, newErr(errSchedulesDisabled)
		case ttl != "" && !ttlOK:
			return hdr, newErr(errScheduleTTL)
		case rollup != "" && rollup != "sub":
			return hdr, newErr(errScheduleRollup)
		case ttl != "" && !st.cfg.AllowMsgTTL:
			return hdr, newErr(errMsgTTLDisabled)
		case target == "" || !router.ValidLiteralSubject(target) || target == subject:
			return hdr, newErr(errScheduleTarget)
		case source != "" && (source == target || source == subject || !router.ValidLiteralSubject(source)):
			return hdr, newErr(errScheduleSource)
		case !collidesAny(target, st.cfg.Subjects):
			return hdr, newErr(errScheduleTarget)
		case source != "" && !collidesAny(source, st.cfg.Subjects):
			return hdr, newErr(errScheduleSource)
		}
		switch headerValue(hdr, hdrRollup) {
		case "":
			hdr = appendHeader(hdr, hdrRollup, "sub")
		case "sub":
		default:
			return hdr, newErr(errScheduleRollup)
		}
	}
	if v := headerValue(hdr, hdrScheduleNext); v != "" {
		// Clients may send Nats-Schedule-Next only to purge a schedule.
		scheduler := headerValue(hdr, hdrScheduler)
		if v != scheduleNextPurge || scheduler == "" || scheduler == subject || !router.ValidLiteralSubject(scheduler) {
			return hdr, newErr(errScheduler)
		}
	} else if headerValue(hdr, hdrScheduler) != "" {
		return hdr, newErr(errScheduler)
	}
	return hdr, nil
}

// noteSchedule updates the index for message seq, just stored on subject
// at ts, and purges the schedule a one-off firing ends. On replay (the
// index rebuilt when the stream opens) nothing is purged: that was done
// when the message was stored, and the subject may hold a newer schedule.
func (st *stream) noteSchedule(seq uint64, subject string, hdr []byte, ts int64, now time.Time, replay bool) {
	if !hasSchedulingHeader(hdr) {
		delete(st.schedules, subject) // a plain message replaced the subject's schedule
		return
	}
	scheduler := headerValue(hdr, hdrScheduler)
	next := headerValue(hdr, hdrScheduleNext)
	if next == scheduleNextPurge && scheduler != "" {
		if !replay {
			st.purgeSubject(scheduler)
		}
		delete(st.schedules, scheduler)
	}
	if !st.cfg.AllowMsgSchedules {
		return
	}
	if st.schedules == nil {
		st.schedules = make(map[string]scheduleEntry)
	}
	if at, _, e := scheduleOf(hdr, ts, now); e == nil && !at.IsZero() {
		st.schedules[subject] = scheduleEntry{seq: seq, at: unixNanos(at)}
		st.hintWait(at)
	} else if scheduler == "" {
		delete(st.schedules, subject) // a plain message replaced the subject's schedule
	}
	if next != "" && next != scheduleNextPurge && scheduler != "" {
		if t, err := time.Parse(time.RFC3339Nano, next); err == nil {
			if e, ok := st.schedules[scheduler]; ok {
				e.at = unixNanos(t)
				st.schedules[scheduler] = e
				st.hintWait(t)
			}
		}
	}
}

// unixNanos is t in unix nanoseconds, saturated: UnixNano wraps for times
// past 2262 (or before 1677), and "@at 9999-12-31T23:59:59Z" must not
// come out in the past and fire at once.
func unixNanos(t time.Time) int64 {
	switch {
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	}
	return t.UnixNano()
}

// purgeSubject removes every message on subject.
func (st *stream) purgeSubject(subject string) {
	if st.perSubj[subject] == 0 {
		return
	}
	_, _ = st.purge(purgeRequest{Subject: subject})
	delete(st.schedules, subject)
}

// indexSchedules rebuilds the index from the stored messages when the
// stream opens.
func (st *stream) indexSchedules(now time.Time) {
	st.schedules = nil
	if !st.cfg.AllowMsgSchedules {
		return
	}
	for seq := uint64(0); ; seq++ {
		m, err := st.store.LoadNext("", seq)
		if err != nil {
			return
		}
		seq = m.Seq
		st.noteSchedule(m.Seq, m.Subject, m.Hdr, m.Time, now, true)
	}
}

// fireSchedules stores the messages of the schedules due at now, oldest
// schedule first, as nats-server orders them (part of the time input,
// stream_core.go: tick).
func (st *stream) fireSchedules(now time.Time) {
	type due struct {
		subject string
		scheduleEntry
	}
	var list []due
	for subj, e := range st.schedules {
		if e.at <= now.UnixNano() {
			list = append(list, due{subj, e})
		}
	}
	if len(list) == 0 {
		return
	}
	sort.Slice(list, func(i, j int) bool { return list[i].seq < list[j].seq })
	for _, d := range list {
		target, hdr, data, ok := st.scheduledMsg(d.subject, d.seq, d.at, now)
		if !ok {
			delete(st.schedules, d.subject)
			continue
		}
		if res := st.storeMsg(st.ingestSubject(target), hdr, data, now, true, nil); !res.pending {
			if e, ok := st.schedules[d.subject]; ok && e.seq == d.seq {
				e.at = now.Add(time.Second).UnixNano() // refused (limits, say): try again in a second
				st.schedules[d.subject] = e
			}
		}
	}
}

// scheduledMsg builds the message schedule seq on subject fires at at;
// ok is false when the schedule is gone or no longer valid.
func (st *stream) scheduledMsg(subject string, seq uint64, at int64, now time.Time) (target string, hdr, data []byte, ok bool) {
	sm, err := st.store.Load(seq)
	if err != nil || sm.Subject != subject {
		return "", nil, nil, false
	}
	pattern := headerValue(sm.Hdr, hdrSchedule)
	loc, e := scheduleLocation(sm.Hdr)
	if pattern == "" || e != nil {
		return "", nil, nil, false
	}
	next, repeat, valid := nextFire(pattern, loc, at, now)
	ttl := headerValue(sm.Hdr, hdrScheduleTTL)
	target = headerValue(sm.Hdr, hdrScheduleTarget)
	if _, ttlOK := parseMsgTTL(ttl); !valid || (ttl != "" && !ttlOK) || target == "" {
		return "", nil, nil, false
	}
	rollup := headerValue(sm.Hdr, hdrScheduleRollup)
	hdr, data = sm.Hdr, sm.Data
	if source := headerValue(sm.Hdr, hdrScheduleSource); source != "" {
		if src, err := st.store.LoadLast(source); err == nil {
			hdr, data = src.Hdr, src.Data
		}
	}
	hdr = withoutHeaders(hdr, func(k string) bool {
		return hasPrefixFold(k, "Nats-Schedule") || hasPrefixFold(k, "Nats-Expected-") ||
			strings.EqualFold(k, hdrMsgID) || strings.EqualFold(k, hdrMsgTTL) || strings.EqualFold(k, hdrRollup)
	})
	hdr = appendHeader(hdr, hdrScheduler, subject)
	if repeat {
		hdr = appendHeader(hdr, hdrScheduleNext, next.Format(time.RFC3339Nano))
	} else {
		hdr = appendHeader(hdr, hdrScheduleNext, scheduleNextPurge)
	}
	if ttl != "" {
		hdr = appendHeader(hdr, hdrMsgTTL, ttl)
	}
	if rollup != "" {
		hdr = appendHeader(hdr, hdrRollup, rollup)
	}
	return target, hdr, append([]byte(nil), data...), true
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// withoutHeaders copies a header block leaving out the keys drop names.
func withoutHeaders(hdr []byte, drop func(key string) bool) []byte {
	out := []byte("NATS/1.0\r\n")
	if len(hdr) > 0 {
		status, rest, _ := bytes.Cut(hdr, crlf)
		out = append(append(out[:0], status...), crlf...)
		for len(rest) > 0 {
			var line []byte
			line, rest, _ = bytes.Cut(rest, crlf)
			if len(line) == 0 {
				continue
			}
			if k, _, ok := bytes.Cut(line, colon); ok && drop(string(bytes.TrimSpace(k))) {
				continue
			}
			out = append(append(out, line...), crlf...)
		}
	}
	return append(out, crlf...)
}
