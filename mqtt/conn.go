package mqtt

// Concurrency: a conn is the loop.Protocol of a connection on the MQTT
// listener. Called in the connection's reading context (its loop or reader
// goroutine; Tick also from housekeeping on the goroutine transport), except
// Deliver, which runs on any publisher's goroutine with the connection's
// Lock (outLock) held (gnet: on its own loop), and release, queued with
// c.Run. Under Lock it takes Session.mu (Send) and RetainedSet.mu (a
// SUBSCRIBE's retained replay). handedOver and lastRecv are atomics read
// elsewhere; scratch and held are guarded by Lock.

import (
	"bytes"
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/evnats/evnats/codec"
	"github.com/evnats/evnats/loop"
	mcodec "github.com/evnats/evnats/mqtt/codec"
	"github.com/nats-io/nuid"
)

// conn is the protocol of a connection that came in on the MQTT port: it
// parses packets with the resumable MQTT codec and routes through the same
// router, caches, dispatch and outbound buffers as NATS clients (loop.Conn).
// Owned, like its connection, by the goroutine that reads it; handedOver and
// lastRecv are also read by other goroutines.
type conn struct {
	c      *loop.Conn
	b      *bridge
	parser *mcodec.Parser
	sess   *Session // nil before CONNECT
	sp     *space   // its account's MQTT state, set at CONNECT with sess

	keepAlive    time.Duration
	lastRecv     atomic.Int64 // unix nanoseconds of the last packet
	will         *Retained
	willRetain   bool
	disconnected bool // a DISCONNECT packet: no will
	// handedOver is set once the session has left this connection (taken
	// over, or the connection ended): what was routed here before that goes
	// into the session's queue instead.
	handedOver atomic.Bool

	// filters maps each filter to its router subscriptions. Once the
	// connection holds a session it changes only under bridge.mu, so a
	// connection taking the session over can read it.
	filters  map[string][]*loop.Sub
	topics   topicCache[string] // subject -> topic, for deliveries
	subjects topicCache[[]byte] // topic -> subject, for publishes
	pubBuf   []byte             // header + payload of the message being published
	codes    []byte
	scratch  []byte // formatting space for packets; guarded by Lock

	// held are PUBACK/PUBREC packets waiting for the session store to write
	// what their publish journaled (see MQTTPublish); heldTotal and
	// releasedTotal count bytes ever held and released, so a release names
	// its end however much is held meanwhile. Guarded by outLock.
	held                     []byte
	heldTotal, releasedTotal uint64

	authResult *loop.AuthResult // a bcrypt check's result for the re-run CONNECT

	// MQTT 5 (zero on 3.1.1): v5, expiry and the limits are set by CONNECT
	// before anything is delivered; aliasIn belongs to the
	// reading goroutine; aliasOut, props, oprops, corr and subIDs are
	// guarded by Lock (deliveries read them).
	v5            bool
	expiry        uint32             // session expiry interval from CONNECT
	maxOut        int                // the client's maximum packet size (0: none)
	aliasIn       map[uint16][]byte  // the client's topic aliases
	aliasBytes    int                // the bytes of the topics in aliasIn
	aliasOutMax   uint16             // the client's topic alias maximum
	aliasOut      map[string]uint16  // aliases given to topics sent
	aliasOutBytes int                // the bytes of the topics in aliasOut
	props         *mcodec.Properties // of the PUBLISH being formatted; made by setup5
	oprops        outProps
	corr          []byte            // decoded correlation data of that PUBLISH
	subIDs        map[string]uint32 // filter -> subscription identifier
	willDelay     uint32
}

// maxMQTTClientID bounds a client id (MQTT 3.1.1 lets a server refuse ids
// longer than 23 bytes; 1 KiB keeps every id seen in practice).
const maxMQTTClientID = 1024

func newConn(c *loop.Conn, b *bridge) *conn {
	// scratch grows on first use (every use keeps what it grew to): a
	// connection that only subscribes needs a few bytes of it, not 256.
	m := &conn{c: c, b: b, filters: make(map[string][]*loop.Sub)}
	m.parser = mcodec.NewParser(m)
	m.parser.MaxPacket = m.b.opts.MaxPayload + 64<<10 // payload plus topic and header room (and MQTT 5 properties)
	m.lastRecv.Store(time.Now().UnixNano())
	return m
}

// OnRead feeds bytes to the MQTT parser. A malformed packet is logged and the
// connection closed (MQTT has no error packet); the will is sent.
func (m *conn) OnRead(b []byte) bool {
	m.lastRecv.Store(time.Now().UnixNano())
	return m.parsed(m.parser.Parse(b))
}

// parsed handles what a parse returned; false when the connection closes.
func (m *conn) parsed(err error) bool {
	if err == nil || err == codec.ErrSuspend { // suspended: CONNECT checked off the loop
		return true
	}
	if !errors.Is(err, errClose{}) {
		m.c.Server().Noticef("MQTT client %d (%s): %v; closing", m.c.ID(), m.c.IP(), err)
		if m.parser.Level() == 5 {
			// MQTT 5 names the reason: in CONNACK when CONNECT itself is
			// bad, else in DISCONNECT.
			if m.sess == nil {
				m.send(mcodec.AppendConnack5(nil, false, mcodec.Reason(err), nil))
			} else {
				m.send(mcodec.AppendDisconnect5(nil, mcodec.Reason(err), nil))
			}
		}
	}
	m.c.Close()
	return false
}

// send queues one control packet in the client's own context.
func (m *conn) send(b []byte) { m.c.Send(b) }

// sendAck queues PUBACK, PUBREC, PUBREL, PUBCOMP or UNSUBACK, formatted in
// scratch, which belongs to the output: the lock covers both.
func (m *conn) sendAck(kind byte, id uint16) {
	c := m.c
	c.Lock()
	if !c.Closed() {
		m.scratch = mcodec.AppendAck(m.scratch[:0], kind, id)
		c.Write(m.scratch)
		c.FlushSoon()
	}
	c.Unlock()
}

var pingresp = mcodec.AppendPingresp(nil)

// MQTTConnect authenticates, attaches the session and answers CONNACK.
func (m *conn) MQTTConnect(cn *mcodec.Connect) error {
	c := m.c
	v5 := cn.Level == 5
	refuse := func(code byte, why string) error {
		c.Server().Noticef("MQTT client %d (%s): connection refused: %s", c.ID(), c.IP(), why)
		if v5 {
			m.send(mcodec.AppendConnack5(nil, false, connackReason5(code), nil))
		} else {
			m.send(mcodec.AppendConnack(nil, false, code))
		}
		c.Close()
		return errClose{}
	}
	if cn.Level != 4 && !v5 {
		return refuse(mcodec.RefusedProtocolVersion, "unacceptable protocol version "+strconv.Itoa(int(cn.Level)))
	}
	if v5 && cn.Props.Has(mcodec.PropAuthMethod) {
		c.Server().Noticef("MQTT client %d (%s): connection refused: enhanced authentication %q is not supported", c.ID(), c.IP(), cn.Props.AuthMethod)
		m.send(mcodec.AppendConnack5(nil, false, mcodec.ReasonBadAuthMethod, nil))
		c.Close()
		return errClose{}
	}
	if len(cn.ClientID) > maxMQTTClientID {
		// The id keys the session's stored records: unbounded, a client could
		// make each 1-byte message cost 64 KiB of disk.
		return refuse(mcodec.RefusedIdentifier, "client id longer than "+strconv.Itoa(maxMQTTClientID)+" bytes")
	}
	id := string(cn.ClientID)
	assigned := false
	if id == "" {
		if !cn.CleanSession && !v5 {
			return refuse(mcodec.RefusedIdentifier, "empty client id needs a clean session")
		}
		id, assigned = nuid.Next(), v5
	}
	if ok, err := m.authenticate(cn); err != nil {
		return err // checked off the loop; MQTTConnect runs again with the result
	} else if !ok {
		return refuse(mcodec.RefusedNotAuthorized, "authorization violation")
	}
	sp, err := m.b.spaceOf(c.Space()) // the login bound c to its user's account
	if err != nil {
		return refuse(mcodec.RefusedServerUnavailable, "account "+strconv.Quote(c.Space().Name())+": "+err.Error())
	}
	m.sp = sp
	if cn.WillFlag {
		subject, err := TopicToSubject(string(cn.WillTopic), false)
		if err != nil {
			return refuse(mcodec.RefusedNotAuthorized, "invalid will topic")
		}
		m.will = &Retained{Topic: string(cn.WillTopic), Subject: subject, QoS: cn.WillQoS, Payload: bytes.Clone(cn.WillMessage)}
		m.willRetain = cn.WillRetain
		if v5 {
			m.will.Hdr = m.pubHeader(nil, cn.WillQoS, &cn.WillProps, false)
			m.willDelay = cn.WillProps.WillDelay
		}
	}
	m.keepAlive = time.Duration(cn.KeepAlive) * time.Second
	cleanStart, persistent := cn.CleanSession, !cn.CleanSession
	expiry := ExpiryNever
	if v5 {
		m.setup5(cn)
		expiry, persistent = m.expiry, m.expiry > 0
	}
	c.Identify(id)                                                 // headers on: deliveries carry the Nmqtt-Pub header through the router
	sess, present, ok := m.b.attach(m, id, cleanStart, persistent) // sets m.sess
	if !ok {
		return refuse(mcodec.RefusedNotAuthorized, "client id "+strconv.Quote(id)+" belongs to another user's session")
	}
	sess.SetV5(v5, expiry, int(cn.Props.ReceiveMaximum))
	if m.will != nil && v5 && persistent && m.sp.persist.Durable() {
		// Armed in the session's record, queued for writing before CONNACK:
		// a server killed while an MQTT 5 client is connected publishes
		// its will after the restart once its delay has passed, unless
		// the client is back by then (a 3.1.1 client's is lost, as with
		// nats-server).
		sess.SetWill(&delayedWill{sp: m.sp, r: m.will, retain: m.willRetain, delay: m.willDelay})
		if err := m.sp.persist.SaveSession(sess, false); err != nil {
			c.Server().Errorf("MQTT: saving session %q: %v", id, err)
		}
	}
	c.SetConnected()
	if c.Tracing() {
		c.Tracef("<<- MQTT CONNECT id=%q clean=%v keepalive=%d", id, cn.CleanSession, cn.KeepAlive)
	}
	c.Lock()
	if v5 {
		c.Write(m.connack5(present, assigned, id))
	} else {
		m.scratch = mcodec.AppendConnack(m.scratch[:0], present, mcodec.Accepted)
		c.Write(m.scratch)
	}
	m.writeSessionMsgs(sess.Resume(), true)
	c.FlushSoon()
	c.Unlock()
	return nil
}

// writeSessionMsgs writes QoS 1/2 messages the session tracks; on MQTT 5
// one too large for the client is dropped as if acknowledged, and what
// that lets into the window follows. Caller holds outLock.
func (m *conn) writeSessionMsgs(msgs []*Msg, resend bool) {
	for len(msgs) > 0 {
		msg := msgs[0]
		msgs = msgs[1:]
		if !m.writeSessionMsg(msg, resend) {
			msgs = append(msgs, m.sess.Acked(msg.ID)...)
		}
	}
}

// writeSessionMsg writes a QoS 1/2 message the session tracks: the message
// (with DUP when resent) or, once the client has PUBREC'd it, PUBREL. It
// reports false, writing nothing, for a message over an MQTT 5 client's
// maximum packet size. Caller holds outLock.
func (m *conn) writeSessionMsg(msg *Msg, resend bool) bool {
	c := m.c
	if msg.Released {
		m.scratch = mcodec.AppendAck(m.scratch[:0], mcodec.PUBREL, msg.ID)
		c.Write(m.scratch)
		return true
	}
	if m.v5 {
		m.buildProps(msg.Hdr, nil, 0, msg.Expires, true)
		if !m.fits(msg.Topic, len(msg.Payload), msg.QoS) {
			return false
		}
		m.writePublish5(msg.Topic, msg.Payload, msg.QoS, false, (resend || msg.resent) && msg.ID != 0, msg.ID)
		return true
	}
	m.writePublish(msg.Topic, msg.Payload, msg.QoS, false, (resend || msg.resent) && msg.ID != 0, msg.ID)
	return true
}

// writePublish formats PUBLISH into the client's buffer: the header in
// scratch, the payload straight from the message. Caller holds outLock.
func (m *conn) writePublish(topic string, payload []byte, qos byte, retain, dup bool, id uint16) {
	c := m.c
	m.scratch = mcodec.AppendPublishHeader(m.scratch[:0], topic, len(payload), qos, retain, dup, id)
	c.Write(m.scratch)
	m.trimScratch()
	c.Write(payload)
	c.CountOut(len(payload))
}

// trimScratch lets go of a scratch buffer that one long topic (up to
// 64 KiB) or large SUBACK grew, so an idle connection does not keep it.
// Caller holds outLock.
func (m *conn) trimScratch() {
	if cap(m.scratch) > 4096 {
		m.scratch = make([]byte, 0, 256)
	}
}

// subTag is what an MQTT subscription carries in its loop.Sub tag: the
// granted QoS and MQTT 5 options (the session's option byte), whether its
// filter starts with a wildcard and so skips '$' topics, and whether it is
// a shared subscription (a queue group member).
func subTag(opts byte, skipDollar, shared bool) uint32 {
	t := uint32(opts)
	if skipDollar {
		t |= tagSkipDollar
	}
	if shared {
		t |= tagShared
	}
	return t
}

const (
	tagSkipDollar = 1 << 8
	tagShared     = 1 << 9
)

// A session records each filter's granted QoS with its MQTT 5 options in
// one byte.
const (
	optQoS     byte = 0x03
	optNoLocal byte = 0x04
	optRAP     byte = 0x08 // retain as published
)

// Deliver formats a routed message for MQTT subscription s. Caller holds
// the connection's Lock (on an event loop: runs on its loop). Like a NATS
// delivery it reports true, except for a shared subscription (a queue
// group member) that cannot take the message, which passes it on.
func (m *conn) Deliver(s *loop.Sub, subject, reply []byte, hdrLen int, msg []byte) bool {
	c := m.c
	tag := s.Tag()
	if tag&tagSkipDollar != 0 && len(subject) > 0 && subject[0] == '$' {
		return true
	}
	qos := min(byte(tag)&optQoS, originQoS(msg, hdrLen))
	if m.v5 {
		return m.deliver5(s, tag, subject, reply, hdrLen, msg, qos)
	}
	if tag&tagShared != 0 && (m.handedOver.Load() || c.Closed() || s.Closed() || c.Slow()) {
		return false
	}
	if hdrLen > 0 {
		msg = msg[hdrLen:]
	}
	if m.handedOver.Load() {
		// Matched while this connection held the session; the session's
		// subscriptions have moved on since. Keep it for the session; the
		// session copies the payload only once it has room for it.
		if qos > 0 && !m.sess.Clean && !m.sess.EnqueueCopy(m.topicOf(subject), msg, qos) {
			m.b.full(m.sess)
		}
		return true
	}
	if c.Closed() || s.Closed() || c.Slow() {
		return true
	}
	topic := m.topicOf(subject)
	if qos == 0 {
		m.writePublish(topic, msg, 0, false, false, 0)
	} else if pm, dropped := m.sendCopy(s, topic, nil, msg, qos); pm != nil {
		m.writePublish(topic, msg, qos, false, false, pm.ID)
	} else {
		if dropped {
			m.b.full(m.sess)
		}
		return true // queued behind a full inflight window, or discarded
	}
	c.AfterDeliver()
	return true
}

// topicOf maps a subject to the topic MQTT subscribers see, cached.
func (m *conn) topicOf(subject []byte) string {
	if t, ok := m.topics.get(subject); ok {
		return t
	}
	t := SubjectToTopic(string(subject))
	m.topics.put(subject, t)
	return t
}

// subjectOf maps a published topic to its NATS subject, cached.
func (m *conn) subjectOf(topic []byte) ([]byte, error) {
	if s, ok := m.subjects.get(topic); ok {
		return s, nil
	}
	s, err := TopicToSubject(string(topic), false)
	if err != nil {
		return nil, err
	}
	b := []byte(s)
	m.subjects.put(topic, b)
	return b, nil
}

// MQTTPublish routes a client's PUBLISH to NATS and MQTT subscribers with
// the Nmqtt-Pub header, keeps it when retained, and acknowledges it.
func (m *conn) MQTTPublish(p *mcodec.Publish) error {
	c := m.c
	if m.v5 {
		t, err := m.resolveAlias(p)
		if err != nil {
			return err
		}
		p.Topic = t
	}
	if c.Tracing() {
		c.Tracef("<<- MQTT PUBLISH %s qos=%d retain=%v id=%d size=%d", p.Topic, p.QoS, p.Retain, p.PacketID, len(p.Payload))
	}
	subject, err := m.subjectOf(p.Topic)
	if err != nil {
		c.Server().Noticef("MQTT client %d (%s): publish to %q: %v; closing", c.ID(), c.IP(), p.Topic, err)
		c.Close()
		return errClose{}
	}
	writes := m.sp.persist.Writes()
	deliver := true
	reason := byte(0)
	if p.QoS == 2 {
		limit := 0
		if m.v5 {
			limit = receiveMax
		}
		isNew, ok := m.sess.IncomingQoS2(p.PacketID, limit)
		if !ok {
			return &mcodec.ReasonError{Code: mcodec.ReasonReceiveMaximumExceeded,
				Msg: "mqtt: more QoS 2 publishes awaiting PUBREL than the receive maximum " + strconv.Itoa(receiveMax)}
		}
		deliver = isNew // a resent PUBLISH before PUBREL: delivered already
	}
	if deliver && !c.Perms().CanPublish(subject) {
		c.Server().Noticef("MQTT client %d (%s): permissions violation for publish to %q", c.ID(), c.IP(), subject)
		deliver = false
		reason = mcodec.ReasonNotAuthorized
	}
	if m.v5 {
		if deliver {
			reason = m.publish5(p, subject)
		}
		m.ack5(p, reason, writes)
		return nil
	}
	if deliver {
		if p.Retain {
			m.b.setRetained(m.sp, string(p.Topic), string(subject), p.QoS, p.Payload)
		}
		m.pubBuf = append(append(m.pubBuf[:0], mqttHeaderPrefix...), '0'+p.QoS, '\r', '\n', '\r', '\n')
		hdrLen := len(m.pubBuf)
		m.pubBuf = append(m.pubBuf, p.Payload...)
		c.CountIn(len(p.Payload))
		c.Publish(subject, nil, hdrLen, m.pubBuf)
		m.pubBuf = codec.Reuse(m.pubBuf)
	}
	switch p.QoS {
	case 1:
		m.ack(mcodec.PUBACK, p.PacketID, writes)
	case 2:
		m.ack(mcodec.PUBREC, p.PacketID, writes)
	}
	return nil
}

// ack acknowledges a publish. When routing it queued records to the session
// store (a message for an absent client, a retained message) the ack waits
// until they are written, as a JetStream PubAck does; acks after a waiting
// one wait too, since MQTT acknowledges in order.
func (m *conn) ack(kind byte, id uint16, writesBefore uint64) {
	m.ackReason(kind, id, 0, writesBefore)
}

// ackReason is ack with an MQTT 5 reason code (0 on 3.1.1).
func (m *conn) ackReason(kind byte, id uint16, reason byte, writesBefore uint64) {
	c := m.c
	c.Lock()
	if m.sp.persist.Writes() == writesBefore && len(m.held) == 0 {
		m.scratch = mcodec.AppendAck5(m.scratch[:0], kind, id, reason, nil) // kept: it grows once
		c.Write(m.scratch)
		c.FlushSoon()
		c.Unlock()
		return
	}
	n := len(m.held)
	m.held = mcodec.AppendAck5(m.held, kind, id, reason, nil)
	m.heldTotal += uint64(len(m.held) - n)
	upto := m.heldTotal
	c.Unlock()
	m.sp.persist.AfterWrites(func() { c.Run(func() { m.release(upto) }) })
}

// release sends the held acks up to byte upto. Caller holds outLock.
func (m *conn) release(upto uint64) {
	if upto <= m.releasedTotal {
		return
	}
	n := upto - m.releasedTotal
	m.c.Write(m.held[:n])
	m.held = m.held[:copy(m.held, m.held[n:])]
	m.releasedTotal = upto
	m.c.FlushSoon()
}

// MQTTAck handles PUBACK, PUBREC, PUBREL and PUBCOMP.
func (m *conn) MQTTAck(kind byte, id uint16, reason byte) error {
	c := m.c
	var next []*Msg
	switch kind {
	case mcodec.PUBACK, mcodec.PUBCOMP:
		next = m.sess.Acked(id)
	case mcodec.PUBREC:
		if reason >= 0x80 { // MQTT 5: the client refused it; the delivery ends here
			next = m.sess.Acked(id)
			break
		}
		m.sess.Received(id)
		m.sendAck(mcodec.PUBREL, id)
		return nil
	case mcodec.PUBREL:
		m.sess.Release(id)
		m.sendAck(mcodec.PUBCOMP, id)
		return nil
	}
	if len(next) > 0 {
		c.Lock()
		m.writeSessionMsgs(next, false)
		c.FlushSoon()
		c.Unlock()
	}
	return nil
}

// MQTTSubscribe subscribes each filter, answers SUBACK with the granted QoS
// (0x80, or on MQTT 5 the reason, where refused), then sends the matching
// retained messages.
func (m *conn) MQTTSubscribe(id uint16, subs []mcodec.Subscription) error {
	c := m.c
	if m.handedOver.Load() {
		return nil // the session has moved on; this connection is closing
	}
	m.codes = m.codes[:0]
	refused, firstRefused, whyRefused := 0, "", error(nil)
	var existed uint64 // MQTT 5 retain handling 1: bit i set when filter i was subscribed already
	for i, sub := range subs {
		filter := string(sub.Filter)
		if c.Tracing() {
			c.Tracef("<<- MQTT SUBSCRIBE %s qos=%d", filter, sub.QoS)
		}
		code := mcodec.SubackFailure
		group, _, err := SharedFilter(filter)
		var subjects []string
		if err == nil {
			subjects, err = FilterSubjects(filter)
		}
		if err != nil {
			code = mcodec.ReasonTopicFilterInvalid
		} else {
			for _, subj := range subjects {
				if !c.Perms().CanQueueSubscribe(subj, group) {
					err, code = errors.New("permissions violation"), mcodec.ReasonNotAuthorized
				}
			}
		}
		if max := m.b.opts.MaxSubscriptions; err == nil && max > 0 &&
			m.numSubs()-len(m.filters[filter])+len(subjects) > max {
			// As nats-server: MQTT subscriptions count toward max_subs
			// ("foo/#" is two); a filter past it is refused in SUBACK.
			err, code = errors.New("maximum subscriptions exceeded"), mcodec.ReasonQuotaExceeded
		}
		if err != nil {
			if refused++; refused == 1 { // one log line a packet, not one a filter
				firstRefused, whyRefused = filter, err
			}
			if !m.v5 {
				code = mcodec.SubackFailure
			}
			m.codes = append(m.codes, code)
			continue
		}
		if i < 64 && m.filters[filter] != nil {
			existed |= 1 << i
		}
		opts := sub.QoS
		if sub.NoLocal {
			opts |= optNoLocal
		}
		if sub.RetainAsPublished {
			opts |= optRAP
		}
		m.b.subscribe(m, filter, opts, sub.SubID)
		m.codes = append(m.codes, sub.QoS)
	}
	if refused > 0 {
		c.Server().Noticef("MQTT client %d (%s): %d of %d subscriptions refused, %q first: %v",
			c.ID(), c.IP(), refused, len(subs), firstRefused, whyRefused)
	}
	// SUBACK, then each granted filter's retained messages, all under one
	// hold of the output so no live message on a topic comes between them.
	// They are written filter by filter, never gathered for the whole
	// packet (250,000 "#" filters would gather every retained message
	// 250,000 times), and max_pending cuts the client off as for any
	// delivery.
	c.Lock()
	defer c.Unlock()
	if m.v5 {
		m.scratch = mcodec.AppendSuback5(m.scratch[:0], mcodec.SUBACK, id, m.codes, nil)
	} else {
		m.scratch = mcodec.AppendSuback(m.scratch[:0], id, m.codes)
	}
	c.Write(m.scratch)
	m.trimScratch()
	for i, sub := range subs {
		if m.codes[i] >= 0x80 {
			continue
		}
		filter := string(sub.Filter)
		if group, _, _ := SharedFilter(filter); group != "" {
			continue // shared subscriptions get no retained messages
		}
		if sub.RetainHandling == 2 || sub.RetainHandling == 1 && i < 64 && existed&(1<<i) != 0 {
			continue // MQTT 5 retain handling: never, or only for a new subscription
		}
		subjects, _ := FilterSubjects(filter)
		for _, r := range m.sp.retained.Match(subjects, SkipsDollarTopics(filter)) {
			if !c.Perms().CanSubscribe(r.Subject) {
				continue
			}
			qos := min(sub.QoS, r.QoS)
			if m.v5 {
				m.writeRetained5(r, qos, sub.SubID)
			} else if qos == 0 {
				m.writePublish(r.Topic, r.Payload, 0, true, false, 0)
			} else if pm, _ := m.sess.Send(r.Topic, r.Payload, qos); pm != nil {
				m.writePublish(r.Topic, r.Payload, qos, true, false, pm.ID)
			}
			if c.Pending() > m.b.opts.MaxPending {
				c.MarkSlow("max pending of " + strconv.Itoa(m.b.opts.MaxPending) + " exceeded by retained messages")
				return nil
			}
		}
	}
	if cap(m.codes) > 1024 {
		m.codes = nil // one SUBSCRIBE may carry 250,000 filters; an idle connection keeps no such list
	}
	c.FlushSoon()
	return nil
}

// numSubs is the number of the connection's subscriptions. Its table is
// guarded by Lock, which publishers delivering to it take on the goroutine
// transport (an MQTT subscription auto-unsubscribes nothing, but a NATS
// client's table is the same kind).
func (m *conn) numSubs() int {
	m.c.Lock()
	defer m.c.Unlock()
	return m.c.NumSubs()
}

// addFilter makes filter's subscriptions (two for "foo/#") this
// connection's, replacing earlier ones for the same filter, and records it
// in the session with its options byte (QoS and MQTT 5 options) and
// subscription identifier. A shared filter's subscriptions are members of
// its group's NATS queue group. The bridge puts them in the sublist.
func (m *conn) addFilter(filter string, opts byte, subID uint32) {
	c := m.c
	group, _, err := SharedFilter(filter)
	if err != nil {
		return
	}
	subjects, err := FilterSubjects(filter)
	if err != nil {
		return
	}
	m.dropFilter(filter)
	tag := subTag(opts, SkipsDollarTopics(filter), group != "")
	c.Lock()
	defer c.Unlock()
	for i, subj := range subjects {
		s := c.AddQueueSub(subj, group, filter+"\x00"+strconv.Itoa(i), tag) // the sid is unique per client; never sent
		if s == nil {
			return // closing: the filter dies with the connection
		}
		if opts&optNoLocal != 0 {
			c.SetNoLocal(s) // dispatch leaves out this connection's own publishes
		}
		m.filters[filter] = append(m.filters[filter], s)
	}
	if subID != 0 {
		if m.subIDs == nil {
			m.subIDs = make(map[string]uint32)
		}
		m.subIDs[filter] = subID
	}
	m.sess.Subscribe(filter, opts)
	if m.v5 || subID != 0 {
		m.sess.SetSubID(filter, subID)
	}
}

// dropFilter forgets filter's subscriptions on this connection (the
// session keeps the filter unless told otherwise).
func (m *conn) dropFilter(filter string) {
	c := m.c
	c.Lock()
	fs := m.filters[filter]
	for _, s := range fs {
		c.DropSub(s)
	}
	delete(m.subIDs, filter)
	c.Unlock()
	delete(m.filters, filter)
}

// filterSubs lists filter's subscriptions for the sublist.
func (m *conn) filterSubs(filter string) []*loop.Sub {
	return append([]*loop.Sub(nil), m.filters[filter]...)
}

// routed lists the connection's subscriptions for the sublist.
func (m *conn) routed() []*loop.Sub {
	var subs []*loop.Sub
	for _, fs := range m.filters {
		subs = append(subs, fs...)
	}
	return subs
}

// MQTTUnsubscribe removes filters from the connection and the session.
func (m *conn) MQTTUnsubscribe(id uint16, filters [][]byte) error {
	if m.handedOver.Load() {
		return nil // the session has moved on; this connection is closing
	}
	m.codes = m.codes[:0]
	for _, f := range filters {
		code := mcodec.ReasonSuccess
		if m.filters[string(f)] == nil {
			code = mcodec.ReasonNoSubscriptionExisted
		}
		m.codes = append(m.codes, code)
		m.b.unsubscribe(m, string(f))
	}
	if m.v5 {
		c := m.c
		c.Lock()
		if !c.Closed() {
			m.scratch = mcodec.AppendSuback5(m.scratch[:0], mcodec.UNSUBACK, id, m.codes, nil)
			c.Write(m.scratch)
			m.trimScratch()
			c.FlushSoon()
		}
		c.Unlock()
		return nil
	}
	m.sendAck(mcodec.UNSUBACK, id)
	return nil
}

// MQTTPingreq answers PINGRESP.
func (m *conn) MQTTPingreq() error {
	m.send(pingresp)
	return nil
}

// MQTTDisconnect ends the connection normally: the will is discarded,
// unless an MQTT 5 client asks for it (reason 0x04). An MQTT 5 client may
// change its session expiry interval, but not from 0.
func (m *conn) MQTTDisconnect(d *mcodec.Disconnect) error {
	if m.v5 && d.Props.Has(mcodec.PropSessionExpiry) {
		if m.expiry == 0 && d.Props.SessionExpiry != 0 {
			return &mcodec.ReasonError{Code: mcodec.ReasonProtocolError, Msg: "mqtt: DISCONNECT sets a session expiry interval after CONNECT set 0"}
		}
		m.expiry = d.Props.SessionExpiry
		m.sess.SetExpiry(m.expiry)
	}
	m.disconnected = !m.v5 || d.Reason != mcodec.ReasonDisconnectWithWill
	m.c.Close()
	return errClose{}
}

// MQTTAuth answers enhanced authentication, which the broker does not
// support: DISCONNECT with bad authentication method.
func (m *conn) MQTTAuth(a *mcodec.Auth) error {
	return &mcodec.ReasonError{Code: mcodec.ReasonBadAuthMethod, Msg: "mqtt: enhanced authentication (AUTH) is not supported"}
}

// Tick closes a client silent for 1.5 times its keep-alive, or one that has
// not sent CONNECT within the auth timeout.
func (m *conn) Tick(now time.Time) {
	c := m.c
	if !c.Connected() {
		if now.Sub(c.Started()) > m.b.opts.AuthTimeout {
			c.Server().Noticef("MQTT client %d (%s): no CONNECT within %v; closing", c.ID(), c.IP(), m.b.opts.AuthTimeout)
			c.Close()
		}
		return
	}
	if m.keepAlive > 0 && now.Sub(time.Unix(0, m.lastRecv.Load())) > m.keepAlive*3/2 {
		c.Server().Noticef("MQTT client %d (%s): keep-alive timeout; closing", c.ID(), c.IP())
		if m.v5 {
			m.send(mcodec.AppendDisconnect5(nil, mcodec.ReasonKeepAliveTimeout, nil))
		}
		c.Close()
	}
}

// Close releases the session and, unless the client said DISCONNECT (or,
// on 3.1.1, was taken over), publishes its will (an MQTT 5 will after its delay, unless
// the client is back by then). Runs once, in the connection's context,
// when it has ended.
func (m *conn) Close() {
	if m.sess == nil {
		return
	}
	var w *delayedWill
	if m.will != nil && !m.disconnected && !m.c.Server().ShuttingDown() && m.c.Perms().CanPublish([]byte(m.will.Subject)) {
		w = &delayedWill{sp: m.sp, r: m.will, retain: m.willRetain}
		if m.willDelay > 0 {
			w.due = time.Now().UnixMilli() + 1000*int64(min(m.willDelay, m.expiry))
		}
	}
	held := m.b.release(m, m.sess, w)
	// Taken over, an MQTT 5 client's will is still published when it has
	// no delay (MQTT 5 3.1.4; with one, the new connection came in time);
	// a 3.1.1 client's is dropped, as nats-server drops it.
	if w != nil && w.due == 0 && (held || m.v5) {
		m.b.publishWill(w)
	}
	if held && (m.sess.Clean || m.sess.Expiry() == 0) {
		m.b.redeliverShared(m.sp, m.sess)
	}
}

// sendCopy is Session.SendCopy5 for a delivery to s, recording the shared
// subscription group it came through. Caller holds Lock.
func (m *conn) sendCopy(s *loop.Sub, topic string, hdr, msg []byte, qos byte) (*Msg, bool) {
	if s.Tag()&tagShared != 0 {
		return m.sess.SendShared(topic, s.Queue, hdr, msg, qos)
	}
	return m.sess.SendCopy5(topic, hdr, msg, qos)
}

// key names the connection's session among every account's. Set at CONNECT.
func (m *conn) key() hkey { return hkey{m.sp.acc.Name(), m.sess.ID} }

// errClose stops the parse after the connection has been told to close.
type errClose struct{}

func (errClose) Error() string { return "connection closing" }
