package loop

// Concurrency: a tlsConn is owned by its connection's gnet loop, like the
// gnetConn that holds it, except for what its handshake goroutine touches:
// tc and br until it returns (see tlsbridge.go), then it hands its result to
// the loop with Execute (gnetConn.run). The timeout timer only calls
// br.fail. The loop's plaintext buffer (evLoop.tlsPlain) is the loop's.

import (
	"crypto/tls"
	"errors"
	"io"
	"time"
)

// tlsState is where a TLS connection on a loop stands.
type tlsState uint8

const (
	tlsGreeting    tlsState = iota // INFO goes out in plaintext at the next flush
	tlsHandshaking                 // input goes to the handshake goroutine; output is held
	tlsRecords                     // input is decrypted and output encrypted on the loop
	tlsFailed                      // the handshake failed: the connection closes
)

// maxTLSRecord is the largest plaintext a TLS record carries.
const maxTLSRecord = 16 << 10

var errTLSTimeout = errors.New("TLS handshake timeout")

// tlsConn is the TLS codec of one connection on a gnet loop: the client
// reads and writes plaintext as ever; the codec opens what the socket
// delivers and seals what the client queued, once per flush, into the
// same writev.
type tlsConn struct {
	srv    *tlsServer
	tc     *tls.Conn
	br     *tlsBridge
	state  tlsState
	sealed outBuf // ciphertext of this flush, written with one writev
	timer  *time.Timer
	// inPaused: the handshake has tlsHandshakeInputMax waiting; the loop
	// reads the socket again when the handshake is done.
	inPaused bool
	heard    bool // the client has sent something
	greeted  bool // INFO is out (or queued)
}

// startTLS puts the TLS codec on a new client connection and starts its
// handshake; INFO goes out first in plaintext unless handshake_first.
// Runs in OnOpen.
func (g *gnetConn) startTLS(srv *tlsServer) {
	t := &tlsConn{srv: srv, state: tlsHandshaking}
	t.sealed.pool = &g.lp.pool
	t.br = newTLSBridge(srv.slots, g.sendHandshake, g.conn.LocalAddr(), g.conn.RemoteAddr())
	t.tc = tls.Server(t.br, srv.cfg.Load())
	g.tls = t
	if !srv.first {
		t.greet(g.c)
	} else if srv.wait > 0 {
		time.AfterFunc(srv.wait, func() { g.run(g.tlsFallback) })
	}
	t.timer = time.AfterFunc(srv.timeout, func() { t.br.fail(errTLSTimeout) })
	go g.handshake(t)
	g.lp.goschedBeforeWait()
}

// greet sends INFO in plaintext at the next flush, then the handshake goes
// on as the client starts it.
func (t *tlsConn) greet(c *client) {
	t.greeted = true
	t.state = tlsGreeting
	c.greet()
}

// tlsFallback runs on the loop handshake_first's fallback delay after
// OnOpen: a client that has said nothing gets INFO in plaintext.
func (g *gnetConn) tlsFallback() {
	if t := g.tls; !t.heard && !t.greeted && t.state == tlsHandshaking {
		t.greet(g.c)
	}
}

// handshake runs crypto/tls's handshake off the loop (it cannot be
// resumed, so it needs a goroutine that may block) and hands the result
// to the loop.
func (g *gnetConn) handshake(t *tlsConn) {
	err := t.tc.Handshake()
	t.br.handshakeDone()
	c := g.c
	switch {
	case err == nil:
	case errors.Is(err, errTLSTimeout):
		c.srv.Errorf("client %d (%s): TLS handshake timeout", c.id, c.ip)
	case errors.Is(err, errTLSClosed):
		// the server closed it (shutdown, or the loop closed it first)
	default:
		c.srv.Errorf("client %d (%s): TLS handshake error: %v", c.id, c.ip, err)
	}
	g.run(func() { g.handshakeDone(err) })
}

// sendHandshake queues handshake output (p is the callee's) on the loop.
// It follows INFO: the flush that writes INFO was queued at OnOpen, before
// any input could reach the handshake, and Execute runs tasks in order.
func (g *gnetConn) sendHandshake(p []byte) {
	g.run(func() { _, _ = g.conn.Write(p) })
}

// handshakeDone runs on the loop: record mode, or close.
func (g *gnetConn) handshakeDone(err error) {
	t := g.tls
	t.timer.Stop()
	if err != nil {
		t.state = tlsFailed
		g.closeConn()
		return
	}
	t.state = tlsRecords
	t.br.toRecords(&t.sealed)
	g.c.setTLS(t.tc)
	if t.inPaused {
		t.inPaused = false
		_ = g.conn.ResumeRead()
	}
	if !t.greeted {
		t.greeted = true
		if g.c.ws == nil { // wss greets after the upgrade
			g.c.greet()
		}
	}
	// Records that came with the client's Finished wait in the tls.Conn
	// and the bridge: OnTraffic opens them.
	_ = g.conn.Wake(nil)
}

// errTLSClosed cuts the handshake of a connection that is gone.
var errTLSClosed = errors.New("connection closed")

// closed runs in OnClose: a handshake still running stops.
func (t *tlsConn) closed() {
	t.timer.Stop()
	if t.state != tlsRecords {
		t.br.fail(errTLSClosed)
	}
}

// onRead takes what the socket delivered: input for the handshake, or
// records to open and parse on the loop.
func (g *gnetConn) tlsRead(buf []byte) {
	t := g.tls
	switch t.state {
	case tlsGreeting, tlsHandshaking:
		t.heard = t.heard || len(buf) > 0
		g.lp.goschedBeforeWait() // the handshake goroutine has input
		if t.br.feed(buf) > tlsHandshakeInputMax && !t.inPaused && g.conn.PauseRead() == nil {
			t.inPaused = true
		}
		return
	case tlsFailed:
		return
	}
	t.br.src = buf
	plain := g.lp.plainBuf()
	for {
		n, err := t.tc.Read(plain)
		if n > 0 && !g.c.onRead(plain[:n]) {
			break
		}
		if err == errWouldBlock {
			break
		}
		if err != nil {
			if err != io.EOF {
				g.c.srv.Noticef("client %d (%s): TLS error: %v", g.c.id, g.c.ip, err)
			}
			g.c.closeWithErr("")
			break
		}
	}
	t.br.src = nil
	if t.sealed.size > 0 { // crypto/tls answered something (a key update)
		g.flushSoon()
	}
}

// output is what a flush writes: INFO in plaintext before the handshake,
// nothing during it (what the client queued waits, and is dropped if it
// closes), and once in record mode the client's output sealed.
func (t *tlsConn) output(c *client) *outBuf {
	switch t.state {
	case tlsGreeting:
		t.state = tlsHandshaking
		return &c.out
	case tlsRecords:
		t.seal(&c.out)
	default:
		if c.closing {
			c.out.reset()
		}
	}
	return &t.sealed
}

// sealFramed frames the client's output for WebSocket and seals the
// frames (wss: the WebSocket codec above TLS), once the handshake is done;
// output then has nothing left of c.out to seal.
func (t *tlsConn) sealFramed(c *client, iov [][]byte) [][]byte {
	if t.state != tlsRecords {
		return iov
	}
	for {
		iov = c.ws.take(iov[:0], maxIovecs)
		if len(iov) == 0 {
			return iov
		}
		for _, b := range iov {
			_, _ = t.tc.Write(b) // the bridge never fails a write
		}
		c.out.pool.put(iov)
	}
}

// seal encrypts o's chunks into t.sealed, a record per chunk at most
// (maxTLSRecord splits the 64 KiB ones), and gives them back to the pool.
func (t *tlsConn) seal(o *outBuf) {
	for _, b := range o.chunks {
		_, _ = t.tc.Write(b) // the bridge never fails a write
	}
	o.reset()
}

// plainBuf is the loop's buffer for decrypted input: the parser copies
// what it keeps, so one per loop serves every TLS connection on it.
func (lp *evLoop) plainBuf() []byte {
	if lp.tlsPlain == nil {
		lp.tlsPlain = make([]byte, maxTLSRecord)
	}
	return lp.tlsPlain
}
