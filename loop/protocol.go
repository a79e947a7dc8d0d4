package loop

// Concurrency: a Protocol's OnRead, Tick and Close run in its connection's
// reading context (its gnet loop, or its goroutine-transport reader; Tick on
// the goroutine transport from housekeeping), Deliver on any publisher's
// goroutine with the connection's outLock held (gnet: on its own loop). Conn
// methods marked "caller holds Lock" need the connection's outLock (Lock/
// Unlock, a no-op on gnet); the others take it themselves where they need it
// and must not be called with it held. A Plugin's Housekeep runs on the
// housekeeping goroutine, its Close from Shutdown once every connection has
// ended.

import (
	"errors"
	"time"

	"github.com/nats-io/jwt/v2"
)

// Protocol is a connection's protocol when it is not NATS: the MQTT
// listener's connections get one from the MQTT Plugin. NATS is built into
// client: a client whose proto is nil takes the NATS path, so NATS pays one
// nil check where a plug-in is called (onRead, deliver, tick, cleanup) and no
// interface call.
type Protocol interface {
	// OnRead parses bytes from the socket, valid only until it returns; it
	// reports false when the connection is to close.
	OnRead(b []byte) bool
	// Deliver formats a message matched to s (one of this connection's
	// subscriptions: Conn.AddSub) into the connection's output and reports
	// whether s took it. The caller holds the connection's Lock; msg holds
	// headers then payload when hdrLen >= 0. Deliver checks Conn.Closed,
	// Conn.Slow and s.Closed itself.
	Deliver(s *Sub, subject, reply []byte, hdrLen int, msg []byte) bool
	// Tick runs once a second: keep-alive and login timeouts.
	Tick(now time.Time)
	// Close runs once when the connection has ended, before its
	// subscriptions are removed.
	Close()
}

// Plugin is a protocol's server-wide side (MQTT: sessions, retained
// messages, their persistence).
type Plugin interface {
	// NewConn makes the protocol of a connection accepted on the plug-in's
	// listener, before the connection sees any byte.
	NewConn(c *Conn) Protocol
	// Housekeep runs once a second on the housekeeping goroutine.
	Housekeep()
	// Close runs at shutdown once every connection has ended.
	Close()
}

// mqttPlugin opens the MQTT plug-in for a server with an MQTT listener; the
// mqtt package registers it (RegisterMQTT), so loop imports nothing of MQTT.
var mqttPlugin func(s *Server) (Plugin, error)

// RegisterMQTT installs what opens the plug-in serving the MQTT listener.
// The mqtt package calls it from init: a program that imports it (as
// cmd/evnats does) serves MQTT.
func RegisterMQTT(open func(s *Server) (Plugin, error)) { mqttPlugin = open }

var errNoMQTT = errors.New("MQTT is not built in (import github.com/evnats/evnats/mqtt)")

// openMQTT opens the MQTT plug-in.
func (s *Server) openMQTT() (Plugin, error) {
	if mqttPlugin == nil {
		return nil, errNoMQTT
	}
	return mqttPlugin(s)
}

// Conn is the connection a Protocol serves, as the plug-in sees it: the
// same client as a NATS connection's, so outbound buffers, subscriptions,
// flow control and dispatch are shared.
type Conn client

func (k *Conn) c() *client { return (*client)(k) }

// Server returns the connection's server.
func (k *Conn) Server() *Server { return k.srv }

// ID is the connection's id, as in logs and monitoring.
func (k *Conn) ID() uint64 { return k.id }

// IP is the remote address, for logs.
func (k *Conn) IP() string { return k.ip }

// Started is when the connection was accepted.
func (k *Conn) Started() time.Time { return k.start }

// Lock and Unlock guard the output and subscriptions against publishers on
// other goroutines (no-ops on gnet, where the loop owns both).
func (k *Conn) Lock()   { k.t.outLock() }
func (k *Conn) Unlock() { k.t.outUnlock() }

// Closed reports whether the connection has been cleaned up. Caller holds Lock.
func (k *Conn) Closed() bool { return k.closed }

// Slow reports whether the connection was cut as a slow consumer. Caller
// holds Lock.
func (k *Conn) Slow() bool { return k.slow }

// Write appends b to the output. Caller holds Lock; FlushSoon sends it.
func (k *Conn) Write(b []byte) { k.out.write(b) }

// FlushSoon asks for the output to be written. Caller holds Lock.
func (k *Conn) FlushSoon() { k.t.flushSoon() }

// Pending is the output not yet on the wire, in bytes. Caller holds Lock.
func (k *Conn) Pending() int { return k.out.size + k.t.pendingOut() }

// MarkSlow cuts the connection as a slow consumer. Caller holds Lock.
func (k *Conn) MarkSlow(why string) { k.c().markSlow(reasonSlowPendingBytes, why) }

// AfterDeliver runs flow control after a delivery. Caller holds Lock.
func (k *Conn) AfterDeliver() { k.c().afterDeliver() }

// CountOut counts a message of n payload bytes sent to the client.
func (k *Conn) CountOut(n int) {
	k.shard.outMsgs.Add(1)
	k.shard.outBytes.Add(int64(n))
	k.stat.outMsgs.Add(1)
	k.stat.outBytes.Add(int64(n))
}

// CountIn counts a message of n payload bytes received from the client.
func (k *Conn) CountIn(n int) {
	k.shard.inMsgs.Add(1)
	k.shard.inBytes.Add(int64(n))
	k.stat.inMsgs.Add(1)
	k.stat.inBytes.Add(int64(n))
}

// Send queues b (a control packet) and flushes it, unless the connection
// is closed.
func (k *Conn) Send(b []byte) { k.c().sendProto(b) }

// Close closes the connection once what is queued has been written; called
// in the connection's reading context.
func (k *Conn) Close() { k.c().closeWithErr("") }

// Kick closes the connection from any goroutine.
func (k *Conn) Kick() { k.t.kick() }

// Run calls fn from any goroutine in the context that owns the output, with
// Lock held.
func (k *Conn) Run(fn func()) { k.t.run(fn) }

// Publish routes a message from the client through dispatch, as a NATS PUB
// is routed, and reports whether anything matched.
func (k *Conn) Publish(subject, reply []byte, hdrLen int, msg []byte) bool {
	return k.c().routeMsg(subject, reply, hdrLen, msg)
}

// Identify names the connection (monitoring) and turns headers on: its
// deliveries carry the plug-in's headers through the router.
func (k *Conn) Identify(name string) {
	k.t.outLock()
	k.opts.Headers = true
	k.opts.Name = name
	k.t.outUnlock()
	k.stat.meta.Store(&connMeta{user: k.user})
}

// SetConnected marks the login complete (no more login timeout).
func (k *Conn) SetConnected() { k.connected.Store(true) }

// Connected reports whether SetConnected was called.
func (k *Conn) Connected() bool { return k.connected.Load() }

// Tracing reports whether protocol tracing (-V) is on; Tracef logs one line.
func (k *Conn) Tracing() bool { return k.srv.log.tracing() }

// Tracef logs one traced operation of this connection.
func (k *Conn) Tracef(format string, args ...any) { k.c().tracef(format, args...) }

// User is the authenticated user name ("" without users).
func (k *Conn) User() string { return k.user }

// Perms are the user's permissions; nil allows everything.
func (k *Conn) Perms() *Perms { return k.perms.Load() }

// NumSubs is the number of the connection's subscriptions. Caller holds Lock.
func (k *Conn) NumSubs() int { return len(k.subs) }

// AddSub makes a subscription of this connection to subject, not yet in the
// sublist (see Server.ReplaceSubs), with the plug-in's tag. sid must be
// unique on the connection. It returns nil once the connection is closed.
// Caller holds Lock.
func (k *Conn) AddSub(subject, sid string, tag uint32) *Sub {
	return k.AddQueueSub(subject, "", sid, tag)
}

// AddQueueSub is AddSub for a member of queue group queue ("" for none): an
// MQTT shared subscription. Caller holds Lock.
func (k *Conn) AddQueueSub(subject, queue, sid string, tag uint32) *Sub {
	s := &subscription{tag: tag, deny: k.perms.Load().deliveryDeny(subject, queue)}
	s.Subject = subject
	s.Queue = queue
	s.SID = []byte(sid)
	if !k.c().ownSub(s) {
		return nil
	}
	return s
}

// SetNoLocal makes s skip the messages its own connection publishes (MQTT 5
// no local; a connection's own subscriptions are served where it publishes,
// so dispatch knows the publisher). Call before s is in the sublist. Caller
// holds Lock.
func (k *Conn) SetNoLocal(s *Sub) { s.noLocal = true }

// DropSub forgets s, which the caller takes out of the sublist itself.
// Caller holds Lock.
func (k *Conn) DropSub(s *Sub) {
	s.closed = true
	delete(k.subs, string(s.SID))
}

// AuthResult is the outcome of a login check.
type AuthResult int

const (
	AuthRefused AuthResult = iota // wrong credentials
	AuthOK                        // the user is installed (User, Perms)
	AuthPending                   // checked off the loop; the callback follows
	AuthExpired                   // the login timeout passed while waiting to check
)

// Authenticate checks a user name and password (the password is the token
// when the server uses a token), as a NATS CONNECT's are checked. A bcrypt
// check on an event loop runs elsewhere: Authenticate returns AuthPending
// and later runs in the connection's context, with Lock held, with AuthOK
// or AuthRefused.
func (k *Conn) Authenticate(user, pass string, later func(AuthResult)) AuthResult {
	c := k.c()
	o := connectOpts{User: user, Pass: pass}
	a := c.srv.live.Load().auth
	if a.token != "" {
		o.Token = pass
	}
	if a.op != nil && isUserJWT(pass) {
		// In operator mode MQTT carries the user JWT in the password
		// field, as with nats-server; with no nonce to sign, only a
		// bearer token's JWT logs in.
		o.JWT = pass
	}
	u, res := c.checkAuth(&o, func(u *userEntry, ok bool) {
		if !ok || !c.plugInAccount(u) {
			later(AuthRefused)
			return
		}
		c.setUser(user, u)
		later(AuthOK)
	})
	if res == AuthOK {
		if !c.plugInAccount(u) {
			return AuthRefused
		}
		c.setUser(user, u)
	}
	return res
}

// plugInAccount binds a plug-in's connection (MQTT) to user u's account
// (nil: $G), as a NATS CONNECT does, and counts it toward the account's
// connections. It reports false, and the login is refused, when the
// account is at max_connections (nats-server refuses such a login as an
// authorization failure) or the connection is bound already elsewhere.
func (c *client) plugInAccount(u *userEntry) bool {
	if !c.joinAccount(u) {
		c.srv.Noticef("client %d (%s): authorization violation: a second login into another account", c.id, c.ip)
		return false
	}
	if !c.countInAccount() {
		c.srv.Noticef("client %d (%s): account %q: %s", c.id, c.ip, c.acc.name, errAccountConns)
		return false
	}
	return true
}

// isUserJWT reports whether s decodes as a user JWT.
func isUserJWT(s string) bool {
	_, err := jwt.DecodeUserClaims(s)
	return err == nil
}

// Sub is a connection's or an internal subscription, as plug-ins see it.
type Sub = subscription

// Tag is what the plug-in gave AddSub or NewInternalSub.
func (s *subscription) Tag() uint32 { return s.tag }

// Closed reports whether s was removed. Caller holds its connection's Lock.
func (s *subscription) Closed() bool { return s.closed }

// Perms are a user's compiled permissions; a nil *Perms allows everything.
type Perms = permissions

// CanPublish reports whether p allows publishing to subject.
func (p *permissions) CanPublish(subject []byte) bool { return p == nil || p.canPublish(subject) }

// CanSubscribe reports whether p allows a plain subscription to subject.
func (p *permissions) CanSubscribe(subject string) bool {
	return p == nil || p.canSubscribe(subject, "")
}

// CanQueueSubscribe reports whether p allows a queue subscription to
// subject in group queue.
func (p *permissions) CanQueueSubscribe(subject, queue string) bool {
	return p == nil || p.canSubscribe(subject, queue)
}

// LimitsSubscribe reports whether p refuses some subscriptions.
func (p *permissions) LimitsSubscribe() bool { return p != nil && p.sub != nil }

// Options returns a copy of the server's options, defaults filled in.
func (s *Server) Options() Options { return s.opts }

// ShuttingDown reports whether Shutdown has begun.
func (s *Server) ShuttingDown() bool { return s.shuttingDown() }

// HasUsers reports whether clients authenticate as users of a users list
// (so that each has a name of its own).
func (s *Server) HasUsers() bool { return s.live.Load().auth.users != nil }

// UserPerms returns the permissions of a configured user; nil when the user
// is unknown or has none.
func (s *Server) UserPerms(name string) *Perms {
	if u := s.live.Load().auth.users[name]; u != nil && u.perms != nil {
		return newPermissions(u.perms)
	}
	return nil
}

// NewInternalSub builds, without inserting, an internal subscription of fn
// to subject whose deliveries p's subscribe deny entries filter (p may be
// nil), with the plug-in's tag.
func (s *Server) NewInternalSub(subject string, p *Perms, tag uint32, fn InternalHandler) *Sub {
	sub := internalSub(subject, fn).Owner
	sub.deny = p.deliveryDeny(subject, "")
	sub.tag = tag
	return sub
}

// ReplaceSubs takes old out of the sublist and puts new in, in one step: a
// publisher matches one set or the other, never both and never neither.
func (s *Server) ReplaceSubs(old, new []*Sub) {
	s.sl.Replace(routerSubs(old), routerSubs(new))
}

func routerSubs(subs []*Sub) []*routerSub {
	if len(subs) == 0 {
		return nil
	}
	r := make([]*routerSub, len(subs))
	for i, s := range subs {
		r[i] = &s.Subscription
	}
	return r
}
