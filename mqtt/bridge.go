package mqtt

// Concurrency: attach, subscribe, unsubscribe and release run on the
// connection's own reading goroutine (NewConn too, on accept); saveDirty
// on housekeeping (Housekeep); close from Shutdown (Close). mu guards
// holds, each hold, and a holding connection's filters. Under mu it takes a
// connection's outLock (addFilter, dropFilter; kick of the old holder),
// Session.mu, Persister.mu and Sublist.mu (ReplaceSubs); nothing that holds
// outLock or Session.mu takes mu. Offline subscriptions' handlers run on
// any publisher's goroutine and take Session.mu only.

import (
	"bytes"
	"cmp"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evnats/evnats/loop"
	mcodec "github.com/evnats/evnats/mqtt/codec"
)

// bridge is the server-wide MQTT state, the loop.Plugin of the MQTT
// listener: the sessions by account and client id, and each account's
// retained messages and persistence (space). Connections live on the
// loops like NATS clients (see conn.go); only session handover and
// offline delivery come through here.
//
// Locking rule: mu guards holds and every hold's fields; it is taken
// when a session is attached or released, never per message.
type bridge struct {
	srv  *loop.Server
	opts loop.Options // the server's, defaults filled in
	dir  string       // the MQTT store directory; "" keeps everything in memory
	g    *space       // the global account's ($G)

	mu     sync.Mutex
	spaces map[string]*space // by account name, $G's too
	holds  map[hkey]*hold
	// expiring are the holds whose client is away and whose session has
	// an expiry interval (MQTT 5, or a restored one): all that expire
	// looks at once a second, so 3.1.1 persistent sessions (no expiry)
	// cost the housekeeping nothing, and mu is not held for a scan of
	// every session.
	expiring map[hkey]*hold
	closed   bool // the persisters are closed: housekeeping saves no more
	// wills are MQTT 5 wills waiting out their will delay interval, by
	// account and client id; a client that comes back in time cancels
	// its will.
	wills map[hkey]*delayedWill

	// dropped counts messages discarded because a session was full;
	// dropLogged is when that was last logged (unix nanoseconds), so a
	// flood logs a line a second, not a line a message.
	dropped, dropLogged atomic.Int64
	// retainDropped and retainLogged do the same for retained messages
	// not kept because the retained set was full.
	retainDropped, retainLogged atomic.Int64
}

// space is one account's MQTT state: its retained messages, their and
// its sessions' persistence, and its MQTT 5 requests. A client logged in
// as a user of an account has its sessions, retained messages and
// subscriptions there, apart from every other account's (nats-server keeps
// an MQTT session manager per account). Made once per account and kept;
// its fields are set before it is shared and not changed after.
type space struct {
	acc      loop.Space
	retained *RetainedSet
	persist  *Persister
	rr       requests // MQTT 5 requests waiting for NATS replies (request.go)
}

// hkey names a session: its account's name and its client id. The same
// client id in two accounts is two sessions.
type hkey struct{ acc, id string }

// hold is a session and the connection holding it (nil while offline).
// What stands for the session in the sublist is its owner's subscriptions,
// or while offline the internal ones in offline, which queue its QoS 1/2
// messages. Guarded by bridge.mu. Every change is one Sublist.Replace,
// so a publisher matches either the old subscriptions or the new ones: a
// handover neither loses nor repeats a message.
type hold struct {
	sp      *space
	sess    *Session
	owner   *conn
	offline []*loop.Sub
}

// newBridge opens persistence (file stores under the JetStream store
// directory when JetStream is on, memory otherwise) and restores sessions
// and retained messages.
func newBridge(s *loop.Server) (*bridge, error) {
	o := s.Options()
	dir := ""
	if o.JetStream {
		dir = filepath.Join(o.StoreDir, "mqtt")
	}
	b := &bridge{srv: s, opts: o, dir: dir, holds: make(map[hkey]*hold), wills: make(map[hkey]*delayedWill),
		expiring: make(map[hkey]*hold),
		spaces:   make(map[string]*space)}
	b.mu.Lock()
	defer b.mu.Unlock()
	var err error
	if b.g, err = b.openSpace(s.GlobalSpace()); err != nil {
		return nil, err
	}
	if dir == "" {
		return b, nil
	}
	// Accounts with stored sessions: restored now, so that their offline
	// sessions queue what is published from the start. One no longer
	// configured (or not resolved yet) is restored at its first client.
	entries, _ := os.ReadDir(filepath.Join(dir, accountsDir))
	for _, e := range entries {
		acc, ok := s.Space(e.Name())
		if !e.IsDir() || !ok || !safeDirName(e.Name()) {
			continue
		}
		if _, err := b.openSpace(acc); err != nil {
			b.closeSpaces()
			return nil, err
		}
	}
	return b, nil
}

// accountsDir holds, under the MQTT store directory, a directory per
// account other than $G with its sessions and retained messages (named
// after the account); $G's are in the MQTT store directory itself, where
// they were before accounts.
const accountsDir = "accounts"

// safeDirName reports whether an account name can name a directory: the
// loader's validation refuses '.', '/' and '\\' already; checked again here,
// where the name becomes a path.
func safeDirName(n string) bool {
	return n != "" && len(n) <= 256 && !strings.ContainsAny(n, "./\\\x00:") && n == filepath.Base(n)
}

// openSpace opens account acc's persistence and restores its sessions and
// retained messages. Caller holds mu.
func (b *bridge) openSpace(acc loop.Space) (*space, error) {
	dir := b.dir
	switch {
	case dir == "":
	case acc.Global():
	case safeDirName(acc.Name()):
		dir = filepath.Join(dir, accountsDir, acc.Name())
	default:
		b.srv.Noticef("MQTT account %q: the name cannot name a directory; its sessions and retained messages are kept in memory", acc.Name())
		dir = ""
	}
	p, err := OpenPersister(dir, b.opts.JetStreamFS, b.opts.JetStreamSync)
	if err != nil {
		return nil, err
	}
	sessions, retained, err := p.Load()
	if err != nil {
		p.Close()
		return nil, err
	}
	sp := b.newSpace(acc, p)
	b.spaces[acc.Name()] = sp
	b.restore(sp, sessions, retained)
	return sp, nil
}

// restore installs an account's stored sessions and retained messages.
// Caller holds mu.
func (b *bridge) restore(sp *space, sessions []*Session, retained []*Retained) {
	for _, r := range retained {
		sp.retained.Restore(r)
	}
	if msgs, bytes := sp.retained.Held(); msgs > b.maxRetainedMsgs() || bytes > b.maxRetainedBytes() {
		b.srv.Noticef("MQTT account %q: restored %d retained messages (%d bytes), above the retained limits; new ones are not kept until fewer are held",
			sp.acc.Name(), msgs, bytes)
	}
	now := unixNow()
	nowMs := time.Now().UnixMilli()
	for _, sess := range sessions {
		connected := !sess.offlineKnown() // stopped while its client was connected
		if sess.Expiry() != ExpiryNever && connected {
			sess.SetOffline(now)
		}
		if w := sess.pendingWill(); w != nil && w.due == 0 {
			// Armed while the client was connected: the server stopping
			// without Close (a kill, a crash) ended the connection, so
			// the will waits out its delay from now, as if it had dropped.
			w.due = nowMs + 1000*int64(min(w.delay, sess.Expiry()))
			if !connected {
				w = nil // a stale record: the client had left
			}
			sess.SetWill(w)
		}
		b.journal(sp, sess)
		perms := b.srv.UserPerms(sess.Owner()) // the owner's, when users authenticate
		if perms != nil {
			b.prune(sess, perms) // permissions may have changed since
		}
		b.capSubs(sess) // and max_subscriptions
		if msgs, bytes := sess.Held(); msgs > b.maxMsgs() || bytes > b.maxBytes() {
			b.srv.Noticef("MQTT session %q: restored %d messages (%d bytes), above the session limits; new ones are discarded until it drains",
				sess.ID, msgs, bytes)
		}
		h := &hold{sp: sp, sess: sess, offline: b.offlineSubs(sess, perms)}
		key := hkey{sp.acc.Name(), sess.ID}
		b.holds[key] = h
		if sess.Expiry() != ExpiryNever {
			b.expiring[key] = h
		}
		if w := sess.pendingWill(); w != nil {
			// Checked again: the owner's permissions may have changed.
			if perms == nil || perms.CanPublish([]byte(w.r.Subject)) {
				w.sp = sp
				b.wills[key] = w
			} else {
				sess.SetWill(nil)
			}
		}
		sp.acc.ReplaceSubs(nil, h.offline)
	}
	if len(sessions)+len(retained) > 0 {
		b.srv.Noticef("MQTT account %q: restored %d sessions and %d retained messages", sp.acc.Name(), len(sessions), len(retained))
	}
}

// closeSpaces closes every account's persistence (newBridge failing).
func (b *bridge) closeSpaces() {
	for _, sp := range b.spaces {
		sp.persist.Close()
	}
}

// newSpace makes account acc's MQTT state over persister p.
func (b *bridge) newSpace(acc loop.Space, p *Persister) *space {
	sp := &space{acc: acc, retained: NewRetainedSet(), persist: p}
	sp.retained.SetLimits(b.opts.MQTTMaxRetainedMsgs, b.opts.MQTTMaxRetainedBytes)
	sp.rr.init(b, sp)
	return sp
}

// spaceOf returns account acc's MQTT state, made at its first client.
func (b *bridge) spaceOf(acc loop.Space) (*space, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if sp := b.spaces[acc.Name()]; sp != nil {
		return sp, nil
	}
	if b.closed {
		return nil, errors.New("MQTT is shutting down")
	}
	return b.openSpace(acc)
}

// eachSpace lists the accounts' MQTT states.
func (b *bridge) eachSpace() []*space {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]*space, 0, len(b.spaces))
	for _, sp := range b.spaces {
		out = append(out, sp)
	}
	return out
}

func init() {
	loop.RegisterMQTT(func(s *loop.Server) (loop.Plugin, error) { return newBridge(s) })
}

// NewConn makes the protocol of a connection accepted on the MQTT listener.
func (b *bridge) NewConn(c *loop.Conn) loop.Protocol { return newConn(c, b) }

// Housekeep ends expired sessions, publishes wills whose delay is over,
// forgets unanswered requests and saves the sessions that changed; once a
// second.
func (b *bridge) Housekeep() {
	now := unixNow()
	b.expire(now)
	for _, sp := range b.eachSpace() {
		sp.retained.Expire(now, func(subject string) { _ = sp.persist.DeleteRetained(subject) })
		sp.rr.sweep(now)
	}
	b.saveDirty()
}

// expire ends the offline sessions whose expiry interval has passed and
// publishes the wills that are due.
func (b *bridge) expire(now int64) {
	var due []*delayedWill
	var ended []*hold
	b.mu.Lock()
	for id, h := range b.expiring {
		if h.owner == nil && h.sess.Expired(now) {
			h.sp.acc.ReplaceSubs(h.offline, nil)
			delete(b.holds, id)
			delete(b.expiring, id)
			ended = append(ended, h)
			_ = h.sp.persist.DeleteSession(h.sess)
			if w := b.wills[id]; w != nil {
				w.due = 1 // the session ended first: due now
			}
		}
	}
	nowMs := time.Now().UnixMilli()
	var kept []*hold // sessions whose will is published: saved without it
	for id, w := range b.wills {
		if nowMs >= w.due {
			due = append(due, w)
			delete(b.wills, id)
			if h := b.holds[id]; h != nil {
				h.sess.SetWill(nil)
				kept = append(kept, h)
			}
		}
	}
	closed := b.closed
	b.mu.Unlock()
	for _, w := range due {
		b.publishWill(w)
	}
	// Saved after publishing: a crash in between publishes the will
	// again after the restart rather than never.
	for _, h := range kept {
		if closed {
			break
		}
		if err := h.sp.persist.SaveSession(h.sess, false); err != nil {
			b.srv.Errorf("MQTT: saving session %q: %v", h.sess.ID, err)
		}
	}
	for _, h := range ended {
		b.redeliverShared(h.sp, h.sess)
	}
}

// Close saves the sessions and closes their stores, after every connection
// has released its session.
func (b *bridge) Close() { b.close() }

// journal sets a persistent session's limits, lists it for the
// housekeeping's save whenever it changes and, with a store directory,
// makes it record each message it queues as it arrives and remove the
// record once the message is acknowledged.
func (b *bridge) journal(sp *space, sess *Session) {
	sess.SetLimits(b.maxMsgs(), b.maxBytes())
	sess.SetDirtyHook(sp.persist.ListDirty)
	if !sp.persist.Durable() {
		return
	}
	sess.SetJournal(func(m *Msg) uint64 {
		seq, err := sp.persist.JournalQueued(sess.ID, m)
		if err != nil {
			b.srv.Errorf("MQTT: journaling a message for session %q: %v", sess.ID, err)
		}
		return seq
	}, func(seq uint64) {
		if err := sp.persist.ForgetQueued(seq); err != nil {
			b.srv.Errorf("MQTT: removing a delivered message of session %q: %v", sess.ID, err)
		}
	})
}

func (b *bridge) maxMsgs() int {
	return cmp.Or(b.opts.MQTTMaxSessionQueueMsgs, DefaultMaxQueueMsgs)
}
func (b *bridge) maxBytes() int {
	return cmp.Or(b.opts.MQTTMaxSessionQueueBytes, DefaultMaxQueueBytes)
}

func (b *bridge) maxRetainedMsgs() int {
	return cmp.Or(b.opts.MQTTMaxRetainedMsgs, DefaultMaxRetainedMsgs)
}
func (b *bridge) maxRetainedBytes() int {
	return cmp.Or(b.opts.MQTTMaxRetainedBytes, DefaultMaxRetainedBytes)
}

// full counts a message discarded because sess was full and logs it, at
// most once a second for the whole server.
func (b *bridge) full(sess *Session) {
	n := b.dropped.Add(1)
	now := time.Now().UnixNano()
	last := b.dropLogged.Load()
	if now-last < int64(time.Second) || !b.dropLogged.CompareAndSwap(last, now) {
		return
	}
	msgs, bytes := sess.Held()
	b.srv.Noticef("MQTT session %q is full (%d messages, %d bytes; limits %d and %d): discarding new messages (%d so far)",
		sess.ID, msgs, bytes, b.maxMsgs(), b.maxBytes(), n)
}

// routed is what stands for h in the sublist now. Caller holds mu, which
// also guards the owner's filters (see conn.filters).
func (h *hold) routed() []*loop.Sub {
	if h.owner != nil {
		return h.owner.routed()
	}
	return h.offline
}

// attach gives the session of id to c, taking it from a connection that
// still holds it (which is then closed), and reports whether a session was
// present. c's subscriptions replace the previous holder's (or the offline
// ones) in one step; what was already routed to the previous holder goes
// into the session's queue (see conn.deliver). It reports ok false,
// touching nothing, when the session belongs to another user.
func (b *bridge) attach(c *conn, id string, cleanStart, persistent bool) (sess *Session, present, ok bool) {
	sp := c.sp
	key := hkey{sp.acc.Name(), id}
	b.mu.Lock()
	defer b.mu.Unlock()
	h := b.holds[key]
	if h != nil && !b.mayHold(c, h.sess) {
		return nil, false, false
	}
	delete(b.wills, key)    // back within the will delay: no will
	delete(b.expiring, key) // held again (or replaced below)
	if h != nil {
		h.sess.SetWill(nil)
	}
	var old *conn
	if h != nil && h.owner != nil {
		old = h.owner
		old.handedOver.Store(true)
	}
	present = h != nil && !cleanStart && !h.sess.Clean
	if !present {
		if h != nil {
			sp.acc.ReplaceSubs(h.routed(), nil)
			if !h.sess.Clean {
				_ = sp.persist.DeleteSession(h.sess)
			}
		}
		h = &hold{sp: sp, sess: NewSession(id, !persistent)}
		if !persistent {
			h.sess.SetLimits(b.maxMsgs(), b.maxBytes())
		} else {
			b.journal(sp, h.sess)
		}
		b.holds[key] = h
	}
	c.sess = h.sess
	if user := c.c.User(); user != "" {
		h.sess.SetOwner(user) // claims a session no user owned yet
	}
	if present {
		b.prune(h.sess, c.c.Perms())
		for filter, opts := range h.sess.Subs() {
			c.addFilter(filter, opts, h.sess.SubID(filter))
		}
		sp.acc.ReplaceSubs(h.routed(), c.routed())
		h.offline = nil
	}
	h.owner = c
	if old != nil {
		b.srv.Noticef("MQTT client %q: taken over by a new connection; closing the old one", id)
		if old.v5 { // MQTT 5 says why: session taken over
			oc := old.c
			oc.Run(func() {
				oc.Write(mcodec.AppendDisconnect5(nil, mcodec.ReasonSessionTakenOver, nil))
				oc.FlushSoon()
			})
		}
		old.c.Kick() // closes once what is queued, the DISCONNECT too, is written
	}
	return h.sess, present, true
}

// mayHold reports whether c may resume or replace sess: a session belongs
// to the user that created it when users authenticate (with auth off, or a
// single user or token, every client is the same principal; in operator
// mode each user JWT's key is a user). A session with no owner recorded
// (older snapshots) goes to the first user.
func (b *bridge) mayHold(c *conn, sess *Session) bool {
	if !b.srv.HasUsers() && c.c.User() == "" {
		return true
	}
	owner := sess.Owner()
	return owner == "" || owner == c.c.User()
}

// prune drops what p no longer allows from sess: filters it may not
// subscribe, messages on subjects it may not receive.
func (b *bridge) prune(sess *Session, p *loop.Perms) {
	if !p.LimitsSubscribe() {
		return // nothing is refused
	}
	filters, msgs := sess.Prune(func(filter string) bool {
		group, _, err := SharedFilter(filter)
		if err != nil {
			return false
		}
		subjects, err := FilterSubjects(filter)
		if err != nil {
			return false
		}
		for _, subj := range subjects {
			if !p.CanQueueSubscribe(subj, group) { // a shared filter is a queue subscription in its group
				return false
			}
		}
		return true
	}, func(topic string) bool {
		subject, err := TopicToSubject(topic, false)
		return err == nil && p.CanSubscribe(subject)
	})
	if len(filters)+msgs > 0 {
		b.srv.Noticef("MQTT session %q: permissions of %q no longer allow filters %q; dropped them and %d kept messages",
			sess.ID, sess.Owner(), filters, msgs)
	}
}

// capSubs drops a restored session's filters beyond max_subscriptions,
// which may have been lowered since they were granted: filters are kept in
// sorted order while their subjects fit (a "a/#" filter is two subjects, as
// when it was granted). The order a client subscribed in is not recorded,
// so sorted order is the stable choice.
func (b *bridge) capSubs(sess *Session) {
	max := b.opts.MaxSubscriptions
	if max <= 0 {
		return
	}
	keep := make(map[string]bool)
	n := 0
	for _, f := range sess.SortedFilters() {
		subjects, err := FilterSubjects(f)
		if err == nil && n+len(subjects) <= max {
			keep[f] = true
			n += len(subjects)
		}
	}
	filters, _ := sess.Prune(func(f string) bool { return keep[f] }, func(string) bool { return true })
	if len(filters) > 0 {
		b.srv.Noticef("MQTT session %q: max_subscriptions %d is below its filters; dropped %q", sess.ID, max, filters)
	}
}

// subscribe gives c's session filter at qos, replacing the filter's earlier
// subscriptions in one step, if c still holds the session.
func (b *bridge) subscribe(c *conn, filter string, opts byte, subID uint32) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.holding(c) {
		return
	}
	old := c.filterSubs(filter)
	c.addFilter(filter, opts, subID)
	c.sp.acc.ReplaceSubs(old, c.filterSubs(filter))
}

// unsubscribe removes filter from c's session, if c still holds it.
func (b *bridge) unsubscribe(c *conn, filter string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.holding(c) {
		return
	}
	c.sp.acc.ReplaceSubs(c.filterSubs(filter), nil)
	c.dropFilter(filter)
	c.sess.Unsubscribe(filter)
}

// holding reports whether c holds its session. Caller holds mu.
func (b *bridge) holding(c *conn) bool {
	h := b.holds[c.key()]
	return h != nil && h.owner == c && !c.handedOver.Load()
}

// release is called when c's connection ends. A clean session ends with it;
// a persistent one stays, its QoS 1/2 messages queued until the client
// returns. It reports whether c still held its session (not taken over).
//
// w, when not nil, is the client's will: one with a delay (due set) waits
// in wills unless the session ends now, which makes it due at once.
func (b *bridge) release(c *conn, sess *Session, w *delayedWill) bool {
	key := c.key()
	b.mu.Lock()
	defer b.mu.Unlock()
	h := b.holds[key]
	if h == nil || h.owner != c {
		return false
	}
	sp := h.sp
	c.handedOver.Store(true)
	online := c.routed()
	h.owner = nil
	// The armed will goes: published now, pending below, or dropped.
	sess.SetWill(nil)
	if sess.Clean || sess.Expiry() == 0 { // MQTT 5: expiry interval 0 ends it with the connection
		sp.acc.ReplaceSubs(online, nil)
		delete(b.holds, key)
		if !sess.Clean {
			_ = sp.persist.DeleteSession(sess)
		}
		if w != nil {
			w.due = 0
		}
		return true
	}
	if w != nil && w.due != 0 {
		b.wills[key] = w
		sess.SetWill(w) // in the snapshot saved below
	}
	sess.SetOffline(unixNow())
	if sess.Expiry() != ExpiryNever {
		b.expiring[key] = h
	}
	h.offline = b.offlineSubs(sess, c.c.Perms())
	sp.acc.ReplaceSubs(online, h.offline)
	if err := sp.persist.SaveSession(sess, true); err != nil {
		b.srv.Errorf("MQTT: saving session %q: %v", sess.ID, err)
	}
	return true
}

// offlineSubs builds internal subscriptions for a session's QoS 1/2 filters
// that queue what is published while its client is away. perms (nil when
// none) are the session's user's: the queue gets no message that user's
// subscribe deny entries filter out of a live subscription.
func (b *bridge) offlineSubs(sess *Session, perms *loop.Perms) []*loop.Sub {
	var subs []*loop.Sub
	for filter, opts := range sess.Subs() {
		qos := opts & optQoS
		if qos == 0 {
			continue // QoS 0 messages are not kept for an absent client
		}
		if group, _, _ := SharedFilter(filter); group != "" {
			continue // the group's other members take them meanwhile
		}
		subjects, err := FilterSubjects(filter)
		if err != nil {
			continue
		}
		skipDollar := SkipsDollarTopics(filter)
		v5, subID := sess.V5(), sess.SubID(filter)
		for _, subject := range subjects {
			sub := b.srv.NewInternalSub(subject, perms, 0, func(subj, reply []byte, hdrLen int, msg []byte) {
				if skipDollar && len(subj) > 0 && subj[0] == '$' {
					return
				}
				q := min(qos, originQoS(msg, hdrLen))
				if q == 0 {
					return
				}
				var hdr []byte
				if hdrLen > 0 {
					hdr, msg = msg[:hdrLen], msg[hdrLen:]
				}
				// Dropped before its topic is mapped or its payload copied.
				if sess.Discards(len(msg)) {
					b.full(sess)
					return
				}
				if v5 {
					hdr = storedHeader(hdr, reply, subID) // sent later with its response topic and identifier
				}
				if !sess.EnqueueCopy5(SubjectToTopic(string(subj)), hdr, msg, q) {
					b.full(sess)
				}
			})
			subs = append(subs, sub)
		}
	}
	return subs
}

// saveDirty persists every persistent session that changed: those its
// space's persister listed as they changed (Persister.SaveDirty), so a
// second with few changes costs little however many sessions there are,
// and mu is not held for a walk over all of them. The server's
// housekeeping calls it once a second, and shutdown once more.
func (b *bridge) saveDirty() {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return
	}
	for _, sp := range b.eachSpace() {
		sp.persist.CompactQueued(func() []*Session { return b.sessionsOf(sp) })
		sp.persist.SaveDirty(func(sess *Session, err error) {
			b.srv.Errorf("MQTT: saving session %q of account %q: %v", sess.ID, sp.acc.Name(), err)
		})
	}
}

// sessionsOf lists space sp's persistent sessions.
func (b *bridge) sessionsOf(sp *space) []*Session {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*Session
	for _, h := range b.holds {
		if h.sp == sp && !h.sess.Clean {
			out = append(out, h.sess)
		}
	}
	return out
}

// setRetained stores (or, with an empty payload, clears) a topic's retained
// message.
func (b *bridge) setRetained(sp *space, topic, subject string, qos byte, payload []byte) {
	b.setRetained5(sp, topic, subject, qos, nil, payload)
}

// setRetained5 is setRetained keeping the message's header block (MQTT 5
// properties; nil for 3.1.1).
func (b *bridge) setRetained5(sp *space, topic, subject string, qos byte, hdr, payload []byte) {
	if len(payload) == 0 {
		if sp.retained.Clear(subject) {
			_ = sp.persist.DeleteRetained(subject)
		}
		return
	}
	r := &Retained{Topic: topic, Subject: subject, QoS: qos, Payload: bytes.Clone(payload), Hdr: bytes.Clone(hdr),
		Expires: headerExpires(hdr)}
	stored, cleared := sp.retained.Set(r)
	if !stored {
		if cleared {
			_ = sp.persist.DeleteRetained(subject)
		}
		b.retainFull(sp, topic, len(payload))
		return
	}
	if err := sp.persist.SaveRetained(r); err != nil {
		b.srv.Errorf("MQTT: saving retained message of %q: %v", topic, err)
	}
}

// retainFull counts a retained message not kept because the retained set
// is full and logs it, at most once a second for the whole server.
func (b *bridge) retainFull(sp *space, topic string, size int) {
	n := b.retainDropped.Add(1)
	now := time.Now().UnixNano()
	last := b.retainLogged.Load()
	if now-last < int64(time.Second) || !b.retainLogged.CompareAndSwap(last, now) {
		return
	}
	msgs, bytes := sp.retained.Held()
	b.srv.Noticef("MQTT: retained messages full (%d messages, %d bytes; limits %d and %d): not retaining %d bytes on %q (%d so far)",
		msgs, bytes, b.maxRetainedMsgs(), b.maxRetainedBytes(), size, topic, n)
}

func (b *bridge) close() {
	b.saveDirty()
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	for _, sp := range b.eachSpace() {
		if err := sp.persist.Close(); err != nil {
			b.srv.Errorf("MQTT: closing the session store of account %q: %v", sp.acc.Name(), err)
		}
	}
}

// delayedWill is a will on its way: published when due (unix
// milliseconds; 0: at once), unless its client comes back first. Guarded by bridge.mu
// while in wills.
type delayedWill struct {
	sp     *space    // the account it is published in
	r      *Retained // topic, subject, QoS, payload, header block (nil: 3.1.1)
	retain bool
	due    int64
	// delay is the will delay interval (seconds), for an armed will: one
	// a session records while its client is connected (due 0), made due
	// on restore when the server stopped without the client leaving.
	delay uint32
}

// publishWill publishes a will (the caller checked its permission).
func (b *bridge) publishWill(w *delayedWill) {
	r := w.r
	hdr := r.Hdr
	if hdr == nil {
		hdr = append([]byte(mqttHeaderPrefix), '0'+r.QoS, '\r', '\n', '\r', '\n')
	}
	if w.retain {
		b.setRetained5(w.sp, r.Topic, r.Subject, r.QoS, r.Hdr, r.Payload)
	}
	b.srv.PublishInternalIn(w.sp.acc, r.Subject, "", hdr, r.Payload)
}

// redeliverShared gives the QoS 1/2 messages a shared subscription left
// unacknowledged in sess, whose client has left for good, to another
// member of their group (MQTT or NATS), if one is left.
func (b *bridge) redeliverShared(sp *space, sess *Session) {
	msgs := sess.Unacked()
	if len(msgs) == 0 {
		return
	}
	n := 0
	for _, msg := range msgs {
		subject, err := TopicToSubject(msg.Topic, false)
		if err != nil {
			continue
		}
		hdr := msg.Hdr
		if hdr == nil {
			hdr = append([]byte(mqttHeaderPrefix), '0'+msg.QoS, '\r', '\n', '\r', '\n')
		}
		if b.srv.PublishToQueueIn(sp.acc, subject, msg.Group, hdr, msg.Payload) {
			n++
		}
	}
	b.srv.Noticef("MQTT session %q: %d unacknowledged messages of shared subscriptions passed to other members (%d had none left)",
		sess.ID, n, len(msgs)-n)
}

// mqttHeaderPrefix starts the header nats-server puts on messages published
// by MQTT clients: "Nmqtt-Pub:<qos>".
const mqttHeaderPrefix = "NATS/1.0\r\nNmqtt-Pub:"

// originQoS returns the QoS an MQTT publisher gave a message, from its
// Nmqtt-Pub header; messages from NATS clients are QoS 0.
func originQoS(msg []byte, hdrLen int) byte {
	if hdrLen <= 0 {
		return 0
	}
	hdr := msg[:hdrLen]
	// An MQTT publisher's message here starts with exactly this prefix.
	if len(hdr) > len(mqttHeaderPrefix) && string(hdr[:len(mqttHeaderPrefix)]) == mqttHeaderPrefix {
		if v := hdr[len(mqttHeaderPrefix)]; v >= '0' && v <= '2' {
			return v - '0'
		}
	}
	i := bytes.Index(hdr, []byte("\r\nNmqtt-Pub:"))
	if i < 0 {
		return 0
	}
	v := bytes.TrimLeft(hdr[i+len("\r\nNmqtt-Pub:"):], " ")
	if len(v) == 0 || v[0] < '0' || v[0] > '2' {
		return 0
	}
	return v[0] - '0'
}

// Stats reports sessions (connected or kept for a client that left) and
// retained messages, for /metrics; it takes mu, then the retained set's.
func (b *bridge) Stats() loop.MQTTStats {
	var st loop.MQTTStats
	b.mu.Lock()
	st.Sessions = len(b.holds)
	for _, h := range b.holds {
		if h.owner != nil {
			st.Connected++
		}
	}
	b.mu.Unlock()
	for _, sp := range b.eachSpace() {
		msgs, bytes := sp.retained.Held()
		st.Retained += msgs
		st.RetainedBytes += int64(bytes)
	}
	return st
}
