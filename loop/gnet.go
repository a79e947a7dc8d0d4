package loop

// Concurrency: gnet callbacks (OnOpen, OnTraffic, OnClose) run on the
// connection's loop goroutine, which owns its clients and gnetConns without
// locks. bindMu (a leaf) guards byEL: loops bind on first sight, and
// eachClient (housekeeping, lame duck) reads it, then runs fn on each loop
// through Execute. gnetConn.run and kick may be called from any goroutine:
// they queue the work on the connection's loop. The flush frames
// WebSocket output (client.ws) on the loop too.

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// gnetTransport serves clients on gnet reactor loops. The gnet callbacks run
// on the loop goroutines; each connection, its client and its output are
// owned by the loop that accepted it.
type gnetTransport struct {
	gnet.BuiltinEventEngine
	srv   *Server
	loops []*evLoop // fixed at construction; loops[i].idx == i

	eng      gnet.Engine
	listen   net.Addr
	mqttAddr net.Addr // the MQTT listener, when there is one
	wsAddr   net.Addr // the WebSocket listener, when there is one
	booted   chan error
	stopped  chan struct{}
	stopOnce sync.Once

	// bindMu guards byEL and each evLoop's el, bound once per loop on its
	// first connection. Other loops read el without it: they only reach a
	// loop through a subscription made on it, after the binding.
	bindMu sync.Mutex
	byEL   map[gnet.EventLoop]*evLoop
}

func newGnetTransport(s *Server) *gnetTransport {
	t := &gnetTransport{srv: s, booted: make(chan error, 1), stopped: make(chan struct{}), byEL: make(map[gnet.EventLoop]*evLoop)}
	t.loops = make([]*evLoop, s.opts.Loops)
	for i := range t.loops {
		t.loops[i] = newEvLoop(i, s, t)
	}
	return t
}

func (t *gnetTransport) start() error {
	o := &t.srv.opts
	addrs := []string{fmt.Sprintf("tcp://%s:%d", o.Host, max(o.Port, 0))}
	if o.MQTTPort < 0 {
		// gnet can only tell listeners apart by the address asked for, and
		// two random ports would both be ":0": pick this one up front.
		port, err := freePort(o.MQTTHost)
		if err != nil {
			return err
		}
		o.MQTTPort = port
	}
	if o.MQTTPort != 0 {
		addrs = append(addrs, fmt.Sprintf("tcp://%s:%d", o.MQTTHost, o.MQTTPort))
	}
	if o.Websocket.Port < 0 {
		port, err := freePort(o.Websocket.Host)
		if err != nil {
			return err
		}
		o.Websocket.Port = port
	}
	if o.Websocket.Port != 0 {
		addrs = append(addrs, fmt.Sprintf("tcp://%s:%d", o.Websocket.Host, o.Websocket.Port))
	}
	go func() {
		err := gnet.Rotate(t, addrs,
			gnet.WithNumEventLoop(o.Loops),
			gnet.WithReusePort(false),
			gnet.WithReuseAddr(true), // restart on the same port at once, as Go's net.Listen allows
			gnet.WithTCPNoDelay(gnet.TCPNoDelay),
			gnet.WithReadBufferCap(readBufferCap),
			gnet.WithLogger(gnetLogger{t.srv}),
		)
		select {
		case t.booted <- err: // failed before boot
		default:
		}
		close(t.stopped)
	}()
	select {
	case err := <-t.booted:
		if err != nil {
			return fmt.Errorf("loop: gnet: %w", err)
		}
	case <-time.After(10 * time.Second):
		return fmt.Errorf("loop: gnet did not start")
	}
	return nil
}

// OnBoot records the engine and the bound address (the port may be random).
func (t *gnetTransport) OnBoot(eng gnet.Engine) gnet.Action {
	t.eng = eng
	o := &t.srv.opts
	t.listen = boundAddr(eng, net.JoinHostPort(o.Host, strconv.Itoa(max(o.Port, 0))))
	if o.MQTTPort != 0 { // a concrete port: start chose one for -1
		t.mqttAddr = boundAddr(eng, net.JoinHostPort(o.MQTTHost, strconv.Itoa(o.MQTTPort)))
	}
	if o.Websocket.Port != 0 {
		t.wsAddr = boundAddr(eng, net.JoinHostPort(o.Websocket.Host, strconv.Itoa(o.Websocket.Port)))
	}
	if a, ok := t.listen.(*net.TCPAddr); ok {
		t.srv.infoBase.Port = a.Port // before any loop runs: loops read it
	}
	t.booted <- nil
	return gnet.None
}

// freePort asks the kernel for a free TCP port on host.
func freePort(host string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// boundAddr returns the address a listener of eng is bound to (its port may
// have been chosen by the kernel).
func boundAddr(eng gnet.Engine, addr string) net.Addr {
	fd, err := eng.DupListener("tcp", addr)
	if err != nil {
		return nil
	}
	defer unix.Close(fd)
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return nil
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]).To16(), Port: a.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
	}
	return nil
}

// isMQTT reports whether a connection came in on the MQTT listener.
func (t *gnetTransport) isMQTT(gc gnet.Conn) bool { return onListener(gc, t.mqttAddr) }

// isWS reports whether a connection came in on the WebSocket listener.
func (t *gnetTransport) isWS(gc gnet.Conn) bool { return onListener(gc, t.wsAddr) }

// onListener reports whether gc was accepted on the listener at addr.
func onListener(gc gnet.Conn, addr net.Addr) bool {
	m, ok := addr.(*net.TCPAddr)
	if !ok {
		return false
	}
	l, ok := gc.LocalAddr().(*net.TCPAddr)
	return ok && l.Port == m.Port
}

func (t *gnetTransport) addr() net.Addr { return t.listen }

func (t *gnetTransport) mqttListenAddr() net.Addr { return t.mqttAddr }

func (t *gnetTransport) wsListenAddr() net.Addr { return t.wsAddr }

// loopOf returns the evLoop for a gnet loop, binding one on first sight.
func (t *gnetTransport) loopOf(el gnet.EventLoop) *evLoop {
	t.bindMu.Lock()
	defer t.bindMu.Unlock()
	lp := t.byEL[el]
	if lp == nil {
		lp = t.loops[len(t.byEL)]
		lp.el = el
		t.byEL[el] = lp
	}
	return lp
}

// OnOpen creates the client and greets it with INFO.
func (t *gnetTransport) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	s := t.srv
	if s.lameDuck.Load() {
		return nil, gnet.Close
	}
	lp := t.loopOf(gc.EventLoop())
	gt := &gnetConn{conn: gc, lp: lp}
	c := newClient(s, gt, gc.RemoteAddr(), lp)
	c.out.pool = &lp.pool
	if t.isMQTT(gc) {
		c.setProto(s.mqtt.NewConn((*Conn)(c)))
	}
	gt.c = c
	gc.SetContext(gt)
	lp.clients[c] = struct{}{}
	switch {
	case t.isWS(gc):
		c.startWS(s.ws) // greets once upgraded
		if s.wsTLS != nil {
			c.ws.tls = true
			gt.startTLS(s.wsTLS) // handshake first, then the upgrade
		}
	case s.tls != nil && c.proto == nil:
		gt.startTLS(s.tls) // greets, unless handshake_first
	case s.mqttTLS != nil && c.proto != nil:
		gt.startTLS(s.mqttTLS) // handshake first
	default:
		c.greet()
	}
	c.outRef = gt.tls == nil && c.ws == nil && c.proto == nil
	return nil, gnet.None
}

// Reads: each loop reads a socket into one buffer of readBufferCap bytes
// (gnet's, shared by the loop's connections). A large read buffer takes a
// fast publisher's input in few syscalls and poll rounds (docs/
// PERFORMANCE.md, round 14). OnTraffic parses it in pieces of a quarter of
// the flow-control high-water mark (readChunk; the whole read at the
// defaults) and stops once the publisher has to wait: the rest stays
// unparsed in gnet's inbound buffer while reading is paused (at most
// readBufferCap per paused publisher), so a publisher passes a gate by at
// most a quarter of its mark however small max_pending is, and at the
// defaults no payload is cut at a piece boundary (which the parser would
// copy aside).
const (
	readBufferCap = 256 << 10
	minReadChunk  = 16 << 10
)

// readChunk is how much of a read OnTraffic parses before it checks
// whether the publisher must wait.
func (lp *evLoop) readChunk() int {
	return min(readBufferCap, max(minReadChunk, lp.srv.flowHigh()/4))
}

// OnTraffic parses what the socket delivered, piece by piece, until the
// publisher has to wait (flow.go). Slices into gnet's read buffer are valid
// only until it returns; the parser copies what it keeps.
func (t *gnetTransport) OnTraffic(gc gnet.Conn) gnet.Action {
	gt := gc.Context().(*gnetConn)
	if gt.c.closing || gt.c.closed {
		_, _ = gc.Discard(-1)
		return gnet.None
	}
	buf, _ := gc.Peek(-1)
	lp := gt.lp
	t0 := time.Now()
	lp.inTraffic = true
	done, chunk := 0, lp.readChunk()
	for { // at least once: a Wake (TLS records held after the handshake) reads nothing
		end := min(done+chunk, len(buf))
		gt.onRead(buf[done:end])
		done = end
		if c := gt.c; done == len(buf) || c.fc.wait != nil || c.closing || c.closed || gt.gone {
			break
		}
	}
	if !gt.gone {
		if gt.c.closing || gt.c.closed {
			done = len(buf)
		}
		_, _ = gc.Discard(done)
	}
	lp.inTraffic = false
	gt.c.foldStats()
	gt.c.pauseIfWaiting(gc)
	if lp.forwarded {
		lp.forwarded = false
		lp.sendBatches()
	}
	if len(lp.links) > 0 {
		lp.wakeLinks()
	}
	lp.mon.reads++
	lp.mon.busy += time.Since(t0)
	lp.publishMon()
	return gnet.None
}

// OnClose removes the client's subscriptions. It may run inside a flush
// (a write error closes synchronously), so it only marks state.
func (t *gnetTransport) OnClose(gc gnet.Conn, _ error) gnet.Action {
	gt, ok := gc.Context().(*gnetConn)
	if !ok {
		return gnet.None
	}
	gt.gone = true
	if gt.c.fc.sockFull.Load() {
		// Batches held back for its OnWritable (receive) are drained now.
		gt.c.fc.sockFull.Store(false)
		if gt.lp.inbox.bytes.Load() > 0 {
			gt.lp.wake()
		}
	}
	if gt.tls != nil {
		gt.tls.closed()
	}
	delete(gt.lp.clients, gt.c)
	gt.c.cleanup()
	return gnet.None
}

func (t *gnetTransport) OnShutdown(gnet.Engine) {}

// eachClient runs fn for every client on its own loop and waits.
func (t *gnetTransport) eachClient(fn func(c *client)) {
	var wg sync.WaitGroup
	t.bindMu.Lock()
	bound := make([]*evLoop, 0, len(t.byEL))
	for _, lp := range t.byEL {
		bound = append(bound, lp)
	}
	t.bindMu.Unlock()
	for _, lp := range bound {
		wg.Add(1)
		err := lp.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			defer wg.Done()
			for c := range lp.clients {
				fn(c)
			}
			lp.flush()
			return nil
		}))
		if err != nil {
			wg.Done()
		}
	}
	wg.Wait()
}

func (t *gnetTransport) stop() {
	t.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = t.eng.Stop(ctx)
		<-t.stopped
	})
}

// gnetConn is the transport side of one client on an event loop. Owned by
// that loop.
type gnetConn struct {
	conn gnet.Conn
	lp   *evLoop
	c    *client
	gone bool     // gnet has closed the connection
	tls  *tlsConn // the TLS codec (tlsconn.go); nil for plaintext
	// full: a direct write left output in c.out because the socket was
	// full; flushes wait for OnWritable instead of trying again.
	full bool
}

// onRead hands what the socket delivered to the client, through the TLS
// codec when there is one.
func (g *gnetConn) onRead(buf []byte) {
	if g.tls != nil {
		g.tlsRead(buf)
		return
	}
	g.c.onRead(buf)
}

func (g *gnetConn) flushSoon() {
	if !g.c.dirty {
		g.c.dirty = true
		g.lp.dirty = append(g.lp.dirty, g.c)
		g.lp.scheduleFlush()
	}
}

func (g *gnetConn) pendingOut() int { return g.conn.OutboundBuffered() }

func (g *gnetConn) closeConn() {
	g.c.closing = true
	g.flushSoon()
}

// kick closes the connection from another goroutine, on its own loop.
func (g *gnetConn) kick() { g.run(g.closeConn) }

// run calls fn on the connection's loop while it is open.
func (g *gnetConn) run(fn func()) {
	_ = g.lp.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		if !g.gone && !g.c.closed {
			fn()
		}
		return nil
	}))
}

func (g *gnetConn) outLock()   {}
func (g *gnetConn) outUnlock() {}

// flush writes the client's pending output with writev, at most maxIovecs
// buffers per call, then closes the connection if it is closing.
func (g *gnetConn) flush(iov [][]byte) [][]byte {
	c := g.c
	c.foldStats()
	out := &c.out
	if !c.closing && !g.gone && (g.full || g.conn.OutboundBuffered() > 0) {
		// The socket is full (gnet holds what Writev could not write):
		// output waits in c.out, neither sealed, framed nor copied into
		// gnet's buffer, until OnWritable.
		g.waitWritable()
		return iov
	}
	if g.tls != nil {
		if c.ws != nil { // wss: frame, then seal the frames
			iov = g.tls.sealFramed(c, iov)
		}
		out = g.tls.output(c) // sealed records; plaintext INFO before the handshake
	}
	if g.tls == nil && c.ws == nil && !c.closing {
		return g.flushDirect(iov)
	}
	for !g.gone {
		if c.ws != nil && g.tls == nil {
			iov = c.ws.take(iov[:0], maxIovecs) // framed (wsconn.go)
		} else {
			iov = out.take(iov[:0])
		}
		if len(iov) == 0 {
			break
		}
		sent := append(g.lp.sent[:0], iov...) // Writev reslices iov entries
		g.lp.mon.wrote(len(iov))
		_, err := g.conn.Writev(iov)
		out.pool.put(sent)
		g.lp.sent = sent[:0]
		if err != nil {
			break
		}
		if !c.closing && g.conn.OutboundBuffered() > 0 { // full: the rest waits (see above)
			g.waitWritable()
			break
		}
	}
	if c.closing && !g.gone {
		_ = g.lp.el.Close(g.conn) // runs OnClose synchronously
	}
	return iov
}

// waitWritable marks the connection full while gnet holds output it could
// not write: WritevSome with gnet's buffer non-empty writes nothing and asks
// for OnWritable after that buffer drains.
func (g *gnetConn) waitWritable() {
	if !g.full {
		_, _ = g.conn.WritevSome(nil)
		g.full = true
	}
}

// flushDirect writes plaintext output straight from c.out: what the socket
// does not take stays there (never copied into gnet's buffer) until
// OnWritable says the socket has room again.
func (g *gnetConn) flushDirect(iov [][]byte) [][]byte {
	out := &g.c.out
	for !g.gone && !g.full && out.size > 0 {
		iov = out.peek(iov[:0])
		want := 0
		for _, b := range iov {
			want += len(b)
		}
		g.lp.mon.wrote(len(iov))
		n, err := g.conn.WritevSome(iov)
		out.consume(n)
		if err != nil {
			break
		}
		if g.full = n < want; g.full {
			g.c.fc.sockFull.Store(true) // inbox.go: receive
		}
	}
	clear(iov) // no references to pooled chunks
	return iov[:0]
}

// OnWritable: the socket of a connection that a write filled has room
// again (and gnet's buffer, if it held anything, is empty); write what
// waits.
func (t *gnetTransport) OnWritable(gc gnet.Conn) gnet.Action {
	gt, ok := gc.Context().(*gnetConn)
	if !ok || gt.gone {
		return gnet.None
	}
	gt.full = false
	if gt.c.fc.sockFull.Load() {
		// Batches for this client may wait in the inbox unannounced
		// (receive): clear the flag, then take them (the drain's flush
		// writes this client too).
		gt.c.fc.sockFull.Store(false)
		if gt.lp.inbox.bytes.Load() > 0 && !gt.lp.draining {
			gt.lp.drain()
		}
	}
	if gt.c.closing {
		gt.flushSoon()
		return gnet.None
	}
	gt.lp.iov = gt.flush(gt.lp.iov)
	return gnet.None
}

// gnetLogger routes gnet's log lines into the server log, dropping its
// informational chatter unless debugging.
type gnetLogger struct{ s *Server }

func (l gnetLogger) Debugf(f string, a ...any) { l.s.Debugf("gnet: "+f, a...) }
func (l gnetLogger) Infof(f string, a ...any)  { l.s.Debugf("gnet: "+f, a...) }
func (l gnetLogger) Warnf(f string, a ...any)  { l.s.Noticef("gnet: "+f, a...) }
func (l gnetLogger) Errorf(f string, a ...any) { l.s.Errorf("gnet: "+f, a...) }
func (l gnetLogger) Fatalf(f string, a ...any) { l.s.Errorf("gnet: "+f, a...) }
