package loop

// Concurrency: a TestConn is driven by one goroutine, the test's; its
// fakeTransport's outLock panics when taken while held, as the goroutine
// transport's mutex would deadlock.

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

// TestConn is a connection without a socket, driven directly with bytes,
// for the fuzz and allocation tests of protocol plug-ins (the mqtt
// package's), which cannot reach loop's internals. Not for production use.
type TestConn struct {
	c  *client
	ft *fakeTransport
}

// NewTestConn returns a connection of s (made with New, not started) driven
// directly; with mqtt it speaks MQTT, opening s's MQTT plug-in (memory
// persistence) when s has none yet.
func NewTestConn(s *Server, mqtt bool) (*TestConn, error) {
	ft := &fakeTransport{}
	c := newClient(s, ft, nil, nil)
	ft.c = c
	c.out.pool = &chunkPool{}
	if mqtt {
		if s.mqtt == nil {
			p, err := s.openMQTT()
			if err != nil {
				return nil, err
			}
			s.mqtt = p
		}
		c.setProto(s.mqtt.NewConn((*Conn)(c)))
	}
	return &TestConn{c: c, ft: ft}, nil
}

// Read hands b to the connection as if read from its socket.
func (t *TestConn) Read(b []byte) bool { return t.c.onRead(b) }

// Closed reports whether the connection asked to be closed.
func (t *TestConn) Closed() bool { return t.ft.closed }

// End cleans the connection up as when its socket closes.
func (t *TestConn) End() { t.c.cleanup() }

// Protocol is the connection's plug-in protocol; nil for NATS.
func (t *TestConn) Protocol() Protocol { return t.c.proto }

// OutMsgs is the number of messages the server has delivered.
func (s *Server) OutMsgs() int64 {
	var n int64
	for i := range s.stats {
		n += s.stats[i].outMsgs.Load()
	}
	return n
}
