package jetstream

// Concurrency: runs on the JetStream Manager goroutine only, which owns
// streams, consumers and their stores; no locks.

// The stream as a state machine, in the manner of etcd's raft package and
// of the consumer's (consumer_core.go): a step takes one input and the
// current time (it reads no clock, arms no timer, starts no goroutine),
// changes the stream's state and store and records what it asks of the
// world in st.fx; the Manager then performs those effects
// (Manager.afterStore) and clears them. Tests drive the steps with a fake
// clock and a memory store (stream_core_test.go). docs/JETSTREAM.md
// ("Stream state machine") has the table of inputs and effects.
//
// Inputs and their steps:
//
//	a client's publish            st.publish(subject, reply, hdr, data, now)
//	an atomic batch's message     st.atomic(id, subject, reply, hdr, data, now, ...)
//	a fast batch's message        st.fastPublish(reply, subject, hdr, data, now, inflight)
//	a copy, marker or firing      st.storeMsg(subject, hdr, data, now, sourced, done)
//	a mirror's copy               st.mirrorMsg(msg, subject)
//	a purge                       st.purgeMsgs(req)
//	a message delete              st.deleteMsg(seq)
//	the time                      st.tick(now)
//
// Effects (streamEffects): PubAcks to send now (a refusal, a duplicate,
// a memory stream's or an async_persist stream's ack); the range of
// sequences stored, which the Manager serves to consumers, to the streams
// that copy this one and to interest retention (Manager.stored);
// BATCH_ABANDONED advisories; republishes (st.outbox, republish.go); and
// the next deadline the stream waits for (wake: max_age, a TTL, the
// duplicate window, a schedule, a batch's timeout; the Manager arms its
// timer to it: timers.go, armStreams). What to store and remove the steps do to the
// store themselves; a file store's writes go to the Writer, whose
// completions release the acks waiting in st.acks (stream_acks.go). The
// purge and delete steps return their verdict to the API handler.
//
// The Manager keeps what needs more than one stream or the server: the
// account's storage limits (overLimit), staging atomic and fast batches
// (batch.go, fastbatch.go), reading a mirror's or source's origin
// (mirror.go), consumers, and the wording of store errors for clients.

import (
	"errors"
	"strconv"
	"time"

	"github.com/evnats/evnats/jetstream/store"
)

// streamEffects is what a stream's steps since the last perform ask of
// the Manager.
type streamEffects struct {
	acks        []pubReply    // PubAcks to send now, in order
	fast        []fastSend    // a fast batch step's replies to send now, in order (fastbatch.go)
	first, last uint64        // the sequences stored (0: none)
	abandoned   []abandonNote // atomic batches dropped: BATCH_ABANDONED advisories
	wake        time.Time     // the earliest deadline waited for; zero: none
}

// pubReply is a PubAck to send to a publish's reply subject, or an empty
// reply (an atomic batch's staged message).
type pubReply struct {
	to    string
	ack   PubAck
	empty bool
}

// abandonNote names an atomic batch dropped before its commit and why.
type abandonNote struct{ id, reason string }

// refuse records a refusal's PubAck, when a reply is wanted.
func (st *stream) refuse(reply string, e *APIError) {
	if reply != "" {
		st.fx.acks = append(st.fx.acks, pubReply{to: reply, ack: PubAck{Stream: st.cfg.Name, Error: e}})
	}
}

// noteStored records that message seq was stored.
func (st *stream) noteStored(seq uint64) {
	if st.fx.first == 0 {
		st.fx.first = seq
	}
	st.fx.last = seq
}

// publish is a client's publish on a stream subject (through the
// stream's subject transform; reply "" when no ack is wanted): the message
// is stored or refused, and the PubAck is recorded to send now, or, for
// a file stream, queued in st.acks until the store's Writer has made the
// message durable.
func (st *stream) publish(subject, reply string, hdr, data []byte, now time.Time) {
	var done store.DoneFunc
	if reply != "" && !st.asyncAck() {
		done = st.durable // nil for a memory store: durable at once
	}
	res := st.storeMsg(subject, hdr, data, now, false, done)
	switch {
	case reply == "":
	case res.ack != nil:
		st.fx.acks = append(st.fx.acks, pubReply{to: reply, ack: *res.ack})
	case done != nil:
		st.acks.push(ackWait{seq: res.seq, reply: reply, val: res.val})
	default: // a memory store, or async_persist: acked before the write (persist.go)
		st.fx.acks = append(st.fx.acks, pubReply{to: reply, ack: PubAck{Stream: st.cfg.Name, Seq: res.seq, Value: res.val, Domain: st.domain}})
	}
}

// ready returns the effects recorded since the last call and clears them;
// the acks' slice is handed back for reuse by the next steps once the
// caller has sent them (afterStore clears it first).
func (st *stream) ready() streamEffects {
	fx := st.fx
	st.fx = streamEffects{acks: fx.acks[:0], fast: fx.fast[:0]}
	return fx
}

// mirrorMsg is a mirror's copy of an origin message, stored under the
// origin's sequence and time (on subject, after the transforms) without
// the publish rules, as nats-server's mirrors: one already here (an origin
// recreated below our position) is skipped.
func (st *stream) mirrorMsg(msg *store.Msg, subject string) error {
	sa, ok := st.store.(store.SeqAppender)
	if !ok {
		return errNoSeqAppend
	}
	if msg.Seq <= st.store.State().LastSeq {
		return nil
	}
	rp := st.planRepublish(subject)
	if _, err := sa.AppendAt(msg.Seq, subject, msg.Hdr, msg.Data, msg.Time, nil); err != nil {
		return err
	}
	st.queueRepublish(rp, subject, msg.Seq, msg.Time, msg.Hdr, msg.Data)
	st.noteStored(msg.Seq)
	if st.cfg.AllowMsgTTL { // expires at the origin's time plus its TTL, as in nats-server
		if ttl, ok := msgTTL(msg.Hdr); ok {
			st.trackTTL(msg.Seq, msg.Time, ttl)
		}
	}
	st.countSubject(subject, msg.Seq)
	st.enforceLimits(subject)
	return nil
}

var errNoSeqAppend = errors.New("store can not keep the origin's sequences")

// purgeMsgs is the purge input: refused (e) on a sealed stream or with
// deny_purge, else the purge; err is the store's failure, which the
// Manager words for the client.
func (st *stream) purgeMsgs(req purgeRequest) (n uint64, e *APIError, err error) {
	switch {
	case st.cfg.Sealed:
		return 0, newErr(errSealed), nil
	case st.cfg.DenyPurge:
		return 0, newErr(errStreamPurge, "err", "stream purge not permitted"), nil
	}
	n, err = st.purge(req)
	return n, nil, err
}

// deleteMsg is the message delete input: refused on a sealed stream or
// with deny_delete, or when there is no message seq.
func (st *stream) deleteMsg(seq uint64) *APIError {
	switch {
	case st.cfg.Sealed:
		return newErr(errSealed)
	case st.cfg.DenyDelete:
		return newErr(errMsgDelete, "err", errDeleteDenied.Error())
	}
	m, err := st.store.Load(seq)
	if err != nil || !st.remove(seq, m.Subject) {
		return newErr(errMsgDelete, "err", "no message found")
	}
	return nil
}

// publishResult is what storing a message decided: an ack to send now
// (duplicate or error), or nothing when the store's callback will ack.
type publishResult struct {
	ack     *PubAck
	pending bool
	seq     uint64 // with pending: the sequence given to the message
	val     string // with pending: a counter's new total
}

// store applies the publish rules and appends the message. done (nil for
// none) is the store's completion: a memory store calls it before Append
// returns, a file store from its Writer goroutine once the append is
// durable (st.durable posts it back to the Manager's queue). sourced marks
// a source's copy, which counters treat apart.
func (st *stream) storeMsg(subject string, hdr, data []byte, now time.Time, sourced bool, done store.DoneFunc) publishResult {
	name := st.cfg.Name
	fail := func(e *APIError) publishResult { return publishResult{ack: &PubAck{Stream: name, Error: e}} }
	msgID := headerValue(hdr, hdrMsgID)
	if msgID != "" {
		if d, ok := st.dedupe[msgID]; ok && now.Sub(d.at) < st.cfg.Duplicates {
			return publishResult{ack: &PubAck{Stream: name, Seq: d.seq, Duplicate: true}}
		}
	}
	if st.cfg.Sealed {
		return fail(newErr(errSealed))
	}
	incr, e := st.checkIncr(hdr, data, sourced)
	if e != nil {
		return fail(e)
	}
	if v := headerValue(hdr, hdrExpectedStream); v != "" && v != name {
		return fail(newErr(errExpectedStream))
	}
	if e := st.ttlDisabled(hdr); e != nil && !sourced { // a copy keeps its TTL; it expires only with allow_msg_ttl
		return fail(e)
	}
	state := st.store.State()
	if v := headerValue(hdr, hdrExpectedLastSeq); v != "" {
		if n, err := strconv.ParseUint(v, 10, 64); err != nil || n != state.LastSeq {
			return fail(newErr(errWrongLastSeq, "seq", strconv.FormatUint(state.LastSeq, 10)))
		}
	}
	if v := headerValue(hdr, hdrExpectedSubjSeq); v != "" {
		var last uint64
		if m, err := st.store.LoadLast(subject); err == nil {
			last = m.Seq
		}
		if n, err := strconv.ParseUint(v, 10, 64); err != nil || n != last {
			return fail(newErr(errWrongLastSeq, "seq", strconv.FormatUint(last, 10)))
		}
	}
	if v := headerValue(hdr, hdrExpectedLastMsgID); v != "" && v != st.lastMsgID {
		return fail(newErr(errWrongLastMsgID, "id", st.lastMsgID))
	}
	if !sourced {
		if hdr, e = st.checkSchedule(subject, hdr, now); e != nil {
			return fail(e)
		}
	}
	rollup := headerValue(hdr, hdrRollup)
	if e := st.rollupAllowed(rollup); e != nil {
		return fail(e)
	}
	hdr, ttl, e := st.prepareTTL(hdr)
	if e != nil {
		return fail(e)
	}
	var val string
	if st.cfg.AllowMsgCounter {
		prev, e := st.lastCounter(subject)
		var next *counterState
		if e == nil {
			hdr, data, next, e = st.counterMsg(subject, hdr, data, incr, prev)
		}
		if e != nil {
			return fail(e)
		}
		val = next.val
	}
	size := int64(len(subject) + len(hdr) + len(data))
	if st.cfg.MaxMsgSize > 0 && int64(len(hdr)+len(data)) > int64(st.cfg.MaxMsgSize) {
		return fail(newErr(errMsgTooBig))
	}
	if st.cfg.Discard == "new" {
		if st.cfg.MaxMsgs > 0 && int64(state.Msgs) >= st.cfg.MaxMsgs {
			return fail(newErr(errStoreFailed, "err", "maximum messages exceeded"))
		}
		if st.cfg.MaxBytes > 0 && int64(state.Bytes)+size > st.cfg.MaxBytes {
			return fail(newErr(errStoreFailed, "err", "maximum bytes exceeded"))
		}
		if st.cfg.DiscardNewPer && st.cfg.MaxMsgsPerSubject > 0 && int64(st.perSubj[subject]) >= st.cfg.MaxMsgsPerSubject {
			return fail(newErr(errMaxMsgsPerSubject))
		}
	}
	rp := st.planRepublish(subject)
	seq, err := st.store.Append(subject, hdr, data, now.UnixNano(), done)
	if err != nil {
		return fail(newErr(errStoreFailed, "err", err.Error()))
	}
	st.queueRepublish(rp, subject, seq, now.UnixNano(), hdr, data)
	st.countSubject(subject, seq)
	if st.cfg.AllowMsgTTL {
		st.trackTTL(seq, now.UnixNano(), ttl)
	}
	st.applyRollup(rollup, subject, seq)
	st.noteSchedule(seq, subject, hdr, now.UnixNano(), now, false)
	if msgID != "" {
		st.rememberID(msgID, seq, now)
	}
	st.enforceLimits(subject)
	st.noteStored(seq)
	return publishResult{pending: true, seq: seq, val: val}
}

// rollupAllowed checks a Nats-Rollup header value ("": none).
func (st *stream) rollupAllowed(rollup string) *APIError {
	switch {
	case rollup == "":
		return nil
	case !st.cfg.AllowRollup || st.cfg.DenyPurge:
		return newErr(errRollup, "err", "rollup not permitted")
	case rollup != "sub" && rollup != "all":
		return newErr(errRollup, "err", "rollup value invalid: "+strconv.Quote(rollup))
	}
	return nil
}

// applyRollup removes what message seq, just stored on subject with this
// Nats-Rollup value, replaces.
func (st *stream) applyRollup(rollup, subject string, seq uint64) {
	switch rollup {
	case "sub": // this message replaces every earlier one on its subject
		for {
			m, err := st.store.LoadNext(subject, 0)
			if err != nil || m.Seq >= seq {
				break
			}
			st.remove(m.Seq, m.Subject)
		}
	case "all": // this message replaces the whole stream
		_, _ = st.store.Compact(seq)
		st.recount()
	}
}

// raiseFirst notes that subject's oldest message is now at or above from
// (its older ones are gone); with one message left that is its newest,
// which the store knows at once.
func (st *stream) raiseFirst(subject string, from uint64) {
	if st.perSubj[subject] == 0 {
		return // remove forgot it
	}
	if st.subjFirst == nil {
		st.subjFirst = make(map[string]uint64)
	}
	if st.perSubj[subject] == 1 {
		if m, err := st.store.LoadLast(subject); err == nil {
			from = m.Seq
		}
	}
	st.subjFirst[subject] = from
}

// enforceLimits discards the oldest messages beyond the stream's limits.
func (st *stream) enforceLimits(subject string) {
	if max := st.cfg.MaxMsgsPerSubject; max > 0 && int64(st.perSubj[subject]) > max {
		for int64(st.perSubj[subject]) > max {
			m, err := st.store.LoadNext(subject, st.subjFirst[subject])
			if err != nil {
				break
			}
			st.remove(m.Seq, m.Subject)
			st.raiseFirst(subject, m.Seq+1)
		}
	}
	for {
		s := st.store.State()
		over := (st.cfg.MaxMsgs > 0 && int64(s.Msgs) > st.cfg.MaxMsgs) || (st.cfg.MaxBytes > 0 && int64(s.Bytes) > st.cfg.MaxBytes)
		if !over || s.Msgs == 0 {
			return
		}
		m, err := st.store.LoadNext("", s.FirstSeq)
		if err != nil {
			return
		}
		st.remove(m.Seq, m.Subject)
	}
}

// tick is the time input: ids older than the duplicate window are
// forgotten, messages past their TTL or max_age go (leaving delete markers
// where configured), due schedules fire, atomic and fast batches idle for
// batchTimeout are dropped; wake is set to the next deadline.
func (st *stream) tick(now time.Time) {
	st.forgetIDs(now)
	st.expireTTLs(now)
	if st.cfg.MaxAge > 0 {
		st.expireAged(now)
	}
	st.fireSchedules(now)
	st.abandonBatches(now)
	st.abandonFast(now)
	st.fx.wake = st.nextDeadline(now)
}

// rememberID records a stored message's Nats-Msg-Id for the duplicate
// window, and as the stream's last id.
func (st *stream) rememberID(id string, seq uint64, now time.Time) {
	st.dedupe[id] = dedupeEntry{seq: seq, at: now}
	st.lastMsgID = id
	st.idOrder.push(idAt{id, now})
}

// forgetIDs forgets the ids stored a duplicate window ago or more, from
// the front of idOrder: the cost is the ids forgotten, not those kept.
func (st *stream) forgetIDs(now time.Time) {
	for st.idOrder.len() > 0 {
		e := st.idOrder.front()
		if now.Sub(e.at) < st.cfg.Duplicates {
			return
		}
		if d, ok := st.dedupe[e.id]; ok && now.Sub(d.at) >= st.cfg.Duplicates {
			delete(st.dedupe, e.id) // not when the id was stored again since
		}
		st.idOrder.pop()
	}
}

// nextDeadline is the earliest time after now at which a tick would
// change something: the oldest id leaving the duplicate window, a TTL, the
// oldest message reaching max_age, a schedule, a batch's inactivity
// timeout. Zero when none. It scans the schedules and batches: the time
// input's, not every step's (armDeadline).
func (st *stream) nextDeadline(now time.Time) time.Time {
	at := st.headDeadline()
	for _, e := range st.schedules {
		at = earliest(at, time.Unix(0, e.at))
	}
	for _, b := range st.batches {
		at = earliest(at, b.last.Add(batchTimeout))
	}
	for _, b := range st.fast {
		at = earliest(at, b.last.Add(batchTimeout))
	}
	st.waitHint = time.Time{} // what it stood for is counted above
	return overdue(at, now)
}

// armDeadline is a lower bound of nextDeadline for arming after any step
// (Manager.armStreams), at a cost that does not grow with the stream's
// schedules or batches: those are stood for by waitHint, the earliest
// deadline one was given since the last time input (hintWait). A bound
// that comes early costs one tick, which computes exactly.
func (st *stream) armDeadline(now time.Time) time.Time {
	return overdue(earliest(st.headDeadline(), st.waitHint), now)
}

// hintWait notes that a schedule or a batch now waits until t.
func (st *stream) hintWait(t time.Time) {
	st.waitHint = earliest(st.waitHint, t)
}

// headDeadline is the part of nextDeadline that the heads of the stream's
// orders give: the oldest id, the next TTL, the oldest message's max_age.
func (st *stream) headDeadline() time.Time {
	var at time.Time
	if st.idOrder.len() > 0 {
		at = st.idOrder.front().at.Add(st.cfg.Duplicates)
	}
	if len(st.ttls) > 0 && !st.cfg.Sealed {
		at = earliest(at, time.Unix(0, st.ttls[0].at))
	}
	if st.cfg.MaxAge > 0 {
		s := st.store.State()
		switch {
		case s.Msgs == 0:
		case st.ageFrom <= s.FirstSeq:
			at = earliest(at, s.FirstTime.Add(st.cfg.MaxAge))
		default: // never-expiring messages at the head: the first after them
			if m, err := st.store.LoadNext("", st.ageFrom); err == nil {
				// What LoadNext passed over is gone: the next look (every
				// step's arming) starts at m, not over the gap again.
				st.ageFrom = m.Seq
				at = earliest(at, time.Unix(0, m.Time).Add(st.cfg.MaxAge))
			}
		}
	}
	return at
}

// overdue is at, or now when at has passed (a refused firing waits a
// second; this is the tick that comes next).
func overdue(at, now time.Time) time.Time {
	if !at.IsZero() && at.Before(now) {
		return now
	}
	return at
}
