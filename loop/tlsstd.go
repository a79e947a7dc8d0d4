package loop

// Concurrency: runs on a goroutine-transport connection's reader goroutine
// before its writer starts; nothing else touches the connection's rw then.
// The handshake slot semaphore is shared (tlsbridge.go).

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"time"

	"github.com/evnats/evnats/codec"
)

// handshake serves TLS on the goroutine transport with crypto/tls over the
// socket, as nats-server does: INFO in plaintext first (unless
// handshake_first), the handshake within the TLS timeout, then INFO over
// TLS for handshake_first. It reports whether the connection goes on; rw
// is the tls.Conn from then on.
func (g *goConn) handshake(srv *tlsServer) bool {
	c := g.c
	sc := &slotConn{Conn: g.nc, slots: srv.slots}
	first := srv.first
	if first && srv.wait > 0 {
		// handshake_first with a fallback: bytes within the delay are
		// the ClientHello; silence gets INFO in plaintext.
		pre := make([]byte, 4)
		_ = g.nc.SetReadDeadline(time.Now().Add(srv.wait))
		n, _ := io.ReadFull(g.nc, pre)
		sc.pre = pre[:n]
		first = n > 0
	}
	_ = g.nc.SetDeadline(time.Now().Add(srv.timeout))
	if !first {
		if _, err := g.nc.Write(c.info()); err != nil || c.srv.numConns.Load() > int64(c.srv.live.Load().maxConnections) {
			_, _ = g.nc.Write(codec.AppendErr(nil, "maximum connections exceeded"))
			return false
		}
	}
	tc := tls.Server(sc, srv.cfg.Load())
	err := tc.Handshake()
	tc.NetConn().(*slotConn).done()
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.srv.Errorf("client %d (%s): TLS handshake timeout", c.id, c.ip)
		} else {
			c.srv.Errorf("client %d (%s): TLS handshake error: %v", c.id, c.ip, err)
		}
		return false
	}
	_ = g.nc.SetDeadline(time.Time{})
	g.rw = tc
	c.setTLS(tc)
	if first && c.ws == nil { // wss greets after the upgrade
		c.greet()
	}
	return true
}

// slotConn holds a handshake slot while crypto/tls computes, not while it
// waits for the client, as the loops' handshakes do (tlsBridge.Read).
// Once done, it only passes reads through. Used by one goroutine.
type slotConn struct {
	net.Conn
	slots   handshakeSlots
	holding bool
	over    bool
	pre     []byte // read ahead by the handshake_first fallback, read first
}

func (s *slotConn) Read(p []byte) (int, error) {
	if len(s.pre) > 0 {
		n := copy(p, s.pre)
		s.pre = s.pre[n:]
		return n, nil
	}
	if s.over {
		return s.Conn.Read(p)
	}
	if s.holding {
		s.holding = false
		s.slots.release()
	}
	n, err := s.Conn.Read(p)
	s.slots.acquire()
	s.holding = true
	return n, err
}

func (s *slotConn) done() {
	s.over = true
	if s.holding {
		s.holding = false
		s.slots.release()
	}
}
