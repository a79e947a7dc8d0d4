package loop

// Concurrency: per connection, a reader goroutine owns the session
// (runs the TLS handshake when TLS is on, then starts the writer; parses,
// blocks in waitFlow, releases the client) and a writer goroutine writes
// what out holds, framed for WebSocket under mu (wsConn.wrap); rw is set
// by the reader before the writer starts.
// goConn.mu is the client's outLock: it guards the client's "out" fields,
// flow destination state and inflight, which publishers on any goroutine
// take to deliver. goTransport.mu guards clients (accept adds, reader
// removes, eachClient copies) and is a leaf; the shared chunkPool has its
// own mu, taken under outLock.

import (
	"errors"
	"net"
	"strconv"
	"sync"
	"time"
)

// goTransport serves each connection with a reader goroutine and a writer
// goroutine on the standard library: the goroutine-per-connection baseline
// that evnats benchmarks its loops against, and the path for TLS.
type goTransport struct {
	srv  *Server
	ln   net.Listener
	mln  net.Listener // MQTT; nil when off
	wln  net.Listener // WebSocket; nil when off
	pool chunkPool    // shared by all connections; its mutex is the cost of this design
	wg   sync.WaitGroup

	// mu guards clients.
	mu      sync.Mutex
	clients map[*client]*goConn
}

func newGoTransport(s *Server) *goTransport {
	return &goTransport{srv: s, clients: make(map[*client]*goConn)}
}

func (t *goTransport) start() error {
	o := &t.srv.opts
	ln, err := net.Listen("tcp", net.JoinHostPort(o.Host, strconv.Itoa(max(o.Port, 0))))
	if err != nil {
		return err
	}
	t.ln = ln
	t.srv.infoBase.Port = ln.Addr().(*net.TCPAddr).Port
	t.wg.Add(1)
	go t.acceptLoop(ln, listenNATS)
	if o.MQTTPort != 0 {
		mln, err := net.Listen("tcp", net.JoinHostPort(o.MQTTHost, strconv.Itoa(max(o.MQTTPort, 0))))
		if err != nil {
			_ = ln.Close()
			return err
		}
		t.mln = mln
		t.wg.Add(1)
		go t.acceptLoop(mln, listenMQTT)
	}
	if o.Websocket.Port != 0 {
		wln, err := net.Listen("tcp", net.JoinHostPort(o.Websocket.Host, strconv.Itoa(max(o.Websocket.Port, 0))))
		if err != nil {
			_ = ln.Close()
			if t.mln != nil {
				_ = t.mln.Close()
			}
			return err
		}
		t.wln = wln
		t.wg.Add(1)
		go t.acceptLoop(wln, listenWS)
	}
	return nil
}

func (t *goTransport) addr() net.Addr { return t.ln.Addr() }

func (t *goTransport) mqttListenAddr() net.Addr {
	if t.mln == nil {
		return nil
	}
	return t.mln.Addr()
}

func (t *goTransport) wsListenAddr() net.Addr {
	if t.wln == nil {
		return nil
	}
	return t.wln.Addr()
}

// What a listener serves.
const (
	listenNATS = iota
	listenMQTT
	listenWS
)

func (t *goTransport) acceptLoop(ln net.Listener, kind int) {
	defer t.wg.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // e.g. EMFILE: back off, keep serving
			continue
		}
		if t.srv.lameDuck.Load() {
			_ = nc.Close()
			continue
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		g := &goConn{nc: nc, rw: nc, t: t, wake: make(chan struct{}, 1), done: make(chan struct{})}
		c := newClient(t.srv, g, nc.RemoteAddr(), nil)
		c.out.pool = &t.pool
		c.fc.wake = make(chan struct{}, 1)
		switch kind {
		case listenMQTT:
			c.setProto(t.srv.mqtt.NewConn((*Conn)(c)))
		case listenWS:
			c.startWS(t.srv.ws)
		}
		g.c = c
		t.mu.Lock()
		t.clients[c] = g
		t.mu.Unlock()
		t.wg.Add(2)
		go g.readLoop() // starts the writer
	}
}

func (t *goTransport) eachClient(fn func(c *client)) {
	t.mu.Lock()
	list := make([]*goConn, 0, len(t.clients))
	for _, g := range t.clients {
		list = append(list, g)
	}
	t.mu.Unlock()
	for _, g := range list {
		g.readMu.Lock() // as in g's reading context; fn takes outLock itself where it writes
		fn(g.c)
		g.readMu.Unlock()
	}
}

// onRead parses one read under readMu (see eachClient).
func (g *goConn) onRead(b []byte) bool {
	g.readMu.Lock()
	defer g.readMu.Unlock()
	return g.c.onRead(b)
}

func (t *goTransport) stop() {
	_ = t.ln.Close()
	if t.mln != nil {
		_ = t.mln.Close()
	}
	if t.wln != nil {
		_ = t.wln.Close()
	}
	t.mu.Lock()
	for _, g := range t.clients {
		_ = g.nc.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
}

// goConn is one connection on the goroutine transport. The reader goroutine
// owns the session; mu guards the outbound buffer and subscription table
// (client fields marked "out"), which publishers on other goroutines touch.
type goConn struct {
	nc   net.Conn // the socket; any goroutine may close it
	rw   net.Conn // what the session reads and writes: nc, or its tls.Conn; set before the writer starts
	t    *goTransport
	c    *client
	mu   sync.Mutex
	wake chan struct{} // capacity 1: "there is output"
	done chan struct{} // closed when the connection is finished
	once sync.Once

	inflight int // guarded by mu: bytes the writer took and has not yet written

	// readMu is held by the reader while it parses a read, and by
	// eachClient around its function, so that function runs as if in the
	// client's reading context (as a gnet loop runs it), writing the
	// parser's limits and the client's user safely. Taken before mu.
	readMu sync.Mutex
}

// kick closes the connection from another goroutine.
func (g *goConn) kick() { g.closeConn() }

// run calls fn under the connection's mutex.
func (g *goConn) run(fn func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.c.closed {
		fn()
	}
}

func (g *goConn) outLock()   { g.mu.Lock() }
func (g *goConn) outUnlock() { g.mu.Unlock() }

func (g *goConn) flushSoon() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

func (g *goConn) pendingOut() int { return g.inflight }

func (g *goConn) closeConn() {
	g.mu.Lock()
	g.c.closing = true
	g.mu.Unlock()
	g.flushSoon()
}

// readLoop owns the session: it parses, and once the connection is gone it
// alone releases the session, so that no operation it is parsing can meet a
// half-released client.
func (g *goConn) readLoop() {
	defer g.t.wg.Done()
	defer g.release()
	defer g.finish()
	switch s := g.t.srv.tls; {
	case g.c.ws != nil: // greets once upgraded
		if ts := g.t.srv.wsTLS; ts != nil {
			g.c.ws.tls = true
			if !g.handshake(ts) { // handshake first, then the upgrade
				g.t.wg.Done()
				return
			}
		}
	case s != nil && g.c.proto == nil:
		if !g.handshake(s) { // greets
			g.t.wg.Done() // the writer's: it never started
			return
		}
	case g.t.srv.mqttTLS != nil && g.c.proto != nil:
		if !g.handshake(g.t.srv.mqttTLS) { // handshake first
			g.t.wg.Done()
			return
		}
	default:
		g.c.greet()
	}
	go g.writeLoop()
	buf := make([]byte, 32<<10)
	for {
		n, err := g.rw.Read(buf)
		if n > 0 && (g.closing() || !g.onRead(buf[:n])) {
			<-g.done // the writer sends the -ERR, then closes
			return
		}
		if g.c.fc.wait != nil {
			g.waitFlow() // a subscriber it feeds is behind: read no more for now
		}
		if err != nil {
			return
		}
	}
}

// closing reports whether the connection is on its way out (closed by the
// server, or its writer failed): what it sends now is dropped, as a loop
// drops it.
func (g *goConn) closing() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.c.closing
}

// goWriteChunks bounds one writev (at most two chunks, 128 KiB): the writer
// reports progress between writes, which flow control's stall rule watches,
// so a subscriber is taken for stalled only below ~1.3 MB/s (128 KiB per
// 100 ms).
const goWriteChunks = 2

// writeLoop writes whatever is pending with one writev per wakeup.
func (g *goConn) writeLoop() {
	defer g.t.wg.Done()
	var iov [][]byte
	for {
		select {
		case <-g.wake:
		case <-g.done:
			return
		}
		for {
			g.mu.Lock()
			if g.inflight > 0 {
				g.inflight = 0
				g.c.flowProgress(time.Now()) // progress: maybe below the low-water mark
			}
			closing := g.c.closing
			if g.c.ws != nil {
				iov = g.c.ws.take(iov[:0], goWriteChunks) // framed (wsconn.go)
			} else {
				iov = g.c.out.takeN(iov[:0], goWriteChunks)
			}
			for _, b := range iov {
				g.inflight += len(b)
			}
			g.mu.Unlock()
			if len(iov) == 0 {
				if closing {
					g.finish()
					return
				}
				break
			}
			sent := append([][]byte(nil), iov...)
			_ = g.nc.SetWriteDeadline(time.Now().Add(g.t.srv.opts.WriteDeadline))
			bufs := net.Buffers(iov)
			_, err := bufs.WriteTo(g.rw)
			g.t.pool.put(sent)
			if err != nil {
				g.mu.Lock()
				// A client already cut at max_pending (its -ERR stuck behind
				// the blocked write) is counted once.
				if ne, ok := err.(net.Error); ok && ne.Timeout() && !g.c.slow {
					g.c.markSlow(reasonSlowWriteDeadline, "write deadline of "+g.t.srv.opts.WriteDeadline.String()+" exceeded")
				}
				g.c.closing = true
				g.mu.Unlock()
				g.finish()
				return
			}
		}
	}
}

// finish closes the socket once, from either goroutine; the reader's
// blocked Read then fails and it releases the session.
func (g *goConn) finish() {
	g.once.Do(func() {
		_ = g.nc.Close()
		close(g.done)
	})
}

// release drops the session's subscriptions and forgets the connection; run
// by the reader after its last parse.
func (g *goConn) release() {
	g.c.cleanup()
	g.t.mu.Lock()
	delete(g.t.clients, g.c)
	g.t.mu.Unlock()
}
