package mqtt_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	mcodec "github.com/evnats/evnats/mqtt/codec"
)

// rawMQTT is a hand-driven MQTT client for exact packets: acks withheld,
// connections dropped mid-exchange, malformed input.
type rawMQTT struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
	wait time.Duration // how long a read waits; 0: 5 s
}

func dialRaw(t *testing.T, s *loop.Server) *rawMQTT {
	t.Helper()
	conn, err := net.Dial("tcp", s.MQTTAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return newRaw(t, conn)
}

func newRaw(t *testing.T, conn net.Conn) *rawMQTT {
	return &rawMQTT{t: t, conn: conn, r: bufio.NewReader(conn)}
}

func (r *rawMQTT) send(b []byte) {
	r.t.Helper()
	if _, err := r.conn.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

func str(b []byte, s string) []byte { return append(append(b, byte(len(s)>>8), byte(len(s))), s...) }

func packet(first byte, body []byte) []byte {
	return append(mcodec.AppendRemainingLength([]byte{first}, len(body)), body...)
}

// connectPacket builds CONNECT; a will is set when willTopic is not empty.
func connectPacket(id string, clean bool, keepAlive uint16, willTopic, willMsg string) []byte {
	flags := byte(0)
	if clean {
		flags |= 0x02
	}
	if willTopic != "" {
		flags |= 0x04 | 1<<3 // will at QoS 1
	}
	body := str(nil, "MQTT")
	body = append(body, 4, flags, byte(keepAlive>>8), byte(keepAlive))
	body = str(body, id)
	if willTopic != "" {
		body = str(str(body, willTopic), willMsg)
	}
	return packet(mcodec.CONNECT<<4, body)
}

// connect sends CONNECT and returns CONNACK's session-present flag.
func (r *rawMQTT) connect(id string, clean bool, keepAlive uint16, will ...string) bool {
	r.t.Helper()
	wt, wm := "", ""
	if len(will) == 2 {
		wt, wm = will[0], will[1]
	}
	r.send(connectPacket(id, clean, keepAlive, wt, wm))
	typ, _, body := r.read()
	if typ != mcodec.CONNACK || len(body) != 2 || body[1] != 0 {
		r.t.Fatalf("CONNACK: type %d body % x", typ, body)
	}
	return body[0] == 1
}

func (r *rawMQTT) subscribe(id uint16, filter string, qos byte) {
	r.t.Helper()
	body := str([]byte{byte(id >> 8), byte(id)}, filter)
	r.send(packet(mcodec.SUBSCRIBE<<4|2, append(body, qos)))
	typ, _, b := r.read()
	if typ != mcodec.SUBACK || len(b) != 3 || b[2] != qos {
		r.t.Fatalf("SUBACK: type %d body % x", typ, b)
	}
}

func (r *rawMQTT) publish(topic, payload string, qos byte, id uint16, dup bool) {
	r.send(mcodec.AppendPublish(nil, []byte(topic), []byte(payload), qos, false, dup, id))
}

func (r *rawMQTT) ack(kind byte, id uint16) { r.send(mcodec.AppendAck(nil, kind, id)) }

// read returns the next packet's type, flags and body.
func (r *rawMQTT) read() (typ, flags byte, body []byte) {
	r.t.Helper()
	typ, flags, body, err := r.tryRead()
	if err != nil {
		r.t.Fatalf("read: %v", err)
	}
	return typ, flags, body
}

func (r *rawMQTT) tryRead() (typ, flags byte, body []byte, err error) {
	wait := r.wait
	if wait == 0 {
		wait = 5 * time.Second
	}
	r.conn.SetReadDeadline(time.Now().Add(wait))
	first, err := r.r.ReadByte()
	if err != nil {
		return 0, 0, nil, err
	}
	n, mult := 0, 1
	for {
		b, err := r.r.ReadByte()
		if err != nil {
			return 0, 0, nil, err
		}
		n += int(b&0x7f) * mult
		mult *= 128
		if b&0x80 == 0 {
			break
		}
	}
	body = make([]byte, n)
	if _, err := io.ReadFull(r.r, body); err != nil {
		return 0, 0, nil, err
	}
	return first >> 4, first & 0x0f, body, nil
}

// expectClosed waits for the server to close the connection.
func (r *rawMQTT) expectClosed() {
	r.t.Helper()
	for {
		_, _, _, err := r.tryRead()
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			r.t.Fatal("connection still open")
		}
		return
	}
}

// rawPublish is a decoded PUBLISH from the server.
type rawPublish struct {
	topic   string
	payload string
	qos     byte
	dup     bool
	retain  bool
	id      uint16
}

func (r *rawMQTT) readPublish() rawPublish {
	r.t.Helper()
	typ, flags, body := r.read()
	if typ != mcodec.PUBLISH {
		r.t.Fatalf("want PUBLISH, got type %d % x", typ, body)
	}
	p := rawPublish{qos: flags >> 1 & 3, dup: flags&8 != 0, retain: flags&1 != 0}
	n := int(body[0])<<8 | int(body[1])
	p.topic = string(body[2 : 2+n])
	body = body[2+n:]
	if p.qos > 0 {
		p.id = uint16(body[0])<<8 | uint16(body[1])
		body = body[2:]
	}
	p.payload = string(body)
	return p
}

func (r *rawMQTT) expectAck(kind byte, id uint16) {
	r.t.Helper()
	typ, _, body := r.read()
	if typ != kind || len(body) != 2 || uint16(body[0])<<8|uint16(body[1]) != id {
		r.t.Fatalf("want ack type %d id %d, got type %d % x", kind, id, typ, body)
	}
}
