package jetstream

// Concurrency: runs on the JetStream Manager goroutine only, which owns
// streams and their stores; no locks. The one exception is the function
// durableFor makes, which the store's Writer goroutine calls: it only
// posts to the Manager's queue (Manager.enqueueDone).

import "github.com/evnats/evnats/jetstream/store"

// PubAcks that wait for their message to be durable. A file store's
// append is durable once the Writer has written it (and synced it, per
// policy); the Writer then calls the stream's durable function, which
// posts the answer back to the Manager's queue, and the Manager, on its
// own goroutine, encodes the PubAcks it releases and publishes them. The
// shared Writer goroutine so does no JSON encoding and no routing, and
// publishing an ack allocates no closure: what the ack says waits here, in
// sequence order, as data.

// ackWait is a PubAck to send once message seq is durable.
type ackWait struct {
	seq   uint64 // the message (an atomic batch: its last) that must be durable first
	reply string
	val   string // a counter's new total
	batch string // an atomic batch's id, with count its size
	count uint64
}

// ackQueue holds the PubAcks waiting for the store, in sequence order (a
// store completes its appends in order).
type ackQueue struct{ fifo[ackWait] }

// release takes the acks whose message is durable now that seq is, in
// order, and calls fn for each.
func (a *ackQueue) release(seq uint64, fn func(w *ackWait)) {
	for a.len() > 0 && a.front().seq <= seq {
		fn(a.front())
		a.pop()
	}
}

// durableFor returns a stream's completion function: one per stream, made
// when it opens, so a publish passes it to the store without allocating.
func (m *Manager) durableFor(st *stream) store.DoneFunc {
	return func(seq uint64, err error) { m.enqueueDone(request{durable: st, seq: seq, err: err}) }
}

// completed is a store completion back on the Manager goroutine: the acks
// waiting for message seq (and those before it) go out, an error ack for
// seq itself when its write failed.
func (m *Manager) completed(r *request) {
	st := r.durable
	name := st.cfg.Name
	st.acks.release(r.seq, func(w *ackWait) {
		ack := &PubAck{Stream: name, Seq: w.seq, Value: w.val, Domain: m.cfg.Domain, Batch: w.batch, Count: w.count}
		if r.err != nil && w.seq == r.seq {
			ack = &PubAck{Stream: name, Error: m.public(newErr(errStoreFailed, "err", m.publicErr(r.err)))}
		}
		m.host.Publish(w.reply, "", nil, pubAckJSON(ack))
	})
}
