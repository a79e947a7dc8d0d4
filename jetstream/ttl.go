package jetstream

// Concurrency: runs on the JetStream Manager goroutine only, which owns
// streams and their stores; no locks.

import (
	"bytes"
	"container/heap"
	"math"
	"strconv"
	"strings"
	"time"
)

// Per-message TTLs and subject delete markers, as nats-server 2.11's
// (JetStream API level 1).
//
// A stream with allow_msg_ttl takes a Nats-TTL header on publish. Its
// expiry is not stored apart from the message: it is the message's stored
// time plus the header's TTL, so a restart derives it again from what is on
// disk (ttlIndex is rebuilt by a scan when the stream opens) and what
// expired while the server was down goes at the first tick.
//
// With subject_delete_marker_ttl, a message that max_age or its TTL removes
// and that was the last one on its subject leaves a marker there: an empty
// message with Nats-Marker-Reason: MaxAge, a Nats-TTL of the marker TTL (so
// the marker expires in turn) and Nats-Rollup: sub. Watchers (nats.go's KV
// with LimitMarkerTTL) see the key go instead of silence.

const (
	hdrMsgTTL       = "Nats-TTL"
	hdrMarkerReason = "Nats-Marker-Reason"
	hdrKVOperation  = "KV-Operation"
)

// ttlNever is the TTL of a message that never expires ("Nats-TTL: never"),
// not even by max_age.
const ttlNever = -1

// parseMsgTTL reads a Nats-TTL value as nats-server does and returns whole
// seconds: "never" (any case) is ttlNever; a Go duration must be at least
// one second and is cut to whole seconds; otherwise plain decimal digits
// are seconds. Anything else, "0" and "500ms" included, is invalid.
func parseMsgTTL(v string) (int64, bool) {
	if strings.EqualFold(v, "never") {
		return ttlNever, true
	}
	if d, err := time.ParseDuration(v); err == nil {
		if d < time.Second {
			return 0, false
		}
		return int64(d / time.Second), true
	}
	if v == "" || strings.TrimLeft(v, "0123456789") != "" {
		return 0, false
	}
	// Digits accumulate with int64 wrap-around, as nats-server reads them:
	// a value that wraps negative is invalid, one that wraps to 0 is no
	// TTL. Clients see the same verdicts from both servers.
	var n int64
	for i := 0; i < len(v); i++ {
		n = n*10 + int64(v[i]-'0')
	}
	return max(n, 0), n >= 0
}

// msgTTL is a publish's TTL: 0 without a Nats-TTL header; ok is false when
// the header is there but invalid.
func msgTTL(hdr []byte) (ttl int64, ok bool) {
	if len(hdr) == 0 {
		return 0, true
	}
	v := headerValue(hdr, hdrMsgTTL)
	if v == "" {
		return 0, true
	}
	return parseMsgTTL(v)
}

// ttlDisabled refuses a Nats-TTL on a stream without allow_msg_ttl, as
// nats-server: only a TTL that parses counts (an unparsable one is
// refused as invalid later).
func (st *stream) ttlDisabled(hdr []byte) *APIError {
	if st.cfg.AllowMsgTTL || len(hdr) == 0 {
		return nil
	}
	if ttl, _ := msgTTL(hdr); ttl != 0 {
		return newErr(errMsgTTLDisabled)
	}
	return nil
}

// prepareTTL checks a publish's TTL and returns the header to store: with
// delete markers, a TTL below the marker TTL is raised to it (else the
// message could expire before an earlier marker on its subject and leave
// no marker), as nats-server does, except where a subject holds one
// message.
func (st *stream) prepareTTL(hdr []byte) ([]byte, int64, *APIError) {
	ttl, ok := msgTTL(hdr)
	if !ok {
		return hdr, 0, newErr(errMsgTTLInvalid)
	}
	if m := int64(st.cfg.SubjectDeleteMarkerTTL / time.Second); ttl > 0 && m > 0 && st.cfg.MaxMsgsPerSubject != 1 && ttl < m {
		ttl = m
		hdr = setHeader(hdr, hdrMsgTTL, strconv.FormatInt(ttl, 10))
	}
	return hdr, ttl, nil
}

// trackTTL notes a stored message's expiry.
func (st *stream) trackTTL(seq uint64, ts int64, ttl int64) {
	if ttl <= 0 {
		return
	}
	at := int64(math.MaxInt64) // a TTL past what int64 nanoseconds hold: not in this lifetime
	if ttl <= (math.MaxInt64-ts)/int64(time.Second) {
		at = ts + ttl*int64(time.Second)
	}
	heap.Push(&st.ttls, ttlEntry{at: at, seq: seq})
	if len(st.ttls) > 2*int(st.store.State().Msgs)+1024 {
		st.pruneTTLs()
	}
}

// pruneTTLs drops the entries of messages removed by other means (limits,
// rollups, deletes) before their TTL: with a long TTL and much churn they
// would pile up. It runs when the index holds twice the stream's
// messages, so its loads cost O(1) per TTL publish over time.
func (st *stream) pruneTTLs() {
	keep := st.ttls[:0]
	for _, e := range st.ttls {
		if _, err := st.store.Load(e.seq); err == nil {
			keep = append(keep, e)
		}
	}
	clear(st.ttls[len(keep):])
	st.ttls = keep
	heap.Init(&st.ttls)
}

// indexTTLs rebuilds the expiry index from the stored messages' headers
// and times, when the stream opens.
func (st *stream) indexTTLs() {
	st.ttls = st.ttls[:0]
	if !st.cfg.AllowMsgTTL {
		return
	}
	for seq := uint64(0); ; seq++ {
		m, err := st.store.LoadNext("", seq)
		if err != nil {
			break
		}
		seq = m.Seq
		if ttl, ok := msgTTL(m.Hdr); ok {
			st.trackTTL(m.Seq, m.Time, ttl)
		}
	}
	heap.Init(&st.ttls)
}

// expireTTLs removes the messages whose TTL has passed.
func (st *stream) expireTTLs(now time.Time) {
	if st.cfg.Sealed {
		return // a sealed stream deletes nothing
	}
	for len(st.ttls) > 0 && st.ttls[0].at <= now.UnixNano() {
		e := heap.Pop(&st.ttls).(ttlEntry)
		m, err := st.store.Load(e.seq)
		if err != nil {
			continue // removed by other means
		}
		st.expireMsg(m.Seq, m.Subject, m.Hdr, now)
	}
}

// expireAged removes messages older than max_age, skipping those whose TTL
// is never. ageFrom remembers where the scan stopped, so never-expiring
// messages at the head are passed over once, not on every tick.
func (st *stream) expireAged(now time.Time) {
	for {
		s := st.store.State()
		if s.Msgs == 0 || (st.ageFrom <= s.FirstSeq && now.Sub(s.FirstTime) < st.cfg.MaxAge) {
			return // the common case, from the state alone: nothing has aged
		}
		m, err := st.store.LoadNext("", max(s.FirstSeq, st.ageFrom))
		if err != nil || now.Sub(time.Unix(0, m.Time)) < st.cfg.MaxAge {
			return
		}
		st.ageFrom = m.Seq + 1
		if st.cfg.AllowMsgTTL {
			if ttl, ok := msgTTL(m.Hdr); ok && ttl == ttlNever {
				continue
			}
		}
		st.expireMsg(m.Seq, m.Subject, m.Hdr, now)
	}
}

// expireMsg removes an expired message; when it was the last on its
// subject and is no marker itself, a marker takes its place (removed
// first, so a full discard-new stream has room for it).
func (st *stream) expireMsg(seq uint64, subject string, hdr []byte, now time.Time) {
	last := st.perSubj[subject] == 1
	if !st.remove(seq, subject) || st.cfg.SubjectDeleteMarkerTTL <= 0 || !last || isMarker(hdr) {
		return
	}
	marker := []byte("NATS/1.0\r\n" + hdrMarkerReason + ": MaxAge\r\n" + hdrMsgTTL + ": " +
		st.cfg.SubjectDeleteMarkerTTL.Truncate(time.Second).String() + "\r\n" + hdrRollup + ": sub\r\n\r\n")
	if res := st.storeMsg(subject, marker, nil, now, false, nil); res.pending && st.cfg.Retention == "interest" {
		st.dropIfUninterested(st.store.State().LastSeq) // nobody to keep it for
	}
}

// isMarker reports whether a message is a delete marker (a server's, or a
// KV purge), which expires without leaving another.
func isMarker(hdr []byte) bool {
	return len(hdr) > 0 && (headerValue(hdr, hdrMarkerReason) != "" || headerValue(hdr, hdrKVOperation) == "PURGE")
}

// ttlRules checks and completes the TTL fields of a stream config as
// nats-server does outside pedantic mode: markers need TTLs and rollups,
// so they switch both on.
func ttlRules(cfg *StreamConfig) *APIError {
	switch d := cfg.SubjectDeleteMarkerTTL; {
	case d < 0:
		return newErr(errStreamConfig, "err", "subject delete marker TTL must not be negative")
	case d > 0 && d < time.Second:
		return newErr(errStreamConfig, "err", "subject delete marker TTL must be at least 1 second")
	case d > 0:
		cfg.AllowMsgTTL = true
		if !cfg.AllowRollup {
			cfg.AllowRollup, cfg.DenyPurge = true, false
		}
	}
	return nil
}

// ttlUpdateRules refuses turning TTLs off: stored messages carry them.
func ttlUpdateRules(old StreamConfig, cfg *StreamConfig) *APIError {
	if old.AllowMsgTTL && !cfg.AllowMsgTTL {
		return newErr(errStreamConfig, "err", "message TTL status can not be disabled")
	}
	return nil
}

// setHeader replaces every key line (any case) of a NATS/1.0 header block
// with one "key: value" line at its end.
func setHeader(hdr []byte, key, value string) []byte {
	status, rest, _ := bytes.Cut(hdr, crlf)
	out := append(append([]byte(nil), status...), crlf...)
	for len(rest) > 0 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, crlf)
		if len(line) == 0 {
			continue
		}
		if k, _, ok := bytes.Cut(line, colon); ok && equalFoldASCII(bytes.TrimSpace(k), key) {
			continue
		}
		out = append(append(out, line...), crlf...)
	}
	out = append(out, key+": "+value+"\r\n\r\n"...)
	return out
}

// ttlEntry is one message's expiry: unix nanoseconds.
type ttlEntry struct {
	at  int64
	seq uint64
}

// ttlIndex is a min-heap of expiries. A message removed by other means
// keeps its entry until it comes up and is found gone.
type ttlIndex []ttlEntry

func (h ttlIndex) Len() int { return len(h) }
func (h ttlIndex) Less(i, j int) bool {
	return h[i].at < h[j].at || (h[i].at == h[j].at && h[i].seq < h[j].seq)
}
func (h ttlIndex) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *ttlIndex) Push(x any)   { *h = append(*h, x.(ttlEntry)) }
func (h *ttlIndex) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
