package leaf

// WebSocket leaf links, the hub side: a leaf that upgrades at /leafnode
// on this server's websocket listener (leafnodes { port } set, as
// nats-server needs) stays a connection on its loop, whose WebSocket
// codec (and TLS, for wss) unframes what it reads and frames what it
// writes; the link runs over wsHubConn, a net.Conn between that loop
// connection and the link's reader and writer goroutines, the same
// accepted-leaf code as on the leafnode port. The link is not s2
// compressed (nats-server puts s2 below the frames, which the loop's
// codec cannot): the INFO says compression off.

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/evnats/evnats/loop"
)

// maxWSIn bounds what a leaf sent that the link's reader has not taken
// yet: past it the connection is closed rather than held in memory.
var maxWSIn = 64 << 20

// NewWSConn starts the link of a leaf that upgraded at /leafnode on the
// websocket listener (loop calls it on the connection's loop).
func (m *manager) NewWSConn(k *loop.Conn) loop.Protocol {
	h := &wsHubConn{k: k, ready: make(chan struct{}, 1), gone: make(chan struct{})}
	k.SetConnected() // the link's handshake has its own auth timeout
	o := m.s.Options()
	r := newAccepted(m)
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		h.end()
		return wsLeafProto{h}
	}
	m.accepted[r] = struct{}{}
	m.wg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.wg.Done()
		r.serveAccepted(h, &o, true)
		m.mu.Lock()
		delete(m.accepted, r)
		m.mu.Unlock()
	}()
	return wsLeafProto{h}
}

// wsLeafProto is the loop side of a wsHubConn: the loop.Protocol of the
// leaf's connection, run in that connection's context.
type wsLeafProto struct{ h *wsHubConn }

// wsHubConn is an accepted WebSocket leaf's connection as its link sees
// it. Its wsLeafProto runs in the loop connection's context; Read
// belongs to the link's reader, Write to its writer (and the
// handshake); Close and the deadlines to any goroutine.
type wsHubConn struct {
	k     *loop.Conn
	ready chan struct{} // cap 1: in has bytes, or the connection ended
	gone  chan struct{} // closed when the connection ended
	once  sync.Once

	mu struct {
		sync.Mutex
		in  []byte    // unframed input not yet read
		off int       // read position in in
		end bool      // the loop connection ended
		rdl time.Time // read deadline (zero: none)
	}
}

// OnRead keeps what the loop unframed for the link's reader.
func (p wsLeafProto) OnRead(b []byte) bool {
	h := p.h
	h.mu.Lock()
	if h.mu.end || len(h.mu.in)-h.mu.off+len(b) > maxWSIn {
		h.mu.Unlock()
		return false
	}
	if h.mu.off == len(h.mu.in) {
		h.mu.in, h.mu.off = h.mu.in[:0], 0
	}
	h.mu.in = append(h.mu.in, b...)
	h.mu.Unlock()
	h.signal()
	return true
}

// Deliver: a link has no subscriptions of the connection's own.
func (wsLeafProto) Deliver(*loop.Sub, []byte, []byte, int, []byte) bool { return false }

// Tick: the link pings on its own.
func (wsLeafProto) Tick(time.Time) {}

// Close runs when the loop connection has ended: the reader sees EOF.
func (p wsLeafProto) Close() { p.h.end() }

func (h *wsHubConn) end() {
	h.once.Do(func() {
		h.mu.Lock()
		h.mu.end = true
		h.mu.Unlock()
		close(h.gone)
	})
	h.signal()
}

func (h *wsHubConn) signal() {
	select {
	case h.ready <- struct{}{}:
	default:
	}
}

var errWSDeadline = &net.OpError{Op: "read", Net: "websocket", Err: errors.New("i/o timeout")}

// Read takes unframed input, waiting for it until the read deadline.
func (h *wsHubConn) Read(p []byte) (int, error) {
	for {
		h.mu.Lock()
		if h.mu.off < len(h.mu.in) {
			n := copy(p, h.mu.in[h.mu.off:])
			h.mu.off += n
			h.mu.Unlock()
			return n, nil
		}
		if h.mu.end {
			h.mu.Unlock()
			return 0, net.ErrClosed
		}
		dl := h.mu.rdl
		h.mu.Unlock()
		var timeout <-chan time.Time
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return 0, errWSDeadline
			}
			t := time.NewTimer(d)
			timeout = t.C
			defer t.Stop()
		}
		select {
		case <-h.ready:
		case <-timeout:
			return 0, errWSDeadline
		}
	}
}

// Write hands p to the loop as output (framed there) and waits until it
// is queued, so the link's writer goes no faster than the loop takes its
// output; a leaf that lets maxPending of it pile up is cut as a slow
// consumer.
func (h *wsHubConn) Write(p []byte) (int, error) {
	b := append([]byte(nil), p...)
	done := make(chan struct{})
	k := h.k
	k.Run(func() {
		defer close(done)
		if k.Closed() {
			return
		}
		k.Write(b)
		k.FlushSoon()
		if k.Pending() > maxPending {
			k.MarkSlow("leafnode websocket output over the pending limit")
		}
	})
	select {
	case <-done:
	case <-h.gone:
		return 0, net.ErrClosed
	}
	select {
	case <-h.gone:
		return 0, net.ErrClosed
	default:
	}
	return len(p), nil
}

// Close ends the loop connection.
func (h *wsHubConn) Close() error {
	h.k.Kick()
	h.end()
	return nil
}

func (h *wsHubConn) LocalAddr() net.Addr { return &net.TCPAddr{} }

func (h *wsHubConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.ParseIP(h.k.IP())} }

func (h *wsHubConn) SetDeadline(t time.Time) error { return h.SetReadDeadline(t) }

func (h *wsHubConn) SetReadDeadline(t time.Time) error {
	h.mu.Lock()
	h.mu.rdl = t
	h.mu.Unlock()
	h.signal() // a waiting Read looks at the new deadline
	return nil
}

func (h *wsHubConn) SetWriteDeadline(time.Time) error { return nil }
