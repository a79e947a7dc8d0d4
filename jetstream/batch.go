package jetstream

// Concurrency: runs on the JetStream Manager goroutine only, like the
// stream it stages for; the commit's done callback runs on the store's
// Writer goroutine and only publishes the ack.

import (
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/evnats/evnats/jetstream/store"
)

// Atomic batch publish (nats-server 2.12, API level 2): messages carrying
// Nats-Batch-Id are staged, unstored, until the one carrying
// Nats-Batch-Commit; then every staged message is checked and the batch is
// stored as one store record (store.AppendBatch), all or none, also across
// a crash. Staged messages get an empty reply; the commit gets the PubAck
// with batch and count.
const (
	hdrBatchID     = "Nats-Batch-Id"
	hdrBatchSeq    = "Nats-Batch-Sequence"
	hdrBatchCommit = "Nats-Batch-Commit"

	// nats-server's defaults for these limits.
	maxBatchIDLen        = 64
	maxAtomicBatchSize   = 1000
	maxInflightPerStream = 50
	maxInflightTotal     = 1000
)

// batchTimeout is how long a batch may go without a message before it is
// abandoned (nats-server's default; a variable for tests).
var batchTimeout = 10 * time.Second

// maxStagedBytes bounds the bytes staged by all atomic batches together:
// nats-server stages a file stream's batches on disk, evnats in memory,
// where the count limits alone would let clients pin 1000 batches of 1000
// maximum-size messages (atomic: tests lower it while servers run).
var maxStagedBytes atomic.Int64

func init() { maxStagedBytes.Store(256 << 20) }

// atomicBatch is one staged batch. Owned by the Manager goroutine.
type atomicBatch struct {
	msgs []store.BatchMsg // staged in batch sequence order; the requests' own copies
	last time.Time        // the latest message, for the inactivity timeout
	size int64            // bytes staged, counted against maxStagedBytes
}

// stageResult is what one batch message decided: an error to answer, the
// batch to commit, or neither (staged: answer with an empty message).
type stageResult struct {
	err    *APIError
	commit []store.BatchMsg
	// abandoned is why a staged batch was dropped ("timeout",
	// "incomplete", "large": nats-server's reasons), for the advisory.
	abandoned string
}

// stageAtomic applies one message that carries Nats-Batch-Id, with
// nats-server's checks in its order. inflight is the number of batches
// staged in every stream of the server, staged the bytes they hold.
func (st *stream) stageAtomic(id, subject string, hdr, data []byte, now time.Time, inflight int, staged int64) stageResult {
	fail := func(e *APIError) stageResult { return stageResult{err: e} }
	if st.cfg.Sealed {
		return fail(newErr(errSealed))
	}
	if st.cfg.MaxMsgSize > 0 && int64(len(hdr)+len(data)) > int64(st.cfg.MaxMsgSize) {
		return fail(newErr(errMsgTooBig))
	}
	if !st.cfg.AllowAtomic {
		return fail(newErr(errAtomicDisabled))
	}
	if len(id) > maxBatchIDLen {
		return fail(newErr(errAtomicBatchID))
	}
	seq, err := strconv.ParseUint(headerValue(hdr, hdrBatchSeq), 10, 64)
	if err != nil {
		return fail(newErr(errAtomicMissingSeq))
	}
	commitVal := headerValue(hdr, hdrBatchCommit)
	commit, eob := commitVal != "", commitVal == "eob"
	size := seq // the end-of-batch marker is not a message of the batch
	if eob {
		size--
	}
	tooLarge := func() *APIError { return newErr(errAtomicTooLarge, "size", strconv.Itoa(maxAtomicBatchSize)) }
	b := st.batches[id]
	timedOut := ""
	if b != nil && now.Sub(b.last) >= batchTimeout {
		delete(st.batches, id) // abandoned; the tick had not got to it yet
		b, timedOut = nil, batchTimedOut
	}
	fail = func(e *APIError) stageResult { return stageResult{err: e, abandoned: timedOut} }
	if b == nil {
		if seq != 1 {
			if size > maxAtomicBatchSize {
				return fail(tooLarge())
			}
			return fail(newErr(errAtomicIncomplete))
		}
		if len(st.batches)+1 > maxInflightPerStream || inflight+1 > maxInflightTotal {
			return fail(newErr(errAtomicInflight))
		}
		b = &atomicBatch{}
		if st.batches == nil {
			st.batches = make(map[string]*atomicBatch)
		}
		st.batches[id] = b
		st.hintWait(now.Add(batchTimeout))
	}
	abandon := func(e *APIError, reason string) stageResult {
		delete(st.batches, id)
		return stageResult{err: e, abandoned: reason}
	}
	if commit && !eob && commitVal != "1" {
		return abandon(newErr(errAtomicCommit), "") // dropped without an advisory, as nats-server
	}
	if headerValue(hdr, hdrRequiredLevel) != "" { // reqlevel.go; the header is never stored
		if needsHigherLevel(hdr) {
			return abandon(newErr(errLevelRequired), batchUnsupported)
		}
		hdr = withoutHeaders(hdr, func(k string) bool { return strings.EqualFold(k, hdrRequiredLevel) })
	}
	if seq != uint64(len(b.msgs))+1 || (seq == 1 && eob) {
		return abandon(newErr(errAtomicIncomplete), batchIncomplete)
	}
	if size > maxAtomicBatchSize {
		return abandon(tooLarge(), batchLarge)
	}
	if n := int64(len(subject) + len(hdr) + len(data)); !eob && staged+n > maxStagedBytes.Load() {
		return abandon(newErr(errAtomicInflight), "")
	} else if !eob {
		b.size += n
		b.msgs = append(b.msgs, store.BatchMsg{Subject: subject, Hdr: hdr, Data: data})
	}
	b.last = now
	if !commit {
		return stageResult{}
	}
	delete(st.batches, id)
	if eob { // the last stored message says it committed, as nats-server stores it
		last := &b.msgs[len(b.msgs)-1]
		last.Hdr = appendHeader(last.Hdr, hdrBatchCommit, "1")
	}
	if e := st.checkAtomic(b.msgs, now); e != nil {
		return fail(e)
	}
	return stageResult{commit: b.msgs}
}

// checkAtomic applies the publish rules to a batch about to be committed,
// each message seeing the stream as if the ones before it were stored.
// Rules that cannot hold inside a batch (a second expected last sequence,
// an expectation on a subject the batch already wrote) refuse it.
func (st *stream) checkAtomic(msgs []store.BatchMsg, now time.Time) *APIError {
	state := st.store.State()
	ids := make(map[string]bool)
	written := make(map[string]int64) // messages per subject in the batch so far
	var bytes int64
	counters := make(map[string]*counterState) // totals the batch wrote so far
	for i, m := range msgs {
		hdr, subject := m.Hdr, m.Subject
		incr, e := st.checkIncr(hdr, m.Data, false)
		if e != nil {
			return e
		}
		if msgs[i].Hdr, e = st.checkSchedule(subject, hdr, now); e != nil {
			return e
		}
		hdr = msgs[i].Hdr
		if headerValue(hdr, hdrExpectedLastMsgID) != "" {
			return newErr(errAtomicHeader, "header", hdrExpectedLastMsgID)
		}
		if v := headerValue(hdr, hdrExpectedStream); v != "" && v != st.cfg.Name {
			return newErr(errExpectedStream)
		}
		if e := st.ttlDisabled(hdr); e != nil {
			return e
		}
		if _, ok := msgTTL(hdr); !ok {
			return newErr(errMsgTTLInvalid)
		}
		if id := headerValue(hdr, hdrMsgID); id != "" {
			if d, ok := st.dedupe[id]; ids[id] || (ok && now.Sub(d.at) < st.cfg.Duplicates) {
				return newErr(errAtomicDuplicate)
			}
			ids[id] = true
		}
		if v := headerValue(hdr, hdrExpectedLastSeq); v != "" {
			last := state.LastSeq + uint64(i)
			if n, err := strconv.ParseUint(v, 10, 64); err != nil || n != last {
				return newErr(errWrongLastSeq, "seq", strconv.FormatUint(last, 10))
			}
			if i > 0 {
				return newErr(errWrongLastSeqInBatch)
			}
		}
		if v := headerValue(hdr, hdrExpectedSubjSeq); v != "" {
			if written[subject] > 0 {
				return newErr(errWrongLastSeqInBatch)
			}
			var last uint64
			if lm, err := st.store.LoadLast(subject); err == nil {
				last = lm.Seq
			}
			if n, err := strconv.ParseUint(v, 10, 64); err != nil || n != last {
				return newErr(errWrongLastSeq, "seq", strconv.FormatUint(last, 10))
			}
		}
		rollup := headerValue(hdr, hdrRollup)
		if e := st.rollupAllowed(rollup); e != nil {
			return e
		}
		switch {
		case rollup == "sub" && written[subject] > 0:
			return newErr(errRollup, "err", "batch rollup sub invalid")
		case rollup == "all" && i > 0:
			return newErr(errRollup, "err", "batch rollup all invalid")
		}
		if st.cfg.AllowMsgCounter {
			prev, ok := counters[subject]
			if !ok {
				if prev, e = st.lastCounter(subject); e != nil {
					return e
				}
			}
			if msgs[i].Hdr, msgs[i].Data, counters[subject], e = st.counterMsg(subject, hdr, m.Data, incr, prev); e != nil {
				return e
			}
			hdr, m.Data = msgs[i].Hdr, msgs[i].Data
		}
		written[subject]++
		bytes += int64(len(subject) + len(hdr) + len(m.Data))
		if st.cfg.Discard != "new" {
			continue
		}
		if st.cfg.MaxMsgs > 0 && int64(state.Msgs)+int64(i+1) > st.cfg.MaxMsgs {
			return newErr(errStoreFailed, "err", "maximum messages exceeded")
		}
		if st.cfg.MaxBytes > 0 && int64(state.Bytes)+bytes > st.cfg.MaxBytes {
			return newErr(errStoreFailed, "err", "maximum bytes exceeded")
		}
		if st.cfg.DiscardNewPer && st.cfg.MaxMsgsPerSubject > 0 && rollup == "" &&
			int64(st.perSubj[subject])+written[subject] > st.cfg.MaxMsgsPerSubject {
			return newErr(errMaxMsgsPerSubject)
		}
	}
	return nil
}

// commitAtomic stores a checked batch and applies what each message
// implies (rollups, dedupe ids, limits), as storeMsg does for one. It
// returns the sequences the batch got; done reports the last one durable.
func (st *stream) commitAtomic(msgs []store.BatchMsg, now time.Time, done store.DoneFunc) (first, last uint64, e *APIError) {
	ttls := make([]int64, len(msgs)) // checkAtomic refused invalid ones
	for i := range msgs {
		msgs[i].Hdr, ttls[i], _ = st.prepareTTL(msgs[i].Hdr)
	}
	plans, prevInBatch := st.planBatchRepublish(msgs)
	first, err := st.store.AppendBatch(msgs, now.UnixNano(), done)
	if err != nil {
		return 0, 0, newErr(errStoreFailed, "err", err.Error())
	}
	for i, m := range msgs {
		seq := first + uint64(i)
		if plans != nil {
			if j := prevInBatch[i]; j >= 0 {
				plans[i].last = first + uint64(j)
			}
			st.queueRepublish(plans[i], m.Subject, seq, now.UnixNano(), m.Hdr, m.Data)
		}
		st.countSubject(m.Subject, seq)
		st.trackTTL(seq, now.UnixNano(), ttls[i])
		st.applyRollup(headerValue(m.Hdr, hdrRollup), m.Subject, seq)
		st.noteSchedule(seq, m.Subject, m.Hdr, now.UnixNano(), now, false)
		if id := headerValue(m.Hdr, hdrMsgID); id != "" {
			st.rememberID(id, seq, now)
		}
		st.enforceLimits(m.Subject)
	}
	st.noteStored(first)
	st.noteStored(first + uint64(len(msgs)) - 1)
	return first, first + uint64(len(msgs)) - 1, nil
}

// abandonBatches drops batches that saw no message for batchTimeout (part
// of the time input, stream_core.go: tick); their next message is
// answered as an incomplete batch, and the Manager sends the advisory.
func (st *stream) abandonBatches(now time.Time) {
	for id, b := range st.batches {
		if now.Sub(b.last) >= batchTimeout {
			delete(st.batches, id)
			st.fx.abandoned = append(st.fx.abandoned, abandonNote{id, batchTimedOut})
		}
	}
}

// inflightBatches counts the atomic batches staged in every stream and
// the bytes they hold.
func (m *Manager) inflightBatches() (n int, bytes int64) {
	for _, st := range m.streams {
		n += len(st.batches)
		for _, b := range st.batches {
			bytes += b.size
		}
	}
	return n, bytes
}

// publishAtomic handles a message of an atomic batch at now: the
// stream's step with the account's staged batches, then its effects.
func (m *Manager) publishAtomic(r *request, reply, id string, now time.Time) {
	inflight, staged := m.inflightBatches()
	r.st.atomic(id, r.subject, reply, r.hdr, r.data, now, inflight, staged)
	m.afterStore(r.st, now)
}

// atomic is a message of atomic batch id (the input; inflight and staged
// are the account's batches, which the Manager counts): it is staged
// (nats-server's empty reply), refused (the batch is dropped, with its
// BATCH_ABANDONED advisory where nats-server sends one), or it commits
// the batch, stored as one record, whose PubAck names the last message
// and the count.
func (st *stream) atomic(id, subject, reply string, hdr, data []byte, now time.Time, inflight int, staged int64) {
	res := st.stageAtomic(id, subject, hdr, data, now, inflight, staged)
	if res.abandoned != "" {
		st.fx.abandoned = append(st.fx.abandoned, abandonNote{id, res.abandoned})
	}
	switch {
	case res.err != nil:
		st.refuse(reply, res.err)
		return
	case res.commit == nil:
		if reply != "" {
			st.fx.acks = append(st.fx.acks, pubReply{to: reply, empty: true})
		}
		return
	}
	count := uint64(len(res.commit))
	var done store.DoneFunc
	if reply != "" {
		done = st.durable
	}
	_, last, e := st.commitAtomic(res.commit, now, done)
	switch {
	case e != nil:
		st.refuse(reply, e)
	case reply == "":
	case done != nil:
		st.acks.push(ackWait{seq: last, reply: reply, batch: id, count: count})
	default: // a memory store: durable at once
		st.fx.acks = append(st.fx.acks, pubReply{to: reply, ack: PubAck{Stream: st.cfg.Name, Seq: last, Batch: id, Count: count}})
	}
}
