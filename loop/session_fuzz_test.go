package loop

import (
	"testing"
)

// newFakeClient returns a client of s driven directly, without a socket.
func newFakeClient(s *Server) (*client, *fakeTransport) {
	ft := &fakeTransport{}
	c := newClient(s, ft, nil, nil)
	ft.c = c
	c.out.pool = &chunkPool{}
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
