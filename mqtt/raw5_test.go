package mqtt_test

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	mcodec "github.com/evnats/evnats/mqtt/codec"
)

// props5 is a property list from raw id/value bytes.
func props5(raw ...byte) []byte { return append(mcodec.AppendRemainingLength(nil, len(raw)), raw...) }

// connect5Packet builds an MQTT 5 CONNECT with clean start and properties.
func connect5Packet(id string, props []byte) []byte {
	body := str(nil, "MQTT")
	body = append(body, 5, 0x02, 0, 0)
	body = append(body, props...)
	return packet(mcodec.CONNECT<<4, str(body, id))
}

// connect5 sends an MQTT 5 CONNECT and checks CONNACK accepts it.
func (r *rawMQTT) connect5(id string, props []byte) []byte {
	r.t.Helper()
	r.send(connect5Packet(id, props))
	typ, _, body := r.read()
	if typ != mcodec.CONNACK || len(body) < 3 || body[1] != 0 {
		r.t.Fatalf("CONNACK: type %d body % x", typ, body)
	}
	return body
}

// expectDisconnect5 reads DISCONNECT with reason, then the close.
func (r *rawMQTT) expectDisconnect5(reason byte) {
	r.t.Helper()
	typ, _, body := r.read()
	if typ != mcodec.DISCONNECT || len(body) < 1 || body[0] != reason {
		r.t.Fatalf("want DISCONNECT %#x, got type %d % x", reason, typ, body)
	}
	r.expectClosed()
}

// TestMQTT5MalformedPackets: every malformed MQTT 5 packet gets the
// DISCONNECT reason code MQTT 5.0 names for it, then the close, and a log
// line; a bad CONNECT gets the reason in CONNACK.
func TestMQTT5MalformedPackets(t *testing.T) {
	s := startMQTT(t, loop.Options{MaxPayload: 1024})
	cases := []struct {
		name   string
		pkt    []byte
		reason byte
	}{
		{"unknown property id", packet(mcodec.PUBLISH<<4, append(str(nil, "a"), props5(0x7f, 0)...)), mcodec.ReasonMalformed},
		{"duplicated property", packet(mcodec.PUBLISH<<4, append(str(nil, "a"), props5(mcodec.PropContentType, 0, 0, mcodec.PropContentType, 0, 0)...)), mcodec.ReasonProtocolError},
		{"property in the wrong packet", packet(mcodec.PUBLISH<<4, append(str(nil, "a"), props5(mcodec.PropSessionExpiry, 0, 0, 0, 1)...)), mcodec.ReasonMalformed},
		{"topic alias 0", packet(mcodec.PUBLISH<<4, append(str(nil, "a"), props5(mcodec.PropTopicAlias, 0, 0)...)), mcodec.ReasonTopicAliasInvalid},
		{"topic alias above the maximum", packet(mcodec.PUBLISH<<4, append(str(nil, "a"), props5(mcodec.PropTopicAlias, 0xff, 0xff)...)), mcodec.ReasonTopicAliasInvalid},
		{"unknown topic alias", packet(mcodec.PUBLISH<<4, append(str(nil, ""), props5(mcodec.PropTopicAlias, 0, 9)...)), mcodec.ReasonProtocolError},
		{"packet above the maximum size", packet(mcodec.PUBLISH<<4, append(append(str(nil, "a"), props5()...), make([]byte, 128<<10)...)), mcodec.ReasonPacketTooLarge},
		{"retain handling 3", packet(mcodec.SUBSCRIBE<<4|2, append(append([]byte{0, 1}, props5()...), append(str(nil, "a"), 0x30)...)), mcodec.ReasonProtocolError},
		{"payload not UTF-8", packet(mcodec.PUBLISH<<4, append(append(str(nil, "a"), props5(mcodec.PropPayloadFormat, 1)...), 0xff)), mcodec.ReasonPayloadFormatInvalid},
		{"AUTH", packet(mcodec.AUTH<<4, []byte{0x18, 0}), mcodec.ReasonBadAuthMethod},
		{"session expiry set after 0", packet(mcodec.DISCONNECT<<4, append([]byte{0}, props5(mcodec.PropSessionExpiry, 0, 0, 0, 5)...)), mcodec.ReasonProtocolError},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := dialRaw(t, s)
			r.connect5("bad", props5())
			r.send(c.pkt)
			r.expectDisconnect5(c.reason)
		})
	}
	// CONNECT itself malformed: CONNACK with the reason, then the close.
	for _, c := range []struct {
		name   string
		props  []byte
		reason byte
	}{
		{"connect: duplicated property", props5(mcodec.PropReceiveMaximum, 0, 1, mcodec.PropReceiveMaximum, 0, 1), mcodec.ReasonProtocolError},
		{"connect: wrong packet", props5(mcodec.PropTopicAlias, 0, 1), mcodec.ReasonMalformed},
		{"connect: receive maximum 0", props5(mcodec.PropReceiveMaximum, 0, 0), mcodec.ReasonProtocolError},
		{"connect: enhanced authentication", props5(append([]byte{mcodec.PropAuthMethod}, str(nil, "SCRAM-SHA-1")...)...), mcodec.ReasonBadAuthMethod},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := dialRaw(t, s)
			r.send(connect5Packet("bad", c.props))
			typ, _, body := r.read()
			if typ != mcodec.CONNACK || len(body) < 2 || body[1] != c.reason {
				t.Fatalf("want CONNACK %#x, got type %d % x", c.reason, typ, body)
			}
			r.expectClosed()
		})
	}
	// A level neither 4 nor 5 is still refused as on 3.1.1.
	r := dialRaw(t, s)
	body := append(str(nil, "MQTT"), 6, 2, 0, 0)
	r.send(packet(mcodec.CONNECT<<4, str(body, "x")))
	if typ, _, b := r.read(); typ != mcodec.CONNACK || !bytes.Equal(b, []byte{0, 1}) {
		t.Fatalf("level 6: type %d % x", typ, b)
	}
}

// TestMQTT5FlowAndAliases: the server honours the client's receive
// maximum (one QoS 1 message in flight), maximum packet size (a larger
// message is not sent) and topic alias maximum (the second message on a
// topic carries only its alias); it answers PUBACK for a publish it may
// not route with reason 0x87, and UNSUBACK with a reason per filter.
func TestMQTT5FlowAndAliases(t *testing.T) {
	s := startMQTT(t, loop.Options{Users: []*loop.User{{Username: "u", Password: "p",
		Permissions: &loop.Permissions{Publish: &loop.SubjectPermission{Deny: []string{"denied.>"}}}}}})
	login := func(r *rawMQTT, id string, props []byte) {
		t.Helper()
		body := append(str(nil, "MQTT"), 5, 0x02|0xc0, 0, 0)
		body = append(body, props...)
		r.send(packet(mcodec.CONNECT<<4, str(str(str(body, id), "u"), "p")))
		if typ, _, b := r.read(); typ != mcodec.CONNACK || b[1] != 0 {
			t.Fatalf("CONNACK % x", b)
		}
	}
	sub := dialRaw(t, s)
	login(sub, "flow", props5(mcodec.PropReceiveMaximum, 0, 1, mcodec.PropMaximumPacketSize, 0, 0, 0, 100, mcodec.PropTopicAliasMaximum, 0, 4))
	sub.send(packet(mcodec.SUBSCRIBE<<4|2, append(append([]byte{0, 1}, props5()...), append(str(nil, "f/#"), 1)...)))
	if typ, _, b := sub.read(); typ != mcodec.SUBACK || !bytes.Equal(b, []byte{0, 1, 0, 1}) {
		t.Fatalf("SUBACK type %d % x", typ, b)
	}
	pub := dialRaw(t, s)
	login(pub, "pub", props5())
	for i, p := range []string{"one", strings.Repeat("x", 200), "two", "three"} {
		pub.send(packet(mcodec.PUBLISH<<4|1<<1, append(append(str(nil, "f/t"), 0, byte(i+1)), append(props5(), p...)...)))
		pub.expectAck(mcodec.PUBACK, uint16(i+1))
	}
	read := func() (topic string, alias int, payload string, id uint16) {
		typ, _, b := sub.read()
		if typ != mcodec.PUBLISH {
			t.Fatalf("type %d % x", typ, b)
		}
		n := int(b[0])<<8 | int(b[1])
		topic = string(b[2 : 2+n])
		b = b[2+n:]
		id = uint16(b[0])<<8 | uint16(b[1])
		b = b[2:]
		pl := int(b[0]) // short property lists only
		props := b[1 : 1+pl]
		if i := bytes.IndexByte(props, mcodec.PropTopicAlias); i >= 0 {
			alias = int(props[i+1])<<8 | int(props[i+2])
		}
		return topic, alias, string(b[1+pl:]), id
	}
	topic, alias, payload, id := read()
	if topic != "f/t" || alias != 1 || payload != "one" {
		t.Fatalf("first: %q alias %d %q", topic, alias, payload)
	}
	sub.pingPong() // receive maximum 1: nothing more until PUBACK
	sub.send(mcodec.AppendAck(nil, mcodec.PUBACK, id))
	topic, alias, payload, id = read() // the 200-byte one was over the maximum packet size
	if topic != "" || alias != 1 || payload != "two" {
		t.Fatalf("second: %q alias %d %q", topic, alias, payload)
	}
	sub.send(mcodec.AppendAck(nil, mcodec.PUBACK, id))
	if _, _, payload, _ = read(); payload != "three" {
		t.Fatalf("third: %q", payload)
	}

	// PUBACK 0x87 for a publish the permissions refuse.
	sub.send(packet(mcodec.PUBLISH<<4|1<<1, append(append(str(nil, "denied/x"), 0, 9), props5()...)))
	if typ, _, b := sub.read(); typ != mcodec.PUBACK || !bytes.Equal(b, []byte{0, 9, mcodec.ReasonNotAuthorized, 0}) {
		t.Fatalf("PUBACK type %d % x", typ, b)
	}
	// UNSUBACK: success for f/#, no subscription existed for g.
	sub.send(packet(mcodec.UNSUBSCRIBE<<4|2, append(append([]byte{0, 2}, props5()...), append(str(nil, "f/#"), str(nil, "g")...)...)))
	if typ, _, b := sub.read(); typ != mcodec.UNSUBACK || !bytes.Equal(b, []byte{0, 2, 0, 0, mcodec.ReasonNoSubscriptionExisted}) {
		t.Fatalf("UNSUBACK type %d % x", typ, b)
	}
}

// TestMQTT5TakeoverReason: a second connection with the same client id
// takes the session over; the first, an MQTT 5 client, gets DISCONNECT
// 0x8E (session taken over) before the close.
func TestMQTT5TakeoverReason(t *testing.T) {
	eachTransport(t, func(t *testing.T, o loop.Options) {
		s := startMQTT(t, o)
		first := dialRaw(t, s)
		first.connect5("twin", props5(mcodec.PropSessionExpiry, 0, 0, 0, 60))
		second := dialRaw(t, s)
		body := second.connect5("twin", props5(mcodec.PropSessionExpiry, 0, 0, 0, 60))
		if body[0] != 0 {
			// clean start is set by connect5: no session present
			t.Fatalf("CONNACK % x", body)
		}
		first.expectDisconnect5(mcodec.ReasonSessionTakenOver)
	})
}

// TestMQTT5AliasQuota: topic aliases may not stand for more than 64 KiB of
// topics on one connection (DISCONNECT 0x97, quota exceeded).
func TestMQTT5AliasQuota(t *testing.T) {
	s := startMQTT(t, loop.Options{})
	r := dialRaw(t, s)
	r.connect5("alias", props5())
	long := strings.Repeat("t", 40<<10)
	for a := byte(1); a <= 2; a++ {
		r.send(packet(mcodec.PUBLISH<<4, append(str(nil, long+string('0'+a)), props5(mcodec.PropTopicAlias, 0, a)...)))
	}
	r.expectDisconnect5(mcodec.ReasonQuotaExceeded)
}

// TestMQTT5ResumeHonoursReceiveMaximum: a client that comes back to its
// session with a smaller Receive Maximum than it had gets no more
// unacknowledged QoS 1 messages resent than it now allows; each ack lets
// the next one through (DUP set: it was sent before).
func TestMQTT5ResumeHonoursReceiveMaximum(t *testing.T) {
	s := startMQTT(t, loop.Options{})
	r := dialRaw(t, s)
	r.connect5("rm", props5(mcodec.PropSessionExpiry, 0, 0, 0, 60))
	r.send(packet(mcodec.SUBSCRIBE<<4|2, append(append([]byte{0, 1}, props5()...), append(str(nil, "rm/#"), 1)...)))
	if typ, _, _ := r.read(); typ != mcodec.SUBACK {
		t.Fatalf("SUBACK type %d", typ)
	}
	pub := dialRaw(t, s)
	pub.connect("rm-pub", true, 0)
	const n = 5
	for i := 1; i <= n; i++ {
		pub.publish("rm/x", "m", 1, uint16(i), false)
		pub.expectAck(mcodec.PUBACK, uint16(i))
	}
	for range n {
		r.readPublish() // left unacknowledged
	}
	r.conn.Close()

	r = dialRaw(t, s)
	body := append(str(nil, "MQTT"), 5, 0, 0, 0) // clean start off
	body = append(body, props5(mcodec.PropSessionExpiry, 0, 0, 0, 60, mcodec.PropReceiveMaximum, 0, 2)...)
	r.send(packet(mcodec.CONNECT<<4, str(body, "rm")))
	if typ, _, b := r.read(); typ != mcodec.CONNACK || b[0] != 1 {
		t.Fatalf("CONNACK type %d % x", typ, b)
	}
	// What the server wrote on CONNECT comes before the PINGRESP.
	resent := func() []rawPublish {
		r.send([]byte{mcodec.PINGREQ << 4, 0})
		var out []rawPublish
		for {
			typ, flags, b := r.read()
			if typ == mcodec.PINGRESP {
				return out
			}
			if typ != mcodec.PUBLISH {
				t.Fatalf("type %d", typ)
			}
			out = append(out, rawPublish{dup: flags&8 != 0, id: uint16(b[6])<<8 | uint16(b[7])})
		}
	}
	got := resent()
	if len(got) != 2 {
		t.Fatalf("resent %d messages to a client with Receive Maximum 2", len(got))
	}
	for k := 2; k < n; k++ {
		r.send(mcodec.AppendAck(nil, mcodec.PUBACK, got[0].id))
		got = got[1:]
		more := resent()
		if len(more) != 1 || !more[0].dup {
			t.Fatalf("after ack %d: %+v", k-1, more)
		}
		got = append(got, more...)
	}
}

// TestMQTT5ServerReceiveMaximum: CONNACK names the server's Receive
// Maximum (1024) and the server holds the client to it: QoS 2 publishes
// awaiting PUBREL are its in-flight ones (each is state the session keeps
// and snapshots), and one more than the maximum gets DISCONNECT 0x93
// (Receive Maximum exceeded). A repeated id, or one released by PUBREL,
// does not count.
func TestMQTT5ServerReceiveMaximum(t *testing.T) {
	s := startMQTT(t, loop.Options{})
	r := dialRaw(t, s)
	ack := r.connect5("rmax", props5())
	if !bytes.Contains(ack, []byte{mcodec.PropReceiveMaximum, 4, 0}) {
		t.Fatalf("CONNACK without Receive Maximum 1024: % x", ack)
	}
	const max = 1024
	pub := func(id uint16) {
		r.send(packet(mcodec.PUBLISH<<4|2<<1, append(append(str(nil, "rmax/x"), byte(id>>8), byte(id)), append(props5(), 'm')...)))
	}
	for id := uint16(1); id <= max; id++ {
		pub(id)
	}
	for id := uint16(1); id <= max; id++ {
		if typ, _, b := r.read(); typ != mcodec.PUBREC || uint16(b[0])<<8|uint16(b[1]) != id {
			t.Fatalf("want PUBREC %d, got type %d % x", id, typ, b)
		}
	}
	pub(7) // a repeat: within the window
	r.expectAck5(mcodec.PUBREC, 7)
	r.send(mcodec.AppendAck(nil, mcodec.PUBREL, 1))
	r.expectAck5(mcodec.PUBCOMP, 1)
	pub(max + 1) // takes the place id 1 left
	r.expectAck5(mcodec.PUBREC, max+1)
	pub(max + 2)
	r.expectDisconnect5(mcodec.ReasonReceiveMaximumExceeded)
}

// expectAck5 reads an MQTT 5 ack of kind for id (any reason code).
func (r *rawMQTT) expectAck5(kind byte, id uint16) {
	r.t.Helper()
	typ, _, b := r.read()
	if typ != kind || len(b) < 2 || uint16(b[0])<<8|uint16(b[1]) != id {
		r.t.Fatalf("want ack type %d id %d, got type %d % x", kind, id, typ, b)
	}
}

// messageExpiry5 returns the Message Expiry Interval of an MQTT 5 PUBLISH
// body at QoS 1 or 2 (false when it has none).
func messageExpiry5(t *testing.T, b []byte) (uint32, bool) {
	t.Helper()
	n := int(b[0])<<8 | int(b[1])
	b = b[2+n+2:] // topic, packet id
	size, used := 0, 0
	for mult := 1; ; mult *= 128 {
		size += int(b[used]&0x7f) * mult
		used++
		if b[used-1]&0x80 == 0 {
			break
		}
	}
	props := b[used : used+size]
	for len(props) > 0 {
		id := props[0]
		props = props[1:]
		switch id {
		case mcodec.PropMessageExpiry:
			return binary.BigEndian.Uint32(props), true
		case mcodec.PropPayloadFormat:
			props = props[1:]
		case mcodec.PropTopicAlias:
			props = props[2:]
		case mcodec.PropSubscriptionID:
			for props[0]&0x80 != 0 {
				props = props[1:]
			}
			props = props[1:]
		default:
			t.Fatalf("unexpected property %#x in % x", id, b)
		}
	}
	return 0, false
}

// TestMQTT5RetainedQueuedKeepsExpiry: retained QoS 1 messages sent on
// SUBSCRIBE past the client's Receive Maximum wait in the session's queue;
// when one is sent later it carries the time its expiry interval has left,
// counted from when it was published, not the whole interval again from
// the SUBSCRIBE.
func TestMQTT5RetainedQueuedKeepsExpiry(t *testing.T) {
	s := startMQTT(t, loop.Options{})
	pub := dialRaw(t, s)
	pub.connect5("rq-pub", props5())
	for i, topic := range []string{"rq/a", "rq/b"} {
		id := uint16(i + 1)
		body := append(str(nil, topic), 0, byte(id))
		body = append(body, props5(mcodec.PropMessageExpiry, 0, 0, 0, 100)...)
		pub.send(packet(mcodec.PUBLISH<<4|1<<1|1, append(body, "kept"...)))
		pub.expectAck5(mcodec.PUBACK, id)
	}
	published := time.Now()
	// The remaining time is in whole seconds: past one, a message that
	// kept its end says at most 99.
	time.Sleep(time.Until(published.Add(1100 * time.Millisecond)))

	sub := dialRaw(t, s)
	sub.connect5("rq-sub", props5(mcodec.PropReceiveMaximum, 0, 1))
	sub.send(packet(mcodec.SUBSCRIBE<<4|2, append(append([]byte{0, 1}, props5()...), append(str(nil, "rq/#"), 1)...)))
	for seen := 0; seen < 2; {
		typ, _, b := sub.read()
		switch typ {
		case mcodec.SUBACK:
		case mcodec.PUBLISH:
			seen++
			left, ok := messageExpiry5(t, b)
			if !ok || left > 99 || left < 90 {
				t.Fatalf("retained message %d: expiry interval %d (present %v), want the time left, at most 99", seen, left, ok)
			}
			n := int(b[0])<<8 | int(b[1])
			sub.ack(mcodec.PUBACK, uint16(b[2+n])<<8|uint16(b[3+n])) // lets the queued one go
		default:
			t.Fatalf("unexpected packet type %d % x", typ, b)
		}
	}
}
