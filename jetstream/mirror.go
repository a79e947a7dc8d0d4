package jetstream

// Concurrency: runs on the JetStream Manager goroutine only, which owns
// every stream, so a link reads its origin's store directly; no locks.

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/evnats/evnats/jetstream/store"
)

// Copying for mirrors and sources. Every stream on this server is owned by
// the Manager goroutine, so a link reads its origin's store in place
// instead of through an internal consumer: no flow control, no acks, no
// heartbeats, and a restart cannot race an in-flight delivery. The copy
// runs in bounded steps (linkStep messages after a publish to the origin;
// catch-up passes of at most linkCatchUp messages or linkSlice, between
// which the Manager serves its queue), so a large backlog never holds the
// Manager for long; the file store's writes still go to its Writer.
//
// Where a link resumes after a restart is derived from what was stored,
// as nats-server does: a mirror holds its origin's sequences, so its last
// sequence is the last one copied; a sourced message carries its origin
// sequence in Nats-Stream-Source, and the newest one of each source is
// found by reading the stream backwards once when it opens. A message
// stored but not yet written when the process died is not on disk, so it
// is copied again; one on disk is not.

const (
	linkStep  = 256                  // messages a link reads at a time
	linkSlice = 5 * time.Millisecond // the most one catch-up pass takes, give or take a step
)

// linkCatchUp is the number of messages all links read in one catch-up
// pass; tests lower it, and turn linkPaced on (passes only on ticks), to
// stop a server in the middle of a copy.
var (
	linkCatchUp atomic.Int64
	linkPaced   atomic.Bool
)

func init() { linkCatchUp.Store(2048) }

// link copies one origin stream's messages into its stream: the stream's
// mirror or one of its sources. Owned by the Manager goroutine.
type link struct {
	cfg    StreamSource
	mirror bool
	iname  string      // sources: the Nats-Stream-Source identity
	trs    []transform // filters and destinations; none: every subject, unchanged
	filter string      // a single filter the store can seek by; "" with several
	next   uint64      // the next origin sequence to look at; 0 until placed
	copied uint64      // the last origin sequence copied; 0: none yet
	lag    uint64      // origin messages from next that this link would copy
	last   time.Time   // last time the origin was there to copy from; zero: never
	err    *APIError   // why copying is not progressing, for stream info
	ident  string      // the origin incarnation copied from (stream.identity); "": not known yet
	ext    *extLink    // set when the origin is in another domain or account (external.go)
}

func newLink(cfg StreamSource, mirror bool) *link {
	l := &link{cfg: cfg, mirror: mirror, iname: cfg.iname(), filter: cfg.FilterSubject}
	if cfg.External != nil {
		l.ext = &extLink{cfg: *cfg.External}
	}
	for _, tc := range cfg.SubjectTransforms {
		t, err := compileTransform(tc)
		if err != nil {
			continue // refused when the config was accepted; a stored one is skipped
		}
		l.trs = append(l.trs, t)
	}
	if len(l.trs) == 1 {
		l.filter = l.trs[0].src
	} else if len(l.trs) > 1 {
		l.filter = ""
	} else if l.filter != "" {
		l.trs = []transform{{src: l.filter}}
	}
	return l
}

// subject is the subject an origin message is stored under, and whether
// the link copies it at all.
func (l *link) subject(subject string) (string, bool) {
	if len(l.trs) == 0 {
		return subject, true
	}
	for i := range l.trs {
		if s, ok := l.trs[i].apply(subject); ok {
			return s, true
		}
	}
	return "", false
}

func (l *link) matches(subject string) bool {
	_, ok := l.subject(subject)
	return ok
}

// setLinks (re)builds st's links from its config, keeping the position of
// a link whose identity is unchanged, then rewires every origin's feeds.
func (m *Manager) setLinks(st *stream) {
	old := st.links
	st.links = nil
	var fresh []*link
	add := func(cfg StreamSource, mirror bool) {
		nl := newLink(cfg, mirror)
		for _, o := range old {
			if o.mirror == mirror && o.iname == nl.iname && (o.ext == nil) == (nl.ext == nil) {
				nl.next, nl.copied, nl.lag, nl.last, nl.ident = o.next, o.copied, o.lag, o.last, o.ident
				if o.ext != nil && !o.ext.closed && nl.ext != nil && o.ext.cfg == nl.ext.cfg {
					nl.ext, o.ext = o.ext, nil // the running consumer goes on
				} // else (a new deliver prefix) the old stops, the new starts where it was
			}
		}
		if nl.next == 0 {
			fresh = append(fresh, nl)
		}
		st.links = append(st.links, nl)
	}
	if st.cfg.Mirror != nil {
		add(*st.cfg.Mirror, true)
	}
	for _, s := range st.cfg.Sources {
		if s != nil { // refused from clients; a config on disk is not trusted to be clean
			add(*s, false)
		}
	}
	for _, o := range old {
		m.stopExternal(o)
	}
	st.resumeSources(fresh)
	m.touchStream(st) // a new or changed config: its deadlines again
	m.rewire()
	for _, l := range st.links {
		if l.ext != nil {
			m.startExternal(st, l)
		}
	}
}

// stopLinks ends st's external links, when st is deleted or the
// Manager stops.
func (m *Manager) stopLinks(st *stream) {
	for _, l := range st.links {
		m.stopExternal(l)
	}
}

// resumeSources places new source links after the newest message each one
// stored, read from the Nats-Stream-Source headers, newest first.
func (st *stream) resumeSources(links []*link) {
	want := map[string]*link{}
	for _, l := range links {
		if !l.mirror {
			want[l.iname] = l
		}
	}
	s := st.store.State()
	for seq := s.LastSeq; len(want) > 0 && seq >= s.FirstSeq && seq > 0; seq-- {
		msg, err := st.store.Load(seq)
		if err != nil {
			continue
		}
		v := headerValue(msg.Hdr, hdrStreamSource)
		if v == "" {
			continue
		}
		if in, oseq, ident, ok := parseSourceHeader(v); ok && want[in] != nil {
			want[in].next, want[in].copied, want[in].ident = oseq+1, oseq, ident
			delete(want, in)
		}
	}
}

// rewire recomputes which streams copy from each stream, after streams
// or their links changed.
func (m *Manager) rewire() {
	m.linksChanged = true // looked at once, at once (armStreams)
	for _, st := range m.streams {
		st.feeds = st.feeds[:0]
	}
	for _, d := range m.streams {
		for _, l := range d.links {
			o := m.streams[l.cfg.Name]
			if o == nil || o == d || l.ext != nil {
				continue
			}
			if n := len(o.feeds); n == 0 || o.feeds[n-1] != d {
				o.feeds = append(o.feeds, d)
			}
		}
	}
}

// feed copies what origin just stored into the streams that mirror or
// source it, and so on down the chain (cycles are refused at config time;
// feeding marks the streams on the way so one can never recur).
func (m *Manager) feed(origin *stream, now time.Time) {
	if len(origin.feeds) == 0 || origin.feeding {
		return
	}
	origin.feeding = true
	defer func() { origin.feeding = false }()
	for _, d := range origin.feeds {
		for _, l := range d.links {
			if l.cfg.Name == origin.cfg.Name && l.ext == nil {
				m.pull(d, l, now, linkStep)
			}
		}
	}
}

// tickLinks retries missing origins and catches up lagging links, all of
// them together reading at most linkCatchUp messages and for at most
// linkSlice, so the Manager is never held for long however many links lag
// (map order varies, so no link starves). It reports whether a budget ran
// out: the Manager then serves its queue and calls again without waiting
// for the next tick.
func (m *Manager) tickLinks(now time.Time) (behind bool) {
	budget := int(linkCatchUp.Load())
	deadline := now.Add(linkSlice)
	for _, d := range m.streams {
		for _, l := range d.links {
			if budget > 0 && time.Now().After(deadline) {
				budget = 0
			}
			n := m.pull(d, l, now, min(budget, linkStep))
			budget -= n
			behind = behind || l.ext == nil && l.lag > 0 && l.err == nil && !d.cfg.Sealed // else nothing would progress
		}
	}
	return behind && !linkPaced.Load()
}

// catchUp runs tickLinks from the Manager's loop while links are behind.
func (m *Manager) catchUp() {
	defer m.recoverTick()
	if m.linksBehind {
		m.linksBehind = m.tickLinks(time.Now())
		if m.linksBehind {
			m.signal()
		}
	}
}

// pull copies messages of l's origin into d, reading at most budget of
// them, and returns how many it read; with no budget it only refreshes
// l's error and lag.
func (m *Manager) pull(d *stream, l *link, now time.Time, budget int) int {
	if l.ext != nil {
		return 0 // its origin consumer delivers (external.go)
	}
	o := m.streams[l.cfg.Name]
	if o == nil || o == d {
		l.err = newErr(errStreamNotFound) // as nats-server shows it, retried every tick
		return 0
	}
	l.err = nil
	l.last = now
	if id := o.identity(); l.ident != id {
		if l.ident != "" && !l.mirror {
			// The origin was deleted and created again (its sequences
			// start over): a source starts over from its configured start,
			// as nats-server 2.15 does. A mirror keeps its sequences, so it
			// goes on after its last one, as there.
			l.next, l.copied = 0, 0
		}
		l.ident = id
	}
	if l.next == 0 {
		l.next = startSeq(l, d, o)
	}
	copied, n := 0, 0
	for ; n < budget && !d.cfg.Sealed; n++ {
		msg, err := o.store.LoadNext(l.filter, l.next)
		if errors.Is(err, store.ErrNotFound) {
			// Nothing more matches: look from the origin's end next time,
			// or a rare filter rescans the origin on every publish.
			l.next = max(l.next, o.store.State().LastSeq+1)
			break
		}
		if err != nil {
			l.err = l.setupErr(m.publicErr(err))
			break
		}
		subject, ok := l.subject(msg.Subject)
		if !ok {
			l.next = msg.Seq + 1
			continue
		}
		if e := m.copyMsg(d, l, msg, subject, now); e != nil {
			l.err = m.public(e)
			break // retried on the next tick: nothing is skipped
		}
		l.next, l.copied = msg.Seq+1, msg.Seq
		copied++
	}
	l.lag = o.store.NumPending(l.next, l.countMatch())
	if copied > 0 {
		m.afterStore(d, now)
	}
	return n
}

func (l *link) countMatch() func(string) bool {
	if len(l.trs) == 0 {
		return nil
	}
	return l.matches
}

// copyMsg stores one origin message in d: a mirror under the origin's
// sequence and time, a source under d's next sequence with the
// Nats-Stream-Source header, through the publish rules (dedupe by
// Nats-Msg-Id, limits, discard).
func (m *Manager) copyMsg(d *stream, l *link, msg *store.Msg, subject string, now time.Time) *APIError {
	subject = d.ingestSubject(subject) // d's own subject_transform, after the link's
	if m.overLimit(d, len(subject)+len(msg.Hdr)+len(msg.Data)) {
		return newErr(errInsufficient)
	}
	if !l.mirror {
		hdr := sourcedHeader(msg.Hdr, sourceHeaderValue(l.iname, msg.Seq, msg.Subject, l.ident))
		if res := d.storeMsg(subject, hdr, msg.Data, now, true, nil); res.ack != nil && !res.ack.Duplicate {
			return res.ack.Error
		}
		return nil
	}
	if e := d.mirrorMsg(msg, subject); e != nil {
		return newErr(errStoreFailed, "err", m.publicErr(e))
	}
	return nil
}

// startSeq is where a link that has stored nothing yet begins: after the
// mirror's last message, else the configured start, else the origin's
// first message.
func startSeq(l *link, d *stream, o *stream) uint64 {
	if s := d.store.State(); l.mirror && s.LastSeq > 0 {
		return s.LastSeq + 1
	}
	switch {
	case l.cfg.OptStartSeq > 0:
		return l.cfg.OptStartSeq
	case l.cfg.OptStartTime != nil:
		return seqAtTime(o, l.cfg.OptStartTime.UnixNano())
	}
	return 1
}

// seqAtTime is the first origin sequence stored at or after at (unix ns),
// by binary search: stored times do not decrease with the sequence, and a
// linear read of a large origin would hold the Manager.
func seqAtTime(o *stream, at int64) uint64 {
	s := o.store.State()
	after := func(seq uint64) bool { // the first message from seq is at or after at (or there is none)
		m, err := o.store.LoadNext("", seq)
		return err != nil || m.Time >= at
	}
	lo, hi := s.FirstSeq, s.LastSeq+1
	for lo < hi {
		mid := lo + (hi-lo)/2
		if after(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	if m, err := o.store.LoadNext("", lo); err == nil {
		return m.Seq
	}
	return s.LastSeq + 1
}

func (l *link) setupErr(text string) *APIError {
	if l.mirror {
		return newErr(errMirrorSetup, "err", text)
	}
	return newErr(errSourceSetup, "err", text)
}

// info is l's state for stream info.
func (l *link) info(now time.Time) *StreamSourceInfo {
	si := &StreamSourceInfo{Name: l.cfg.Name, External: l.cfg.External, Lag: l.lag, Active: -1, Error: l.err, FilterSubject: l.cfg.FilterSubject,
		SubjectTransforms: l.cfg.SubjectTransforms}
	if !l.last.IsZero() {
		si.Active = now.Sub(l.last)
	}
	if !l.mirror {
		si.Seq = l.copied // as nats-server: a mirror's are its own
	}
	return si
}

// linkInfo fills a stream info's mirror and sources.
func (st *stream) linkInfo(info *StreamInfo, now time.Time) {
	for _, l := range st.links {
		if l.mirror {
			info.Mirror = l.info(now)
		} else {
			info.Sources = append(info.Sources, l.info(now))
		}
	}
}
