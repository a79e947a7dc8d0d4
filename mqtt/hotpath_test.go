package mqtt_test

import (
	"testing"

	"github.com/evnats/evnats/loop"
	mcodec "github.com/evnats/evnats/mqtt/codec"
)

// TestMQTTPublishPathAllocs: parsing an MQTT QoS 0 PUBLISH, mapping its topic
// (cached), routing it and formatting PUBLISH for an MQTT subscriber and MSG
// for a NATS one allocate nothing per message.
func TestMQTTPublishPathAllocs(t *testing.T) {
	s, err := loop.New(loop.Options{IO: loop.IOGoroutine, Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	c, err := loop.NewTestConn(s, true)
	if err != nil {
		t.Fatal(err)
	}
	c.Read([]byte{0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 0, 0, 1, 'm'})
	c.Read([]byte{0x82, 8, 0, 1, 0, 3, 'a', '/', '+', 0})
	nc, _ := loop.NewTestConn(s, false)
	nc.Read([]byte("CONNECT {\"verbose\":false,\"headers\":true}\r\nSUB a.b 1\r\n"))
	pub := []byte{0x30, 7, 0, 3, 'a', '/', 'b', 'h', 'i'}
	before := s.OutMsgs()
	c.Read(pub) // warm caches and chunk pools
	if got := s.OutMsgs() - before; got != 2 {
		t.Fatalf("PUBLISH reached %d subscribers, want 2", got)
	}
	if n := testing.AllocsPerRun(1000, func() { c.Read(pub) }); n != 0 {
		t.Fatalf("%v allocations per MQTT PUBLISH", n)
	}
}

// TestFullSessionDiscardAllocs: a QoS 1 message for an absent persistent
// session that is full is discarded without being copied first: publishing
// it allocates nothing, whatever its size.
func TestFullSessionDiscardAllocs(t *testing.T) {
	s, err := loop.New(loop.Options{IO: loop.IOGoroutine, Loops: 1, MQTTMaxSessionQueueMsgs: 1})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := loop.NewTestConn(s, true)
	if err != nil {
		t.Fatal(err)
	}
	sub.Read([]byte{0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 0, 0, 0, 0, 1, 's'}) // persistent session "s"
	sub.Read([]byte{0x82, 8, 0, 1, 0, 3, 'a', '/', 'b', 1})                     // a/b at QoS 1
	sub.End()                                                                   // away: its QoS 1 messages are queued
	pub, _ := loop.NewTestConn(s, true)
	pub.Read([]byte{0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 0, 0, 1, 'p'})
	msg := mcodec.AppendPublish(nil, []byte("a/b"), make([]byte, 16<<10), 1, false, false, 1)
	pub.Read(msg) // fills the session (one message)
	pub.Read(msg) // discarded: logs that the session is full, once a second
	if n := testing.AllocsPerRun(100, func() { pub.Read(msg) }); n != 0 {
		t.Fatalf("%v allocations per message discarded by a full session", n)
	}
}

// TestMQTT5PublishPathAllocs: an MQTT 5 QoS 0 PUBLISH with a user property
// and a content type, to an MQTT 5 subscriber (properties rebuilt from the
// headers, a subscription identifier, a topic alias) and a NATS one,
// allocates nothing per message either.
func TestMQTT5PublishPathAllocs(t *testing.T) {
	s, err := loop.New(loop.Options{IO: loop.IOGoroutine, Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	c, err := loop.NewTestConn(s, true)
	if err != nil {
		t.Fatal(err)
	}
	// CONNECT level 5, topic alias maximum 5; SUBSCRIBE a/+ with id 3.
	c.Read([]byte{0x10, 17, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 0, 3, 0x22, 0, 5, 0, 1, 'm'})
	c.Read([]byte{0x82, 11, 0, 1, 2, 0x0b, 3, 0, 3, 'a', '/', '+', 0})
	nc, _ := loop.NewTestConn(s, false)
	nc.Read([]byte("CONNECT {\"verbose\":false,\"headers\":true}\r\nSUB a.b 1\r\n"))
	props := []byte{0x26, 0, 1, 'k', 0, 1, 'v', 0x03, 0, 4, 'j', 's', 'o', 'n'}
	body := append([]byte{0, 3, 'a', '/', 'b', byte(len(props))}, props...)
	pub := append([]byte{0x30, byte(len(body) + 2)}, append(body, 'h', 'i')...)
	before := s.OutMsgs()
	c.Read(pub) // warm caches and chunk pools
	if got := s.OutMsgs() - before; got != 2 {
		t.Fatalf("PUBLISH reached %d subscribers, want 2", got)
	}
	if n := testing.AllocsPerRun(1000, func() { c.Read(pub) }); n != 0 {
		t.Fatalf("%v allocations per MQTT 5 PUBLISH", n)
	}
}
