package loop

// Links to other servers (leaf nodes, loop/leaf): the loop side.
//
// A link's peer shows interest with subscriptions the link inserts here
// (LinkSubscribe); they live in the global sublist like internal ones, but
// dispatch collects them instead of calling them, so that one message goes
// over a link once, naming the queue groups the peer was picked for, however
// many of its interests matched. A queue member across a link is picked only
// when no local member takes the message (pickQueueMember). Messages from
// the peer enter the one delivery path through a LinkPublisher, which never
// hands them back to the link they came from.
//
// Concurrency: LinkSubscribe, WatchInterest and RegisterLeaf are safe for
// concurrent use. Link.Forward is called on the publisher's goroutine (any
// loop, reader goroutine or internal publisher) with no evnats lock held.
// A LinkPublisher belongs to one goroutine (the link's reader).

import (
	"errors"
	"net"
	"strings"
	"sync"

	"github.com/evnats/evnats/router"
)

// Link is a connection to another server that messages cross.
type Link interface {
	// Forward sends the peer a message published here that it has
	// interest in. queues names the peer's queue groups it was picked for
	// (nil when only plain interest matched); msg holds headers then
	// payload when hdrLen >= 0. It runs on the publisher's goroutine, must
	// not block (a link that cannot keep up drops, as a slow consumer),
	// and must copy what it keeps: every slice is valid only until it
	// returns. With later set (a gnet loop parsing a read) it may leave
	// its writer asleep and report true: the loop then calls Wake once,
	// when the read is parsed, as it flushes its clients once per read
	// rather than once per message.
	Forward(subject, reply []byte, hdrLen int, msg []byte, queues []string, later bool) (wake bool)
	// Wake lets the link send what Forward queued with later set. It runs
	// on the loop that called Forward and must not block.
	Wake()
}

// LinkAccount is the subject space a link is bound to: the global account
// $G, or the account a remote names (leafnodes { remotes [ { account } ] })
// or an accepted leaf authenticated into. Its methods are safe for
// concurrent use; the account it stands for lives as long as the server.
type LinkAccount struct {
	s *Server
	a *account
}

// LinkAccount returns the account name ("" for $G) as links see it; ok is
// false when the configuration in force has no such account.
func (s *Server) LinkAccount(name string) (la *LinkAccount, ok bool) {
	if name == "" || name == globalAccount {
		return &LinkAccount{s: s, a: s.gacc}, true
	}
	sp := s.live.Load().auth.accounts[name]
	if sp == nil {
		return nil, false
	}
	return &LinkAccount{s: s, a: sp.acc}, true
}

// AuthenticateLeaf checks an accepted leaf's CONNECT credentials against
// the server's own users (a leafnodes block without a user of its own, as
// nats-server does) and names the account the leaf binds to: its user's,
// $G when the server needs no authorization. nonce is what the hub's INFO
// gave the leaf to sign (nkey users). It may take a bcrypt comparison:
// call it on the connection's goroutine, never on a loop.
func (s *Server) AuthenticateLeaf(user, pass, token, nkey, sig, jwt string, nonce []byte) (account string, ok bool) {
	u, ok := s.live.Load().auth.verify(&connectOpts{User: user, Pass: pass, Token: token, Nkey: nkey, Sig: sig, JWT: jwt}, nonce)
	if !ok {
		return "", false
	}
	if u == nil || u.acc == nil {
		return globalAccount, true
	}
	return u.acc.name, true
}

// CheckLeafPassword reports whether given matches want, a leafnodes
// authorization password (plain, or a bcrypt hash, compared as client
// passwords are). A bcrypt comparison is slow: call it on the
// connection's goroutine, never on a loop.
func CheckLeafPassword(given, want string) bool { return checkPassword(given, want) }

// VerifyLeafNkey reports whether sig (base64) is nonce signed by the
// user nkey pub, as a leaf logging in with leafnodes { authorization {
// nkey } } must send.
func VerifyLeafNkey(pub, sig string, nonce []byte) bool { return verifyNonce(pub, sig, nonce) }

// AdmitLeaf counts one more leaf node bound to the account, unless its
// limits (max_leafnodes, an account JWT's leaf) are reached; release
// gives the place back when the leaf's link ends. Any goroutine.
func (la *LinkAccount) AdmitLeaf() (release func(), ok bool) {
	if !admitTo(&la.a.leafs, la.s.live.Load().auth.limitsOf(la.a).MaxLeafNodes) {
		return nil, false
	}
	var once sync.Once
	return func() { once.Do(func() { la.a.leafs.Add(-1) }) }, true
}

// Name is the account's name.
func (la *LinkAccount) Name() string { return la.a.name }

// LinkSubscribe registers the peer's interest in subject (queue "" for
// plain interest) in the global account and returns what withdraws it;
// see LinkAccount.Subscribe.
func (s *Server) LinkSubscribe(l Link, subject, queue string, deny []string) (remove func()) {
	return (&LinkAccount{s: s, a: s.gacc}).Subscribe(l, subject, queue, deny)
}

// Subscribe registers the peer's interest in subject (queue "" for plain
// interest) in the account and returns what withdraws it; messages on
// subjects matching deny (patterns inside subject) are not sent for it.
func (la *LinkAccount) Subscribe(l Link, subject, queue string, deny []string) (remove func()) {
	sub := &subscription{link: l, deny: deny}
	sub.Subject = subject
	sub.Queue = queue
	sub.Loop = internalLoop
	sub.Owner = sub
	sl := la.a.sl
	sl.Insert(&sub.Subscription)
	return func() { sl.Remove(&sub.Subscription) }
}

// WatchInterest watches the global account; see LinkAccount.Watch.
func (s *Server) WatchInterest(fn func(subject, queue string, src Link, added bool)) {
	(&LinkAccount{s: s, a: s.gacc}).Watch(fn)
}

// Watch calls fn for every subscription in the account present now and
// for every later one as it comes (added) and goes, in order, so that
// links can tell their peers what this server wants. src is the link whose
// peer the interest is (nil for this server's own); the server's internal
// subscriptions on its own subjects ($JS., $SYS., ...) are not shown. fn
// is called with the sublist locked: it must be quick, must not
// subscribe, unsubscribe or publish, and any lock it takes ranks below
// the sublist's. One watcher per account at a time; nil stops watching.
func (la *LinkAccount) Watch(fn func(subject, queue string, src Link, added bool)) {
	if fn == nil {
		la.a.sl.Watch(nil)
		return
	}
	la.a.sl.Watch(func(rs *routerSub, added bool) {
		sub := rs.Owner
		if sub.link != nil || sub.c != nil || !la.s.hiddenSubject(rs.Subject) {
			fn(rs.Subject, rs.Queue, sub.link, added)
		}
	})
}

// hiddenSubject reports whether an internal subscription on subject is
// kept from link peers: the reserved subjects, except those a peer must
// reach for JetStream here to be usable from across the link, as
// nats-server shows them: acknowledgements and flow control ($JS.ACK.,
// $JS.FC.), the domain-prefixed API ($JS.<domain>.API.>), and the
// deliveries of the consumers this server's mirrors and sources of
// another domain's streams create there ($JS.M., $JS.S.).
func (s *Server) hiddenSubject(subject string) bool {
	if !reservedSubject(subject) || s.js == nil {
		return reservedSubject(subject)
	}
	if strings.HasPrefix(subject, "$JS.ACK.") || strings.HasPrefix(subject, "$JS.FC.") ||
		strings.HasPrefix(subject, "$JS.S.") || strings.HasPrefix(subject, "$JS.M.") {
		return false
	}
	p := s.jsDomainPrefix()
	return p == "" || !strings.HasPrefix(subject, p)
}

// reservedSubject reports whether an internal subscription on subject is
// this server's own business (JetStream's API, system subjects), not
// interest to show across a link.
func reservedSubject(subject string) bool {
	return strings.HasPrefix(subject, "$JS.") || strings.HasPrefix(subject, "$JSC.") ||
		strings.HasPrefix(subject, "$SYS.") || strings.HasPrefix(subject, "$KV.") ||
		strings.HasPrefix(subject, "$O.") || strings.HasPrefix(subject, "$MQTT.")
}

// LinkPublisher delivers the messages that arrive over one link. Owned by
// the link's reader goroutine.
type LinkPublisher struct {
	s     *Server
	l     Link
	acc   *account
	cache *router.Cache[*subscription]
}

// NewLinkPublisher returns the publisher for messages arriving over l
// into the global account.
func (s *Server) NewLinkPublisher(l Link) *LinkPublisher {
	return &LinkPublisher{s: s, l: l, acc: s.gacc, cache: router.NewCache(s.sl, 1024)}
}

// NewPublisher returns the publisher for messages arriving over l into
// the account.
func (la *LinkAccount) NewPublisher(l Link) *LinkPublisher {
	return &LinkPublisher{s: la.s, l: l, acc: la.a, cache: router.NewCache(la.a.sl, 1024)}
}

// Publish delivers a message from the peer to local subscribers: every
// plain one, and one member of each queue group named in queues (the
// peer picked this server for them); other links' interest is served as
// for a local publish, never the link it came from. msg holds headers then
// payload when hdrLen >= 0. Slices are not kept.
func (p *LinkPublisher) Publish(subject, reply []byte, hdrLen int, msg []byte, queues [][]byte) {
	if ms := p.acc.maps.Load(); ms != nil { // a leaf's messages are mapped as a client's, as nats-server
		subject, _ = ms.apply(subject)
	}
	r := p.cache.Match(subject)
	if r.Empty() {
		return
	}
	sh := p.s.shard(0)
	sh.inMsgs.Add(1)
	sh.inBytes.Add(int64(len(msg)))
	var o origin
	if g, ok := p.s.tr.(*gnetTransport); ok {
		o.inj = g
	}
	d := delivery{origin: o, subject: subject, reply: reply, hdrLen: hdrLen, msg: msg, from: p.l, onlyQ: queues, filterQ: true}
	if i := jsAckDeliverIdx(reply); i >= 0 {
		// A JetStream delivery routed on its inbox: subscribers see the
		// stream's subject, carried after the reply's '@'.
		d.subject, d.reply, d.linkTo = reply[i+1:], reply[:i], subject
	}
	d.dispatch(r)
}

// jsAckDeliverIdx is where '@' separates a JetStream acknowledgement
// reply from the subject a delivery is shown under, as nats-server
// sends a delivery to a link (routed on the consumer's inbox, LMSG
// <inbox> $JS.ACK.<stream>.<consumer>.<7 tokens>@<subject>), or -1. The
// '@' counts only after the ack subject's eight dots (names may hold '@').
func jsAckDeliverIdx(reply []byte) int {
	if len(reply) < 9 || string(reply[:8]) != "$JS.ACK." {
		return -1
	}
	dots := 0
	for i, b := range reply {
		switch {
		case b == '.':
			dots++
		case b == '@' && dots >= 8 && i < len(reply)-1:
			return i
		}
	}
	return -1
}

// RegisterLeaf installs what opens the leaf-node remotes (leafnodes {
// remotes }); loop/leaf calls it from init, so loop imports nothing of it.
func RegisterLeaf(open func(s *Server) (interface{ Close() }, error)) { leafPlugin = open }

var leafPlugin func(s *Server) (interface{ Close() }, error)

var errNoLeaf = errors.New("leaf nodes are not built in (import github.com/evnats/evnats/loop/leaf)")

// LeafLink describes one leaf-node link, with /leafz's field names.
type LeafLink struct {
	ID          uint64 `json:"id"`
	Name        string `json:"name"`
	IsSpoke     bool   `json:"is_spoke"` // this server is the leaf (a remote), not the hub
	Account     string `json:"account"`
	IP          string `json:"ip"`
	Port        int    `json:"port"`
	InMsgs      int64  `json:"in_msgs"`
	OutMsgs     int64  `json:"out_msgs"`
	InBytes     int64  `json:"in_bytes"`
	OutBytes    int64  `json:"out_bytes"`
	NumSubs     uint32 `json:"subscriptions"` // the peer's interest held here
	Compression string `json:"compression,omitempty"`
	// Subs is the peer's interest held here (subject, or "subject queue"),
	// filled only when asked for (LeafLinksSubs).
	Subs []string `json:"subscriptions_list,omitempty"`
}

// LeafLinks returns the leaf-node links that are up, for monitoring.
// Safe for concurrent use.
func (s *Server) LeafLinks() []LeafLink { return s.leafLinks(false) }

// LeafLinksSubs is LeafLinks with each link's subscriptions listed.
func (s *Server) LeafLinksSubs() []LeafLink { return s.leafLinks(true) }

func (s *Server) leafLinks(subs bool) []LeafLink {
	if l, ok := s.leaf.(interface{ Links(subs bool) []LeafLink }); ok {
		return l.Links(subs)
	}
	return nil
}

// LeafAddr is the leafnode listener's address, nil when there is none.
func (s *Server) LeafAddr() net.Addr {
	if a, ok := s.leaf.(interface{ Addr() net.Addr }); ok {
		return a.Addr()
	}
	return nil
}

// openLeaf starts the leaf remotes and listener, when there are any.
func (s *Server) openLeaf() (interface{ Close() }, error) {
	if len(s.opts.LeafRemotes) == 0 && s.opts.LeafPort == 0 {
		return nil, nil
	}
	if leafPlugin == nil {
		return nil, errNoLeaf
	}
	lf, err := leafPlugin(s)
	if err != nil {
		return nil, err
	}
	if la, ok := lf.(leafWSAcceptor); ok && s.opts.LeafPort != 0 {
		s.leafWS.Store(la)
	}
	return lf, nil
}

// leafWSAcceptor takes leaf nodes that connect to the websocket listener
// (at /leafnode) when leafnodes { port } is set, as nats-server does: the
// loop/leaf manager. NewWSConn runs on the connection's loop (or reader
// goroutine) right after the upgrade and must not block; the Protocol
// it returns gets the unframed bytes, and what it writes (Conn.Write) is
// framed by the connection's WebSocket codec.
type leafWSAcceptor interface {
	NewWSConn(c *Conn) Protocol
}

// ID returns the server's unique id (server_id in INFO).
func (s *Server) ID() string { return s.id }

// linkOut is what a dispatch collects for one link: whether plain interest
// matched and which of the peer's queue groups were picked. It lives in a
// delivery, on the dispatching goroutine's stack.
type linkOut struct {
	l     Link
	plain bool
	n     int
	q     [4]string
	more  []string
}

// toLink records that link subscription s takes the message.
func (d *delivery) toLink(s *subscription) bool {
	if s.link == d.from || s.denies(d.subject) {
		return false
	}
	lo := &d.lk
	if lo.l != nil && lo.l != s.link {
		// A second link in one dispatch (several remotes): sent apart.
		var q []string
		if s.Queue != "" {
			q = []string{s.Queue}
		}
		subj, reply := d.linkSubject()
		d.forward(s.link, subj, reply, q)
		d.readied()
		return true
	}
	lo.l = s.link
	if s.Queue == "" {
		lo.plain = true
	} else if lo.n < len(lo.q) {
		lo.q[lo.n] = s.Queue
		lo.n++
	} else {
		lo.more = append(lo.more, s.Queue)
	}
	return true
}

// flushLink sends the message over the link it collected, once.
func (d *delivery) flushLink() {
	lo := &d.lk
	if lo.l == nil {
		return
	}
	var q []string
	if lo.n > 0 {
		qs := make([]string, 0, lo.n+len(lo.more))
		q = append(append(qs, lo.q[:lo.n]...), lo.more...)
	}
	subj, reply := d.linkSubject()
	d.forward(lo.l, subj, reply, q)
	d.readied()
	*lo = linkOut{}
}

// forward hands the message to l; on a gnet loop parsing a read, the
// link's writer is woken once when the read is parsed (evLoop.wakeLinks),
// not per message.
func (d *delivery) forward(l Link, subject, reply []byte, queues []string) {
	lp := d.lp
	later := lp != nil && lp.inTraffic
	if l.Forward(subject, reply, d.hdrLen, d.msg, queues, later) && later {
		lp.wakeLater(l)
	}
}

// linkSubject is the subject and reply a link is sent the message with:
// as shown, or, for a JetStream delivery shown under another subject than
// the inbox it is routed on, the inbox, with the shown subject after an
// '@' in its ack reply, as nats-server sends it (jsAckDeliverIdx). The
// joined reply is made per such delivery, off the client message path.
func (d *delivery) linkSubject() (subject, reply []byte) {
	if d.linkTo == nil {
		return d.subject, d.reply
	}
	if len(d.reply) > 8 && string(d.reply[:8]) == "$JS.ACK." && jsAckDeliverIdx(d.reply) < 0 {
		r := make([]byte, 0, len(d.reply)+1+len(d.subject))
		return d.linkTo, append(append(append(r, d.reply...), '@'), d.subject...)
	}
	return d.linkTo, d.reply
}

// listedQueue reports whether queue group name is one the peer named.
func (d *delivery) listedQueue(name string) bool {
	for _, q := range d.onlyQ {
		if string(q) == name {
			return true
		}
	}
	return false
}
