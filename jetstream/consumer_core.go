package jetstream

// Concurrency: runs on the JetStream Manager goroutine only, which owns
// streams, consumers and their stores; no locks.

// The consumer as a state machine, in the manner of etcd's raft package:
// a step takes one input and the current time (never time.Now, no timers,
// no goroutines), changes the consumer's state and records what it asks
// of the world in c.fx; the Manager then performs those effects (perform:
// emit, then pump) and clears them. Tests drive the steps with a fake
// clock and read c.fx and what a fake Host was given, without a Manager
// goroutine or a socket (consumer_core_test.go). docs/JETSTREAM.md
// ("Consumer state machine") has the table of inputs and effects.
//
// Inputs and their steps:
//
//	a pull request (MSG.NEXT, +NXT)  c.request(reply, body, now)
//	an ack, +TERM, -NAK, +WPI        c.ack(sseq, body, now, confirmed)
//	the time                         c.tick(now)
//	the inactive threshold           c.idle(now, interest)
//	a delivery attempt               c.nextDelivery(now, interest)
//	the host's answer to a delivery  c.delivered(d, taken)
//	the end of a pump                c.endNoWait()
//
// Effects (effects below): status messages to request inboxes (404, 408,
// 409, 423, 100 idle heartbeats and flow control requests), advisories
// (NAK, MAX_DELIVERIES, PINNED, UNPINNED, a pause that ran out), "pump"
// (deliver what may be delivered now: the Manager takes nextDelivery's
// deliveries to Host.Deliver), and the next deadline the consumer waits
// for (wake: the timer to arm, see timers.go).
// State to persist is the consumer log's records (consumer_log.go), which
// the steps append through c.log to the store Writer's queue.

import (
	"slices"
	"strconv"
	"time"
)

// effects is what the consumer's steps since the last perform ask of the
// Manager, in the order they arose within each kind.
type effects struct {
	statuses   []statusMsg   // to pull requests' inboxes
	naked      []pendingNote // MSG_NAKED advisories
	maxDeliver []pendingNote // MAX_DELIVERIES advisories, once per message
	pins       []pinNote     // PINNED advisories
	unpins     []pinNote     // UNPINNED advisories, reason timeout
	pauseEnded bool          // a pause_until passed: PAUSE advisory, then pump
	pump       bool          // deliver what may be delivered now
	wake       time.Time     // the earliest deadline waited for; zero: none
}

// statusMsg is a header-only status message to an inbox (a flow control
// request has a reply subject).
type statusMsg struct {
	to, reply string
	hdr       []byte
}

// pinNote names a pin given or taken back.
type pinNote struct{ group, id string }

// pendingNote names one pending delivery for an advisory.
type pendingNote struct {
	sseq, dseq uint64
	deliveries int
}

// status records a status message to an inbox.
func (c *consumer) status(to string, hdr []byte) {
	c.fx.statuses = append(c.fx.statuses, statusMsg{to: to, hdr: hdr})
}

// ready returns the effects recorded since the last call and clears them.
func (c *consumer) ready() effects {
	fx := c.fx
	c.fx = effects{}
	return fx
}

// tick is the time input: pull requests that expired end with a 408 and
// leave, idle ones get a heartbeat, a pause that ran out is reported, and
// deliveries whose ack wait passed are queued again, or dropped with a
// MAX_DELIVERIES advisory once delivered max_deliver times.
func (c *consumer) tick(now time.Time) {
	keep := c.waiting[:0]
	for _, r := range c.waiting {
		if !r.expires.IsZero() && !now.Before(r.expires) {
			c.fx.statuses = append(c.fx.statuses, statusMsg{to: r.reply, hdr: timeoutStatus(r)})
			continue
		}
		if r.heartbeat > 0 && now.Sub(r.lastSent) >= r.heartbeat {
			c.fx.statuses = append(c.fx.statuses, statusMsg{to: r.reply, hdr: c.heartbeatStatus()})
			r.lastSent = now
		}
		keep = append(keep, r)
	}
	clear(c.waiting[len(keep):])
	c.waiting = keep
	if c.tickPin(now) {
		c.fx.pump = true
	}
	if c.pauseEnds && !c.paused(now) {
		c.pauseEnds = false
		c.fx.pauseEnded = true
		c.fx.pump = true
	}
	var due []uint64
	for seq, p := range c.pending {
		if now.After(p.deadline) && !c.isQueued(seq) {
			if c.exhausted(p) {
				c.exceed(seq, p)
				c.fx.pump = true // room under max_ack_pending
				continue
			}
			due = append(due, seq)
		}
	}
	if len(due) > 0 {
		slices.Sort(due)
		c.redeliv = append(c.redeliv, due...)
		c.fx.pump = true
	}
	if len(c.waiting) > 0 {
		c.fx.pump = true
	}
	c.ackDue = c.pendingDue()
	c.fx.wake = c.nextDeadline(now)
}

// exhausted reports whether p has been delivered max_deliver times.
func (c *consumer) exhausted(p *pendingAck) bool {
	return c.cfg.MaxDeliver > 0 && p.deliveries >= c.cfg.MaxDeliver
}

// exceed gives up on seq, delivered max_deliver times: a MAX_DELIVERIES
// advisory, and the message leaves pending (the ack floor moves past it;
// the stream keeps it), as nats-server 2.15.
func (c *consumer) exceed(seq uint64, p *pendingAck) {
	if !p.exceeded {
		p.exceeded = true
		c.fx.maxDeliver = append(c.fx.maxDeliver, pendingNote{seq, p.dseq, p.deliveries})
	}
	delete(c.pending, seq)
	c.advanceAckFloor()
	c.logDropped(seq)
}

// nak is a -NAK of stream sequence sseq with an optional delay: the
// message is due again after the delay (at once without one). One past
// max_deliver is queued too, and dropped at the next delivery attempt
// (nextMsg), as nats-server does.
func (c *consumer) nak(sseq uint64, delay time.Duration, now time.Time) {
	c.active = now
	p := c.pending[sseq]
	if p == nil {
		return
	}
	c.fx.naked = append(c.fx.naked, pendingNote{sseq, p.dseq, p.deliveries})
	p.deadline = now.Add(delay)
	c.noteDue(p.deadline)
	switch {
	case delay > 0: // due at the deadline, not before, even if queued
		c.redeliv = slices.DeleteFunc(c.redeliv, func(q uint64) bool { return q == sseq })
	case !c.isQueued(sseq):
		c.redeliv = append(c.redeliv, sseq)
	}
	c.fx.pump = true
}

// progress is a +WPI: the ack wait of sseq starts again.
func (c *consumer) progress(sseq uint64, now time.Time) {
	c.active = now
	if p := c.pending[sseq]; p != nil {
		p.deadline = now.Add(c.ackWait(p.deliveries))
		c.noteDue(p.deadline)
	}
}

// idle reports whether c has been idle past its inactive threshold and
// should go, durable or not (as nats-server since 2.9): a pull consumer with
// no waiting request, pull or ack for that long; a push consumer with no
// subscriber on its deliver subject (interest) for that long.
func (c *consumer) idle(now time.Time, interest bool) bool {
	if c.cfg.InactiveThreshold <= 0 {
		return false
	}
	if c.push() {
		if interest {
			c.active = now
		}
	} else if len(c.waiting) > 0 {
		return false
	}
	return now.Sub(c.active) > c.cfg.InactiveThreshold
}

// nextDeadline is the earliest time after now at which a tick would
// change something: a request's expiry or heartbeat, an ack wait, the end
// of a pause, the inactive threshold. Zero when nothing is waited for.
func (c *consumer) nextDeadline(now time.Time) time.Time {
	var at time.Time
	soonest := func(t time.Time) {
		if !t.IsZero() && (at.IsZero() || t.Before(at)) {
			at = t
		}
	}
	for _, r := range c.waiting {
		soonest(r.expires)
		if r.heartbeat > 0 {
			soonest(r.lastSent.Add(r.heartbeat))
		}
	}
	for seq, p := range c.pending {
		if !c.isQueued(seq) {
			soonest(p.deadline.Add(time.Nanosecond)) // due once now is after it
		}
	}
	if c.pauseEnds && c.cfg.PauseUntil != nil {
		soonest(*c.cfg.PauseUntil)
	}
	if c.pin != "" {
		soonest(c.pinDeadline)
	}
	if c.cfg.InactiveThreshold > 0 && (c.push() || len(c.waiting) == 0) {
		soonest(c.active.Add(c.cfg.InactiveThreshold + time.Nanosecond))
	}
	return at
}

// timeoutStatus is the 408 that ends an expired request, with what it
// still wanted.
func timeoutStatus(r *pullRequest) []byte {
	return []byte("NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: " + strconv.Itoa(max(r.batch, 0)) +
		"\r\nNats-Pending-Bytes: " + strconv.Itoa(max(r.maxBytes, 0)) + "\r\n\r\n")
}

// heartbeatStatus is an idle heartbeat with the consumer's position.
func (c *consumer) heartbeatStatus() []byte {
	return []byte("NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: " + strconv.FormatUint(c.dseq, 10) +
		"\r\nNats-Last-Stream: " + strconv.FormatUint(c.next-1, 10) + "\r\n\r\n")
}

// perform carries out what c's steps asked for: status messages and
// advisories (emit), then deliveries (pump), which emit what they add.
func (m *Manager) perform(c *consumer, now time.Time) {
	pump := c.fx.pump
	c.fx.pump = false
	m.emit(c, now)
	if pump && c.st.consumers[c.name] == c {
		m.pump(c, now)
	}
}

// emit publishes the status messages and advisories c's steps recorded,
// in a fixed order, and clears them; a pump asked for stays asked.
func (m *Manager) emit(c *consumer, now time.Time) {
	pump := c.fx.pump
	fx := c.ready()
	c.fx.pump = pump
	m.touch(c) // its deadlines may have moved: armed after the batch
	for _, s := range fx.statuses {
		m.host.Publish(s.to, s.reply, s.hdr, nil)
	}
	for _, n := range fx.naked {
		m.adviseNak(c, n)
	}
	for _, n := range fx.maxDeliver {
		m.adviseMaxDeliver(c, n)
	}
	for _, p := range fx.pins {
		m.advisePinned(c, p.group, p.id)
	}
	for _, p := range fx.unpins {
		m.adviseUnpinned(c, p.group, "timeout")
	}
	if fx.pauseEnded {
		var until time.Time
		if c.cfg.PauseUntil != nil {
			until = *c.cfg.PauseUntil
		}
		m.advisePause(c, until, now)
	}
}
