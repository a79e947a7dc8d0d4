package loop

// Concurrency: a connection's monitoring figures (connStat) are written by
// the goroutine that owns each one (see the field comments) and read by
// snapshot, which runs under the client's outLock in the context that
// eachClient gives it: on its loop with gnet, on the HTTP goroutine with
// the goroutine transport, where outLock is the connection's mutex. The
// closed ring has its own mutex, a leaf taken once per closed connection
// and per /connz?state=closed.

import (
	"crypto/tls"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evnats/evnats/codec"
	"github.com/evnats/evnats/loop/monitor"
)

// connStat is what /connz shows of a connection beyond its session state.
type connStat struct {
	inMsgs, inBytes   atomic.Int64 // written by the reader, once per message
	outMsgs, outBytes atomic.Int64 // written under outLock, once per delivery
	last              atomic.Int64 // unix ns of the last read; written by the reader
	pingAt            atomic.Int64 // unix ns the unanswered server PING left; 0: none
	rtt               atomic.Int64 // ns, measured by the last PING/PONG
	meta              atomic.Pointer[connMeta]
	tls               atomic.Pointer[tlsMeta]
	reason            atomic.Pointer[string] // why it closed; the first reason set wins
}

// connMeta is what a connection said about itself at CONNECT, replaced
// as a whole (once per CONNECT).
type connMeta struct {
	user string
}

// tlsMeta is the TLS session's version and cipher, set after the handshake.
type tlsMeta struct{ version, cipher string }

// setTLS records the handshake's outcome: the verified peer certificate
// (read by CONNECT in the same context) and, for /connz, version and cipher.
func (c *client) setTLS(tc *tls.Conn) {
	c.peer = peerCert(tc)
	st := tc.ConnectionState()
	c.stat.tls.Store(&tlsMeta{version: tlsVersionName(st.Version), cipher: tls.CipherSuiteName(st.CipherSuite)})
}

// tlsVersionName is nats-server's spelling: "1.3".
func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "1.0"
	case tls.VersionTLS11:
		return "1.1"
	case tls.VersionTLS12:
		return "1.2"
	case tls.VersionTLS13:
		return "1.3"
	}
	return "Unknown [" + strconv.Itoa(int(v)) + "]"
}

// setReason records why c closes, unless a reason is already set.
func (c *client) setReason(r string) {
	if c.stat.reason.Load() == nil {
		c.stat.reason.CompareAndSwap(nil, &r)
	}
}

// closeReason is nats-server's close reason (its ClosedState) for a
// connection closed with -ERR msg.
func closeReason(msg string) string {
	switch {
	case msg == "Authentication Timeout", msg == "Stale Connection", msg == "Maximum Control Line Exceeded":
		return msg
	case msg == "Authorization Violation":
		return "Authentication Failure"
	case msg == "maximum connections exceeded":
		return "Maximum Connections Exceeded"
	case msg == errAccountConns:
		return "Maximum Account Connections Exceeded"
	case msg == "maximum subscriptions exceeded":
		return "Maximum Subscriptions Exceeded"
	case msg == "Maximum Payload Violation":
		return "Maximum Message Payload Exceeded"
	case msg == "Invalid Client Protocol":
		return "Bad Client Protocol Version"
	case strings.HasPrefix(msg, "Message Headers Not Supported"):
		return "Message Header Violation"
	case strings.HasPrefix(msg, "Unknown Protocol Operation"), strings.HasPrefix(msg, "Invalid "),
		strings.HasPrefix(msg, "Message Payload Size Mismatch"):
		return "Parse Error"
	}
	return "Protocol Violation"
}

// rttPing sends a PING to measure the round trip, unless one is out; the
// PONG that answers it sets the rtt (client.ProcessPong).
func (c *client) rttPing(now time.Time) {
	if c.proto != nil || !c.connected.Load() || !c.stat.pingAt.CompareAndSwap(0, now.UnixNano()) {
		return
	}
	c.sendProto(codec.PingLine)
}

// pong records the round trip of the server's last PING.
func (c *client) pong() {
	if at := c.stat.pingAt.Swap(0); at != 0 {
		c.stat.rtt.Store(max(time.Now().UnixNano()-at, 1))
	}
}

// snapshot is c as /connz shows it. The caller holds outLock in c's
// context (see the file comment).
func (c *client) snapshot(subs bool) *monitor.ConnInfo {
	ci := &monitor.ConnInfo{
		Cid: c.id, Kind: "Client", Type: "nats", IP: c.ip, Port: c.port, Start: c.start,
		InMsgs: c.stat.inMsgs.Load(), InBytes: c.stat.inBytes.Load(),
		OutMsgs: c.stat.outMsgs.Load(), OutBytes: c.stat.outBytes.Load(),
		NumSubs: uint32(len(c.subs)),
		Name:    c.opts.Name, Lang: c.opts.Lang, Version: c.opts.Version, Account: monitor.GlobalAccount,
	}
	if c.acc != nil {
		ci.Account = c.acc.name
	}
	if !c.closed {
		ci.Pending = c.out.size + c.t.pendingOut()
	}
	switch {
	case c.proto != nil:
		ci.Type, ci.MQTTClient, ci.Name = "mqtt", c.opts.Name, ""
	case c.ws != nil:
		ci.Type = "websocket"
	}
	ci.LastActivity = c.start
	if l := c.stat.last.Load(); l != 0 {
		ci.LastActivity = time.Unix(0, l)
	}
	if r := c.stat.rtt.Load(); r > 0 {
		ci.RTTDur = time.Duration(r)
		ci.RTT = ci.RTTDur.String()
	}
	if m := c.stat.meta.Load(); m != nil {
		ci.AuthorizedUser = m.user
	}
	if t := c.stat.tls.Load(); t != nil {
		ci.TLSVersion, ci.TLSCipher = t.version, t.cipher
	}
	if subs && len(c.subs) > 0 {
		ci.Subs = make([]string, 0, len(c.subs))
		ci.SubsDetail = make([]monitor.SubDetail, 0, len(c.subs))
		for _, s := range c.subs {
			ci.Subs = append(ci.Subs, s.Subject)
			ci.SubsDetail = append(ci.SubsDetail, s.detail(c.id, ci.Account))
		}
		slices.Sort(ci.Subs)
		slices.SortFunc(ci.SubsDetail, func(a, b monitor.SubDetail) int {
			if a.Subject != b.Subject {
				if a.Subject < b.Subject {
					return -1
				}
				return 1
			}
			if a.Sid < b.Sid {
				return -1
			}
			return 0
		})
	}
	return ci
}

// detail is s in /subsz and /connz?subs=detail; under its client's outLock.
func (s *subscription) detail(cid uint64, acc string) monitor.SubDetail {
	return monitor.SubDetail{Account: acc, Subject: s.Subject, Queue: s.Queue,
		Sid: string(s.SID), Msgs: int64(s.delivered), Max: int64(s.max), Cid: cid}
}

// Conns snapshots every open connection, each in its own context; it then
// asks the connections whose round trip is unknown for one (as
// nats-server does), which the next call shows.
func (s *Server) Conns(subs bool) []*monitor.ConnInfo {
	var mu sync.Mutex
	var list []*monitor.ConnInfo
	now := time.Now()
	s.tr.eachClient(func(c *client) {
		c.t.outLock()
		closed := c.closed
		ci := c.snapshot(subs)
		c.t.outUnlock()
		if closed {
			return
		}
		if ci.RTTDur == 0 {
			c.rttPing(now)
		}
		mu.Lock()
		list = append(list, ci)
		mu.Unlock()
	})
	return list
}

// closedRing remembers the last connections that closed, for
// /connz?state=closed. mu guards buf and next; a leaf.
type closedRing struct {
	mu   sync.Mutex
	buf  []*monitor.ConnInfo // capacity max_closed_clients; a ring once full
	next int                 // where the next goes once buf is full
	size int
}

func (r *closedRing) add(ci *monitor.ConnInfo) {
	if r.size <= 0 {
		return
	}
	r.mu.Lock()
	if len(r.buf) < r.size {
		r.buf = append(r.buf, ci)
	} else {
		r.buf[r.next] = ci
		r.next = (r.next + 1) % r.size
	}
	r.mu.Unlock()
}

// Closed returns the remembered closed connections, oldest first.
func (s *Server) Closed() []*monitor.ConnInfo {
	r := &s.closed
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*monitor.ConnInfo, 0, len(r.buf))
	for i := range r.buf {
		ci := *r.buf[(r.next+i)%len(r.buf)] // a copy: the handler edits what it gets
		out = append(out, &ci)
	}
	return out
}

// remember records c, closing now, in the closed ring; under outLock in
// c's context, before its subscriptions go.
func (c *client) remember() {
	ci := c.snapshot(true)
	now := time.Now()
	ci.Stop = &now
	ci.Reason = "Client Closed"
	if r := c.stat.reason.Load(); r != nil {
		ci.Reason = *r
	} else if c.srv.shuttingDown() {
		ci.Reason = "Server Shutdown"
	}
	c.srv.closed.add(ci)
}
