package jetstream

// Concurrency: runs on the JetStream Manager goroutine only, which owns
// streams and their stores; no locks.

import (
	"encoding/json"
	"math"
	"math/big"
	"strings"
)

// Message counters, as nats-server 2.12's (API level 2): on a stream with
// allow_msg_counter every publish carries Nats-Incr, a signed decimal
// integer of any size and no body; the stream stores on that subject the
// running total as {"val":"<decimal>"} (the previous message on the subject
// plus the increment) and the PubAck carries it as "val". A copy from a
// source (Nats-Stream-Source) adds the difference between the origin's
// total and the last one seen from that origin subject, kept in the
// Nats-Counter-Sources header ({"stream":{"subject":"total"}}), so a
// stream can sum counters of other streams.
//
// Differences from nats-server: increments and totals are capped at
// maxCounterDigits decimal digits (big.Int parses a million digits in
// seconds, on the Manager goroutine); a longer increment, or one whose
// total would be longer, is refused as invalid.

const (
	hdrIncr           = "Nats-Incr"
	hdrCounterSources = "Nats-Counter-Sources"

	maxCounterDigits = 256
)

var (
	errIncrDisabled   = errDef{400, 10168, "message counters is disabled"}
	errIncrMissing    = errDef{400, 10169, "message counter increment is missing"}
	errIncrPayload    = errDef{400, 10170, "message counter has payload"}
	errIncrInvalid    = errDef{400, 10171, "message counter increment is invalid"}
	errCounterBroken  = errDef{400, 10172, "message counter is broken"}
	errMirrorCounters = errDef{400, 10173, "stream mirrors can not also calculate counters"}
	errHeaderTooBig   = errDef{400, 10097, "header size exceeds maximum allowed of 64k"}
)

// counterValue is the body of a counter message.
type counterValue struct {
	Value string `json:"val"`
}

// counterRules refuses the settings a counter stream cannot have, as
// nats-server (a mirror with counters is refused by copyRules).
func counterRules(cfg *StreamConfig) *APIError {
	if !cfg.AllowMsgCounter {
		return nil
	}
	bad := func(s string) *APIError { return newErr(errStreamConfig, "err", "counter stream "+s) }
	switch {
	case cfg.Discard == "new":
		return bad("cannot use discard new")
	case cfg.AllowMsgTTL || cfg.SubjectDeleteMarkerTTL > 0:
		return bad("cannot use message TTLs")
	case cfg.AllowMsgSchedules:
		return bad("cannot use message schedules")
	case cfg.Retention != "" && cfg.Retention != "limits":
		return bad("can only use limits retention")
	}
	return nil
}

// parseCounter reads a decimal integer ("+" or "-" allowed) of at most
// maxCounterDigits digits.
func parseCounter(s string) (*big.Int, bool) {
	if len(strings.TrimLeft(s, "+-")) > maxCounterDigits {
		return nil, false
	}
	return new(big.Int).SetString(s, 10)
}

// msgIncr is a message's increment: nil without Nats-Incr; ok is false
// when the header is there but no integer.
func msgIncr(hdr []byte) (incr *big.Int, ok bool) {
	if len(hdr) == 0 {
		return nil, true
	}
	v := headerValue(hdr, hdrIncr)
	if v == "" {
		return nil, true
	}
	return parseCounter(v)
}

// checkIncr applies nats-server's early checks to a message's Nats-Incr
// and returns the increment (nil: none). A copy from a source is stored
// as its origin stored it, so only the syntax is checked there.
func (st *stream) checkIncr(hdr, data []byte, sourced bool) (*big.Int, *APIError) {
	incr, ok := msgIncr(hdr)
	switch {
	case !ok:
		return nil, newErr(errIncrInvalid)
	case incr == nil || sourced:
		return incr, nil
	case !st.cfg.AllowMsgCounter:
		return nil, newErr(errIncrDisabled)
	case len(data) > 0:
		return nil, newErr(errIncrPayload)
	}
	for _, k := range []string{hdrRollup, hdrExpectedStream, hdrExpectedLastMsgID, hdrExpectedLastSeq, hdrExpectedSubjSeq} {
		if headerValue(hdr, k) != "" {
			return nil, newErr(errIncrInvalid) // a counter update has no preconditions
		}
	}
	return incr, nil
}

// counterMsg returns the header and body to store for an increment on
// subject, given the counter stored there last (prev nil: none), and the
// new counter.
func (st *stream) counterMsg(subject string, hdr []byte, data []byte, incr *big.Int, prev *counterState) ([]byte, []byte, *counterState, *APIError) {
	if incr == nil {
		return nil, nil, nil, newErr(errIncrMissing)
	}
	total := new(big.Int)
	var sources map[string]map[string]string
	if prev != nil {
		total.Set(prev.total)
		sources = prev.sources
	}
	if src := headerValue(hdr, hdrStreamSource); src != "" {
		// A source's copy: it carries the origin's total; add what it
		// grew by since the last copy of that origin subject.
		f := strings.Split(src, " ")
		origin, originSubject := f[0], subject
		if len(f) >= 5 {
			originSubject = f[4]
		}
		var v counterValue
		if json.Unmarshal(data, &v) != nil {
			return nil, nil, nil, newErr(errCounterBroken)
		}
		theirs, ok := parseCounter(v.Value)
		if !ok {
			return nil, nil, nil, newErr(errCounterBroken)
		}
		next := make(map[string]map[string]string, len(sources)+1)
		for k, m := range sources {
			next[k] = m
		}
		seen := make(map[string]string, len(next[origin])+1)
		for k, v := range next[origin] {
			seen[k] = v
		}
		before := new(big.Int)
		if s, ok := seen[originSubject]; ok {
			if before, ok = parseCounter(s); !ok {
				return nil, nil, nil, newErr(errCounterBroken)
			}
		}
		seen[originSubject] = theirs.String()
		next[origin] = seen
		sources = next
		incr = new(big.Int).Sub(theirs, before)
		hdr = setHeader(hdr, hdrIncr, incr.String())
	}
	total.Add(total, incr)
	val := total.String()
	if len(strings.TrimLeft(val, "-")) > maxCounterDigits {
		return nil, nil, nil, newErr(errIncrInvalid)
	}
	if len(sources) > 0 {
		hdr = setHeader(hdr, hdrCounterSources, string(mustJSON(sources)))
	}
	if len(hdr) > math.MaxUint16 {
		return nil, nil, nil, newErr(errHeaderTooBig)
	}
	return hdr, mustJSON(counterValue{Value: val}), &counterState{total: total, sources: sources, val: val}, nil
}

// counterState is a counter subject's total and its sources' totals.
type counterState struct {
	total   *big.Int
	sources map[string]map[string]string
	val     string // total in decimal, once formatted
}

// lastCounter reads the counter stored last on subject (nil: none).
func (st *stream) lastCounter(subject string) (*counterState, *APIError) {
	if st.perSubj[subject] == 0 {
		return nil, nil
	}
	m, err := st.store.LoadLast(subject)
	if err != nil {
		return nil, nil
	}
	return readCounter(m.Hdr, m.Data)
}

// readCounter parses a stored counter message.
func readCounter(hdr, data []byte) (*counterState, *APIError) {
	var v counterValue
	if json.Unmarshal(data, &v) != nil {
		return nil, newErr(errCounterBroken)
	}
	total, ok := parseCounter(v.Value)
	if !ok {
		return nil, newErr(errCounterBroken)
	}
	cs := &counterState{total: total}
	if s := headerValue(hdr, hdrCounterSources); s != "" {
		if json.Unmarshal([]byte(s), &cs.sources) != nil {
			return nil, newErr(errCounterBroken)
		}
	}
	return cs, nil
}

// counterUpdateRules: a stream can not become or stop being a counter.
func counterUpdateRules(old StreamConfig, cfg *StreamConfig) *APIError {
	if old.AllowMsgCounter != cfg.AllowMsgCounter {
		return newErr(errStreamConfig, "err", "stream configuration update can not change message counter setting")
	}
	return nil
}
