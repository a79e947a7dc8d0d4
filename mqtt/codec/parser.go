package codec

// Concurrency: a Parser belongs to one MQTT connection and is driven only
// by the goroutine that reads it; handler callbacks run synchronously on that
// goroutine. No locks.

import (
	"bytes"
	"encoding/binary"
	"sync"
	"unicode/utf8"

	ncodec "github.com/evnats/evnats/codec"
)

// DefaultMaxPacket bounds a packet when the broker sets no other limit.
const DefaultMaxPacket = 1 << 20

// Parser is a resumable MQTT packet decoder. Feed it bytes in any split; it
// keeps an incomplete packet in its own buffer. Owned by the connection's
// reading goroutine. After an error it must not be used again.
type Parser struct {
	MaxPacket int
	h         Handler
	buf       []byte // an incomplete packet, or input held while suspended
	connected bool
	suspended bool
	subs      []Subscription
	filters   [][]byte
	// The packets' structs are not kept in the parser itself, which every
	// connection has: CONNECT, DISCONNECT and AUTH (once a connection, or
	// rare) borrow one from a pool for the handler's call; pub and props
	// are made when a connection first needs them and kept (a connection
	// that never publishes carries no Publish). A connection that only
	// subscribes costs a 128-byte parser, not 2.3 KB.
	pub *Publish
	// level is the protocol level of CONNECT, once read (5: MQTT 5 packets).
	level byte
	props *Properties // of SUBSCRIBE, UNSUBSCRIBE and MQTT 5 acks
}

var (
	connectPool    = sync.Pool{New: func() any { return new(Connect) }}
	disconnectPool = sync.Pool{New: func() any { return new(Disconnect) }}
	authPool       = sync.Pool{New: func() any { return new(Auth) }}
)

// properties returns the parser's kept Properties, made on first use.
func (p *Parser) properties() *Properties {
	if p.props == nil {
		p.props = new(Properties)
	}
	return p.props
}

// resetProps drops what the kept Properties point at (the read buffer).
func (p *Parser) resetProps() {
	if p.props != nil {
		p.props.Reset()
	}
}

// Level returns the protocol level the client's CONNECT named (0 before it
// was read): 4 for MQTT 3.1.1, 5 for MQTT 5.
func (p *Parser) Level() byte { return p.level }

func (p *Parser) v5() bool { return p.level == 5 }

// NewParser returns a parser reporting to h.
func NewParser(h Handler) *Parser { return &Parser{h: h, MaxPacket: DefaultMaxPacket} }

// Parse consumes b, calling the handler for each complete packet. A
// handler may return codec.ErrSuspend (of the NATS codec) to pause after its
// packet: Parse returns it, later input is held (at most one maximal
// packet, and no more than ncodec.HeldBeforeConnect: only a CONNECT being
// verified suspends, and a client not yet authenticated must not park a
// large packet in the server) until Resume.
func (p *Parser) Parse(b []byte) error {
	if p.suspended {
		if len(p.buf)+len(b) > min(p.MaxPacket+5, ncodec.HeldBeforeConnect) {
			return ErrTooLarge
		}
		p.buf = append(p.buf, b...)
		return nil
	}
	if len(p.buf) > 0 {
		p.buf = append(p.buf, b...)
		return p.parseBuf()
	}
	n, err := p.parse(b)
	if (err == nil || err == ncodec.ErrSuspend) && n < len(b) {
		p.buf = keep(p.buf, b[n:])
	}
	p.suspended = err == ncodec.ErrSuspend
	return err
}

// Resume continues a suspended parse with the input held meanwhile.
func (p *Parser) Resume() error {
	if !p.suspended {
		return nil
	}
	p.suspended = false
	if len(p.buf) == 0 {
		return nil
	}
	return p.parseBuf()
}

// parseBuf parses what buf holds.
func (p *Parser) parseBuf() error {
	n, err := p.parse(p.buf)
	if n > 0 { // else still waiting: leave the partial packet where it is
		p.buf = keep(p.buf, p.buf[n:])
	}
	p.suspended = err == ncodec.ErrSuspend
	return err
}

// keep stores rest, the start of an incomplete packet, in buf for the next
// read. A buf that one large packet grew is released rather than kept while
// the connection idles.
func keep(buf, rest []byte) []byte {
	if cap(buf) > ncodec.RetainLimit && len(rest) <= ncodec.RetainLimit {
		buf = nil // rest, which may lie in the old buf, is copied out below
	}
	return append(buf[:0], rest...)
}

// parse decodes whole packets from b and returns how many bytes it used.
func (p *Parser) parse(b []byte) (int, error) {
	used := 0
	for {
		rest := b[used:]
		if len(rest) > 0 && !p.connected && rest[0]>>4 != CONNECT {
			return used, ErrFirstPacket // don't wait for the rest of garbage
		}
		if len(rest) < 2 {
			return used, nil
		}
		length, hdr, err := remainingLength(rest[1:])
		if err != nil {
			return used, err
		}
		if hdr == 0 {
			return used, nil // length bytes incomplete
		}
		if length > p.MaxPacket {
			return used, ErrTooLarge
		}
		total := 1 + hdr + length
		if len(rest) < total {
			return used, nil
		}
		if err := p.packet(rest[0], rest[1+hdr:total]); err != nil {
			if err == ncodec.ErrSuspend {
				return used + total, err
			}
			return used, err
		}
		used += total
	}
}

// remainingLength decodes the variable-length field: value and its size in
// bytes, or size 0 when more bytes are needed.
func remainingLength(b []byte) (value, size int, err error) {
	mult := 1
	for i := 0; i < 4; i++ {
		if i >= len(b) {
			return 0, 0, nil
		}
		value += int(b[i]&0x7f) * mult
		if b[i]&0x80 == 0 {
			return value, i + 1, nil
		}
		mult *= 128
	}
	return 0, 0, ErrRemainingLength
}

func (p *Parser) packet(first byte, body []byte) error {
	kind, flags := first>>4, first&0x0f
	if kind != CONNECT && !p.connected {
		return ErrFirstPacket
	}
	switch kind {
	case CONNECT:
		if flags != 0 {
			return ErrFlags
		}
		if p.connected {
			return ErrSecondConnect
		}
		c := connectPool.Get().(*Connect)
		defer func() {
			*c = Connect{} // its fields point into the read buffer
			connectPool.Put(c)
		}()
		if err := p.connect(c, body); err != nil {
			return err
		}
		p.connected = true
		return p.h.MQTTConnect(c)
	case PUBLISH:
		return p.publish(flags, body)
	case PUBACK, PUBREC, PUBCOMP, PUBREL:
		want := byte(0)
		if kind == PUBREL {
			want = 2
		}
		if flags != want {
			return ErrFlags
		}
		return p.ack(kind, body)
	case SUBSCRIBE:
		return p.subscribe(flags, body)
	case UNSUBSCRIBE:
		return p.unsubscribe(flags, body)
	case PINGREQ:
		if flags != 0 {
			return ErrFlags
		}
		if len(body) != 0 {
			return ErrTruncated
		}
		return p.h.MQTTPingreq()
	case DISCONNECT:
		if flags != 0 {
			return ErrFlags
		}
		d := disconnectPool.Get().(*Disconnect)
		defer func() {
			*d = Disconnect{}
			disconnectPool.Put(d)
		}()
		if !p.v5() && len(body) != 0 {
			return ErrTruncated
		}
		if len(body) > 0 {
			r := reader{b: body}
			d.Reason = r.u8()
			if len(r.b) > 0 {
				if err := r.properties(DISCONNECT, &d.Props); err != nil {
					return err
				}
			}
			if len(r.b) > 0 {
				return ErrTruncated
			}
		}
		return p.h.MQTTDisconnect(d)
	case AUTH:
		if !p.v5() {
			return ErrPacketType
		}
		if flags != 0 {
			return ErrFlags
		}
		a := authPool.Get().(*Auth)
		defer func() {
			*a = Auth{}
			authPool.Put(a)
		}()
		if len(body) > 0 {
			r := reader{b: body}
			a.Reason = r.u8()
			if len(r.b) > 0 {
				if err := r.properties(AUTH, &a.Props); err != nil {
					return err
				}
			}
			if len(r.b) > 0 {
				return ErrTruncated
			}
		}
		return p.h.MQTTAuth(a)
	}
	return ErrPacketType
}

// ack decodes PUBACK, PUBREC, PUBREL or PUBCOMP: the packet id, and on
// MQTT 5 an optional reason code and properties.
func (p *Parser) ack(kind byte, body []byte) error {
	if len(body) < 2 || (!p.v5() && len(body) != 2) {
		return ErrTruncated
	}
	id := binary.BigEndian.Uint16(body)
	reason := byte(0)
	if len(body) > 2 {
		r := reader{b: body[2:]}
		reason = r.u8()
		if len(r.b) > 0 {
			if err := r.properties(kind, p.properties()); err != nil {
				return err
			}
		}
		if len(r.b) > 0 {
			return ErrTruncated
		}
	}
	return p.h.MQTTAck(kind, id, reason)
}

// reader walks a packet body.
type reader struct {
	b   []byte
	err error
}

func (r *reader) u8() byte {
	if r.err != nil || len(r.b) < 1 {
		r.err = ErrTruncated
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) u16() uint16 {
	if r.err != nil || len(r.b) < 2 {
		r.err = ErrTruncated
		return 0
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v
}

// bytes reads a length-prefixed field.
func (r *reader) bytes() []byte {
	n := int(r.u16())
	if r.err != nil || len(r.b) < n {
		r.err = ErrTruncated
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (p *Parser) connect(c *Connect, body []byte) error {
	r := reader{b: body}
	name := r.bytes()
	level := r.u8()
	flags := r.u8()
	keep := r.u16()
	if r.err != nil {
		return r.err
	}
	if string(name) != "MQTT" && string(name) != "MQIsdp" {
		return ErrProtocolName
	}
	p.level = level
	props, willProps := c.Props, c.WillProps // keep their lists' capacity (empty: from the pool)
	*c = Connect{ProtocolName: string(name), Level: level, KeepAlive: keep,
		CleanSession: flags&0x02 != 0, WillFlag: flags&0x04 != 0,
		WillQoS: flags >> 3 & 0x03, WillRetain: flags&0x20 != 0,
		HasPassword: flags&0x40 != 0, HasUsername: flags&0x80 != 0,
		Props: props, WillProps: willProps}
	// MQTT 5 lets a password come without a user name.
	if flags&0x01 != 0 || c.WillQoS > 2 || (!c.WillFlag && (c.WillQoS != 0 || c.WillRetain)) || (c.HasPassword && !c.HasUsername && level != 5) {
		return ErrConnectFlags
	}
	if level == 5 {
		if err := r.properties(CONNECT, &c.Props); err != nil {
			return err
		}
	}
	c.ClientID = r.bytes()
	if c.WillFlag {
		if level == 5 {
			if err := r.properties(WILL, &c.WillProps); err != nil {
				return err
			}
		}
		c.WillTopic = r.bytes()
		c.WillMessage = r.bytes()
	}
	if c.HasUsername {
		c.Username = r.bytes()
	}
	if c.HasPassword {
		c.Password = r.bytes()
	}
	if r.err != nil {
		return r.err
	}
	if c.WillFlag && !ValidTopicName(c.WillTopic) {
		return ErrTopic
	}
	if c.WillFlag && c.WillProps.PayloadFormat == 1 && !utf8.Valid(c.WillMessage) {
		return ErrPayloadFormat
	}
	if level == 5 && len(r.b) > 0 {
		return ErrTruncated // bytes after the last field
	}
	return nil
}

func (p *Parser) publish(flags byte, body []byte) error {
	if p.pub == nil {
		p.pub = new(Publish)
	}
	pub := p.pub
	pub.Dup, pub.QoS, pub.Retain = flags&0x08 != 0, flags>>1&0x03, flags&0x01 != 0
	pub.PacketID = 0
	if pub.QoS > 2 || (pub.QoS == 0 && pub.Dup) {
		return ErrQoS
	}
	r := reader{b: body}
	pub.Topic = r.bytes()
	if pub.QoS > 0 {
		pub.PacketID = r.u16()
	}
	if r.err != nil {
		return r.err
	}
	if pub.QoS > 0 && pub.PacketID == 0 {
		return ErrPacketID
	}
	if p.v5() {
		if err := p.publish5(pub, &r); err != nil {
			return err
		}
	} else if !ValidTopicName(pub.Topic) {
		return ErrTopic
	}
	pub.Payload = r.b
	err := p.h.MQTTPublish(pub)
	pub.Topic, pub.Payload = nil, nil // don't pin the payload's buffer
	if p.v5() {
		pub.Props.Reset()
	}
	return err
}

// publish5 reads an MQTT 5 PUBLISH's properties and checks them: a topic
// may be empty only when an alias names it.
func (p *Parser) publish5(pub *Publish, r *reader) error {
	if err := r.properties(PUBLISH, &pub.Props); err != nil {
		return err
	}
	pr := &pub.Props
	if pr.Has(PropSubscriptionID) {
		return ErrClientSubID
	}
	if pr.Has(PropTopicAlias) && pr.TopicAlias == 0 {
		return ErrTopicAliasZero
	}
	if len(pub.Topic) == 0 {
		if !pr.Has(PropTopicAlias) {
			return ErrEmptyTopicAlias
		}
	} else if !ValidTopicName(pub.Topic) {
		return ErrTopic
	}
	if pr.PayloadFormat == 1 && !utf8.Valid(r.b) {
		return ErrPayloadFormat
	}
	return nil
}

// listHeader checks the fixed flags and reads the packet id that start a
// SUBSCRIBE or UNSUBSCRIBE, returning a reader over the topic list.
func listHeader(flags byte, body []byte) (uint16, reader, error) {
	if flags != 2 {
		return 0, reader{}, ErrFlags
	}
	r := reader{b: body}
	id := r.u16()
	if r.err != nil {
		return 0, r, r.err
	}
	if id == 0 {
		return 0, r, ErrPacketID
	}
	return id, r, nil
}

// keptListCap bounds the filter lists a parser keeps between packets: one
// SUBSCRIBE may carry a few hundred thousand filters, and an idle
// connection should not keep megabytes of list for it.
const keptListCap = 1024

func (p *Parser) subscribe(flags byte, body []byte) error {
	id, r, err := listHeader(flags, body)
	if err != nil {
		return err
	}
	var subID uint32
	if p.v5() {
		props := p.properties()
		if err := r.properties(SUBSCRIBE, props); err != nil {
			return err
		}
		if len(props.SubIDs) > 1 {
			return ErrPropertyDup
		}
		if len(props.SubIDs) == 1 {
			subID = props.SubIDs[0]
		}
	}
	p.subs = p.subs[:0]
	for len(r.b) > 0 {
		f := r.bytes()
		q := r.u8()
		if r.err != nil {
			return r.err
		}
		s := Subscription{Filter: f, QoS: q & 3, SubID: subID}
		if p.v5() {
			if q&0xc0 != 0 {
				return ErrSubOptions
			}
			s.NoLocal, s.RetainAsPublished, s.RetainHandling = q&0x04 != 0, q&0x08 != 0, q>>4&3
			if s.RetainHandling == 3 {
				return ErrRetainHandling
			}
			if s.NoLocal && bytes.HasPrefix(f, []byte("$share/")) {
				return ErrSharedNoLocal
			}
		} else if q&0xfc != 0 {
			return ErrQoS
		}
		if s.QoS > 2 {
			return ErrQoS
		}
		if !ValidTopicFilter(f) {
			return ErrTopic
		}
		p.subs = append(p.subs, s)
	}
	if len(p.subs) == 0 {
		return ErrEmptySubscribe
	}
	err = p.h.MQTTSubscribe(id, p.subs)
	p.resetProps() // its values point into the read buffer
	clear(p.subs)
	if cap(p.subs) > keptListCap {
		p.subs = nil
	}
	return err
}

func (p *Parser) unsubscribe(flags byte, body []byte) error {
	id, r, err := listHeader(flags, body)
	if err != nil {
		return err
	}
	if p.v5() {
		if err := r.properties(UNSUBSCRIBE, p.properties()); err != nil {
			return err
		}
	}
	p.filters = p.filters[:0]
	for len(r.b) > 0 {
		f := r.bytes()
		if r.err != nil {
			return r.err
		}
		if !ValidTopicFilter(f) {
			return ErrTopic
		}
		p.filters = append(p.filters, f)
	}
	if len(p.filters) == 0 {
		return ErrEmptySubscribe
	}
	err = p.h.MQTTUnsubscribe(id, p.filters)
	p.resetProps() // its values point into the read buffer
	clear(p.filters)
	if cap(p.filters) > keptListCap {
		p.filters = nil
	}
	return err
}

// ValidTopicName reports whether t may be published to: non-empty UTF-8
// without wildcards or NUL.
func ValidTopicName(t []byte) bool {
	if len(t) == 0 {
		return false
	}
	// One pass over ASCII, the usual topic; the rest of a topic with other
	// bytes is checked as UTF-8 too.
	for i, c := range t {
		switch {
		case c == '+' || c == '#' || c == 0:
			return false
		case c >= utf8.RuneSelf:
			return utf8.Valid(t[i:]) && bytes.IndexAny(t[i:], "+#\x00") < 0
		}
	}
	return true
}

// ValidTopicFilter reports whether f is a valid subscription filter: '+'
// and '#' only as whole levels, '#' only last.
func ValidTopicFilter(f []byte) bool {
	if len(f) == 0 || !utf8.Valid(f) || bytes.IndexByte(f, 0) >= 0 {
		return false
	}
	levels := bytes.Split(f, []byte("/"))
	for i, l := range levels {
		if bytes.ContainsAny(l, "+#") {
			if len(l) != 1 {
				return false
			}
			if l[0] == '#' && i != len(levels)-1 {
				return false
			}
		}
	}
	return true
}
