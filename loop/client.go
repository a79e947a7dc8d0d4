package loop

// Concurrency: a client is owned by the goroutine that reads its
// connection (its gnet loop, or its goroutine-transport reader): parser, opts
// (written under outLock too, as deliveries read opts.Headers), echo, perms,
// user, publisher flow state. Fields marked "out" (out, subs, closed, slow,
// closing, scratch; subscription counters) are also written by publishers
// delivering to it: on gnet only from its own loop, on the goroutine
// transport under outLock (goConn.mu). tick comes from its loop (gnet) or the
// housekeeping goroutine (goroutine transport); connected and pingsOut are
// atomics for that reason.

import (
	"crypto/x509"
	"net"
	"sync/atomic"
	"time"

	"github.com/evnats/evnats/codec"
	"github.com/evnats/evnats/router"
)

// transport is what a client needs from the I/O layer that owns it.
type transport interface {
	// flushSoon asks for the outbound buffer to be written out; it is
	// called in the context that owns the output (see outLock).
	flushSoon()
	// pendingOut is the number of bytes written but not yet on the wire.
	pendingOut() int
	// closeConn writes what is buffered, then closes; called in the
	// client's own context.
	closeConn()
	// outLock/outUnlock guard the outbound buffer and the subscription
	// table against other goroutines. They are no-ops on an event loop,
	// where one goroutine owns the client, its subscribers' output and its
	// deliveries; the goroutine transport backs them with a mutex.
	outLock()
	outUnlock()
	// kick closes the connection from any goroutine (an MQTT session
	// taken over by a new connection).
	kick()
	// run calls fn from any goroutine in the context that owns the
	// client's output, with outLock held: on its loop, or under its mutex.
	run(fn func())
}

// connectOpts are the CONNECT fields evnats acts on; names as clients send them.
type connectOpts struct {
	Verbose      bool   `json:"verbose"`
	Pedantic     bool   `json:"pedantic"`
	Echo         *bool  `json:"echo"`
	Headers      bool   `json:"headers"`
	NoResponders bool   `json:"no_responders"`
	Name         string `json:"name"`
	Lang         string `json:"lang"`
	Version      string `json:"version"`
	Protocol     int    `json:"protocol"`
	User         string `json:"user"`
	Pass         string `json:"pass"`
	Token        string `json:"auth_token"`
	Nkey         string `json:"nkey"`
	Sig          string `json:"sig"`
	JWT          string `json:"jwt"`

	// Set by the server, not the client, before the credentials are
	// checked: the peer's address and its jwt connection type ("" for a
	// NATS client), which a user JWT may restrict.
	host     string
	connType string
}

// defaultConnectOpts are in force before CONNECT and for fields it omits;
// like nats-server, a bare client (telnet) is verbose and pedantic.
var defaultConnectOpts = connectOpts{Verbose: true, Pedantic: true}

// subscription is one client subscription: the router entry plus the
// delivery counters that auto-unsubscribe needs. Owned by the owner client's
// context (guarded by its outLock).
type subscription struct {
	router.Subscription[*subscription]
	c        *client         // nil for an internal subscription
	internal InternalHandler // set for an internal subscription
	link     Link            // set for a link peer's interest (link.go)
	// cross, set for an import's internal subscription (account.go), is
	// called instead of internal with the dispatch's origin, so that the
	// message crosses into the importing account from where it was
	// published (flow control, a 503 to the requester).
	cross func(o origin, subject, reply []byte, hdrLen int, msg []byte)

	deny []string // subscribe deny patterns inside Subject, filtered at delivery; usually nil

	tag uint32 // a protocol plug-in's own (Conn.AddSub); loop never reads it

	// noLocal: messages its own connection publishes are not delivered to
	// it (MQTT 5 no local, Conn.SetNoLocal). The publisher is known to
	// dispatch (origin.pub), so no header a client could forge decides it.
	noLocal bool

	// shownOnly: a mapping source shown to link peers (mapping.go); it
	// takes nothing, so a request it alone matches has no responders.
	shownOnly bool

	// quota, for a queue member with a limit, is 1 + how many more
	// messages publishers may pick it for (0: no limit), so that publishers
	// on other loops stop picking it before it unsubscribes (dispatch.go).
	quota atomic.Int64

	// Everything above is read by publishers on any loop or goroutine for
	// every message they match (Owner, Loop, c, deny, quota); what follows
	// is written per delivery, in the subscriber's context. The pad keeps
	// them off those cache lines, so that a busy subscriber does not
	// invalidate, per message, the line every other loop's publisher reads.
	_         [cacheLine]byte
	max       uint64 // deliver at most this many (0: no limit)
	delivered uint64
	closed    bool
}

// client is one NATS connection's protocol session, shared by both
// transports. Owned by the goroutine that reads the connection: its event
// loop, or its reader goroutine; fields marked "out" are guarded by outLock.
type client struct {
	srv    *Server
	t      transport
	lp     *evLoop // owning loop with the gnet transport; nil otherwise
	cache  *matchCache
	parser codec.Parser
	id     uint64
	ip     string
	tcpIP  string // the TCP peer's address: a websocket's X-Forwarded-For changes ip, not this
	port   int
	shard  *statShard
	stat   connStat // what /connz shows (connsnap.go)
	// pend counts messages in and out on a gnet loop since they were last
	// added to stat and shard (foldStats: end of each read, each flush,
	// close), so the hot path does plain adds instead of eight atomic ones
	// per message. Owned by the loop; unused on the goroutine transport.
	pend  struct{ inMsgs, inBytes, outMsgs, outBytes int64 }
	start time.Time

	connected atomic.Bool // CONNECT accepted; read by housekeeping too
	opts      connectOpts
	echo      bool
	user      string
	perms     atomic.Pointer[permissions] // swapped by a reload (reload.go: reauthorize)
	// acc is the client's account: $G until a CONNECT logs it into
	// another, then fixed (a later CONNECT may not move it). cache is
	// its loop's cache of acc's sublist. Both change only before the
	// client has a subscription, in its own context.
	acc   *account
	nonce []byte // what INFO asked an nkey user to sign; nil without nkey users
	// From a user JWT (jwt.go): when the login expires (unix nanoseconds,
	// 0: never; atomic, as housekeeping reads it on the goroutine
	// transport). maxSubs is the most subscriptions it may hold by its
	// user's and account's limits (-1: only the server's limit);
	// accCounted says it counts toward its account's connections
	// (account.conns), from its first CONNECT until cleanup.
	expires    atomic.Int64
	maxSubs    int
	accCounted bool
	pongSent   bool       // the INFO after the first PONG went (ProcessPing)
	who        *userEntry // the user it logged in as (nil: none); its context only
	// basePayload is the max_payload its INFO announced; its user's
	// and account's limits may lower it (applyLimits).
	basePayload int

	proto Protocol // set for a connection on a plug-in's listener (MQTT); nil: NATS
	// protoSet is stored after proto is assigned (setProto). Code outside
	// the client's context (housekeeping's tick and a reload's reauthorize
	// on the goroutine transport) reads proto only through sharedProto, so
	// a WebSocket upgrade that assigns it on the reader is published to them.
	protoSet atomic.Bool
	peer     *x509.Certificate // the verified TLS client certificate (verify_and_map); set before CONNECT
	ws       *wsConn           // the WebSocket codec (wsconn.go); nil for a plain socket

	lastPing time.Time    // last time the server pinged or heard from the client
	pingsOut atomic.Int32 // reset by the reader, raised by housekeeping

	out     outBuf                   // out
	subs    map[string]*subscription // out: by sid
	closed  bool                     // out
	slow    bool                     // out: exceeded max pending; closing
	dirty   bool                     // out: queued for flush (gnet: on lp.dirty)
	closing bool                     // out: close once flushed
	scratch []byte                   // out: formatting space for control lines
	// outRef: its output may borrow forwarded payloads (outBuf.addRef): a
	// plaintext NATS connection on a gnet loop, whose flush writes
	// straight from its chunks. Set at accept.
	outRef bool

	fc flowState // flow control (flow.go)
}

func newClient(s *Server, t transport, remote net.Addr, lp *evLoop) *client {
	c := &client{
		maxSubs:  -1,
		srv:      s,
		t:        t,
		lp:       lp,
		id:       s.nextCID.Add(1),
		start:    time.Now(),
		subs:     make(map[string]*subscription),
		echo:     true,
		opts:     defaultConnectOpts,
		scratch:  make([]byte, 0, 256),
		lastPing: time.Now(),
		acc:      s.gacc,
	}
	if lp != nil {
		c.cache = lp.cache
		c.shard = s.shard(lp.idx)
	} else {
		c.cache = router.NewCache(s.sl, 256)
		c.shard = s.shard(int(c.id))
	}
	if a, ok := remote.(*net.TCPAddr); ok {
		c.ip, c.port = a.IP.String(), a.Port
		c.tcpIP = c.ip
	}
	c.fc.gate.owner = c
	c.fc.high = s.flowHigh()
	lv := s.live.Load()
	c.parser.MaxControlLine = lv.maxControlLine
	c.parser.MaxPayload = lv.maxPayload
	c.basePayload = lv.maxPayload
	c.parser.ConnectFirst = lv.auth.required
	c.parser.Reset(c)
	s.numConns.Add(1)
	s.totalConns.Add(1)
	return c
}

// greet sends INFO, the first thing a client sees, then turns the client
// away if the server is full (nats-server sends INFO first too).
func (c *client) greet() {
	if c.proto != nil {
		if c.srv.numConns.Load() > int64(c.srv.live.Load().maxConnections) {
			c.srv.Noticef("MQTT client %d (%s): maximum connections exceeded; closing", c.id, c.ip)
			c.closeWithErr("")
		}
		return // MQTT clients speak first
	}
	c.sendProto(c.info())
	if c.srv.numConns.Load() > int64(c.srv.live.Load().maxConnections) {
		c.closeWithErr("maximum connections exceeded")
	}
}

// info is the client's INFO line.
func (c *client) info() []byte {
	info := c.srv.infoBase
	lv := c.srv.live.Load()
	info.MaxPayload, info.AuthRequired = lv.maxPayload, lv.auth.required
	info.ClientID = c.id
	info.ClientIP = c.ip
	if lv.auth.nkeys != nil || lv.auth.op != nil {
		if c.nonce == nil {
			c.nonce = newNonce()
		}
		info.Nonce = string(c.nonce)
	}
	if c.ws != nil {
		info.TLSRequired, info.TLSVerify = c.ws.tls, false
		if a := c.ws.srv.auth; a != nil {
			info.AuthRequired = true
		}
	}
	return infoLine(&info)
}

// sendProto queues protocol bytes to the client from its own context.
func (c *client) sendProto(b []byte) {
	c.t.outLock()
	if !c.closed {
		c.out.write(b)
		c.t.flushSoon()
	}
	c.t.outUnlock()
}

func (c *client) sendErr(msg string) {
	if c.proto != nil {
		return // a plug-in's protocol has its own errors (MQTT has none); callers log
	}
	if c.srv.log.tracing() {
		c.tracef("->> -ERR '%s'", msg)
	}
	c.sendProto(codec.AppendErr(nil, msg))
}

func (c *client) sendOK() {
	c.t.outLock()
	c.okLocked()
	c.t.outUnlock()
}

// okLocked is sendOK for a caller that holds outLock: sendProto would take
// it again, and on the goroutine transport outLock is a plain mutex.
func (c *client) okLocked() {
	if c.opts.Verbose && !c.closed {
		c.out.write(codec.OKLine)
		c.t.flushSoon()
	}
}

// closeWithErr sends -ERR msg (when not empty) and closes the connection
// once what is queued has been written. Called in the client's own context.
func (c *client) closeWithErr(msg string) {
	if msg != "" {
		c.setReason(closeReason(msg))
		c.sendErr(msg)
	}
	c.t.closeConn()
}

// onRead feeds bytes from the socket to the parser; a protocol violation is
// reported to the client before the connection closes. It returns false when
// the connection is to close.
func (c *client) onRead(b []byte) bool {
	c.stat.last.Store(time.Now().UnixNano())
	if c.ws != nil {
		return c.ws.read(b) // unframes, then feeds
	}
	return c.feed(b)
}

// feed parses what the client sent (unframed when WebSocket).
func (c *client) feed(b []byte) bool {
	if c.proto != nil {
		// A protocol plug-in (MQTT) may hand work to goroutines (its
		// session store): they run before the loop blocks (gnet patch 5).
		c.lp.goschedBeforeWait()
		return c.proto.OnRead(b)
	}
	if !c.parsed(c.parser.Parse(b)) {
		return false
	}
	c.pingsOut.Store(0)
	return true
}

// parsed handles what a parse returned: a suspended parse (CONNECT being
// verified off the loop) goes on later, an error closes the connection.
func (c *client) parsed(err error) bool {
	switch {
	case err == nil || err == codec.ErrSuspend:
		return true
	case err == codec.ErrAuthViolation: // an operation before CONNECT
		c.srv.Noticef("client %d (%s): authorization violation", c.id, c.ip)
		c.closeWithErr(err.Error())
	case codec.IsProtocolError(err):
		c.srv.Debugf("client %d: protocol error: %v", c.id, err)
		c.closeWithErr(err.Error())
	default:
		c.closeWithErr("")
	}
	return false
}

// errClose stops the parse after the handler has already replied.
type errClose struct{}

func (errClose) Error() string { return "connection closing" }

// ProcessPub routes one published message.
func (c *client) ProcessPub(subject, reply []byte, hdrLen int, msg []byte) error {
	if c.srv.log.tracing() {
		c.tracef("<<- PUB %s %s hdr=%d size=%d", subject, reply, hdrLen, len(msg))
	}
	if err := c.requireConnect(); err != nil {
		return err
	}
	if hdrLen >= 0 && !c.opts.Headers && c.connected.Load() {
		c.closeWithErr("Message Headers Not Supported: client did not send headers:true in CONNECT")
		return errClose{}
	}
	if c.opts.Pedantic && !router.ValidLiteralSubject(subject) {
		c.sendErr("Invalid Publish Subject")
		c.sendOK() // nats-server acknowledges the PUB after the error too
		return nil
	}
	if p := c.perms.Load(); p != nil && !p.canPublish(subject) {
		c.sendErr(`Permissions Violation for Publish to "` + string(subject) + `"`)
		return nil
	}
	if c.lp != nil {
		c.pend.inMsgs++
		c.pend.inBytes += int64(len(msg))
	} else {
		c.shard.inMsgs.Add(1)
		c.shard.inBytes.Add(int64(len(msg)))
		c.stat.inMsgs.Add(1)
		c.stat.inBytes.Add(int64(len(msg)))
	}
	c.sendOK() // before any delivery, as nats-server orders them
	if !c.routeMsg(subject, reply, hdrLen, msg) && len(reply) > 0 && c.opts.NoResponders && c.opts.Headers {
		c.noResponders(subject, reply)
	}
	return nil
}

// routeMsg delivers a message published by c to every matching subscriber
// and reports whether there was any.
func (c *client) routeMsg(subject, reply []byte, hdrLen int, msg []byte) bool {
	if ms := c.acc.maps.Load(); ms != nil {
		subject, _ = ms.apply(subject)
	}
	r := c.cache.Match(subject)
	if r.Empty() {
		return false
	}
	dispatch(origin{pub: c, lp: c.lp}, r, subject, reply, hdrLen, msg)
	return len(reply) == 0 || !onlyShown(r)
}

// onlyShown reports whether r's only matches are mapping sources shown to
// link peers: nobody here takes the message (a request left on its
// subject by a mapping's weights has no responders, as in nats-server).
func onlyShown(r *matchResult) bool {
	if len(r.Queues) > 0 {
		return false
	}
	for _, rs := range r.Plain {
		if !rs.Owner.shownOnly {
			return false
		}
	}
	return true
}

// noResponders tells a requester that nobody is listening, with a 503 status
// HMSG on its own subscription for the reply subject, naming the subject
// that had no subscribers as nats-server does.
func (c *client) noResponders(subject, reply []byte) {
	r := c.cache.Match(reply)
	for _, rs := range r.Plain {
		if s := rs.Owner; s.c == c {
			hdr := make([]byte, 0, 48+len(subject))
			hdr = append(hdr, "NATS/1.0 503\r\nNats-Subject: "...)
			hdr = append(hdr, subject...)
			hdr = append(hdr, "\r\n\r\n"...)
			c.t.outLock()
			c.deliver(s, reply, nil, len(hdr), hdr, nil)
			c.t.outUnlock()
			return
		}
	}
}

// ProcessSub adds a subscription.
func (c *client) ProcessSub(subject, queue, sid []byte) error {
	if c.srv.log.tracing() {
		c.tracef("<<- SUB %s %s %s", subject, queue, sid)
	}
	if err := c.requireConnect(); err != nil {
		return err
	}
	subj := string(subject)
	if !router.ValidSubject(subj) {
		c.sendErr("Invalid Subject")
		return nil
	}
	if len(queue) > 0 && !router.ValidQueue(string(queue)) {
		c.sendErr("Invalid Queue Name")
		return nil
	}
	perms := c.perms.Load()
	if perms != nil && !perms.canSubscribe(subj, string(queue)) {
		c.sendErr(`Permissions Violation for Subscription to "` + subj + `"`)
		return nil
	}
	c.t.outLock()
	defer c.t.outUnlock()
	if c.closed {
		return errClose{} // the connection is going: drop what follows
	}
	if _, dup := c.subs[string(sid)]; dup {
		// nats-server ignores a repeated sid; so do we.
		c.okLocked()
		return nil
	}
	if max := subsLimit(c.srv.live.Load().maxSubscriptions, c.maxSubs); max >= 0 && len(c.subs) >= max {
		c.out.write(codec.AppendErr(c.scratch[:0], "maximum subscriptions exceeded"))
		c.t.flushSoon()
		return nil
	}
	s := &subscription{}
	s.Subject = subj
	s.Queue = string(queue)
	s.SID = append([]byte(nil), sid...)
	s.deny = perms.deliveryDeny(subj, s.Queue)
	c.addSub(s)
	c.okLocked()
	return nil
}

// ProcessUnsub removes a subscription now, or after max more deliveries.
func (c *client) ProcessUnsub(sid []byte, max int) error {
	if c.srv.log.tracing() {
		c.tracef("<<- UNSUB %s %d", sid, max)
	}
	if err := c.requireConnect(); err != nil {
		return err
	}
	c.t.outLock()
	if s, ok := c.subs[string(sid)]; ok {
		if max > 0 && uint64(max) > s.delivered {
			s.max = uint64(max)
			if s.Queue != "" {
				s.quota.Store(int64(s.max-s.delivered) + 1)
			}
		} else {
			c.removeSub(s)
		}
	}
	c.okLocked()
	c.t.outUnlock()
	return nil
}

// addSub makes s (Subject, Queue and SID set) one of c's subscriptions:
// owned by c's loop, in c's table and the sublist. Caller holds outLock.
func (c *client) addSub(s *subscription) {
	if c.ownSub(s) {
		c.acc.sl.Insert(&s.Subscription)
	}
}

// ownSub makes s one of c's subscriptions, owned by c's loop, without
// putting it in the sublist. Caller holds outLock. A client already
// cleaned up takes no more: s is marked closed and ownSub reports false.
func (c *client) ownSub(s *subscription) bool {
	if c.closed {
		s.closed = true
		return false
	}
	s.c = c
	s.Loop = -1
	if c.lp != nil {
		s.Loop = c.lp.idx
	}
	s.Owner = s
	c.subs[string(s.SID)] = s
	return true
}

// removeSub unsubscribes s; caller holds outLock.
func (c *client) removeSub(s *subscription) {
	if s.closed {
		return
	}
	s.closed = true
	delete(c.subs, string(s.SID))
	c.acc.sl.Remove(&s.Subscription)
}

// ProcessPing answers PING.
func (c *client) ProcessPing() error {
	c.tracef("<<- PING")
	if err := c.requireConnect(); err != nil {
		return err
	}
	c.sendProto(codec.PongLine)
	if !c.pongSent && c.connected.Load() && c.opts.Protocol >= 1 {
		// As nats-server: the first PONG after CONNECT is followed by
		// an INFO naming the account and the client's own max_payload
		// (its user's and account's limits applied).
		c.pongSent = true
		c.sendProto(c.connectInfo())
	}
	return nil
}

// connectInfo is the INFO sent after the first PONG (ProcessPing).
func (c *client) connectInfo() []byte {
	info := c.srv.infoBase
	lv := c.srv.live.Load()
	info.MaxPayload, info.AuthRequired = c.parser.MaxPayload, lv.auth.required
	info.ClientID, info.ClientIP = c.id, c.ip
	info.ConnectInfo, info.RemoteAccount = true, c.acc.name
	info.IsSystemAccount = lv.auth.sysAcc == c.acc
	if c.ws != nil {
		info.TLSRequired, info.TLSVerify = c.ws.tls, false
		if a := c.ws.srv.auth; a != nil {
			info.AuthRequired = true
		}
	}
	return infoLine(&info)
}

// ProcessPong records that the client is alive.
func (c *client) ProcessPong() error {
	c.tracef("<<- PONG")
	c.pingsOut.Store(0)
	c.pong()
	return nil
}

// deliver formats one message for subscription s into c's outbound buffer
// and reports whether s took it (false: denied, closed, auto-unsubscribed
// or c cut as slow, so a queue group tries another member). The caller
// holds c's outLock (on an event loop: runs on c's loop). msg holds headers
// then payload when hdrLen >= 0.
func (c *client) deliver(s *subscription, subject, reply []byte, hdrLen int, msg []byte, big *bigBuf) bool {
	if s.denies(subject) {
		return false
	}
	if c.proto != nil {
		c.lp.goschedBeforeWait() // as in feed
		return c.proto.Deliver(s, subject, reply, hdrLen, msg)
	}
	if c.closed || s.closed || c.slow {
		return false
	}
	s.delivered++
	if hdrLen >= 0 && !c.opts.Headers {
		msg, hdrLen, big = msg[hdrLen:], -1, nil // a client without header support gets the payload only
	}
	if hdrLen >= 0 {
		c.scratch = codec.AppendHMsgHead(c.scratch[:0], subject, s.SID, reply, hdrLen, len(msg))
	} else {
		c.scratch = codec.AppendMsgHead(c.scratch[:0], subject, s.SID, reply, len(msg))
	}
	if big != nil && c.outRef && !big.head && len(c.scratch) <= big.off {
		// The line goes in front of the payload and the output borrows
		// both (bigbuf.go); the first subscriber on this loop only, as
		// the room holds one line.
		start := big.off - len(c.scratch)
		copy(big.b[start:], c.scratch)
		big.head = true
		c.out.addRef(big.b[start:big.end], big)
	} else {
		c.out.write(c.scratch)
		c.out.write(msg)
		c.out.write(codec.CRLF)
	}
	if c.lp != nil {
		c.pend.outMsgs++
		c.pend.outBytes += int64(len(msg))
	} else {
		c.shard.outMsgs.Add(1)
		c.shard.outBytes.Add(int64(len(msg)))
		c.stat.outMsgs.Add(1)
		c.stat.outBytes.Add(int64(len(msg)))
	}
	if s.max > 0 && s.delivered >= s.max {
		c.removeSub(s)
	}
	c.afterDeliver()
	return true
}

// The close reasons /connz shows for a slow consumer (nats-server's).
const (
	reasonSlowWriteDeadline = "Slow Consumer (Write Deadline)"
	reasonSlowPendingBytes  = "Slow Consumer (Pending Bytes)"
)

// markSlow cuts off a client that cannot keep up, closed for reason
// (reasonSlow*) and logged with why; caller holds outLock.
func (c *client) markSlow(reason, why string) {
	c.slow = true
	c.srv.slowCons.Add(1)
	c.setReason(reason)
	c.srv.Noticef("client %d (%s): slow consumer detected, %s", c.id, c.ip, why)
	c.releaseFlow()
	c.out.reset()
	if c.proto == nil {
		c.out.write(codec.AppendErr(nil, "Slow Consumer"))
	}
	c.closing = true
	c.t.flushSoon()
}

// tick runs once a second in the client's context: auth timeout, pings and
// stale-connection detection.
func (c *client) tick(now time.Time) {
	if c.lp != nil && !c.slow && !c.closing && c.writeDeadlineExpired(now) {
		// The goroutine transport's writer has a socket deadline instead.
		c.markSlow(reasonSlowWriteDeadline, "write deadline of "+c.srv.opts.WriteDeadline.String()+" exceeded")
		return
	}
	if p := c.sharedProto(); p != nil {
		p.Tick(now)
		return
	}
	if !c.connected.Load() {
		// Even without auth: a socket that never says CONNECT would
		// otherwise be held forever (nats-server only times out with auth).
		if now.Sub(c.start) > c.authTimeout() {
			c.closeWithErr("Authentication Timeout")
		}
		return
	}
	if e := c.expires.Load(); e != 0 && now.UnixNano() > e {
		c.srv.Noticef("client %d (%s): user JWT expired", c.id, c.ip)
		c.closeWithErr("User Authentication Expired")
		return
	}
	lv := c.srv.live.Load()
	if now.Sub(c.lastPing) < lv.pingInterval {
		return
	}
	if c.fc.paused.Load() {
		// Its PONG would sit unread behind the paused input: no pings.
		c.lastPing = now
		c.pingsOut.Store(0)
		return
	}
	c.lastPing = now
	if int(c.pingsOut.Load()) >= lv.maxPingsOut {
		c.srv.staleConns.Add(1)
		c.srv.Debugf("client %d: stale connection", c.id)
		c.closeWithErr("Stale Connection")
		return
	}
	c.pingsOut.Add(1)
	c.stat.pingAt.CompareAndSwap(0, now.UnixNano())
	c.sendProto(codec.PingLine)
}

// setProto makes c a plug-in's connection. Called in c's context before
// its first byte is parsed (accept, or a WebSocket upgrade).
func (c *client) setProto(p Protocol) {
	c.proto = p
	c.protoSet.Store(true)
}

// sharedProto is proto for callers outside c's context (see protoSet):
// nil until setProto has run.
func (c *client) sharedProto() Protocol {
	if !c.protoSet.Load() {
		return nil
	}
	return c.proto
}

// cleanup removes the client's subscriptions once its connection is gone.
// Called once, in the client's context.
// foldStats adds what pend counted to stat and shard (gnet: on c's loop).
func (c *client) foldStats() {
	if p := &c.pend; p.inMsgs != 0 {
		c.shard.inMsgs.Add(p.inMsgs)
		c.shard.inBytes.Add(p.inBytes)
		c.stat.inMsgs.Add(p.inMsgs)
		c.stat.inBytes.Add(p.inBytes)
		p.inMsgs, p.inBytes = 0, 0
	}
	if p := &c.pend; p.outMsgs != 0 {
		c.shard.outMsgs.Add(p.outMsgs)
		c.shard.outBytes.Add(p.outBytes)
		c.stat.outMsgs.Add(p.outMsgs)
		c.stat.outBytes.Add(p.outBytes)
		p.outMsgs, p.outBytes = 0, 0
	}
}

func (c *client) cleanup() {
	c.foldStats()
	if c.ws != nil {
		c.ws.timer.Stop()
	}
	if c.proto != nil && !c.closed {
		c.proto.Close()
	}
	c.t.outLock()
	if c.closed {
		c.t.outUnlock()
		return
	}
	c.remember()
	c.closed = true
	c.releaseFlow()
	for _, s := range c.subs {
		s.closed = true
		c.acc.sl.Remove(&s.Subscription)
	}
	c.subs = nil
	c.out.reset()
	counted := c.accCounted
	c.t.outUnlock()
	c.srv.numConns.Add(-1)
	if counted {
		c.acc.conns.Add(-1)
	}
	if c.connected.Load() && c.proto == nil {
		c.accountEvent(false)
	}
}

// tracef logs one protocol operation of this client when tracing (-V) is
// on: "<<-" for what the client sent, "->>" for what the server answered.
// Callers on the per-message path check log.tracing() first, so that building
// the arguments costs nothing when tracing is off.
func (c *client) tracef(format string, args ...any) {
	if c.srv.log.tracing() {
		c.srv.log.Tracef("cid:%d (%s) "+format, append([]any{c.id, c.ip}, args...)...)
	}
}

// The router's types for evnats' subscriptions: a match yields the
// *subscription itself, with no type assertion.
type (
	routerSub   = router.Subscription[*subscription]
	matchResult = router.Result[*subscription]
	matchCache  = router.Cache[*subscription]
	subList     = router.Sublist[*subscription]
)
