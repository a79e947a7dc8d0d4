package jetstream

// Concurrency: everything here runs on the JetStream Manager goroutine
// (or whoever holds Manager.own), except the callbacks of the internal
// subscriptions and the health timer, which copy what they got and queue
// it for the Manager (request.run); no locks of its own.

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/evnats/evnats/jetstream/store"
	"github.com/evnats/evnats/router"
)

// Mirrors and sources of a stream in another JetStream domain or account
// ("external": {"api": "$JS.edge.API"}), as nats-server copies them: the
// origin is not on this server, so the link creates an ephemeral push
// consumer on it through the API prefix (ack none, flow control, a 1 s
// idle heartbeat, removed by the origin 10 s after the link goes away)
// and stores what it delivers. The ack reply of each message names its
// origin sequence, time and pending count; a consumer sequence that skips
// one, a heartbeat that shows messages this side never got, or 3 s of
// silence recreate the consumer from the last stored origin sequence, so
// nothing is lost or copied twice.

// ExternalStream names the API prefix of another domain's (or account's)
// JetStream, and the prefix its deliveries arrive under.
type ExternalStream struct {
	APIPrefix     string `json:"api"`
	DeliverPrefix string `json:"deliver"`
}

const (
	extHeartbeat = time.Second      // the origin consumer's idle heartbeat
	extSilence   = 3 * extHeartbeat // no message nor heartbeat for this long: recreate
	extCheck     = time.Second      // how often a link looks at its health
	extCreate    = 5 * time.Second  // an unanswered create is sent again after this
	extInactive  = 10 * time.Second // the origin removes a consumer nobody listens to
)

// extLink is the consumer state of a link whose origin is external.
// Owned by the Manager goroutine.
type extLink struct {
	cfg      ExternalStream
	deliver  string    // the deliver subject of the current consumer; "": none
	consumer string    // its name on the origin
	created  bool      // the origin confirmed the consumer
	sent     time.Time // when the create was sent
	seen     time.Time // last message or heartbeat from the origin
	dseq     uint64    // last consumer sequence stored
	unsub    func()
	unsubRep func() // the create's reply inbox, until it is answered
	timer    *time.Timer
	closed   bool
}

// externalRules checks a mirror's or source's external prefixes as
// nats-server does.
func externalRules(ext *ExternalStream, subjects []string) *APIError {
	if ext == nil {
		return nil
	}
	if p := ext.DeliverPrefix; p != "" {
		if !router.ValidLiteralSubject(p) {
			return newErr(errExtDeliverSubj, "prefix", p)
		}
		for _, s := range subjects { // the stream would store the deliveries it copies (nats-server does not look)
			if router.SubjectsCollide(s, p+".>") {
				return newErr(errExtDeliverOverlap, "prefix", p, "subject", s)
			}
		}
	}
	if p := ext.APIPrefix; p != "" {
		if !router.ValidLiteralSubject(p) {
			return newErr(errStreamConfig, "err", "stream external api prefix "+strconv.Quote(p)+" must be a valid subject without wildcards")
		}
		if router.SubjectsCollide(p, "$JS.API") {
			return newErr(errExtAPIOverlap, "prefix", p, "subject", "$JS.API")
		}
	}
	return nil
}

// startExternal begins (or resumes) copying for an external link and arms
// its health check.
func (m *Manager) startExternal(d *stream, l *link) {
	if l.ext.timer == nil {
		m.checkExternal(d, l)
	}
}

// stopExternal ends an external link: its subscription, its timer, and
// (best effort) its consumer on the origin.
func (m *Manager) stopExternal(l *link) {
	if l.ext == nil || l.ext.closed {
		return
	}
	l.ext.closed = true
	if l.ext.timer != nil {
		l.ext.timer.Stop()
	}
	m.dropExtConsumer(l)
}

func (m *Manager) dropExtConsumer(l *link) {
	e := l.ext
	if e.unsub != nil {
		e.unsub()
		e.unsub = nil
	}
	if e.unsubRep != nil { // a create nobody answered: its inbox goes too
		e.unsubRep()
		e.unsubRep = nil
	}
	if e.consumer != "" && e.created {
		m.host.Publish(e.cfg.APIPrefix+".CONSUMER.DELETE."+l.cfg.Name+"."+e.consumer, "", nil, nil)
	}
	e.deliver, e.consumer, e.created = "", "", false
}

// current reports whether l is still one of d's links, holding its
// consumer, and d still the stream of its name: queued work for a link
// that went away is dropped.
func (m *Manager) current(d *stream, l *link) bool {
	return l.ext != nil && m.extLinkOf(d, l.ext) == l
}

// extLinkOf is the link of d that holds e now: a stream update hands a
// running consumer (e) to the new link that replaces the old, so the
// callbacks armed for it look the link up rather than keep the old one.
// nil when e's link went away.
func (m *Manager) extLinkOf(d *stream, e *extLink) *link {
	if m.streams[d.cfg.Name] != d || e.closed {
		return nil
	}
	for _, x := range d.links {
		if x.ext == e {
			return x
		}
	}
	return nil
}

// checkExternal is the link's health check: create the consumer when
// there is none (or a create went unanswered), recreate it after
// silence, then look again in extCheck.
func (m *Manager) checkExternal(d *stream, l *link) {
	if !m.current(d, l) {
		return
	}
	e, now := l.ext, time.Now()
	switch {
	case d.cfg.Sealed:
	case e.deliver == "" || !e.created && now.Sub(e.sent) >= extCreate:
		m.createExtConsumer(d, l, now)
	case e.created && now.Sub(e.seen) >= extSilence:
		m.createExtConsumer(d, l, now)
	}
	e.timer = time.AfterFunc(extCheck, func() {
		m.enqueue(request{run: func() {
			if l := m.extLinkOf(d, e); l != nil {
				m.checkExternal(d, l)
			}
		}})
	})
}

// extConsumerConfig is the consumer a link asks the origin for.
type extConsumerConfig struct {
	Name              string     `json:"name"`
	DeliverSubject    string     `json:"deliver_subject"`
	DeliverPolicy     string     `json:"deliver_policy"`
	OptStartSeq       uint64     `json:"opt_start_seq,omitempty"`
	OptStartTime      *time.Time `json:"opt_start_time,omitempty"`
	AckPolicy         string     `json:"ack_policy"`
	MaxDeliver        int        `json:"max_deliver"`
	FilterSubject     string     `json:"filter_subject,omitempty"`
	FilterSubjects    []string   `json:"filter_subjects,omitempty"`
	Heartbeat         int64      `json:"idle_heartbeat"`
	FlowControl       bool       `json:"flow_control"`
	InactiveThreshold int64      `json:"inactive_threshold"`
	Replicas          int        `json:"num_replicas"`
	MemoryStorage     bool       `json:"mem_storage"`
}

// createExtConsumer replaces the link's consumer with one that starts
// after the last origin message stored.
func (m *Manager) createExtConsumer(d *stream, l *link, now time.Time) {
	m.dropExtConsumer(l)
	e := l.ext
	kind := "S"
	if l.mirror {
		kind = "M"
	}
	token := newPinID()
	e.deliver = "$JS." + kind + "." + token
	if e.cfg.DeliverPrefix != "" {
		e.deliver = e.cfg.DeliverPrefix + "." + kind + "." + token
	}
	e.consumer, e.created, e.sent, e.seen, e.dseq = token, false, now, now, 0
	cc := extConsumerConfig{Name: token, DeliverSubject: e.deliver, DeliverPolicy: "all", AckPolicy: "none",
		MaxDeliver: 1, Heartbeat: int64(extHeartbeat), FlowControl: true, InactiveThreshold: int64(extInactive),
		Replicas: 1, MemoryStorage: true}
	next := l.copied + 1
	if l.mirror {
		next = d.store.State().LastSeq + 1
	}
	switch {
	case next > 1:
		cc.DeliverPolicy, cc.OptStartSeq = "by_start_sequence", next
	case l.cfg.OptStartSeq > 0:
		cc.DeliverPolicy, cc.OptStartSeq = "by_start_sequence", l.cfg.OptStartSeq
	case l.cfg.OptStartTime != nil:
		cc.DeliverPolicy, cc.OptStartTime = "by_start_time", l.cfg.OptStartTime
	}
	switch {
	case l.cfg.FilterSubject != "":
		cc.FilterSubject = l.cfg.FilterSubject
	case len(l.cfg.SubjectTransforms) == 1:
		cc.FilterSubject = orAll(l.cfg.SubjectTransforms[0].Source)
	default:
		for _, t := range l.cfg.SubjectTransforms {
			cc.FilterSubjects = append(cc.FilterSubjects, orAll(t.Source))
		}
	}
	if cc.FilterSubject == ">" {
		cc.FilterSubject = ""
	}
	body, _ := json.Marshal(struct {
		Stream string            `json:"stream_name"`
		Config extConsumerConfig `json:"config"`
	}{l.cfg.Name, cc})
	deliver := e.deliver
	e.unsub = m.host.Subscribe(deliver, func(subject, reply string, hdr, data []byte) {
		subject, reply = strings.Clone(subject), strings.Clone(reply)
		hdr, data = append([]byte(nil), hdr...), append([]byte(nil), data...)
		m.enqueue(request{run: func() {
			if l := m.extLinkOf(d, e); l != nil {
				m.externalMsg(d, l, deliver, subject, reply, hdr, data)
			}
		}})
	})
	inbox := "_INBOX." + newPinID()
	var unsubReply func()
	unsubReply = m.host.Subscribe(inbox, func(_, _ string, hdr, data []byte) {
		hdr, data = append([]byte(nil), hdr...), append([]byte(nil), data...)
		m.enqueue(request{run: func() {
			if e.deliver != deliver { // dropped (and unsubscribed) since
				return
			}
			if e.unsubRep != nil {
				e.unsubRep()
				e.unsubRep = nil
			}
			if l := m.extLinkOf(d, e); l != nil {
				m.externalCreated(d, l, deliver, hdr, data)
			}
		}})
	})
	e.unsubRep = unsubReply
	m.host.Publish(e.cfg.APIPrefix+".CONSUMER.CREATE."+l.cfg.Name+"."+token, inbox, nil, body)
}

// externalCreated takes the origin's answer to a consumer create.
func (m *Manager) externalCreated(d *stream, l *link, deliver string, hdr, data []byte) {
	if !m.current(d, l) || l.ext.deliver != deliver {
		return
	}
	e := l.ext
	var resp struct {
		Error *APIError `json:"error"`
	}
	switch {
	case statusCode(hdr) == "503":
		l.err = l.setupErr("no JetStream responded at " + e.cfg.APIPrefix)
	case json.Unmarshal(data, &resp) != nil:
		l.err = l.setupErr("bad consumer create response from " + e.cfg.APIPrefix)
	case resp.Error != nil:
		l.err = l.setupErr(resp.Error.Description)
	default:
		e.created, e.seen = true, time.Now()
		l.err = nil
		return
	}
	m.dropExtConsumer(l) // the next health check creates it again
}

// externalMsg takes one delivery of the link's origin consumer: a status
// (flow control, heartbeat) or a message to store.
func (m *Manager) externalMsg(d *stream, l *link, deliver, subject, reply string, hdr, data []byte) {
	if !m.current(d, l) || l.ext.deliver != deliver {
		return
	}
	e, now := l.ext, time.Now()
	e.seen = now
	if statusCode(hdr) == "100" {
		if v := headerValue(hdr, "Nats-Last-Consumer"); v != "" {
			if n, err := strconv.ParseUint(v, 10, 64); err == nil && n > e.dseq {
				m.createExtConsumer(d, l, now) // deliveries were lost on the way
				return
			}
		}
		// Answers go to the origin's flow-control subjects only: the
		// link publishes with this server's rights, and an origin (or
		// whoever can publish to the deliver subject) that named
		// $JS.API.STREAM.DELETE.<stream> would have it deleted.
		if v := headerValue(hdr, "Nats-Consumer-Stalled"); isFlowControlSubject(v) {
			m.host.Publish(v, "", nil, nil)
		}
		if isFlowControlSubject(reply) { // flow control: everything before it is stored
			m.host.Publish(reply, "", nil, nil)
		}
		return
	}
	sseq, dseq, ts, pending, ok := parseAckReply(reply)
	if !ok {
		return
	}
	if dseq != e.dseq+1 {
		m.createExtConsumer(d, l, now)
		return
	}
	e.dseq = dseq
	l.last, l.lag = now, pending
	if d.cfg.Sealed {
		return
	}
	if subj, ok := l.subject(subject); ok && (l.mirror || !l.ownCopy(hdr)) {
		msg := &store.Msg{Subject: subject, Seq: sseq, Time: ts, Hdr: hdr, Data: data}
		if err := m.copyMsg(d, l, msg, subj, now); err != nil {
			l.err = m.public(err)
			// The next health check (extCheck) creates the consumer again,
			// from the message that failed: recreating it at once would
			// have the origin redeliver that message at once, without end.
			m.dropExtConsumer(l)
			return
		}
		l.err = nil
		m.afterStore(d, now)
	}
	l.next, l.copied = sseq+1, sseq
}

// isFlowControlSubject reports whether s is a literal $JS.FC. subject,
// where an origin consumer waits for flow-control answers.
func isFlowControlSubject(s string) bool {
	return strings.HasPrefix(s, "$JS.FC.") && router.ValidLiteralSubject(s)
}

// ownCopy reports whether an origin message is one this link copied: its
// Nats-Stream-Source names the link. A stream that sources itself through
// an external prefix (its own domain's API) would otherwise copy each
// copy again, without end, from a single publish.
func (l *link) ownCopy(hdr []byte) bool {
	v := headerValue(hdr, hdrStreamSource)
	if v == "" {
		return false
	}
	in, _, _, ok := parseSourceHeader(v)
	return ok && in == l.iname
}

// parseAckReply reads the origin sequence, consumer sequence, time and
// pending count of a delivery's ack subject, in either of nats-server's
// forms: $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>,
// or with domain and account hash after ACK and a random token at the end.
func parseAckReply(reply string) (sseq, dseq uint64, ts int64, pending uint64, ok bool) {
	rest, found := strings.CutPrefix(reply, "$JS.ACK.")
	if !found {
		return 0, 0, 0, 0, false
	}
	t := strings.Split(rest, ".")
	var nums []string
	switch {
	case len(t) == 7:
		nums = t[3:7]
	case len(t) >= 10:
		nums = t[5:9]
	default:
		return 0, 0, 0, 0, false
	}
	var v [4]uint64
	for i, s := range nums {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, 0, 0, false
		}
		v[i] = n
	}
	if v[0] == 0 || v[1] == 0 || v[0] >= 1<<62 || v[1] >= 1<<62 || v[2] > 1<<63-1 { // sequences that cannot wrap when counted on
		return 0, 0, 0, 0, false
	}
	return v[0], v[1], int64(v[2]), v[3], true
}

// statusCode is the status of a NATS/1.0 header block ("100", "503"),
// or "".
func statusCode(hdr []byte) string {
	line, _, _ := strings.Cut(string(hdr), "\r\n")
	rest, ok := strings.CutPrefix(line, "NATS/1.0 ")
	if !ok {
		return ""
	}
	code, _, _ := strings.Cut(rest, " ")
	return code
}

// extHash is nats-server's eight-character hash of an external API
// prefix, part of a source's identity (iname).
func extHash(prefix string) string {
	return hash8(prefix)
}
