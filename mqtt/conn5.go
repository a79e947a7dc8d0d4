package mqtt

// Concurrency: as conn.go. setup5, connack5, publish5 and ack5 run in the
// connection's reading context; deliver5, buildProps, fits,
// writePublish5 and writeRetained5 with the connection's Lock held.

import (
	"bytes"
	"strconv"

	"github.com/evnats/evnats/codec"
	"github.com/evnats/evnats/loop"
	mcodec "github.com/evnats/evnats/mqtt/codec"
)

// topicAliasMax is the topic alias maximum the server offers MQTT 5
// clients (CONNACK): each alias keeps one topic of up to 64 KiB.
const topicAliasMax = 64

// maxAliasBytes bounds the bytes of the topics a client's aliases stand
// for (64 aliases of 64 KiB topics would keep 4 MiB per connection), and
// those of the aliases the server gives the topics it sends.
const maxAliasBytes = 64 << 10

// receiveMax is the Receive Maximum the server offers MQTT 5 clients
// (CONNACK): the QoS 2 publishes awaiting PUBREL a client may have, each
// an id the session keeps and snapshots. One more gets DISCONNECT 0x93.
const receiveMax = 1024

// maxAliasOut bounds the aliases the server gives topics it sends, whatever
// the client allows.
const maxAliasOut = 1024

// setup5 takes an MQTT 5 CONNECT's session expiry, limits and aliases.
func (m *conn) setup5(cn *mcodec.Connect) {
	m.v5 = true
	m.props = new(mcodec.Properties)
	m.expiry = cn.Props.SessionExpiry // absent: 0, the session ends with the connection
	m.maxOut = int(cn.Props.MaximumPacketSize)
	m.aliasOutMax = min(cn.Props.TopicAliasMaximum, maxAliasOut)
}

// connackReason5 is the MQTT 5 reason code for a 3.1.1 CONNACK refusal.
func connackReason5(code byte) byte {
	switch code {
	case mcodec.RefusedProtocolVersion:
		return mcodec.ReasonUnsupportedVersion
	case mcodec.RefusedIdentifier:
		return mcodec.ReasonClientIDNotValid
	case mcodec.RefusedServerUnavailable:
		return mcodec.ReasonServerUnavailable
	case mcodec.RefusedBadCredentials:
		return mcodec.ReasonBadUserOrPassword
	}
	return mcodec.ReasonNotAuthorized
}

// connack5 formats an MQTT 5 CONNACK in scratch: the assigned client id,
// the server's topic alias and packet size maximums. Caller holds Lock.
func (m *conn) connack5(present, assigned bool, id string) []byte {
	var p mcodec.Properties
	if assigned {
		p.Set(mcodec.PropAssignedClientID)
		p.AssignedClientID = []byte(id)
	}
	p.Set(mcodec.PropReceiveMaximum)
	p.ReceiveMaximum = receiveMax
	p.Set(mcodec.PropTopicAliasMaximum)
	p.TopicAliasMaximum = topicAliasMax
	p.Set(mcodec.PropMaximumPacketSize)
	p.MaximumPacketSize = uint32(m.parser.MaxPacket + 5) // remaining length plus the fixed header
	m.scratch = mcodec.AppendConnack5(m.scratch[:0], present, mcodec.ReasonSuccess, &p)
	return m.scratch
}

// pubHeader appends the NATS header block of an MQTT 5 PUBLISH (or will):
// Nmqtt-Pub and the properties (props.go).
func (m *conn) pubHeader(dst []byte, qos byte, p *mcodec.Properties, retain bool) []byte {
	dst = append(append(dst, mqttHeaderPrefix...), '0'+qos, '\r', '\n')
	dst = appendPropHeaders(dst, p, retain)
	return append(dst, '\r', '\n')
}

// resolveAlias applies an MQTT 5 PUBLISH's topic alias: it records the
// topic under the alias, or returns the topic an empty one stands for.
func (m *conn) resolveAlias(p *mcodec.Publish) ([]byte, error) {
	if !p.Props.Has(mcodec.PropTopicAlias) {
		return p.Topic, nil
	}
	a := p.Props.TopicAlias
	if a > topicAliasMax {
		return nil, &mcodec.ReasonError{Code: mcodec.ReasonTopicAliasInvalid, Msg: "mqtt: topic alias " + strconv.Itoa(int(a)) + " above the maximum " + strconv.Itoa(topicAliasMax)}
	}
	if len(p.Topic) == 0 {
		t, ok := m.aliasIn[a]
		if !ok {
			return nil, &mcodec.ReasonError{Code: mcodec.ReasonProtocolError, Msg: "mqtt: unknown topic alias " + strconv.Itoa(int(a))}
		}
		return t, nil
	}
	if m.aliasIn == nil {
		m.aliasIn = make(map[uint16][]byte)
	}
	// The quota counts the buffers kept, not the topics' lengths: an
	// alias moved from a 64 KiB topic to a short one gets a buffer of its
	// size (re-used only while it is no more than twice that).
	old := m.aliasIn[a]
	buf := old[:0]
	if cap(old) < len(p.Topic) || cap(old) > 2*len(p.Topic) {
		buf = nil
	}
	if m.aliasBytes-cap(old)+max(cap(buf), len(p.Topic)) > maxAliasBytes {
		return nil, &mcodec.ReasonError{Code: mcodec.ReasonQuotaExceeded, Msg: "mqtt: topic aliases stand for more than " + strconv.Itoa(maxAliasBytes) + " bytes of topics"}
	}
	if buf == nil {
		buf = make([]byte, 0, len(p.Topic))
	}
	m.aliasBytes += cap(buf) - cap(old)
	m.aliasIn[a] = append(buf, p.Topic...)
	return p.Topic, nil
}

// publish5 routes an MQTT 5 PUBLISH with its properties as headers and its
// response topic as reply subject, and keeps it when retained. It returns
// the reason code of a publish it refuses (0: routed): a request past the
// client's share of the request table.
func (m *conn) publish5(p *mcodec.Publish, subject []byte) byte {
	c := m.c
	var reply []byte
	if p.Props.Has(mcodec.PropResponseTopic) {
		// The replies are published there on the requester's behalf (by
		// the server, with its correlation data): the requester must be
		// allowed to publish there as well as to receive its replies.
		rs, err := TopicToSubject(string(p.Props.ResponseTopic), false)
		if err == nil && mcodec.ValidTopicName(p.Props.ResponseTopic) && c.Perms().CanSubscribe(rs) && c.Perms().CanPublish([]byte(rs)) {
			r, ok := m.sp.rr.replySubject(m.sess.ID, rs, p.Props.CorrelationData)
			if !ok {
				return mcodec.ReasonQuotaExceeded
			}
			reply = []byte(r)
		}
	}
	m.pubBuf = m.pubHeader(m.pubBuf[:0], p.QoS, &p.Props, p.Retain)
	hdrLen := len(m.pubBuf)
	if p.Retain {
		m.b.setRetained5(m.sp, string(p.Topic), string(subject), p.QoS, m.pubBuf, p.Payload)
	}
	m.pubBuf = append(m.pubBuf, p.Payload...)
	c.CountIn(len(p.Payload))
	c.Publish(subject, reply, hdrLen, m.pubBuf)
	m.pubBuf = codec.Reuse(m.pubBuf)
	return 0
}

// ack5 acknowledges an MQTT 5 PUBLISH with its reason code.
func (m *conn) ack5(p *mcodec.Publish, reason byte, writes uint64) {
	switch p.QoS {
	case 1:
		m.ackReason(mcodec.PUBACK, p.PacketID, reason, writes)
	case 2:
		if reason >= 0x80 {
			m.sess.Release(p.PacketID) // refused: no PUBREL follows
		}
		m.ackReason(mcodec.PUBREC, p.PacketID, reason, writes)
	}
}

// deliver5 is Deliver for an MQTT 5 client: no local, retain as
// published, subscription identifiers, the properties from the headers,
// the maximum packet size and topic aliases. Caller holds Lock.
func (m *conn) deliver5(s *loop.Sub, tag uint32, subject, reply []byte, hdrLen int, msg []byte, qos byte) bool {
	c := m.c
	shared := tag&tagShared != 0
	var hdr []byte
	if hdrLen > 0 {
		hdr, msg = msg[:hdrLen], msg[hdrLen:]
	}
	subID := uint32(0)
	if len(m.subIDs) > 0 {
		subID = m.subIDs[string(filterOf(s))] // no string is made for the lookup
	}
	if m.handedOver.Load() {
		if shared {
			return false
		}
		if qos > 0 && !m.sess.Clean && !m.sess.EnqueueCopy5(m.topicOf(subject), storedHeader(hdr, reply, subID), msg, qos) {
			m.b.full(m.sess)
		}
		return true
	}
	if c.Closed() || s.Closed() || c.Slow() {
		return !shared
	}
	m.buildProps(hdr, reply, subID, 0, false)
	retain := byte(tag)&optRAP != 0 && m.oprops.retain
	topic := m.topicOf(subject)
	if !m.fits(topic, len(msg), qos) {
		return true // MQTT 5: a packet over the client's maximum is not sent
	}
	if qos == 0 {
		m.writePublish5(topic, msg, 0, retain, false, 0)
	} else if pm, dropped := m.sendCopy(s, topic, storedHeader(hdr, reply, subID), msg, qos); pm != nil {
		m.writePublish5(topic, msg, qos, retain, false, pm.ID)
	} else {
		if dropped {
			m.b.full(m.sess)
		}
		return true
	}
	c.AfterDeliver()
	return true
}

// filterOf returns the filter a subscription was made for (its sid up to
// the NUL, see addFilter).
func filterOf(s *loop.Sub) []byte {
	sid := s.SID
	if i := bytes.IndexByte(sid, 0); i >= 0 {
		return sid[:i]
	}
	return sid
}

// buildProps fills m.props for a PUBLISH to this MQTT 5 client: the
// properties the header block carries, the response topic from the reply
// subject, the subscription identifier. Caller holds Lock.
func (m *conn) buildProps(hdr, reply []byte, subID uint32, expires int64, stored bool) {
	m.corr = propsFromHeaders(m.props, hdr, m.corr[:0], expires, &m.oprops, stored)
	if len(reply) > 0 {
		if t := SubjectToTopic(string(reply)); len(t) < 1<<16 { // a topic's length is 2 bytes
			m.props.Set(mcodec.PropResponseTopic)
			m.props.ResponseTopic = []byte(t)
		}
	}
	if subID != 0 {
		m.props.Set(mcodec.PropSubscriptionID)
		m.props.SubIDs = append(m.props.SubIDs, subID)
	}
	if cap(m.corr) > 4096 {
		m.corr = nil
	}
}

// fits reports whether a PUBLISH of topic and n payload bytes with m.props
// is within the client's maximum packet size. Caller holds Lock.
func (m *conn) fits(topic string, n int, qos byte) bool {
	if m.maxOut == 0 {
		return true
	}
	if m.aliasOutMax == 0 {
		return mcodec.PublishSize5(len(topic), n, qos, m.props) <= m.maxOut
	}
	// writePublish5 may add a topic alias (3 bytes, and the property
	// list's length may take one more): counted with the topic, at worst.
	present := m.props.Present
	m.props.Set(mcodec.PropTopicAlias)
	ok := mcodec.PublishSize5(len(topic), n, qos, m.props) <= m.maxOut
	m.props.Present = present
	return ok
}

// writePublish5 formats an MQTT 5 PUBLISH with m.props, giving its topic
// an alias when the client allows more. Caller holds Lock.
func (m *conn) writePublish5(topic string, payload []byte, qos byte, retain, dup bool, id uint16) {
	c := m.c
	sent := topic
	if m.aliasOutMax > 0 {
		a, ok := m.aliasOut[topic]
		if ok {
			sent = "" // the alias stands for it
		} else if len(m.aliasOut) < int(m.aliasOutMax) && m.aliasOutBytes+len(topic) <= maxAliasBytes {
			// The map keeps each aliased topic for the connection's life:
			// bounded in bytes as the client's aliases are, or 1024
			// topics of 64 KiB would keep 64 MiB per subscriber.
			if m.aliasOut == nil {
				m.aliasOut = make(map[string]uint16)
			}
			a = uint16(len(m.aliasOut) + 1)
			m.aliasOut[topic] = a
			m.aliasOutBytes += len(topic)
			ok = true
		}
		if ok {
			m.props.Set(mcodec.PropTopicAlias)
			m.props.TopicAlias = a
		}
	}
	m.scratch = mcodec.AppendPublishHeader5(m.scratch[:0], sent, len(payload), qos, retain, dup, id, m.props)
	c.Write(m.scratch)
	m.trimScratch()
	c.Write(payload)
	c.CountOut(len(payload))
}

// writeRetained5 sends a retained message to an MQTT 5 subscriber on
// SUBSCRIBE. Caller holds Lock.
func (m *conn) writeRetained5(r *Retained, qos byte, subID uint32) {
	m.buildProps(r.Hdr, nil, subID, r.Expires, false) // with the time it has left
	if !m.fits(r.Topic, len(r.Payload), qos) {
		return
	}
	if qos == 0 {
		m.writePublish5(r.Topic, r.Payload, 0, true, false, 0)
	} else if pm, _ := m.sess.Send5(r.Topic, r.Hdr, r.Payload, qos, r.Expires); pm != nil { // queued: keeps the end it has
		m.writePublish5(r.Topic, r.Payload, qos, true, false, pm.ID)
	}
}
