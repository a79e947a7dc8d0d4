package loop

import (
	"testing"
)

// fakeTransport stands in for a socket so that a client session can be
// driven directly with arbitrary bytes. Its outLock is checked like the
// goroutine transport's mutex: taking it while held (a handler that holds it
// calling sendProto, closeWithErr, run) panics instead of deadlocking.
type fakeTransport struct {
	c      *client
	closed bool
	locked bool
}

func (f *fakeTransport) flushSoon() {
	f.c.out.reset()
	if f.c.closing {
		f.closed = true
	}
}
func (f *fakeTransport) pendingOut() int { return 0 }
func (f *fakeTransport) closeConn() {
	f.outLock() // goConn.closeConn takes the mutex
	f.c.closing = true
	f.closed = true
	f.outUnlock()
}
func (f *fakeTransport) outLock() {
	if f.locked {
		panic("outLock taken while held: the goroutine transport would deadlock")
	}
	f.locked = true
}
func (f *fakeTransport) outUnlock() { f.locked = false }
func (f *fakeTransport) kick()      { f.closeConn() }
func (f *fakeTransport) run(fn func()) {
	f.outLock()
	defer f.outUnlock()
	fn()
}

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
	// Replies made while outLock is held (verbose +OK, errors), which once
	// deadlocked the goroutine transport.
	f.Add([]byte("CONNECT {\"user\":\"u\",\"pass\":\"p\",\"verbose\":true}\r\nSUB foo 1\r\nSUB foo 1\r\nUNSUB 1\r\nUNSUB 9\r\nPUB b 0\r\n\r\nPUB a..b 0\r\n\r\n"))
	f.Add([]byte("SUB foo 1\r\nSUB foo 1\r\nSUB foo 2\r\nUNSUB 1\r\nPING\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// With users (CONNECT first, publish permissions) and without auth
		// (operations before CONNECT, verbose by default).
		for _, users := range [][]*User{{{Username: "u", Password: "p", Permissions: &Permissions{
			Publish: &SubjectPermission{Allow: []string{"a.>"}}}}}, nil} {
			s, err := New(Options{IO: IOGoroutine, Loops: 1, MaxPayload: 1024, MaxSubscriptions: 8, Users: users})
			if err != nil {
				t.Fatal(err)
			}
			c, ft := newFakeClient(s)
			for in := data; len(in) > 0 && !ft.closed; {
				n := min(len(in), 7)
				c.onRead(in[:n])
				in = in[n:]
			}
			c.cleanup()
			if n := s.sl.Count(); n != 0 {
				t.Fatalf("%d subscriptions left after close", n)
			}
		}
	})
}
