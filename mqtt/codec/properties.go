package codec

// Concurrency: Properties values are filled by a Parser on the connection's
// reading goroutine (their slices point into its buffer, valid only during
// the handler call) or built by the broker for one packet it sends; the
// appenders are stateless.

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"slices"
	"unicode/utf8"
)

// MQTT 5 property identifiers (MQTT 5.0 section 2.2.2.2).
const (
	PropPayloadFormat           byte = 0x01
	PropMessageExpiry           byte = 0x02
	PropContentType             byte = 0x03
	PropResponseTopic           byte = 0x08
	PropCorrelationData         byte = 0x09
	PropSubscriptionID          byte = 0x0B
	PropSessionExpiry           byte = 0x11
	PropAssignedClientID        byte = 0x12
	PropServerKeepAlive         byte = 0x13
	PropAuthMethod              byte = 0x15
	PropAuthData                byte = 0x16
	PropRequestProblemInfo      byte = 0x17
	PropWillDelay               byte = 0x18
	PropRequestResponseInfo     byte = 0x19
	PropResponseInfo            byte = 0x1A
	PropServerReference         byte = 0x1C
	PropReasonString            byte = 0x1F
	PropReceiveMaximum          byte = 0x21
	PropTopicAliasMaximum       byte = 0x22
	PropTopicAlias              byte = 0x23
	PropMaximumQoS              byte = 0x24
	PropRetainAvailable         byte = 0x25
	PropUserProperty            byte = 0x26
	PropMaximumPacketSize       byte = 0x27
	PropWildcardSubAvailable    byte = 0x28
	PropSubscriptionIDAvailable byte = 0x29
	PropSharedSubAvailable      byte = 0x2A
)

// Property value types.
const (
	tByte byte = iota + 1
	tU16
	tU32
	tVarint
	tString
	tBinary
	tPair
)

// WILL is the pseudo packet type of a CONNECT's will properties in the
// property table (type 0 is reserved on the wire).
const WILL byte = 0

// AUTH is the MQTT 5 enhanced-authentication packet type.
const AUTH byte = 15

// propSpec is one property's value type and the packet types (bit per
// type, bit 0 the will) it may appear in.
type propSpec struct {
	typ     byte
	packets uint16
}

func pk(types ...byte) uint16 {
	var m uint16
	for _, t := range types {
		m |= 1 << t
	}
	return m
}

var acks = pk(PUBACK, PUBREC, PUBREL, PUBCOMP)

// propTable is MQTT 5.0 table 2-4.
var propTable = [0x2B]propSpec{
	PropPayloadFormat:           {tByte, pk(PUBLISH, WILL)},
	PropMessageExpiry:           {tU32, pk(PUBLISH, WILL)},
	PropContentType:             {tString, pk(PUBLISH, WILL)},
	PropResponseTopic:           {tString, pk(PUBLISH, WILL)},
	PropCorrelationData:         {tBinary, pk(PUBLISH, WILL)},
	PropSubscriptionID:          {tVarint, pk(PUBLISH, SUBSCRIBE)},
	PropSessionExpiry:           {tU32, pk(CONNECT, CONNACK, DISCONNECT)},
	PropAssignedClientID:        {tString, pk(CONNACK)},
	PropServerKeepAlive:         {tU16, pk(CONNACK)},
	PropAuthMethod:              {tString, pk(CONNECT, CONNACK, AUTH)},
	PropAuthData:                {tBinary, pk(CONNECT, CONNACK, AUTH)},
	PropRequestProblemInfo:      {tByte, pk(CONNECT)},
	PropWillDelay:               {tU32, pk(WILL)},
	PropRequestResponseInfo:     {tByte, pk(CONNECT)},
	PropResponseInfo:            {tString, pk(CONNACK)},
	PropServerReference:         {tString, pk(CONNACK, DISCONNECT)},
	PropReasonString:            {tString, pk(CONNACK, SUBACK, UNSUBACK, DISCONNECT, AUTH) | acks},
	PropReceiveMaximum:          {tU16, pk(CONNECT, CONNACK)},
	PropTopicAliasMaximum:       {tU16, pk(CONNECT, CONNACK)},
	PropTopicAlias:              {tU16, pk(PUBLISH)},
	PropMaximumQoS:              {tByte, pk(CONNACK)},
	PropRetainAvailable:         {tByte, pk(CONNACK)},
	PropUserProperty:            {tPair, 0xffff},
	PropMaximumPacketSize:       {tU32, pk(CONNECT, CONNACK)},
	PropWildcardSubAvailable:    {tByte, pk(CONNACK)},
	PropSubscriptionIDAvailable: {tByte, pk(CONNACK)},
	PropSharedSubAvailable:      {tByte, pk(CONNACK)},
}

// UserProperty is one name/value pair of a User Property.
type UserProperty struct{ Key, Value []byte }

// Properties are an MQTT 5 packet's properties. Present has bit id set for
// each property present (User Property and Subscription Identifier, which
// may repeat, also have theirs). Slices point into the parser's buffer when
// decoded.
type Properties struct {
	Present             uint64
	PayloadFormat       byte
	MessageExpiry       uint32
	ContentType         []byte
	ResponseTopic       []byte
	CorrelationData     []byte
	SubIDs              []uint32
	SessionExpiry       uint32
	AssignedClientID    []byte
	ServerKeepAlive     uint16
	AuthMethod          []byte
	AuthData            []byte
	RequestProblemInfo  byte
	WillDelay           uint32
	RequestResponseInfo byte
	ResponseInfo        []byte
	ServerReference     []byte
	ReasonString        []byte
	ReceiveMaximum      uint16
	TopicAliasMaximum   uint16
	TopicAlias          uint16
	MaximumQoS          byte
	RetainAvailable     byte
	User                []UserProperty
	MaximumPacketSize   uint32
	WildcardSubAvail    byte
	SubIDAvail          byte
	SharedSubAvail      byte
}

// Has reports whether property id is present.
func (p *Properties) Has(id byte) bool { return p.Present&(1<<id) != 0 }

// Set marks property id present (its value is set by the caller).
func (p *Properties) Set(id byte) { p.Present |= 1 << id }

// Clone returns a copy of p that shares no memory with it (nor with the
// parser's buffer).
func (p *Properties) Clone() Properties {
	c := *p
	for _, f := range []*[]byte{&c.ContentType, &c.ResponseTopic, &c.CorrelationData, &c.AssignedClientID,
		&c.AuthMethod, &c.AuthData, &c.ResponseInfo, &c.ServerReference, &c.ReasonString} {
		*f = bytes.Clone(*f)
	}
	c.SubIDs = slices.Clone(p.SubIDs)
	c.User = make([]UserProperty, len(p.User))
	for i, u := range p.User {
		c.User[i] = UserProperty{Key: bytes.Clone(u.Key), Value: bytes.Clone(u.Value)}
	}
	return c
}

// Reset empties p, keeping the capacity of its repeatable lists unless
// one packet grew them past keptListCap entries: a 1 MB packet of empty
// user properties makes a list ten times its size, which a connection
// must not keep. Every field is set with its Present bit (the decoder
// and the broker's builders do so), so with no bit and empty lists there
// is nothing to clear: the common packet without properties (twice per
// MQTT 5 message, parse and delivery) skips zeroing 300 bytes.
func (p *Properties) Reset() {
	if p.Present == 0 && len(p.User) == 0 && len(p.SubIDs) == 0 {
		return
	}
	user, subs := p.User[:0], p.SubIDs[:0]
	clear(p.User)
	if cap(user) > keptListCap {
		user = nil
	}
	if cap(subs) > keptListCap {
		subs = nil
	}
	*p = Properties{User: user, SubIDs: subs}
}

// ReasonError is a protocol violation with the MQTT 5 reason code the spec
// names for it: the broker sends it in CONNACK or DISCONNECT, then closes.
type ReasonError struct {
	Code byte
	Msg  string
}

func (e *ReasonError) Error() string { return e.Msg }

// MQTT 5 reason codes the broker sends (MQTT 5.0 section 2.4).
const (
	ReasonSuccess                 byte = 0x00
	ReasonGrantedQoS1             byte = 0x01
	ReasonGrantedQoS2             byte = 0x02
	ReasonDisconnectWithWill      byte = 0x04
	ReasonNoMatchingSubscribers   byte = 0x10
	ReasonNoSubscriptionExisted   byte = 0x11
	ReasonUnspecified             byte = 0x80
	ReasonMalformed               byte = 0x81
	ReasonProtocolError           byte = 0x82
	ReasonImplementationSpecific  byte = 0x83
	ReasonUnsupportedVersion      byte = 0x84
	ReasonClientIDNotValid        byte = 0x85
	ReasonBadUserOrPassword       byte = 0x86
	ReasonNotAuthorized           byte = 0x87
	ReasonServerUnavailable       byte = 0x88
	ReasonServerBusy              byte = 0x89
	ReasonBadAuthMethod           byte = 0x8C
	ReasonKeepAliveTimeout        byte = 0x8D
	ReasonSessionTakenOver        byte = 0x8E
	ReasonTopicFilterInvalid      byte = 0x8F
	ReasonTopicNameInvalid        byte = 0x90
	ReasonPacketIDInUse           byte = 0x91
	ReasonPacketIDNotFound        byte = 0x92
	ReasonReceiveMaximumExceeded  byte = 0x93
	ReasonTopicAliasInvalid       byte = 0x94
	ReasonPacketTooLarge          byte = 0x95
	ReasonQuotaExceeded           byte = 0x97
	ReasonPayloadFormatInvalid    byte = 0x99
	ReasonRetainNotSupported      byte = 0x9A
	ReasonQoSNotSupported         byte = 0x9B
	ReasonServerShuttingDown      byte = 0x8B
	ReasonSharedSubNotSupported   byte = 0x9E
	ReasonSubIDsNotSupported      byte = 0xA1
	ReasonWildcardSubNotSupported byte = 0xA2
)

// Errors of MQTT 5 packets, with their reason codes.
var (
	ErrPropertyID      = &ReasonError{ReasonMalformed, "mqtt: unknown property identifier"}
	ErrPropertyPacket  = &ReasonError{ReasonMalformed, "mqtt: property not allowed in this packet"}
	ErrPropertyDup     = &ReasonError{ReasonProtocolError, "mqtt: property included more than once"}
	ErrPropertyValue   = &ReasonError{ReasonProtocolError, "mqtt: invalid property value"}
	ErrPropertyLength  = &ReasonError{ReasonMalformed, "mqtt: property length exceeds the packet"}
	ErrPropertyString  = &ReasonError{ReasonMalformed, "mqtt: property string is not valid UTF-8"}
	ErrSubOptions      = &ReasonError{ReasonMalformed, "mqtt: reserved subscription option bits set"}
	ErrRetainHandling  = &ReasonError{ReasonProtocolError, "mqtt: retain handling 3"}
	ErrSharedNoLocal   = &ReasonError{ReasonProtocolError, "mqtt: no local on a shared subscription"}
	ErrPayloadFormat   = &ReasonError{ReasonPayloadFormatInvalid, "mqtt: payload is not UTF-8 as its format indicator says"}
	ErrClientSubID     = &ReasonError{ReasonProtocolError, "mqtt: subscription identifier in a client's PUBLISH"}
	ErrAuthDataNoMeth  = &ReasonError{ReasonProtocolError, "mqtt: authentication data without a method"}
	ErrTopicAliasZero  = &ReasonError{ReasonTopicAliasInvalid, "mqtt: topic alias 0"}
	ErrEmptyTopicAlias = &ReasonError{ReasonProtocolError, "mqtt: empty topic without a topic alias"}
)

// Reason returns the MQTT 5 reason code for a parse error.
func Reason(err error) byte {
	switch e := err.(type) {
	case *ReasonError:
		return e.Code
	}
	switch err {
	case ErrTooLarge:
		return ReasonPacketTooLarge
	case ErrSecondConnect, ErrPacketID, ErrFirstPacket:
		return ReasonProtocolError
	case ErrTopic:
		return ReasonTopicNameInvalid
	}
	return ReasonMalformed
}

// varint reads a variable byte integer.
func (r *reader) varint() uint32 {
	if r.err != nil {
		return 0
	}
	v, n, err := remainingLength(r.b)
	if err != nil || n == 0 {
		r.err = ErrRemainingLength
		return 0
	}
	r.b = r.b[n:]
	return uint32(v)
}

func (r *reader) u32() uint32 {
	if r.err != nil || len(r.b) < 4 {
		r.err = ErrTruncated
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

// properties reads a property list for packet type kind into p.
func (r *reader) properties(kind byte, p *Properties) error {
	p.Reset()
	n := int(r.varint())
	if r.err != nil {
		return r.err
	}
	if n > len(r.b) {
		return ErrPropertyLength
	}
	pr := reader{b: r.b[:n]}
	r.b = r.b[n:]
	for len(pr.b) > 0 {
		id := pr.varint()
		if pr.err != nil {
			return ErrPropertyID
		}
		if id >= uint32(len(propTable)) || propTable[id].typ == 0 {
			return ErrPropertyID
		}
		spec := propTable[id]
		if spec.packets&(1<<kind) == 0 {
			return ErrPropertyPacket
		}
		bit := uint64(1) << id
		if p.Present&bit != 0 && byte(id) != PropUserProperty && byte(id) != PropSubscriptionID {
			return ErrPropertyDup
		}
		p.Present |= bit
		var (
			b8  byte
			u16 uint16
			u32 uint32
			bs  []byte
		)
		switch spec.typ {
		case tByte:
			b8 = pr.u8()
		case tU16:
			u16 = pr.u16()
		case tU32:
			u32 = pr.u32()
		case tVarint:
			u32 = pr.varint()
		case tString:
			bs = pr.bytes()
			if pr.err == nil && !validString(bs) {
				return ErrPropertyString
			}
		case tBinary:
			bs = pr.bytes()
		case tPair:
			k, v := pr.bytes(), pr.bytes()
			if pr.err == nil && (!validString(k) || !validString(v)) {
				return ErrPropertyString
			}
			p.User = append(p.User, UserProperty{Key: k, Value: v})
		}
		if pr.err != nil {
			return ErrMalformedProps
		}
		switch byte(id) {
		case PropPayloadFormat:
			p.PayloadFormat = b8
		case PropMessageExpiry:
			p.MessageExpiry = u32
		case PropContentType:
			p.ContentType = bs
		case PropResponseTopic:
			p.ResponseTopic = bs
		case PropCorrelationData:
			p.CorrelationData = bs
		case PropSubscriptionID:
			if u32 == 0 {
				return ErrPropertyValue
			}
			p.SubIDs = append(p.SubIDs, u32)
		case PropSessionExpiry:
			p.SessionExpiry = u32
		case PropAssignedClientID:
			p.AssignedClientID = bs
		case PropServerKeepAlive:
			p.ServerKeepAlive = u16
		case PropAuthMethod:
			p.AuthMethod = bs
		case PropAuthData:
			p.AuthData = bs
		case PropRequestProblemInfo:
			p.RequestProblemInfo = b8
		case PropWillDelay:
			p.WillDelay = u32
		case PropRequestResponseInfo:
			p.RequestResponseInfo = b8
		case PropResponseInfo:
			p.ResponseInfo = bs
		case PropServerReference:
			p.ServerReference = bs
		case PropReasonString:
			p.ReasonString = bs
		case PropReceiveMaximum:
			p.ReceiveMaximum = u16
		case PropTopicAliasMaximum:
			p.TopicAliasMaximum = u16
		case PropTopicAlias:
			p.TopicAlias = u16
		case PropMaximumQoS:
			p.MaximumQoS = b8
		case PropRetainAvailable:
			p.RetainAvailable = b8
		case PropMaximumPacketSize:
			p.MaximumPacketSize = u32
		case PropWildcardSubAvailable:
			p.WildcardSubAvail = b8
		case PropSubscriptionIDAvailable:
			p.SubIDAvail = b8
		case PropSharedSubAvailable:
			p.SharedSubAvail = b8
		}
		if spec.typ == tByte && b8 > 1 && byte(id) != PropMaximumQoS {
			return ErrPropertyValue // the flags are 0 or 1
		}
	}
	if p.Has(PropReceiveMaximum) && p.ReceiveMaximum == 0 ||
		p.Has(PropMaximumPacketSize) && p.MaximumPacketSize == 0 {
		return ErrPropertyValue
	}
	if p.Has(PropAuthData) && !p.Has(PropAuthMethod) {
		return ErrAuthDataNoMeth
	}
	return nil
}

// ErrMalformedProps is a property value shorter than its type.
var ErrMalformedProps = &ReasonError{ReasonMalformed, "mqtt: property value truncated"}

func validString(b []byte) bool { return utf8.Valid(b) && bytes.IndexByte(b, 0) < 0 }

// varintLen is the size of n as a variable byte integer.
func varintLen(n int) int {
	if n < 128 {
		return 1
	}
	return (bits.Len(uint(n)) + 6) / 7
}

// Size returns the encoded size of p's property list, without its length
// prefix.
func (p *Properties) Size() int {
	if p == nil || p.Present == 0 {
		return 0
	}
	n := 0
	for id := byte(1); id < byte(len(propTable)); id++ {
		if !p.Has(id) {
			continue
		}
		switch id {
		case PropUserProperty:
			for _, u := range p.User {
				n += 1 + 4 + len(u.Key) + len(u.Value)
			}
			continue
		case PropSubscriptionID:
			for _, s := range p.SubIDs {
				n += 1 + varintLen(int(s))
			}
			continue
		}
		switch propTable[id].typ {
		case tByte:
			n += 2
		case tU16:
			n += 3
		case tU32:
			n += 5
		case tString, tBinary:
			n += 3 + len(p.bytesOf(id))
		}
	}
	return n
}

// bytesOf returns the value of a string or binary property.
func (p *Properties) bytesOf(id byte) []byte {
	switch id {
	case PropContentType:
		return p.ContentType
	case PropResponseTopic:
		return p.ResponseTopic
	case PropCorrelationData:
		return p.CorrelationData
	case PropAssignedClientID:
		return p.AssignedClientID
	case PropAuthMethod:
		return p.AuthMethod
	case PropAuthData:
		return p.AuthData
	case PropResponseInfo:
		return p.ResponseInfo
	case PropServerReference:
		return p.ServerReference
	case PropReasonString:
		return p.ReasonString
	}
	return nil
}

func (p *Properties) byteOf(id byte) byte {
	switch id {
	case PropPayloadFormat:
		return p.PayloadFormat
	case PropRequestProblemInfo:
		return p.RequestProblemInfo
	case PropRequestResponseInfo:
		return p.RequestResponseInfo
	case PropMaximumQoS:
		return p.MaximumQoS
	case PropRetainAvailable:
		return p.RetainAvailable
	case PropWildcardSubAvailable:
		return p.WildcardSubAvail
	case PropSubscriptionIDAvailable:
		return p.SubIDAvail
	case PropSharedSubAvailable:
		return p.SharedSubAvail
	}
	return 0
}

func (p *Properties) u16Of(id byte) uint16 {
	switch id {
	case PropServerKeepAlive:
		return p.ServerKeepAlive
	case PropReceiveMaximum:
		return p.ReceiveMaximum
	case PropTopicAliasMaximum:
		return p.TopicAliasMaximum
	case PropTopicAlias:
		return p.TopicAlias
	}
	return 0
}

func (p *Properties) u32Of(id byte) uint32 {
	switch id {
	case PropMessageExpiry:
		return p.MessageExpiry
	case PropSessionExpiry:
		return p.SessionExpiry
	case PropWillDelay:
		return p.WillDelay
	case PropMaximumPacketSize:
		return p.MaximumPacketSize
	}
	return 0
}

func appendU16(dst []byte, v uint16) []byte { return append(dst, byte(v>>8), byte(v)) }

func appendBytes(dst, b []byte) []byte { return append(appendU16(dst, uint16(len(b))), b...) }

// AppendProperties appends p's property list with its length prefix (a
// single 0 for no properties).
func AppendProperties(dst []byte, p *Properties) []byte {
	size := p.Size()
	dst = AppendRemainingLength(dst, size)
	if size == 0 {
		return dst
	}
	for id := byte(1); id < byte(len(propTable)); id++ {
		if !p.Has(id) {
			continue
		}
		switch id {
		case PropUserProperty:
			for _, u := range p.User {
				dst = appendBytes(appendBytes(append(dst, id), u.Key), u.Value)
			}
			continue
		case PropSubscriptionID:
			for _, s := range p.SubIDs {
				dst = AppendRemainingLength(append(dst, id), int(s))
			}
			continue
		}
		dst = append(dst, id)
		switch propTable[id].typ {
		case tByte:
			dst = append(dst, p.byteOf(id))
		case tU16:
			dst = appendU16(dst, p.u16Of(id))
		case tU32:
			dst = binary.BigEndian.AppendUint32(dst, p.u32Of(id))
		case tString, tBinary:
			dst = appendBytes(dst, p.bytesOf(id))
		}
	}
	return dst
}

// PropertiesLen is the encoded size of p's property list with its length
// prefix.
func PropertiesLen(p *Properties) int {
	n := p.Size()
	return varintLen(n) + n
}
