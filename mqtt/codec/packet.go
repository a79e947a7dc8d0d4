// Package codec is the MQTT 3.1.1 and 5.0 wire codec: a resumable packet parser and
// encoders for what the broker sends. Like the NATS codec it is a pure,
// single-threaded core with no goroutines and no broker imports, so it can be
// fuzzed on its own.
package codec

// Concurrency: packet values are built by a Parser on the connection's
// reading goroutine and handed to its handler there; they may point into the
// parser's buffer, so a handler copies what it keeps (see loop.detachConnect).

import "errors"

// Packet types (MQTT 3.1.1 section 2.2.1).
const (
	CONNECT     byte = 1
	CONNACK     byte = 2
	PUBLISH     byte = 3
	PUBACK      byte = 4
	PUBREC      byte = 5
	PUBREL      byte = 6
	PUBCOMP     byte = 7
	SUBSCRIBE   byte = 8
	SUBACK      byte = 9
	UNSUBSCRIBE byte = 10
	UNSUBACK    byte = 11
	PINGREQ     byte = 12
	PINGRESP    byte = 13
	DISCONNECT  byte = 14
)

// CONNACK return codes.
const (
	Accepted                 byte = 0
	RefusedProtocolVersion   byte = 1
	RefusedIdentifier        byte = 2
	RefusedServerUnavailable byte = 3
	RefusedBadCredentials    byte = 4
	RefusedNotAuthorized     byte = 5
)

// SubackFailure is the SUBACK code of a refused subscription.
const SubackFailure byte = 0x80

// Errors name the malformed input; the broker logs them and disconnects.
var (
	ErrRemainingLength = errors.New("mqtt: malformed remaining length")
	ErrTooLarge        = errors.New("mqtt: packet exceeds the maximum size")
	ErrFlags           = errors.New("mqtt: reserved flags are wrong for the packet type")
	ErrPacketType      = errors.New("mqtt: packet type a client may not send")
	ErrTruncated       = errors.New("mqtt: packet shorter than its fields")
	ErrProtocolName    = errors.New("mqtt: CONNECT protocol name is not MQTT")
	ErrConnectFlags    = errors.New("mqtt: CONNECT flags are invalid")
	ErrQoS             = errors.New("mqtt: invalid QoS")
	ErrPacketID        = errors.New("mqtt: packet identifier 0")
	ErrEmptySubscribe  = errors.New("mqtt: SUBSCRIBE or UNSUBSCRIBE without topics")
	ErrTopic           = errors.New("mqtt: invalid topic")
	ErrFirstPacket     = errors.New("mqtt: first packet is not CONNECT")
	ErrSecondConnect   = errors.New("mqtt: second CONNECT")
)

// Connect is a decoded CONNECT. Byte slices point into the parser's buffer
// and are valid only during the handler call.
type Connect struct {
	ProtocolName string
	Level        byte
	CleanSession bool
	KeepAlive    uint16
	ClientID     []byte
	WillFlag     bool
	WillQoS      byte
	WillRetain   bool
	WillTopic    []byte
	WillMessage  []byte
	Username     []byte
	HasUsername  bool
	Password     []byte
	HasPassword  bool
	// Props and WillProps are the MQTT 5 CONNECT and will properties.
	Props     Properties
	WillProps Properties
}

// Publish is a decoded PUBLISH; Topic and Payload are valid only during the
// handler call.
type Publish struct {
	Dup      bool
	QoS      byte
	Retain   bool
	Topic    []byte
	PacketID uint16
	Payload  []byte
	Props    Properties // MQTT 5
}

// Subscription is one topic filter of a SUBSCRIBE.
type Subscription struct {
	Filter []byte
	QoS    byte
	// MQTT 5 subscription options and the SUBSCRIBE's identifier (0: none).
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte
	SubID             uint32
}

// Disconnect is a decoded DISCONNECT (MQTT 5: with a reason and properties).
type Disconnect struct {
	Reason byte
	Props  Properties
}

// Auth is a decoded MQTT 5 AUTH.
type Auth struct {
	Reason byte
	Props  Properties
}

// Handler receives decoded packets.
type Handler interface {
	MQTTConnect(c *Connect) error
	MQTTPublish(p *Publish) error
	// MQTTAck is PUBACK, PUBREC, PUBREL or PUBCOMP with its reason code
	// (always 0 on MQTT 3.1.1).
	MQTTAck(kind byte, packetID uint16, reason byte) error
	MQTTSubscribe(packetID uint16, subs []Subscription) error
	MQTTUnsubscribe(packetID uint16, filters [][]byte) error
	MQTTPingreq() error
	MQTTDisconnect(d *Disconnect) error
	// MQTTAuth is an MQTT 5 AUTH.
	MQTTAuth(a *Auth) error
}
