package loop

// Concurrency: SubscribeInternal and PublishInternal may be called from
// any goroutine (JetStream Manager and store Writer callbacks, MQTT will
// messages). An internal handler runs on the publisher's goroutine with no
// evnats lock held (dispatch never holds one across it), so it may take its
// own: Manager.mu, Session.mu. holdInternal is called by the Manager
// goroutine; it reads gates atomically and takes one gate's mu to register.

import (
	"context"
)

// internalLoop is the Loop of subscriptions served inside the server (such
// as JetStream's) rather than by a connection.
const internalLoop = -1

// InternalHandler receives a message for an internal subscription. It runs on
// the publisher's goroutine (an event loop, or a reader goroutine), so it must
// be quick and safe for concurrent use, and copy what it keeps: every slice
// is valid only until it returns. msg holds headers then payload; hdrLen is
// -1 when there are no headers.
type InternalHandler func(subject, reply []byte, hdrLen int, msg []byte)

// SubscribeInternal subscribes fn to subject (wildcards allowed) and returns
// a function that removes the subscription. Safe for concurrent use.
func (s *Server) SubscribeInternal(subject string, fn InternalHandler) func() {
	sub := internalSub(subject, fn)
	s.sl.Insert(sub)
	return func() { s.sl.Remove(sub) }
}

// internalSub builds, without inserting, an internal subscription.
func internalSub(subject string, fn InternalHandler) *routerSub {
	sub := &subscription{internal: fn}
	sub.Subject = subject
	sub.Loop = internalLoop
	sub.Owner = sub
	return &sub.Subscription
}

// PublishInternal publishes a message from inside the server. It is safe to
// call from any goroutine: with the gnet transport each destination loop gets
// the message as a batch of one through its inbox, so no connection is
// touched outside its loop.
func (s *Server) PublishInternal(subject, reply string, hdr, data []byte) {
	s.deliverInternal(subject, subject, reply, hdr, data)
}

// PublishToQueue delivers a server-originated message to one member of
// queue group queue among the subscribers of subject, and reports whether
// the group has a member there (MQTT: a shared subscription's messages
// left in flight by a member that went away). Safe from any goroutine.
func (s *Server) PublishToQueue(subject, queue string, hdr, data []byte) bool {
	r := s.sl.Match(subject)
	for _, q := range r.Queues {
		if len(q) > 0 && q[0].Queue == queue {
			s.deliverMatched(&matchResult{Queues: [][]*routerSub{q}}, subject, "", hdr, data)
			return true
		}
	}
	return false
}

// deliverInternal routes a server-originated message by the subscribers of
// to, while clients see it under subject.
func (s *Server) deliverInternal(to, subject, reply string, hdr, data []byte) {
	s.deliverMatchedTo(s.sl.Match(to), to, subject, reply, hdr, data)
}

// deliverMatched delivers a server-originated message to the subscribers
// in r, showing it under subject.
func (s *Server) deliverMatched(r *matchResult, subject, reply string, hdr, data []byte) {
	s.deliverMatchedTo(r, "", subject, reply, hdr, data)
}

// deliverMatchedTo is deliverMatched for r matched on to ("": subject),
// which a link is sent: its peer routes on the subject it subscribed to
// (a JetStream delivery shown under the stream's subject crosses on the
// consumer's inbox).
func (s *Server) deliverMatchedTo(r *matchResult, to, subject, reply string, hdr, data []byte) {
	var b deliverBufs
	s.deliverMatchedBufs(r, to, subject, reply, hdr, data, &b)
}

// deliverBufs holds the byte forms of a server-originated message that
// deliverMatchedBufs builds; a caller that delivers one message at a time
// from one goroutine (a JetStream Manager's deliveries) keeps one to reuse,
// since dispatch copies what it keeps.
type deliverBufs struct {
	subject, reply, to, msg []byte
}

// deliverMatchedBufs is deliverMatchedTo building the message in b.
func (s *Server) deliverMatchedBufs(r *matchResult, to, subject, reply string, hdr, data []byte, b *deliverBufs) {
	msg := data
	hdrLen := -1
	if len(hdr) > 0 {
		b.msg = append(append(b.msg[:0], hdr...), data...)
		msg = b.msg
		hdrLen = len(hdr)
	}
	s.shard(0).inMsgs.Add(1)
	s.shard(0).inBytes.Add(int64(len(msg)))
	b.subject = append(b.subject[:0], subject...)
	b.reply = append(b.reply[:0], reply...)
	var o origin // goroutine transport: subscribers are locked in turn
	if g, ok := s.tr.(*gnetTransport); ok {
		o.inj = g // gnet: through the loops' inboxes
	}
	d := delivery{origin: o, subject: b.subject, reply: b.reply, hdrLen: hdrLen, msg: msg}
	if to != "" && to != subject {
		b.to = append(b.to[:0], to...)
		d.linkTo = b.to
	}
	d.dispatch(r)
}

// holdInternal is flow control for an internal publisher that can wait (a
// JetStream push consumer), after a message was delivered to r: if a gate
// the message went through is not open (on gnet a destination loop's
// inbox, or a subscriber's output, closed or stalled), resume is
// registered there and holdInternal reports true; the publisher then
// delivers no more until resume runs, once, when that gate opens or its
// owner goes (from the goroutine that opens it, possibly under the
// destination's outLock: resume must only queue work). Unlike a client
// publisher it waits through a stall: it holds up nobody but itself, and
// what it does not deliver stays in its stream. A queue group holds only
// when none of its members is open, as pickQueueMember prefers open ones.
func (s *Server) holdInternal(r *matchResult, resume func()) bool {
	g, _ := s.tr.(*gnetTransport)
	for _, sp := range r.Spans {
		if g != nil && sp.Loop != internalLoop {
			if gate := &g.loops[sp.Loop].inbox.gate; gate.closed() && gate.addFunc(resume) {
				return true
			}
		}
		for _, rs := range r.Plain[sp.Start:sp.End] {
			if c := rs.Owner.c; c != nil && c.fc.gate.state.Load() != flowOK && c.fc.gate.addFunc(resume) {
				return true
			}
		}
	}
	for _, q := range r.Queues {
		var wait *flowGate
		for _, rs := range q {
			c := rs.Owner.c
			if c == nil || c.fc.gate.state.Load() == flowOK {
				wait = nil
				break // a member served in place, or an open one, takes it
			}
			if wait == nil || c.fc.gate.state.Load() == flowOver {
				wait = &c.fc.gate // a closed member before a stalled one
			}
		}
		if wait != nil && wait.addFunc(resume) {
			return true
		}
	}
	return false
}

// inject hands one message for subs (a queue group when qp.left > 0) to
// loop dst from outside any loop. It
// appends to the batch the loop's inbox keeps open for outside publishers,
// so a burst (say, the acks of one group commit) costs the loop one wakeup.
func (t *gnetTransport) inject(dst int, subs []*routerSub, qp qpick, subject, reply []byte, hdrLen int, msg []byte) {
	lp := t.loops[dst]
	lp.inbox.mu.Lock()
	b := lp.inbox.open
	if b == nil || len(b.buf) >= maxBatchBytes {
		b = getBatch()
		lp.inbox.open = b
		lp.inbox.batches = append(lp.inbox.batches, b)
	}
	n := len(b.buf)
	b.add(subs, qp, subject, reply, hdrLen, msg)
	n = len(b.buf) - n
	lp.inbox.mu.Unlock()
	lp.queued(n)
	lp.wake()
}

// receive queues b in the loop's inbox and wakes the loop if it is not
// already due to drain. Safe for concurrent use.
func (lp *evLoop) receive(b *batch) {
	n, sink := b.size(), b.sink // b belongs to this loop once pushed
	lp.inbox.mu.Lock()
	lp.inbox.batches = append(lp.inbox.batches, b)
	lp.inbox.mu.Unlock()
	lp.queued(n)
	// Every message goes to one client whose socket is full: the loop
	// cannot write them before that client's OnWritable, which drains the
	// inbox first, so waking it now (an eventfd write and a loop wakeup)
	// would buy nothing. The flag is read after the push and cleared by the
	// loop before it drains, so either that drain sees the batch or this
	// load sees the flag cleared and wakes. Bounded: past lazyMax bytes
	// waiting (or with the inbox gate closed) the loop is woken as usual.
	if sink != nil && sink.fc.sockFull.Load() && lp.inbox.bytes.Load() < min(lazyMax, int64(lp.srv.flowLow())) && !lp.inbox.gate.closed() {
		return
	}
	lp.wake()
}

// lazyMax bounds what receive leaves in an inbox without waking its loop:
// the payloads waiting there are out of the big-buffer pools (bigbuf.go),
// whose budgets cover a subscriber at its high-water mark, so more would
// have the publisher's loop allocate new buffers (4 MiB did: 2-3 collections
// per 100,000 x 16 KiB instead of one).
const lazyMax = 1 << 20

// wake schedules a drain unless one is already due. Safe for concurrent use.
func (lp *evLoop) wake() {
	if lp.inbox.scheduled.CompareAndSwap(false, true) {
		if err := lp.el.Execute(context.Background(), lp.drainTask); err != nil {
			lp.inbox.scheduled.Store(false)
		}
	}
}
