package mqtt

import (
	"testing"

	"github.com/evnats/evnats/loop"

	mcodec "github.com/evnats/evnats/mqtt/codec"
)

// FuzzMQTTSession feeds arbitrary input through a whole MQTT session
// (codec, CONNECT, auth, session attach, subscriptions, retained messages,
// QoS state, routing) and checks that nothing panics and that closing the
// connection leaves no subscription behind for a clean session.
func FuzzMQTTSession(f *testing.F) {
	connect := func(flags byte, id string) []byte {
		body := []byte{0, 4, 'M', 'Q', 'T', 'T', 4, flags | 0xc0, 0, 0, 0, byte(len(id))}
		body = append(body, id...)
		body = append(body, 0, 1, 'u', 0, 1, 'p')
		return append(mcodec.AppendRemainingLength([]byte{0x10}, len(body)), body...)
	}
	sub := []byte{0x82, 8, 0, 1, 0, 3, 'a', '/', '#', 2}
	pub := mcodec.AppendPublish(nil, []byte("a/b"), []byte("hi"), 1, true, false, 5)
	pub2 := mcodec.AppendPublish(nil, []byte("a/c"), []byte("x"), 2, false, false, 6)
	seq := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	f.Add(seq(connect(2, "c"), sub, pub, pub2, mcodec.AppendAck(nil, mcodec.PUBREL, 6), []byte{0xc0, 0}, []byte{0xa2, 5, 0, 2, 0, 1, 'a'}, []byte{0xe0, 0}))
	f.Add(seq(connect(0, "p"), sub, mcodec.AppendAck(nil, mcodec.PUBACK, 1), mcodec.AppendAck(nil, mcodec.PUBREC, 2)))
	f.Add(seq(connect(2, ""), []byte{0x30, 0xff, 0xff, 0xff, 0xff}))
	f.Add([]byte{0x10, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := loop.New(loop.Options{IO: loop.IOGoroutine, Loops: 1, MaxPayload: 1024,
			Users: []*loop.User{{Username: "u", Password: "p", Permissions: &loop.Permissions{
				Publish: &loop.SubjectPermission{Allow: []string{"a.>"}}}}}})
		if err != nil {
			t.Fatal(err)
		}
		tc, err := loop.NewTestConn(s, true)
		if err != nil {
			t.Fatal(err)
		}
		for len(data) > 0 && !tc.Closed() {
			n := min(len(data), 7)
			tc.Read(data[:n])
			data = data[n:]
		}
		m := tc.Protocol().(*conn)
		clean := m.sess == nil || m.sess.Clean
		tc.End()
		if n := s.NumSubscriptions(); clean && n != 0 {
			t.Fatalf("%d subscriptions left after a clean session closed", n)
		}
	})
}
