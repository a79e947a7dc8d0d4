package jetstream

// Concurrency: runs on the JetStream Manager goroutine, like the stream it
// stores for (fastPublish is one of the stream's steps, stream_core.go);
// the store's done callbacks post to the Manager's queue
// (Manager.enqueueDone), so durableTail is the Manager's too.

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/evnats/evnats/jetstream/store"
)

// Fast batch publish (nats-server 2.14, API level 4, allow_batched): the
// batch travels in the reply subject,
//
//	<inbox>.<batch id>.<flow>.<gap mode>.<batch seq>.<op>.$FI
//
// and each message is stored as it comes, as a plain publish would be; no
// staging, no all-or-none. The server answers on that reply subject with
// flow acks ({"type":"ack","seq":N,"msgs":M}: messages up to batch
// sequence N are stored, the next ack comes M messages on), gap reports,
// per-message errors, and one PubAck with batch and count when the batch
// ends: a commit message, an end-of-batch marker (not stored), a gap in
// "fail" mode or an error. Acks for stored messages are sent only once the
// store made them durable, as a single publish's ack is.
const (
	fastSuffix = ".$FI"

	// nats-server's defaults.
	maxFastInflightPerStream = 1000
	maxFastInflightTotal     = 50_000
	maxFastFlow              = 500 // the widest gap between flow acks the server grants
	defaultFastFlow          = 10  // a flow token that is not a positive number
)

// Operations, the reply subject's next to last token.
const (
	fastOpStart = iota
	fastOpAppend
	fastOpCommit
	fastOpCommitEOB
	fastOpPing
)

// fastReply is what a fast batch message's reply subject says.
type fastReply struct {
	id    string
	flow  uint16 // the widest gap between flow acks the client allows
	gapOK bool
	seq   uint64
	op    int
}

// parseFastReply reads a reply subject ending in .$FI; ok is false when
// its tokens do not form the pattern.
func parseFastReply(reply string) (fr fastReply, ok bool) {
	rest, _ := strings.CutSuffix(reply, fastSuffix)
	var t [5]string // the last five tokens, cut from the end: no allocation per message
	for i := len(t) - 1; i >= 0; i-- {
		j := strings.LastIndexByte(rest, '.')
		if j < 0 { // an inbox token, then the five the batch needs
			return fr, false
		}
		t[i], rest = rest[j+1:], rest[:j]
	}
	op, err := strconv.Atoi(t[4])
	if err != nil || op < fastOpStart || op > fastOpPing || strings.TrimLeft(t[4], "0123456789") != "" {
		return fr, false
	}
	seq, err := strconv.ParseUint(t[3], 10, 64)
	switch {
	case err != nil || seq == 0 || seq == math.MaxUint64,
		op == fastOpCommitEOB && seq == 1, // a batch of nothing
		op == fastOpStart && seq != 1,
		op == fastOpAppend && seq == 1:
		return fr, false
	}
	if t[2] != "fail" && t[2] != "ok" {
		return fr, false
	}
	flow := int64(defaultFastFlow)
	if t[1] != "" && strings.TrimLeft(t[1], "0123456789") == "" { // digits only, as nats-server reads it
		if n, err := strconv.ParseInt(t[1], 10, 64); err != nil {
			flow = math.MaxUint16 // out of range: as large as a flow goes
		} else if n > 0 {
			flow = min(n, math.MaxUint16)
		}
	}
	return fastReply{id: t[0], flow: uint16(flow), gapOK: t[2] == "ok", seq: seq, op: op}, true
}

// fastBatch is one fast batch in progress. Owned by the Manager goroutine;
// its tail is shared with the store's done callbacks.
type fastBatch struct {
	gapOK   bool
	maxFlow uint16 // the client's flow: acks never further apart
	flow    uint16 // messages between flow acks now
	lseq    uint64 // the highest batch sequence taken (stored, skipped or a gap)
	fseq    uint64 // the batch sequence the last flow ack confirmed
	sseq    uint64 // the stream sequence of the batch's last stored message
	last    time.Time
	tail    *durableTail
}

// durableTail holds replies that may go only once the batch's messages
// appended so far are durable, and the replies after them, which wait
// behind them so that the batch's replies leave in the order its steps
// made them (a gap report never passes the flow ack before it, a
// refusal of a message after the batch ended never passes its PubAck).
// Owned by the Manager goroutine: it appends and queues, and the store's
// completions, posted back to its queue, release.
type durableTail struct {
	appended uint64 // the last batch sequence appended
	durable  uint64 // the last batch sequence the store made durable
	queued   []queuedReply
	// Set when the batch ended with replies still queued: its stream
	// keeps the tail in fastEnded under id until they are sent.
	ended *stream
	id    string
}

type queuedReply struct {
	at uint64 // batch sequence that must be durable first
	f  fastSend
}

// JSON bodies of the flow messages, as nats-server words them.
func flowAckJSON(seq uint64, msgs uint16) []byte {
	return []byte(`{"type":"ack","seq":` + strconv.FormatUint(seq, 10) + `,"msgs":` + strconv.Itoa(int(msgs)) + `}`)
}

func flowGapJSON(expected, got uint64) []byte {
	return []byte(`{"type":"gap","last_seq":` + strconv.FormatUint(expected, 10) + `,"seq":` + strconv.FormatUint(got, 10) + `}`)
}

func flowErrJSON(seq uint64, e *APIError) []byte {
	return mustJSON(struct {
		Type  string    `json:"type"`
		Seq   uint64    `json:"seq"`
		Error *APIError `json:"error"`
	}{"err", seq, e})
}

// flowDue reports whether the batch taken up to lseq is owed a flow ack,
// and if so moves fseq there (one ack for several steps) and widens or
// narrows the flow toward the stream's share: nats-server's 500 messages
// split among the stream's fast batches, never beyond the client's flow.
func (b *fastBatch) flowDue(batches int) bool {
	am := uint64(b.flow)
	if b.lseq < b.fseq+am {
		return false
	}
	b.fseq += (b.lseq - b.fseq) / am * am
	limit := min(uint16(max(maxFastFlow/max(batches, 1), 1)), b.maxFlow)
	switch {
	case b.flow < limit:
		b.flow = min(b.flow*2, limit)
	case b.flow > limit:
		b.flow = max(b.flow/2, limit)
	}
	return true
}

// inflightFast counts the fast batches in progress in every stream.
func (m *Manager) inflightFast() int {
	n := 0
	for _, st := range m.streams {
		n += len(st.fast)
	}
	return n
}

// abandonFast drops fast batches that saw no message for batchTimeout;
// their next message (or ping) is answered as an unknown batch.
func (st *stream) abandonFast(now time.Time) {
	for id, b := range st.fast {
		if now.Sub(b.last) >= batchTimeout {
			delete(st.fast, id)
		}
	}
}

// whenDurable sends data on reply once every message the batch appended
// so far is durable: now (an effect) if they are, else from the store's
// completion (Manager.fastDone).
func (st *stream) whenDurable(reply string, t *durableTail, data []byte) {
	if t.durable < t.appended {
		t.queued = append(t.queued, queuedReply{at: t.appended, f: fastSend{to: reply, data: data}})
		return
	}
	st.inOrder(t, fastSend{to: reply, data: data})
}

// inOrder sends f now (an effect) unless replies of the batch wait for
// the store: then it waits behind them.
func (st *stream) inOrder(t *durableTail, f fastSend) {
	if n := len(t.queued); n > 0 {
		t.queued = append(t.queued, queuedReply{at: t.queued[n-1].at, f: f})
		return
	}
	st.fx.fast = append(st.fx.fast, f)
}

// ended keeps the tail of batch id, which ended with replies queued, so
// that a later message of that id is answered after them.
func (st *stream) ended(id string, t *durableTail) {
	if len(t.queued) == 0 {
		return
	}
	if st.fastEnded == nil {
		st.fastEnded = make(map[string]*durableTail)
	}
	t.ended, t.id = st, id
	st.fastEnded[id] = t
}

// fastSend is a reply a fast batch's step asks the Manager to send, in
// the order the step made them: data as it is, or a PubAck or a flow
// error whose error the Manager words for clients first (Manager.public).
type fastSend struct {
	to      string
	data    []byte
	ack     *PubAck
	seq     uint64    // the batch sequence flowErr is about
	flowErr *APIError // a message that was not stored: {"type":"err",...}
}

// sendFast performs a fast batch step's replies (afterStore).
func (m *Manager) sendFast(sends []fastSend) {
	for i := range sends {
		m.sendOneFast(&sends[i])
	}
	clear(sends)
}

// sendOneFast sends one fast batch reply.
func (m *Manager) sendOneFast(f *fastSend) {
	data := f.data
	switch {
	case f.ack != nil:
		m.public(f.ack.Error)
		data = mustJSON(f.ack)
	case f.flowErr != nil:
		data = flowErrJSON(f.seq, m.public(f.flowErr))
	}
	m.host.Publish(f.to, "", nil, data)
}

// fastDurableFor returns a file stream's completion maker for fast batch
// messages: each completion posts back to the Manager's queue, where
// fastDone releases the replies that waited for it.
func (m *Manager) fastDurableFor() func(reply string, t *durableTail, seq uint64) store.DoneFunc {
	return func(reply string, t *durableTail, seq uint64) store.DoneFunc {
		return func(_ uint64, err error) { m.enqueueDone(request{fast: t, reply: reply, seq: seq, err: err}) }
	}
}

// fastDone is a fast batch message's store completion, on the Manager
// goroutine (posted back by the Writer): it releases the replies that
// waited for it.
func (m *Manager) fastDone(reply string, t *durableTail, seq uint64, err error) {
	n := 0
	if err != nil {
		e := m.public(newErr(errStoreFailed, "err", m.publicErr(err)))
		m.host.Publish(reply, "", nil, flowErrJSON(seq, e))
		// What waited for seq would say it is stored: never sent, and
		// not kept for ever (nothing else releases it).
		for n < len(t.queued) && t.queued[n].at <= seq {
			n++
		}
		clear(t.queued[:n])
		t.queued = t.queued[n:]
	} else {
		t.durable = max(t.durable, seq)
		for n < len(t.queued) && t.queued[n].at <= t.durable {
			n++
		}
		for i := range n {
			m.sendOneFast(&t.queued[i].f)
		}
		clear(t.queued[:n])
		t.queued = t.queued[n:]
	}
	if len(t.queued) == 0 && t.ended != nil && t.ended.fastEnded[t.id] == t {
		delete(t.ended.fastEnded, t.id)
	}
}

// publishFast handles a message whose reply subject ends in .$FI: the
// stream's step (fastPublish), then its effects.
func (m *Manager) publishFast(r *request) {
	now := time.Now()
	r.st.fastPublish(r.reply, r.subject, r.hdr, r.data, now, m.inflightFast)
	m.afterStore(r.st, now)
}

// fastPublish is the step for a fast batch's message, with nats-server's
// checks in its order; inflight counts the fast batches in progress in
// every stream (the server-wide limit is the Manager's to count), called
// only when a batch starts: a scan of the streams per message would cost
// every batch's message the server's stream count. It
// stores the message, keeps the batch's state and records its replies in
// st.fx.fast, or, for replies that wait for the store, in the batch's
// durable tail.
func (st *stream) fastPublish(reply, subject string, hdr, data []byte, now time.Time, inflight func() int) {
	name := st.cfg.Name
	canRespond := !st.cfg.NoAck
	refuse := func(e *APIError) {
		if canRespond {
			st.fx.fast = append(st.fx.fast, fastSend{to: reply, ack: &PubAck{Stream: name, Error: e}})
		}
	}
	refuseAfter := func(id string, e *APIError) { // after what batch id still has queued
		if t := st.fastEnded[id]; t != nil && canRespond {
			st.inOrder(t, fastSend{to: reply, ack: &PubAck{Stream: name, Error: e}})
			return
		}
		refuse(e)
	}
	if st.cfg.Sealed {
		refuse(newErr(errSealed))
		return
	}
	if st.cfg.MaxMsgSize > 0 && int64(len(hdr)+len(data)) > int64(st.cfg.MaxMsgSize) {
		refuse(newErr(errMsgTooBig))
		return
	}
	if !st.cfg.AllowBatched {
		refuse(newErr(errFastDisabled))
		return
	}
	fr, ok := parseFastReply(reply)
	if !ok {
		refuse(newErr(errFastPattern))
		return
	}
	if len(fr.id) > maxBatchIDLen {
		refuse(newErr(errFastBatchID))
		return
	}
	b := st.fast[fr.id]
	if b != nil && now.Sub(b.last) >= batchTimeout {
		delete(st.fast, fr.id) // abandoned; the time input had not got to it yet
		b = nil
	}
	if b == nil {
		if fr.seq != 1 || fr.op == fastOpPing {
			refuseAfter(fr.id, newErr(errFastUnknown))
			return
		}
		if len(st.fast)+1 > maxFastInflightPerStream || inflight()+1 > maxFastInflightTotal {
			refuse(newErr(errFastInflight))
			return
		}
		if st.fast == nil {
			st.fast = make(map[string]*fastBatch)
		}
		b = &fastBatch{gapOK: fr.gapOK, maxFlow: fr.flow, flow: min(maxFastFlow, fr.flow), tail: &durableTail{}}
		if len(st.fast) > 0 {
			b.flow = 1 // others publish too: start slow, flowDue widens
		}
		st.fast[fr.id] = b
		st.hintWait(now.Add(batchTimeout))
	}
	b.last = now
	send := func(data []byte) { st.inOrder(b.tail, fastSend{to: reply, data: data}) }
	ack := func() { st.whenDurable(reply, b.tail, flowAckJSON(b.fseq, b.flow)) }

	if fr.op == fastOpPing { // the client heard nothing for a while: say where the batch is
		if fr.seq > b.lseq {
			send(flowGapJSON(b.lseq+1, fr.seq+1))
			if !b.gapOK {
				st.endFast(fr.id, b, reply)
				return
			}
			b.lseq = fr.seq
			b.flowDue(len(st.fast))
		}
		ack()
		return
	}
	b.lseq++
	if fr.seq != b.lseq {
		send(flowGapJSON(b.lseq, fr.seq))
		if !b.gapOK || fr.seq < b.lseq { // lost messages in fail mode, or one seen twice
			b.lseq--
			st.endFast(fr.id, b, reply)
			return
		}
		b.lseq = fr.seq
	}
	if fr.op == fastOpCommitEOB { // the marker is no message
		b.lseq--
		st.endFast(fr.id, b, reply)
		return
	}
	commit := fr.op == fastOpCommit
	if fr.seq == 1 && canRespond && !commit {
		send(flowAckJSON(0, b.flow)) // the first reply: the flow the client is granted
	}
	tail, seq := b.tail, fr.seq
	var done store.DoneFunc // a memory store: durable at once
	if st.fastDurable != nil {
		done = st.fastDurable(reply, tail, seq)
	}
	res := st.storeMsg(subject, hdr, data, now, false, done)
	if !res.pending && res.ack.Duplicate { // skipped, but counts as taken: a commit's too
		if b.flowDue(len(st.fast)) {
			ack()
		}
		if !commit {
			return
		}
	}
	// The batch's own answers (the commit's PubAck, a first message's
	// refusal) go on a no_ack stream too, as nats-server's do; only the
	// refusals before a batch exists and the first flow ack heed no_ack.
	switch {
	case res.pending:
		tail.appended = seq
		if done == nil {
			tail.durable = seq
		}
		b.sseq = st.store.State().LastSeq
		if commit {
			delete(st.fast, fr.id)
			st.whenDurable(reply, tail, mustJSON(&PubAck{Stream: name, Seq: b.sseq, Batch: fr.id, Count: seq, Domain: st.domain}))
			st.ended(fr.id, tail)
		} else if b.flowDue(len(st.fast)) {
			ack()
		}
	case !b.gapOK && b.lseq == 1: // the first message failed: answered as a single publish
		delete(st.fast, fr.id)
		if res.ack.Duplicate {
			res.ack.Batch, res.ack.Count = fr.id, seq
		}
		a := *res.ack
		st.inOrder(tail, fastSend{to: reply, ack: &a})
		st.ended(fr.id, tail)
	default:
		if !res.ack.Duplicate {
			st.inOrder(tail, fastSend{to: reply, seq: seq, flowErr: res.ack.Error})
			if b.gapOK && !commit {
				return // the batch goes on without it
			}
			b.lseq--
		}
		st.endFast(fr.id, b, reply)
	}
}

// endFast ends a batch before or without a stored commit: its PubAck
// names the last stored message and counts the batch sequences taken.
func (st *stream) endFast(id string, b *fastBatch, reply string) {
	delete(st.fast, id)
	st.whenDurable(reply, b.tail, mustJSON(&PubAck{Stream: st.cfg.Name, Seq: b.sseq, Batch: id, Count: b.lseq, Domain: st.domain}))
	st.ended(id, b.tail)
}
