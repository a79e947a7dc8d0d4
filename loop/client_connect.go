package loop

// Concurrency: as client.go: everything here runs in the client's context
// (its loop, or its goroutine-transport reader); a slow credential check
// runs off it (slowauth.go) and hands its answer back with c.t.run.

// Logging in: CONNECT, its authentication (passwords, tokens, nkeys, JWTs,
// TLS certificates), and joining the user's account.

import (
	"encoding/json"
	"time"

	"github.com/evnats/evnats/codec"
	"github.com/evnats/evnats/router"
	"github.com/nats-io/jwt/v2"
)

// ProcessConnect handles CONNECT: options, then authentication.
func (c *client) ProcessConnect(arg []byte) error {
	if c.srv.log.tracing() {
		c.tracef("<<- CONNECT %s", redactConnect(arg))
	}
	o := defaultConnectOpts // fields the client leaves out keep nats-server's defaults
	if err := json.Unmarshal(arg, &o); err != nil {
		c.closeWithErr("Invalid CONNECT JSON: " + sanitize(err.Error()))
		return errClose{}
	}
	if o.Protocol < 0 || o.Protocol > 1 {
		c.closeWithErr("Invalid Client Protocol")
		return errClose{}
	}
	if a := c.auth(); a.certMap {
		name, u, ok := a.certUser(c.peer)
		o.User = name
		return c.connectVerified(&o, u, ok)
	}
	u, res := c.checkAuth(&o, func(u *userEntry, ok bool) {
		// Checked off the loop: what followed the CONNECT was held.
		if c.connectVerified(&o, u, ok) == nil {
			c.parsed(c.parser.Resume())
			c.foldStats()
		}
	})
	switch res {
	case AuthPending:
		return codec.ErrSuspend
	case AuthExpired:
		c.closeWithErr("Authentication Timeout")
		return errClose{}
	}
	return c.connectVerified(&o, u, res == AuthOK)
}

// checkAuth verifies o's credentials, for NATS CONNECT and plug-ins'
// logins alike (Conn.Authenticate). A cheap check runs at once (AuthOK or
// AuthRefused, with the users entry). A bcrypt check blocks the goroutine
// transport's reader, within the bound that keeps a storm of logins from
// taking every CPU (AuthExpired if the login timeout passes meanwhile); on
// a loop it runs elsewhere (AuthPending) and later gets the answer in c's
// context (c.t.run), unless the login timeout passed first.
func (c *client) checkAuth(o *connectOpts, later func(u *userEntry, ok bool)) (*userEntry, AuthResult) {
	a := c.auth()
	result := func(ok bool) AuthResult {
		if ok {
			return AuthOK
		}
		return AuthRefused
	}
	nonce := c.nonce
	o.host, o.connType = c.tcpIP, "" // src limits hold for the TCP peer, as nats-server
	if c.ws != nil {
		o.connType = jwt.ConnectionTypeWebsocket
	}
	if c.proto != nil { // a plug-in's connection: MQTT
		o.connType = jwt.ConnectionTypeMqtt
		if c.ws != nil {
			o.connType = jwt.ConnectionTypeMqttWS
		}
	}
	if !a.isSlow(o) {
		u, ok := a.verify(o, nonce)
		return u, result(ok)
	}
	var u *userEntry
	oc := *o // the check may outlive the caller's copy
	check := func() (ok bool) { u, ok = a.verify(&oc, nonce); return }
	if c.lp == nil {
		ok, expired := c.srv.slowAuth.check(c.authDeadline(), check)
		if expired {
			return nil, AuthExpired
		}
		return u, result(ok)
	}
	c.srv.verifySlow(c.authDeadline(), check, func(ok bool) {
		c.t.run(func() { later(u, ok) })
	})
	c.lp.goschedBeforeWait() // the check's goroutine runs at once
	return nil, AuthPending
}

// connectVerified completes CONNECT once its credentials are checked.
func (c *client) connectVerified(o *connectOpts, u *userEntry, ok bool) error {
	if !ok {
		c.srv.Noticef("client %d (%s): authorization violation", c.id, c.ip)
		c.closeWithErr("Authorization Violation")
		return errClose{}
	}
	if !c.joinAccount(u) {
		c.srv.Noticef("client %d (%s): authorization violation: a second CONNECT into another account", c.id, c.ip)
		c.closeWithErr("Authorization Violation")
		return errClose{}
	}
	first := !c.connected.Load()
	if first && c.proto == nil && !c.countInAccount() {
		c.srv.Noticef("client %d (%s): account %q: %s", c.id, c.ip, c.acc.name, errAccountConns)
		c.closeWithErr(errAccountConns)
		return errClose{}
	}
	c.setUser(o.User, u)
	c.stat.meta.Store(&connMeta{user: c.user})
	c.parser.ConnectFirst = false
	c.t.outLock() // deliveries from other goroutines read opts.Headers
	c.opts = *o
	c.t.outUnlock()
	c.echo = o.Echo == nil || *o.Echo
	c.connected.Store(true)
	c.sendOK()
	if first {
		c.accountEvent(true)
	}
	return nil
}

// countInAccount counts c toward its account's connections, unless the
// account's limit is reached. accCounted is set and read under outLock,
// as cleanup (which takes the count back) may run on another goroutine
// than a CONNECT verified off the loop.
func (c *client) countInAccount() bool {
	c.t.outLock()
	defer c.t.outUnlock()
	if c.accCounted || c.closed {
		return true // counted already, or gone: cleanup has run
	}
	if !c.acc.admit(c.srv.live.Load().auth.limitsOf(c.acc).MaxConnections) {
		return false
	}
	c.accCounted = true
	return true
}

// joinAccount moves c into user u's account (nil: $G) and its loop's
// cache of it. It refuses a move once c is connected or has
// subscriptions: they live in the account it has.
func (c *client) joinAccount(u *userEntry) bool {
	acc := c.srv.gacc
	if u != nil && u.acc != nil {
		acc = u.acc
	}
	if acc == c.acc {
		return true
	}
	c.t.outLock()
	busy := c.connected.Load() || len(c.subs) > 0 || c.closed
	c.t.outUnlock()
	if busy {
		return false
	}
	c.acc = acc
	if c.lp != nil {
		c.cache = c.lp.cacheFor(acc)
	} else {
		c.cache = router.NewCache(acc.sl, 256)
	}
	return true
}

// auth is the authentication setup the client is checked against: the
// websocket block's own when it has one, else the server's.
func (c *client) auth() *authConfig {
	if c.ws != nil && c.ws.srv.auth != nil {
		return c.ws.srv.auth
	}
	return c.srv.live.Load().auth
}

// authTimeout is how long the client has to log in: the websocket
// block's authorization timeout when set, else the server's.
func (c *client) authTimeout() time.Duration {
	if c.ws != nil && c.ws.srv.authTimeout > 0 {
		return c.ws.srv.authTimeout
	}
	return c.srv.live.Load().authTimeout
}

// requireConnect enforces CONNECT first when the server requires auth.
func (c *client) requireConnect() error {
	if !c.connected.Load() && c.auth().required {
		c.closeWithErr("Authorization Violation")
		return errClose{}
	}
	return nil
}

// redactConnect hides credentials from a traced CONNECT line.
func redactConnect(arg []byte) string {
	var m map[string]any
	if json.Unmarshal(arg, &m) != nil {
		return string(arg)
	}
	for _, k := range []string{"pass", "auth_token", "sig", "jwt", "nkey"} {
		if _, ok := m[k]; ok {
			m[k] = "[REDACTED]"
		}
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func sanitize(s string) string {
	b := []byte(s)
	for i, ch := range b {
		if ch == '\'' || ch < 0x20 {
			b[i] = ' '
		}
	}
	return string(b)
}
