package loop

// Concurrency: called in the connection's reading context (its loop or
// reader goroutine; tick also from housekeeping on the goroutine transport),
// except deliver, which runs on any publisher's goroutine with the client's
// outLock held (gnet: on its own loop), and release, queued with c.t.run.
// Under outLock it takes Session.mu (Send) and RetainedSet.mu (a SUBSCRIBE's
// retained replay). handedOver and lastRecv are atomics read elsewhere.

import (
	"bytes"
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/evnats/evnats/codec"
	"github.com/evnats/evnats/mqtt"
	mcodec "github.com/evnats/evnats/mqtt/codec"
	"github.com/nats-io/nuid"
)

// mqttConn is the MQTT side of a client whose connection came in on the MQTT
// port: it parses packets with the resumable MQTT codec and routes through
// the same router, caches and outbound buffers as NATS clients. Owned, like
// its client, by the goroutine that reads the connection; handedOver and
// lastRecv are also read by other goroutines.
type mqttConn struct {
	c      *client
	b      *mqttBridge
	parser *mcodec.Parser
	sess   *mqtt.Session // nil before CONNECT

	keepAlive    time.Duration
	lastRecv     atomic.Int64 // unix nanoseconds of the last packet
	will         *mqtt.Retained
	willRetain   bool
	disconnected bool // a DISCONNECT packet: no will
	// handedOver is set once the session has left this connection (taken
	// over, or the connection ended): what was routed here before that goes
	// into the session's queue instead.
	handedOver atomic.Bool

	// filters maps each filter to its router subscriptions. Once the
	// connection holds a session it changes only under mqttBridge.mu, so a
	// connection taking the session over can read it.
	filters  map[string][]*subscription
	topics   topicCache[string] // subject -> topic, for deliveries
	subjects topicCache[[]byte] // topic -> subject, for publishes
	pubBuf   []byte             // header + payload of the message being published
	codes    []byte

	// held are PUBACK/PUBREC packets waiting for the session store to write
	// what their publish journaled (see MQTTPublish); heldTotal and
	// releasedTotal count bytes ever held and released, so a release names
	// its end however much is held meanwhile. Guarded by outLock.
	held                     []byte
	heldTotal, releasedTotal uint64

	authResult *mqttAuthResult // a bcrypt check's result for the re-run CONNECT
}

// maxMQTTClientID bounds a client id (MQTT 3.1.1 lets a server refuse ids
// longer than 23 bytes; 1 KiB keeps every id seen in practice).
const maxMQTTClientID = 1024

func newMQTTConn(c *client, b *mqttBridge) *mqttConn {
	m := &mqttConn{c: c, b: b, filters: make(map[string][]*subscription)}
	m.parser = mcodec.NewParser(m)
	m.parser.MaxPacket = c.srv.opts.MaxPayload + 64<<10 // payload plus topic and header room
	m.lastRecv.Store(time.Now().UnixNano())
	return m
}

// onRead feeds bytes to the MQTT parser. A malformed packet is logged and the
// connection closed (MQTT has no error packet); the will is sent.
func (m *mqttConn) onRead(b []byte) bool {
	m.lastRecv.Store(time.Now().UnixNano())
	return m.parsed(m.parser.Parse(b))
}

// parsed handles what a parse returned; false when the connection closes.
func (m *mqttConn) parsed(err error) bool {
	if err == nil || err == codec.ErrSuspend { // suspended: CONNECT checked off the loop
		return true
	}
	if !errors.Is(err, errClose{}) {
		m.c.srv.Noticef("MQTT client %d (%s): %v; closing", m.c.id, m.c.ip, err)
	}
	m.c.closeWithErr("")
	return false
}

// send queues one control packet in the client's own context.
func (m *mqttConn) send(b []byte) { m.c.sendProto(b) }

// sendAck queues PUBACK, PUBREC, PUBREL, PUBCOMP or UNSUBACK, formatted in
// scratch, which belongs to the output: the lock covers both.
func (m *mqttConn) sendAck(kind byte, id uint16) {
	c := m.c
	c.t.outLock()
	if !c.closed {
		c.scratch = mcodec.AppendAck(c.scratch[:0], kind, id)
		c.out.write(c.scratch)
		c.t.flushSoon()
	}
	c.t.outUnlock()
}

var pingresp = mcodec.AppendPingresp(nil)

// MQTTConnect authenticates, attaches the session and answers CONNACK.
func (m *mqttConn) MQTTConnect(cn *mcodec.Connect) error {
	c := m.c
	refuse := func(code byte, why string) error {
		c.srv.Noticef("MQTT client %d (%s): connection refused: %s", c.id, c.ip, why)
		m.send(mcodec.AppendConnack(nil, false, code))
		c.closeWithErr("")
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
	o := connectOpts{User: string(cn.Username), Pass: string(cn.Password)}
	if c.srv.authCfg.token != "" {
		o.Token = string(cn.Password) // MQTT carries a token in the password field
	}
	if ok, err := m.authenticate(cn, &o); err != nil {
		return err // checked off the loop; MQTTConnect runs again with the result
	} else if !ok {
		return refuse(mcodec.RefusedNotAuthorized, "authorization violation")
	}
	if cn.WillFlag {
		subject, err := mqtt.TopicToSubject(string(cn.WillTopic), false)
		if err != nil {
			return refuse(mcodec.RefusedNotAuthorized, "invalid will topic")
		}
		m.will = &mqtt.Retained{Topic: string(cn.WillTopic), Subject: subject, QoS: cn.WillQoS, Payload: bytes.Clone(cn.WillMessage)}
		m.willRetain = cn.WillRetain
	}
	m.keepAlive = time.Duration(cn.KeepAlive) * time.Second
	c.t.outLock()
	c.opts.Headers = true // deliveries carry the Nmqtt-Pub header through the router
	c.opts.Name = id
	c.t.outUnlock()
	sess, present, ok := m.b.attach(c, id, cn.CleanSession) // sets m.sess
	if !ok {
		return refuse(mcodec.RefusedNotAuthorized, "client id "+strconv.Quote(id)+" belongs to another user's session")
	}
	c.connected.Store(true)
	if c.srv.opts.Trace {
		c.tracef("<<- MQTT CONNECT id=%q clean=%v keepalive=%d", id, cn.CleanSession, cn.KeepAlive)
	}
	c.t.outLock()
	c.out.write(mcodec.AppendConnack(c.scratch[:0], present, mcodec.Accepted))
	for _, msg := range sess.Resume() {
		m.writeSessionMsg(msg, true)
	}
	c.t.flushSoon()
	c.t.outUnlock()
	return nil
}

// writeSessionMsg writes a QoS 1/2 message the session tracks: the message
// (with DUP when resent) or, once the client has PUBREC'd it, PUBREL.
// Caller holds outLock.
func (m *mqttConn) writeSessionMsg(msg *mqtt.Msg, resend bool) {
	c := m.c
	if msg.Released {
		c.out.write(mcodec.AppendAck(c.scratch[:0], mcodec.PUBREL, msg.ID))
		return
	}
	m.writePublish(msg.Topic, msg.Payload, msg.QoS, false, resend && msg.ID != 0, msg.ID)
}

// writePublish formats PUBLISH into the client's buffer: the header in
// scratch, the payload straight from the message. Caller holds outLock.
func (m *mqttConn) writePublish(topic string, payload []byte, qos byte, retain, dup bool, id uint16) {
	c := m.c
	c.scratch = mcodec.AppendPublishHeader(c.scratch[:0], topic, len(payload), qos, retain, dup, id)
	c.out.write(c.scratch)
	m.trimScratch()
	c.out.write(payload)
	c.shard.outMsgs.Add(1)
	c.shard.outBytes.Add(int64(len(payload)))
}

// trimScratch lets go of a scratch buffer that one long topic (up to
// 64 KiB) or large SUBACK grew, so an idle connection does not keep it.
// Caller holds outLock.
func (m *mqttConn) trimScratch() {
	if cap(m.c.scratch) > 4096 {
		m.c.scratch = make([]byte, 0, 256)
	}
}

// deliver formats a routed message for MQTT subscription s. Caller holds
// outLock (on an event loop: runs on c's loop).
func (m *mqttConn) deliver(s *subscription, subject []byte, hdrLen int, msg []byte) {
	c := m.c
	if s.skipDollar && len(subject) > 0 && subject[0] == '$' {
		return
	}
	qos := min(s.qos, originQoS(msg, hdrLen))
	if hdrLen > 0 {
		msg = msg[hdrLen:]
	}
	if m.handedOver.Load() {
		// Matched while this connection held the session; the session's
		// subscriptions have moved on since. Keep it for the session.
		if qos > 0 && !m.sess.Clean && !m.sess.Enqueue(m.topicOf(subject), bytes.Clone(msg), qos) {
			m.b.full(m.sess)
		}
		return
	}
	if c.closed || s.closed || c.slow {
		return
	}
	topic := m.topicOf(subject)
	if qos == 0 {
		m.writePublish(topic, msg, 0, false, false, 0)
	} else if pm, dropped := m.sess.Send(topic, bytes.Clone(msg), qos); pm != nil {
		m.writePublish(topic, msg, qos, false, false, pm.ID)
	} else {
		if dropped {
			m.b.full(m.sess)
		}
		return // queued behind a full inflight window, or discarded
	}
	c.afterDeliver()
}

// topicOf maps a subject to the topic MQTT subscribers see, cached.
func (m *mqttConn) topicOf(subject []byte) string {
	if t, ok := m.topics.get(subject); ok {
		return t
	}
	t := mqtt.SubjectToTopic(string(subject))
	m.topics.put(subject, t)
	return t
}

// subjectOf maps a published topic to its NATS subject, cached.
func (m *mqttConn) subjectOf(topic []byte) ([]byte, error) {
	if s, ok := m.subjects.get(topic); ok {
		return s, nil
	}
	s, err := mqtt.TopicToSubject(string(topic), false)
	if err != nil {
		return nil, err
	}
	b := []byte(s)
	m.subjects.put(topic, b)
	return b, nil
}

// MQTTPublish routes a client's PUBLISH to NATS and MQTT subscribers with
// the Nmqtt-Pub header, keeps it when retained, and acknowledges it.
func (m *mqttConn) MQTTPublish(p *mcodec.Publish) error {
	c := m.c
	if c.srv.opts.Trace {
		c.tracef("<<- MQTT PUBLISH %s qos=%d retain=%v id=%d size=%d", p.Topic, p.QoS, p.Retain, p.PacketID, len(p.Payload))
	}
	subject, err := m.subjectOf(p.Topic)
	if err != nil {
		c.srv.Noticef("MQTT client %d (%s): publish to %q: %v; closing", c.id, c.ip, p.Topic, err)
		c.closeWithErr("")
		return errClose{}
	}
	writes := m.b.persist.Writes()
	deliver := true
	if p.QoS == 2 && !m.sess.IncomingQoS2(p.PacketID) {
		deliver = false // a resent PUBLISH before PUBREL: delivered already
	}
	if deliver && c.perms != nil && !c.perms.canPublish(subject) {
		c.srv.Noticef("MQTT client %d (%s): permissions violation for publish to %q", c.id, c.ip, subject)
		deliver = false
	}
	if deliver {
		if p.Retain {
			m.b.setRetained(string(p.Topic), string(subject), p.QoS, p.Payload)
		}
		m.pubBuf = append(append(m.pubBuf[:0], mqttHeaderPrefix...), '0'+p.QoS, '\r', '\n', '\r', '\n')
		hdrLen := len(m.pubBuf)
		m.pubBuf = append(m.pubBuf, p.Payload...)
		c.shard.inMsgs.Add(1)
		c.shard.inBytes.Add(int64(len(p.Payload)))
		c.routeMsg(subject, nil, hdrLen, m.pubBuf)
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
func (m *mqttConn) ack(kind byte, id uint16, writesBefore uint64) {
	c := m.c
	c.t.outLock()
	if m.b.persist.Writes() == writesBefore && len(m.held) == 0 {
		c.out.write(mcodec.AppendAck(c.scratch[:0], kind, id))
		c.t.flushSoon()
		c.t.outUnlock()
		return
	}
	m.held = mcodec.AppendAck(m.held, kind, id)
	m.heldTotal += 4
	upto := m.heldTotal
	c.t.outUnlock()
	m.b.persist.AfterWrites(func() { c.t.run(func() { m.release(upto) }) })
}

// release sends the held acks up to byte upto. Caller holds outLock.
func (m *mqttConn) release(upto uint64) {
	if upto <= m.releasedTotal {
		return
	}
	n := upto - m.releasedTotal
	m.c.out.write(m.held[:n])
	m.held = m.held[:copy(m.held, m.held[n:])]
	m.releasedTotal = upto
	m.c.t.flushSoon()
}

// MQTTAck handles PUBACK, PUBREC, PUBREL and PUBCOMP.
func (m *mqttConn) MQTTAck(kind byte, id uint16) error {
	c := m.c
	var next []*mqtt.Msg
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
		c.t.outLock()
		for _, msg := range next {
			m.writeSessionMsg(msg, false)
		}
		c.t.flushSoon()
		c.t.outUnlock()
	}
	return nil
}

// MQTTSubscribe subscribes each filter, answers SUBACK with the granted QoS
// (0x80 where refused), then sends the matching retained messages.
func (m *mqttConn) MQTTSubscribe(id uint16, subs []mcodec.Subscription) error {
	c := m.c
	if m.handedOver.Load() {
		return nil // the session has moved on; this connection is closing
	}
	m.codes = m.codes[:0]
	refused, firstRefused, whyRefused := 0, "", error(nil)
	for _, sub := range subs {
		filter := string(sub.Filter)
		if c.srv.opts.Trace {
			c.tracef("<<- MQTT SUBSCRIBE %s qos=%d", filter, sub.QoS)
		}
		subjects, err := mqtt.FilterSubjects(filter)
		if err == nil && c.perms != nil {
			for _, subj := range subjects {
				if !c.perms.canSubscribe(subj, "") {
					err = errors.New("permissions violation")
				}
			}
		}
		if max := c.srv.opts.MaxSubscriptions; err == nil && max > 0 &&
			len(c.subs)-len(m.filters[filter])+len(subjects) > max {
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
		m.b.subscribe(c, filter, sub.QoS)
		m.codes = append(m.codes, sub.QoS)
	}
	if refused > 0 {
		c.srv.Noticef("MQTT client %d (%s): %d of %d subscriptions refused, %q first: %v",
			c.id, c.ip, refused, len(subs), firstRefused, whyRefused)
	}
	// SUBACK, then each granted filter's retained messages, all under one
	// hold of the output so no live message on a topic comes between them.
	// They are written filter by filter, never gathered for the whole
	// packet (250,000 "#" filters would gather every retained message
	// 250,000 times), and max_pending cuts the client off as for any
	// delivery.
	c.t.outLock()
	defer c.t.outUnlock()
	c.scratch = mcodec.AppendSuback(c.scratch[:0], id, m.codes)
	c.out.write(c.scratch)
	m.trimScratch()
	for i, sub := range subs {
		if m.codes[i] == mcodec.SubackFailure {
			continue
		}
		filter := string(sub.Filter)
		subjects, _ := mqtt.FilterSubjects(filter)
		for _, r := range m.b.retained.Match(subjects, mqtt.SkipsDollarTopics(filter)) {
			if c.perms != nil && !c.perms.canSubscribe(r.Subject, "") {
				continue
			}
			qos := min(sub.QoS, r.QoS)
			if qos == 0 {
				m.writePublish(r.Topic, r.Payload, 0, true, false, 0)
			} else if pm, _ := m.sess.Send(r.Topic, r.Payload, qos); pm != nil {
				m.writePublish(r.Topic, r.Payload, qos, true, false, pm.ID)
			}
			if c.out.size+c.t.pendingOut() > c.srv.opts.MaxPending {
				c.markSlow("max pending of " + strconv.Itoa(c.srv.opts.MaxPending) + " exceeded by retained messages")
				return nil
			}
		}
	}
	if cap(m.codes) > 1024 {
		m.codes = nil // one SUBSCRIBE may carry 250,000 filters; an idle connection keeps no such list
	}
	c.t.flushSoon()
	return nil
}

// addFilter makes filter's subscriptions (two for "foo/#") this
// connection's, replacing earlier ones for the same filter, and records it
// in the session. The bridge puts them in the sublist.
func (m *mqttConn) addFilter(filter string, qos byte) {
	c := m.c
	subjects, err := mqtt.FilterSubjects(filter)
	if err != nil {
		return
	}
	m.dropFilter(filter)
	skip := mqtt.SkipsDollarTopics(filter)
	c.t.outLock()
	defer c.t.outUnlock()
	for i, subj := range subjects {
		s := &subscription{qos: qos, skipDollar: skip, deny: c.perms.deliveryDeny(subj, "")}
		s.Subject = subj
		s.SID = []byte(filter + "\x00" + strconv.Itoa(i)) // unique per client; never sent
		if !c.ownSub(s) {
			return // closing: the filter dies with the connection
		}
		m.filters[filter] = append(m.filters[filter], s)
	}
	m.sess.Subscribe(filter, qos)
}

// dropFilter forgets filter's subscriptions on this connection (the
// session keeps the filter unless told otherwise).
func (m *mqttConn) dropFilter(filter string) {
	c := m.c
	c.t.outLock()
	for _, s := range m.filters[filter] {
		s.closed = true
		delete(c.subs, string(s.SID))
	}
	c.t.outUnlock()
	delete(m.filters, filter)
}

// filterSubs lists filter's subscriptions for the sublist.
func (m *mqttConn) filterSubs(filter string) []*routerSub {
	subs := make([]*routerSub, 0, 2)
	for _, s := range m.filters[filter] {
		subs = append(subs, &s.Subscription)
	}
	return subs
}

// routed lists the connection's subscriptions for the sublist.
func (m *mqttConn) routed() []*routerSub {
	var subs []*routerSub
	for _, fs := range m.filters {
		for _, s := range fs {
			subs = append(subs, &s.Subscription)
		}
	}
	return subs
}

// MQTTUnsubscribe removes filters from the connection and the session.
func (m *mqttConn) MQTTUnsubscribe(id uint16, filters [][]byte) error {
	if m.handedOver.Load() {
		return nil // the session has moved on; this connection is closing
	}
	for _, f := range filters {
		m.b.unsubscribe(m.c, string(f))
	}
	m.sendAck(mcodec.UNSUBACK, id)
	return nil
}

// MQTTPingreq answers PINGRESP.
func (m *mqttConn) MQTTPingreq() error {
	m.send(pingresp)
	return nil
}

// MQTTDisconnect ends the connection normally: the will is discarded.
func (m *mqttConn) MQTTDisconnect() error {
	m.disconnected = true
	m.c.closeWithErr("")
	return errClose{}
}

// tick closes a client silent for 1.5 times its keep-alive, or one that has
// not sent CONNECT within the auth timeout.
func (m *mqttConn) tick(now time.Time) {
	c := m.c
	if !c.connected.Load() {
		if now.Sub(c.start) > c.srv.opts.AuthTimeout {
			c.srv.Noticef("MQTT client %d (%s): no CONNECT within %v; closing", c.id, c.ip, c.srv.opts.AuthTimeout)
			c.closeWithErr("")
		}
		return
	}
	if m.keepAlive > 0 && now.Sub(time.Unix(0, m.lastRecv.Load())) > m.keepAlive*3/2 {
		c.srv.Noticef("MQTT client %d (%s): keep-alive timeout; closing", c.id, c.ip)
		c.closeWithErr("")
	}
}

// cleanup releases the session and, unless the client said DISCONNECT or was
// taken over, publishes its will. Runs once, in the client's context.
func (m *mqttConn) cleanup() {
	if m.sess == nil {
		return
	}
	held := m.b.release(m.c, m.sess)
	if w := m.will; w != nil && held && !m.disconnected && !m.c.srv.shuttingDown() {
		if m.c.perms != nil && !m.c.perms.canPublish([]byte(w.Subject)) {
			return
		}
		if m.willRetain {
			m.b.setRetained(w.Topic, w.Subject, w.QoS, w.Payload)
		}
		hdr := append([]byte(mqttHeaderPrefix), '0'+w.QoS, '\r', '\n', '\r', '\n')
		m.c.srv.deliverInternal(w.Subject, w.Subject, "", hdr, w.Payload)
	}
}
