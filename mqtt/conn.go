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
}

// maxMQTTClientID bounds a client id (MQTT 3.1.1 lets a server refuse ids
// longer than 23 bytes; 1 KiB keeps every id seen in practice).
const maxMQTTClientID = 1024

func newConn(c *loop.Conn, b *bridge) *conn {
	m := &conn{c: c, b: b, filters: make(map[string][]*loop.Sub), scratch: make([]byte, 0, 256)}
	m.parser = mcodec.NewParser(m)
	m.parser.MaxPacket = m.b.opts.MaxPayload + 64<<10 // payload plus topic and header room
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
	refuse := func(code byte, why string) error {
		c.Server().Noticef("MQTT client %d (%s): connection refused: %s", c.ID(), c.IP(), why)
		m.send(mcodec.AppendConnack(nil, false, code))
		c.Close()
		return errClose{}
	}
	if cn.Level != 4 {
		return refuse(mcodec.RefusedProtocolVersion, "unacceptable protocol version "+strconv.Itoa(int(cn.Level)))
	}
	if len(cn.ClientID) > maxMQTTClientID {
		// The id keys the session's stored records: unbounded, a client could
		// make each 1-byte message cost 64 KiB of disk.
		return refuse(mcodec.RefusedIdentifier, "client id longer than "+strconv.Itoa(maxMQTTClientID)+" bytes")
	}
	id := string(cn.ClientID)
	if id == "" {
		if !cn.CleanSession {
			return refuse(mcodec.RefusedIdentifier, "empty client id needs a clean session")
		}
		id = nuid.Next()
	}
	if ok, err := m.authenticate(cn); err != nil {
		return err // checked off the loop; MQTTConnect runs again with the result
	} else if !ok {
		return refuse(mcodec.RefusedNotAuthorized, "authorization violation")
	}
	if cn.WillFlag {
		subject, err := TopicToSubject(string(cn.WillTopic), false)
		if err != nil {
			return refuse(mcodec.RefusedNotAuthorized, "invalid will topic")
		}
		m.will = &Retained{Topic: string(cn.WillTopic), Subject: subject, QoS: cn.WillQoS, Payload: bytes.Clone(cn.WillMessage)}
		m.willRetain = cn.WillRetain
	}
	m.keepAlive = time.Duration(cn.KeepAlive) * time.Second
	c.Identify(id)                                          // headers on: deliveries carry the Nmqtt-Pub header through the router
	sess, present, ok := m.b.attach(m, id, cn.CleanSession) // sets m.sess
	if !ok {
		return refuse(mcodec.RefusedNotAuthorized, "client id "+strconv.Quote(id)+" belongs to another user's session")
	}
	c.SetConnected()
	if c.Tracing() {
		c.Tracef("<<- MQTT CONNECT id=%q clean=%v keepalive=%d", id, cn.CleanSession, cn.KeepAlive)
	}
	c.Lock()
	c.Write(mcodec.AppendConnack(m.scratch[:0], present, mcodec.Accepted))
	for _, msg := range sess.Resume() {
		m.writeSessionMsg(msg, true)
	}
	c.FlushSoon()
	c.Unlock()
	return nil
}

// writeSessionMsg writes a QoS 1/2 message the session tracks: the message
// (with DUP when resent) or, once the client has PUBREC'd it, PUBREL.
// Caller holds outLock.
func (m *conn) writeSessionMsg(msg *Msg, resend bool) {
	c := m.c
	if msg.Released {
		c.Write(mcodec.AppendAck(m.scratch[:0], mcodec.PUBREL, msg.ID))
		return
	}
	m.writePublish(msg.Topic, msg.Payload, msg.QoS, false, resend && msg.ID != 0, msg.ID)
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
// granted QoS, and whether its filter starts with a wildcard and so skips
// '$' topics.
func subTag(qos byte, skipDollar bool) uint32 {
	t := uint32(qos)
	if skipDollar {
		t |= tagSkipDollar
	}
	return t
}

const tagSkipDollar = 1 << 8

// Deliver formats a routed message for MQTT subscription s. Caller holds
// the connection's Lock (on an event loop: runs on its loop). Like a NATS
// delivery it reports true: MQTT subscriptions are never queue members.
func (m *conn) Deliver(s *loop.Sub, subject, _ []byte, hdrLen int, msg []byte) bool {
	c := m.c
	tag := s.Tag()
	if tag&tagSkipDollar != 0 && len(subject) > 0 && subject[0] == '$' {
		return true
	}
	qos := min(byte(tag), originQoS(msg, hdrLen))
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
	} else if pm, dropped := m.sess.SendCopy(topic, msg, qos); pm != nil {
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
	if c.Tracing() {
		c.Tracef("<<- MQTT PUBLISH %s qos=%d retain=%v id=%d size=%d", p.Topic, p.QoS, p.Retain, p.PacketID, len(p.Payload))
	}
	subject, err := m.subjectOf(p.Topic)
	if err != nil {
		c.Server().Noticef("MQTT client %d (%s): publish to %q: %v; closing", c.ID(), c.IP(), p.Topic, err)
		c.Close()
		return errClose{}
	}
	writes := m.b.persist.Writes()
	deliver := true
	if p.QoS == 2 && !m.sess.IncomingQoS2(p.PacketID) {
		deliver = false // a resent PUBLISH before PUBREL: delivered already
	}
	if deliver && !c.Perms().CanPublish(subject) {
		c.Server().Noticef("MQTT client %d (%s): permissions violation for publish to %q", c.ID(), c.IP(), subject)
		deliver = false
	}
	if deliver {
		if p.Retain {
			m.b.setRetained(string(p.Topic), string(subject), p.QoS, p.Payload)
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
	c := m.c
	c.Lock()
	if m.b.persist.Writes() == writesBefore && len(m.held) == 0 {
		c.Write(mcodec.AppendAck(m.scratch[:0], kind, id))
		c.FlushSoon()
		c.Unlock()
		return
	}
	m.held = mcodec.AppendAck(m.held, kind, id)
	m.heldTotal += 4
	upto := m.heldTotal
	c.Unlock()
	m.b.persist.AfterWrites(func() { c.Run(func() { m.release(upto) }) })
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
		for _, msg := range next {
			m.writeSessionMsg(msg, false)
		}
		c.FlushSoon()
		c.Unlock()
	}
	return nil
}

// MQTTSubscribe subscribes each filter, answers SUBACK with the granted QoS
// (0x80 where refused), then sends the matching retained messages.
func (m *conn) MQTTSubscribe(id uint16, subs []mcodec.Subscription) error {
	c := m.c
	if m.handedOver.Load() {
		return nil // the session has moved on; this connection is closing
	}
	m.codes = m.codes[:0]
	refused, firstRefused, whyRefused := 0, "", error(nil)
	for _, sub := range subs {
		filter := string(sub.Filter)
		if c.Tracing() {
			c.Tracef("<<- MQTT SUBSCRIBE %s qos=%d", filter, sub.QoS)
		}
		subjects, err := FilterSubjects(filter)
		if err == nil {
			for _, subj := range subjects {
				if !c.Perms().CanSubscribe(subj) {
					err = errors.New("permissions violation")
				}
			}
		}
		if max := m.b.opts.MaxSubscriptions; err == nil && max > 0 &&
			m.numSubs()-len(m.filters[filter])+len(subjects) > max {
			// As nats-server: MQTT subscriptions count toward max_subs
			// ("foo/#" is two); a filter past it is refused in SUBACK.
			err = errors.New("maximum subscriptions exceeded")
		}
		if err != nil {
			if refused++; refused == 1 { // one log line a packet, not one a filter
				firstRefused, whyRefused = filter, err
			}
			m.codes = append(m.codes, mcodec.SubackFailure)
			continue
		}
		m.b.subscribe(m, filter, sub.QoS)
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
	m.scratch = mcodec.AppendSuback(m.scratch[:0], id, m.codes)
	c.Write(m.scratch)
	m.trimScratch()
	for i, sub := range subs {
		if m.codes[i] == mcodec.SubackFailure {
			continue
		}
		filter := string(sub.Filter)
		subjects, _ := FilterSubjects(filter)
		for _, r := range m.b.retained.Match(subjects, SkipsDollarTopics(filter)) {
			if !c.Perms().CanSubscribe(r.Subject) {
				continue
			}
			qos := min(sub.QoS, r.QoS)
			if qos == 0 {
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
// in the session. The bridge puts them in the sublist.
func (m *conn) addFilter(filter string, qos byte) {
	c := m.c
	subjects, err := FilterSubjects(filter)
	if err != nil {
		return
	}
	m.dropFilter(filter)
	tag := subTag(qos, SkipsDollarTopics(filter))
	c.Lock()
	defer c.Unlock()
	for i, subj := range subjects {
		s := c.AddSub(subj, filter+"\x00"+strconv.Itoa(i), tag) // the sid is unique per client; never sent
		if s == nil {
			return // closing: the filter dies with the connection
		}
		m.filters[filter] = append(m.filters[filter], s)
	}
	m.sess.Subscribe(filter, qos)
}

// dropFilter forgets filter's subscriptions on this connection (the
// session keeps the filter unless told otherwise).
func (m *conn) dropFilter(filter string) {
	c := m.c
	c.Lock()
	for _, s := range m.filters[filter] {
		c.DropSub(s)
	}
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
	for _, f := range filters {
		m.b.unsubscribe(m, string(f))
	}
	m.sendAck(mcodec.UNSUBACK, id)
	return nil
}

// MQTTPingreq answers PINGRESP.
func (m *conn) MQTTPingreq() error {
	m.send(pingresp)
	return nil
}

// MQTTDisconnect ends the connection normally: the will is discarded.
func (m *conn) MQTTDisconnect(d *mcodec.Disconnect) error {
	m.disconnected = true
	m.c.Close()
	return errClose{}
}

// MQTTAuth answers enhanced authentication, which the broker does not
// support.
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
		c.Close()
	}
}

// Close releases the session and, unless the client said DISCONNECT or was
// taken over, publishes its will. Runs once, in the connection's context,
// when it has ended.
func (m *conn) Close() {
	if m.sess == nil {
		return
	}
	held := m.b.release(m, m.sess)
	if w := m.will; w != nil && held && !m.disconnected && !m.c.Server().ShuttingDown() {
		if !m.c.Perms().CanPublish([]byte(w.Subject)) {
			return
		}
		if m.willRetain {
			m.b.setRetained(w.Topic, w.Subject, w.QoS, w.Payload)
		}
		hdr := append([]byte(mqttHeaderPrefix), '0'+w.QoS, '\r', '\n', '\r', '\n')
		m.c.Server().PublishInternal(w.Subject, "", hdr, w.Payload)
	}
}

// errClose stops the parse after the connection has been told to close.
type errClose struct{}

func (errClose) Error() string { return "connection closing" }
