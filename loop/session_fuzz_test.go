package loop

import (
	"testing"
)

// fakeTransport stands in for a socket so that a client session can be
// driven directly with arbitrary bytes.
type fakeTransport struct {
	c      *client
	closed bool
}

func (f *fakeTransport) flushSoon() {
	f.c.out.reset()
	if f.c.closing {
		f.closed = true
	}
}
func (f *fakeTransport) pendingOut() int { return 0 }
func (f *fakeTransport) closeConn()      { f.c.closing = true; f.closed = true }
func (f *fakeTransport) outLock()        {}
func (f *fakeTransport) outUnlock()      {}
func (f *fakeTransport) kick()           {}
func (f *fakeTransport) run(fn func())   { fn() }

// newFakeClient returns a client of s driven directly, without a socket.
func newFakeClient(s *Server) (*client, *fakeTransport) {
	ft := &fakeTransport{}
	c := newClient(s, ft, nil, nil)
	ft.c = c
	c.out.pool = &chunkPool{}
	return c, ft
}

// newFakeMQTTClient returns an MQTT client of s driven directly; it starts
// s's MQTT bridge (memory persistence) when s has none.
func newFakeMQTTClient(t testing.TB, s *Server) (*client, *fakeTransport) {
	if s.mq == nil {
		var err error
		if s.mq, err = newMQTTBridge(s); err != nil {
			t.Fatal(err)
		}
	}
	c, ft := newFakeClient(s)
	c.mq = newMQTTConn(c, s.mq)
	return c, ft
}

// FuzzClientSession feeds arbitrary input through a whole client session
// (parser, CONNECT, auth, subscriptions, routing) and checks that nothing
// panics and that closing the session leaves no subscription behind.
func FuzzClientSession(f *testing.F) {
	f.Add([]byte("CONNECT {\"user\":\"u\",\"pass\":\"p\",\"verbose\":true,\"headers\":true,\"no_responders\":true}\r\nSUB a.* q 1\r\nSUB a.b 2\r\nPUB a.b r 2\r\nhi\r\nHPUB a.b 12 14\r\nNATS/1.0\r\n\r\nhi\r\nUNSUB 1 1\r\nPUB a.x 0\r\n\r\nPING\r\n"))
	f.Add([]byte("CONNECT {\"user\":\"u\",\"pass\":\"p\"}\r\nSUB x 1\r\nPUB y _INBOX.1 0\r\n\r\n"))
	f.Add([]byte("CONNECT {\"user\":\"u\",\"pass\":\"p\"}\r\nSUB foo..bar 1\r\nSUB > 2\r\nPUB \xff 3\r\nabc\r\nUNSUB 2\r\n"))
	f.Add([]byte("CONNECT {bad\r\n"))
	f.Add([]byte("PUB foo 99999999\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := New(Options{IO: IOGoroutine, Loops: 1, MaxPayload: 1024, MaxSubscriptions: 8,
			Users: []*User{{Username: "u", Password: "p", Permissions: &Permissions{
				Publish: &SubjectPermission{Allow: []string{"a.>"}}}}}})
		if err != nil {
			t.Fatal(err)
		}
		c, ft := newFakeClient(s)
		for len(data) > 0 && !ft.closed {
			n := min(len(data), 7)
			c.onRead(data[:n])
			data = data[n:]
		}
		c.cleanup()
		if n := s.sl.Count(); n != 0 {
			t.Fatalf("%d subscriptions left after close", n)
		}
	})
}
