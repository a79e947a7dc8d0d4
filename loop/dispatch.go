package loop

import (
	"math/rand/v2"
)

// The one delivery path. dispatch takes a match result and delivers a
// message to it, for every publisher (a client on a gnet loop or on the
// goroutine transport, or the server itself: JetStream, MQTT sessions) and
// for what a loop drains from its inbox, with nats-server's rules:
//
//   - echo: a publisher that sent echo:false gets none of its own messages,
//     on plain subscriptions or as a queue member;
//   - queue groups: one member per group, picked at random among those that
//     take the message (not the no-echo publisher, not one whose deny
//     filter rejects the subject, not one whose auto-unsubscribe limit is
//     spoken for), an open flow gate first (pickQueueMember);
//     a member that turns the message down when delivering (closed, auto-
//     unsubscribed, cut as slow) passes it to the next, on whichever loop
//     it lives (drain continues the search);
//   - auto-unsubscribe and delivery-time permissions: client.deliver.
//
// Concurrency: dispatch runs on the publisher's goroutine (origin says
// which). On gnet it touches only its own loop's clients and hands the rest
// to other loops as batches (one copy per loop, one wakeup per batch); on
// the goroutine transport it takes each subscriber's outLock in turn, one at
// a time. Its callers hold no lock, so no order among outLocks is needed;
// internal handlers run with none held, and a flow gate's mu (holdFor) is
// taken only after the subscriber's outLock is released.

// origin is where dispatch runs and for whom:
//   - a client's loop (gnet): pub and lp set;
//   - a loop draining its inbox (gnet): lp set, pub nil;
//   - the server, off the loops (gnet): inj set, so that connections are
//     reached through their loops' inboxes;
//   - the goroutine transport: lp and inj nil, pub the publisher or nil for
//     the server.
type origin struct {
	pub *client        // the publisher; nil when the server publishes or a loop drains
	lp  *evLoop        // the loop dispatch runs on (gnet)
	inj *gnetTransport // the server publishes from outside the loops (gnet)
	// hops counts the imports the message crossed to get here: imports
	// that do not overlap by subject pass config checks, yet mappings can
	// turn each one's target into another's source and send a message
	// round two accounts for ever (a nested call per hop: a fatal stack
	// overflow). Past maxCrossHops the message goes no further, as
	// nats-server drops a message that comes back to an import it took.
	hops uint8
}

// maxCrossHops bounds the chain of imports one message may cross.
const maxCrossHops = 16

// qpick is a queue-group delivery in flight: member pick of the group is
// tried, then the next ones that take the message, left in all at most.
// skip is the no-echo publisher, never picked; from is the link the
// message came over, whose members are never picked. left == 0: not a
// queue.
type qpick struct {
	skip       *client
	from       Link
	pick, left int
}

// delivery is one message being dispatched, where and for whom; it lives
// on dispatch's stack.
type delivery struct {
	origin
	skip           *client // the no-echo publisher
	subject, reply []byte
	hdrLen         int
	msg            []byte
	big            *bigBuf // msg lies in it (a drained large payload): plaintext subscribers borrow it

	// Links (link.go): from is the link the message came over (never sent
	// back there); when filterQ, only queue groups named in onlyQ get it;
	// lk collects what goes to a link, sent once at the end.
	from    Link
	linkTo  []byte // the subject matched, when not the one shown: what links are sent
	onlyQ   [][]byte
	filterQ bool
	lk      linkOut
}

// dispatch delivers one message to the subscriptions in r. msg holds headers
// then payload when hdrLen >= 0.
func dispatch(o origin, r *matchResult, subject, reply []byte, hdrLen int, msg []byte) {
	d := delivery{origin: o, subject: subject, reply: reply, hdrLen: hdrLen, msg: msg}
	if o.pub != nil && !o.pub.echo {
		d.skip = o.pub
	}
	d.dispatch(r)
}

// dispatch delivers d's message to r; a link that takes it gets it once.
func (d *delivery) dispatch(r *matchResult) {
	for _, sp := range r.Spans {
		subs := r.Plain[sp.Start:sp.End]
		if d.remote(sp.Loop) {
			d.send(sp.Loop, subs, qpick{})
			continue
		}
		for _, rs := range subs {
			// A no-echo publisher's own subscriptions are all on its loop.
			if s := rs.Owner; d.skip == nil || s.c != d.skip {
				d.deliverHere(s)
			}
		}
	}
	for _, q := range r.Queues {
		// From a link, only the groups its peer picked this server for.
		if d.filterQ && !d.listedQueue(q[0].Queue) {
			continue
		}
		var i int
		if d.lp != nil {
			i = d.lp.randn(len(q))
		} else {
			i = rand.IntN(len(q))
		}
		if i = pickQueueMember(q, i, d.subject, d.skip, d.from); i < 0 {
			continue
		}
		// The common case, a member served here that takes it, without
		// the search state.
		if !d.remote(q[i].Loop) && d.deliverHere(q[i].Owner) {
			continue
		}
		d.queue(q, qpick{skip: d.skip, from: d.from, pick: i, left: len(q)})
	}
	if d.lk.l != nil {
		d.flushLink()
	}
}

// queue delivers to one member of group q, starting with qp.pick.
func (d *delivery) queue(q []*routerSub, qp qpick) {
	for ; qp.pick >= 0 && qp.left > 0; qp.left-- {
		rs := q[qp.pick]
		if d.remote(rs.Loop) {
			d.send(rs.Loop, q, qp)
			return
		}
		if d.deliverHere(rs.Owner) {
			return
		}
		qp.pick = nextQueueMember(q, qp.pick, d.subject, qp.skip, qp.from)
	}
}

// readied is called when the delivery may have made a goroutine runnable
// (an internal handler's, a link's writer): on a gnet loop, that goroutine
// runs before the loop blocks in epoll_wait (gnet patch 5).
func (o *origin) readied() { o.lp.goschedBeforeWait() }

// remote reports whether subscriptions of loop l are served elsewhere than
// where dispatch runs. Internal subscriptions (and every subscription on
// the goroutine transport) have no loop and are served in place.
func (o *origin) remote(l int) bool {
	return l != internalLoop && (o.inj != nil || o.lp != nil && l != o.lp.idx)
}

// send hands the message for subs (a queue group when qp.left > 0) to loop
// dst, and makes the publisher wait if what it passed is over its
// high-water mark.
func (d *delivery) send(dst int, subs []*routerSub, qp qpick) {
	if d.inj != nil {
		d.inj.inject(dst, subs, qp, d.subject, d.reply, d.hdrLen, d.msg)
		return
	}
	d.lp.forward(dst, subs, qp, d.subject, d.reply, d.hdrLen, d.msg)
	if p := d.pub; p != nil && p.fc.wait == nil {
		if qp.left > 0 {
			subs = subs[qp.pick : qp.pick+1]
		}
		d.lp.holdForRemote(p, dst, subs)
	}
}

// deliverHere delivers to s, served where dispatch runs, and reports
// whether s took the message.
func (d *delivery) deliverHere(s *subscription) bool {
	if s.link != nil {
		return d.toLink(s)
	}
	if s.internal != nil {
		if s.denies(d.subject) {
			return false
		}
		d.readied() // JetStream's manager, $SYS answers
		if s.cross != nil {
			if d.origin.hops >= maxCrossHops {
				return false
			}
			o := d.origin
			o.hops++
			s.cross(o, d.subject, d.reply, d.hdrLen, d.msg)
			return true
		}
		s.internal(d.subject, d.reply, d.hdrLen, d.msg)
		return true
	}
	c := s.c
	if s.noLocal && c == d.pub {
		return true // its own message, left out as it asked (MQTT 5 no local)
	}
	if d.lp == nil { // goroutine transport: c's output is shared with its writer
		c.t.outLock()
	}
	ok := c.deliver(s, d.subject, d.reply, d.hdrLen, d.msg, d.big)
	if d.lp == nil {
		c.t.outUnlock()
	}
	if ok && d.pub != nil {
		d.pub.holdFor(&c.fc.gate)
	}
	return ok
}

// holdForRemote makes publisher c wait if loop dst's inbox, or one of the
// subscribers there that a message was just forwarded to, is over its
// high-water mark. While none of dst's clients is (its closedGates count),
// it reads none of their gates.
func (lp *evLoop) holdForRemote(c *client, dst int, subs []*routerSub) {
	d := lp.tr.loops[dst]
	c.holdFor(&d.inbox.gate)
	if d.closedGates.Load() == 0 {
		return
	}
	for _, rs := range subs {
		if c.fc.wait != nil {
			return
		}
		c.holdFor(&rs.Owner.c.fc.gate)
	}
}

// pickQueueMember returns the index of the member of queue group q that
// gets a message on subject: from start on and wrapping, the first that
// will take it (not skip, the no-echo publisher, and not one whose deny
// filter rejects the subject, as nats-server tries the next member rather
// than drop the message), or -1 when none will.
//
// A member over its high-water mark or stalled (flow.go) is passed over
// while another will do, a stalled one last, so one that stops reading
// stops getting work.
func pickQueueMember(q []*routerSub, start int, subject []byte, skip *client, from Link) int {
	best, rank, link := -1, int32(0), -1
	for k := range q {
		i := start + k
		if i >= len(q) {
			i -= len(q)
		}
		s := q[i].Owner
		if !s.takes(subject, skip, from) {
			continue
		}
		if s.link != nil {
			if link < 0 {
				link = i // a member across a link only when none here will do
			}
			continue
		}
		if s.c == nil {
			return i
		}
		// flowOK < flowOver (behind, reading) < flowStalled (not reading)
		st := s.c.fc.gate.state.Load()
		if st == flowOK {
			s.spendQuota()
			return i
		}
		if best < 0 || st < rank {
			best, rank = i, st
		}
	}
	if best >= 0 {
		q[best].Owner.spendQuota()
		return best
	}
	return link
}

// takes reports whether queue member s may be given a message on subject:
// it is not the no-echo publisher skip, its deny filter lets the subject
// through, and its auto-unsubscribe quota is not used up.
func (s *subscription) takes(subject []byte, skip *client, from Link) bool {
	return !s.denies(subject) && (skip == nil || s.c != skip) && s.quota.Load() != 1 &&
		(s.link == nil || s.link != from)
}

// spendQuota counts one pick of a limited queue member. Publishers racing
// for its last pick may both get it: the loser's message is turned down at
// delivery and passed on.
func (s *subscription) spendQuota() {
	if n := s.quota.Load(); n > 1 {
		s.quota.CompareAndSwap(n, n-1)
	}
}

// nextQueueMember returns the member after i (wrapping, i itself excluded)
// that may take a message member i turned down, or -1.
func nextQueueMember(q []*routerSub, i int, subject []byte, skip *client, from Link) int {
	for k := 1; k < len(q); k++ {
		j := i + k
		if j >= len(q) {
			j -= len(q)
		}
		if q[j].Owner.takes(subject, skip, from) {
			return j
		}
	}
	return -1
}
