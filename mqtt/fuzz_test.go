package mqtt

import (
	"flag"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"

	mcodec "github.com/evnats/evnats/mqtt/codec"
)

// hungAfter is how long one FuzzMQTTSession input may run.
const hungAfter = 20 * time.Second

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
	// MQTT 5: properties, aliases, options, shared filters, AUTH, DISCONNECT.
	connect5 := func(id string, props ...byte) []byte {
		body := []byte{0, 4, 'M', 'Q', 'T', 'T', 5, 0xc2, 0, 0}
		body = append(append(mcodec.AppendRemainingLength(body, len(props)), props...), 0, byte(len(id)))
		body = append(body, id...)
		body = append(body, 0, 1, 'u', 0, 1, 'p')
		return append(mcodec.AppendRemainingLength([]byte{0x10}, len(body)), body...)
	}
	pkt := func(first byte, body ...byte) []byte {
		return append(mcodec.AppendRemainingLength([]byte{first}, len(body)), body...)
	}
	sub5 := pkt(0x82, 0, 1, 2, 0x0b, 7, 0, 3, 'a', '/', '#', 0x2d, 0, 11, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', '/', 'a', '/', '+', 1)
	pub5 := pkt(0x33, 0, 3, 'a', '/', 'b', 0, 9, 9, 0x23, 0, 1, 0x26, 0, 1, 'k', 0, 1, 'v', 'x')
	alias5 := pkt(0x32, 0, 0, 0, 10, 3, 0x23, 0, 1, 'y')
	req5 := pkt(0x30, 0, 3, 'a', '/', 'c', 10, 0x08, 0, 3, 'r', '/', 's', 0x09, 0, 1, 'c', 'z')
	f.Add(seq(connect5("v5", 0x11, 0, 0, 0, 5, 0x21, 0, 1, 0x22, 0, 4, 0x27, 0, 0, 0, 60), sub5, pub5, alias5, req5,
		pkt(0xa2, 0, 2, 0, 0, 3, 'a', '/', '#'), pkt(0xe0, 1, 0x04), mcodec.AppendAck(nil, mcodec.PUBACK, 1)))
	f.Add(seq(connect5(""), pkt(0xf0, 0x18, 0), pub5))
	f.Add(seq(connect5("x", 0x15, 0, 1, 'm'), pub5))
	// Go's fuzzer minimizes each new interesting input for up to
	// -fuzzminimizetime (60 s by default) and counts those runs only when
	// it is done, so the progress line says 0 execs/s meanwhile: a whole
	// MQTT session per run (a server, a connection, coverage of the
	// broker) makes that minimization run its full minute, again and
	// again, and the fuzzer looked hung. Minimize for 5 s unless told.
	setMinimize := true
	flag.Visit(func(fl *flag.Flag) { setMinimize = setMinimize && fl.Name != "test.fuzzminimizetime" })
	if setMinimize {
		if err := flag.Set("test.fuzzminimizetime", "5s"); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// One session of at most a few KiB runs in well under a second: an
		// input that blocks or spins the session crashes the fuzzer with
		// every goroutine's stack (the input is then kept as a failure),
		// rather than leaving it at 0 execs/s.
		watchdog := time.AfterFunc(hungAfter, func() {
			buf := make([]byte, 1<<20)
			panic(fmt.Sprintf("FuzzMQTTSession: one input ran over %v (a hung session?)\n%s", hungAfter, buf[:runtime.Stack(buf, true)]))
		})
		defer watchdog.Stop()
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
		n := s.NumSubscriptions()
		if m.b.g.rr.sub != nil {
			n-- // the server's, for replies to MQTT 5 requests, made on the first
		}
		if clean && n != 0 {
			t.Fatalf("%d subscriptions left after a clean session closed", n)
		}
	})
}
