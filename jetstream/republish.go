package jetstream

// Concurrency: runs on the JetStream Manager goroutine only, which owns
// streams and their stores; no locks.

import (
	"bytes"
	"strconv"
	"time"

	"github.com/evnats/evnats/jetstream/store"
	"github.com/evnats/evnats/router"
	subjtr "github.com/evnats/evnats/router/transform"
)

// Republish, as nats-server's: every message a stream stores on a subject
// that the republish source matches is also published, once stored, on
// the destination subject (through a subject transform), with headers
// that say where it is stored: Nats-Stream, Nats-Subject, Nats-Sequence,
// Nats-Time-Stamp (RFC 3339, UTC) and Nats-Last-Sequence (the sequence of
// the previous message on the same subject, 0 if none). With headers_only
// the body is left out and Nats-Msg-Size gives its length.
//
// The store paths (storeMsg, commitAtomic, a mirror's copy) plan a
// republish before they append (the previous sequence on the subject is
// only known then) and queue it after; the Manager publishes the queue in
// stored, or after a tick for markers. Storing returns its side effects
// as data, publishing stays with the Manager.

// RePublish is a stream's republish configuration.
type RePublish struct {
	Source      string `json:"src,omitempty"`
	Destination string `json:"dest"`
	HeadersOnly bool   `json:"headers_only,omitempty"`
}

// Header names of republished messages (and of direct gets in nats-server).
const (
	hdrStream       = "Nats-Stream"
	hdrSubject      = "Nats-Subject"
	hdrSequence     = "Nats-Sequence"
	hdrTimeStamp    = "Nats-Time-Stamp"
	hdrLastSequence = "Nats-Last-Sequence"
	hdrMsgSize      = "Nats-Msg-Size"
)

// outMsg is a message the Manager is to publish.
type outMsg struct {
	subject   string
	hdr, data []byte
}

// republishPlan is what a store path learns before it appends a message.
type republishPlan struct {
	to   string // the republish subject; "": none
	last uint64 // the previous sequence on the message's subject
}

// republishRules checks and completes a republish configuration as
// nats-server does outside pedantic mode: an empty source is every
// subject; the destination may not collide with the stream's own
// subjects (each message would come back); the transform must be valid.
func republishRules(cfg *StreamConfig) *APIError {
	rp := cfg.RePublish
	if rp == nil {
		return nil
	}
	if rp.Source == "" {
		rp.Source = ">"
	}
	if rp.Destination == ">" && rp.Source == ">" && cfg.SubjectTransform != nil &&
		len(cfg.Subjects) == 1 && cfg.SubjectTransform.Source == cfg.Subjects[0] {
		// Republish what the transform stored: the stored subjects are no
		// stream subjects, so this is no cycle.
		rp.Source, rp.Destination = cfg.SubjectTransform.Destination, cfg.SubjectTransform.Destination
	}
	if rp.Destination == "" {
		return nil // as nats-server: accepted, and nothing is republished
	}
	// As written, and as what $n and functions can make: a destination whose
	// function yields a stream subject ("a.{{random(1)}}" is always a.0)
	// would republish into its own stream for ever; nats-server checks it
	// only as written.
	shape := subjtr.Shape(rp.Destination)
	for _, s := range cfg.Subjects {
		if router.SubjectsCollide(rp.Destination, s) || router.SubjectsCollide(shape, s) {
			return newErr(errStreamConfig, "err", "stream configuration for republish destination forms a cycle")
		}
	}
	if _, reason := streamTransform(rp.Source, rp.Destination); reason != "" {
		return newErr(errStreamConfig, "err", "stream configuration for republish with transform from '"+rp.Source+"' to '"+rp.Destination+"' not valid")
	}
	return nil
}

// planRepublish is called before a message is appended on subject.
func (st *stream) planRepublish(subject string) republishPlan {
	if st.republish == nil {
		return republishPlan{}
	}
	to, ok := st.republish.apply(subject)
	if !ok || !router.ValidLiteralSubject(to) {
		return republishPlan{} // as nats-server: an invalid subject stops the republish
	}
	p := republishPlan{to: to}
	if st.perSubj[subject] > 0 {
		if m, err := st.store.LoadLast(subject); err == nil {
			p.last = m.Seq
		}
	}
	return p
}

// planBatchRepublish plans the republish of an atomic batch's messages:
// prevInBatch[i] is the index of the batch's previous message on message
// i's subject (-1: none, the plan's last holds the stored one). Both are
// nil without republish.
func (st *stream) planBatchRepublish(msgs []store.BatchMsg) (plans []republishPlan, prevInBatch []int) {
	if st.republish == nil {
		return nil, nil
	}
	plans, prevInBatch = make([]republishPlan, len(msgs)), make([]int, len(msgs))
	lastIdx := make(map[string]int)
	for i, m := range msgs {
		plans[i] = st.planRepublish(m.Subject)
		prevInBatch[i] = -1
		if j, ok := lastIdx[m.Subject]; ok {
			prevInBatch[i] = j
		}
		lastIdx[m.Subject] = i
	}
	return plans, prevInBatch
}

// queueRepublish queues the republish of message seq, just stored.
func (st *stream) queueRepublish(p republishPlan, subject string, seq uint64, ts int64, hdr, data []byte) {
	if p.to == "" {
		return
	}
	out := make([]byte, 0, len(hdr)+160+len(subject)+len(st.cfg.Name))
	if len(hdr) == 0 {
		out = append(out, "NATS/1.0\r\n"...)
	} else {
		out = append(out, bytes.TrimSuffix(hdr, crlf)...)
		if !bytes.HasSuffix(out, crlf) {
			out = append(out, crlf...)
		}
	}
	line := func(k, v string) { out = append(append(append(append(out, k...), ": "...), v...), "\r\n"...) }
	line(hdrStream, st.cfg.Name)
	line(hdrSubject, subject)
	line(hdrSequence, strconv.FormatUint(seq, 10))
	line(hdrTimeStamp, time.Unix(0, ts).UTC().Format(time.RFC3339Nano))
	line(hdrLastSequence, strconv.FormatUint(p.last, 10))
	if st.cfg.RePublish.HeadersOnly {
		line(hdrMsgSize, strconv.Itoa(len(data)))
		data = nil
	}
	out = append(out, "\r\n"...)
	st.outbox = append(st.outbox, outMsg{subject: p.to, hdr: out, data: data})
}

// flushOutbox publishes what st's stores queued.
func (m *Manager) flushOutbox(st *stream) {
	for i, o := range st.outbox {
		m.host.Publish(o.subject, "", o.hdr, o.data)
		st.outbox[i] = outMsg{}
	}
	st.outbox = st.outbox[:0]
}
