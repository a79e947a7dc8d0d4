package mqtt_test

import (
	"testing"

	"github.com/evnats/evnats/loop"
	mcodec "github.com/evnats/evnats/mqtt/codec"
)

// BenchmarkMQTTPublishPath measures the QoS 0 publish -> deliver path of the
// "MQTT pub/sub 128B QoS 0" bench row without sockets: one read carrying 64
// MQTT 3.1.1 PUBLISH packets of 128 bytes on one topic, parsed, mapped to
// a subject, routed and formatted as PUBLISH for an MQTT subscriber.
// ns/op and allocs/op are per message.
func BenchmarkMQTTPublishPath(b *testing.B) {
	benchPublishPath(b, 4)
}

// BenchmarkMQTT5PublishPath is the same for MQTT 5 clients.
func BenchmarkMQTT5PublishPath(b *testing.B) {
	benchPublishPath(b, 5)
}

func benchPublishPath(b *testing.B, level byte) {
	s, err := loop.New(loop.Options{IO: loop.IOGoroutine, Loops: 1})
	if err != nil {
		b.Fatal(err)
	}
	connect := func(id byte) *loop.TestConn {
		c, err := loop.NewTestConn(s, true)
		if err != nil {
			b.Fatal(err)
		}
		if level == 5 {
			c.Read([]byte{0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 0, 0, 0, 1, id})
		} else {
			c.Read([]byte{0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 0, 0, 1, id})
		}
		return c
	}
	sub := connect('s')
	filter := []byte("bench/mqtt")
	body := append([]byte{0, 1, 0, byte(len(filter))}, filter...)
	if level == 5 {
		body = append([]byte{0, 1, 0}, body[2:]...)
	}
	sub.Read(append(mcodec.AppendRemainingLength([]byte{0x82}, len(body)+1), append(body, 0)...))
	pub := connect('p')
	const perRead = 64
	var one []byte
	if level == 5 {
		topic := []byte("bench/mqtt")
		vh := append([]byte{0, byte(len(topic))}, topic...)
		vh = append(vh, 0) // no properties
		vh = append(vh, make([]byte, 128)...)
		one = append(mcodec.AppendRemainingLength([]byte{0x30}, len(vh)), vh...)
	} else {
		one = mcodec.AppendPublish(nil, []byte("bench/mqtt"), make([]byte, 128), 0, false, false, 0)
	}
	var read []byte
	for i := 0; i < perRead; i++ {
		read = append(read, one...)
	}
	before := s.OutMsgs()
	pub.Read(read) // warm the caches and chunk pools
	if got := s.OutMsgs() - before; got != perRead {
		b.Fatalf("delivered %d of %d", got, perRead)
	}
	b.ReportAllocs()
	b.SetBytes(128)
	b.ResetTimer()
	for i := 0; i < b.N; i += perRead {
		pub.Read(read)
	}
}
