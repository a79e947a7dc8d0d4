package jetstream

// Concurrency: runs on the Manager goroutine only (run, tick and the
// handlers it calls); no locks. The time.Timer's channel is read by run.

// Consumer and stream timers. A consumer's state machine knows when it next has
// something to do (consumer_core.go: nextDeadline, effects.wake): a pull
// request's expiry or heartbeat, an ack wait, the end of a pause or pin,
// the inactive threshold. The Manager keeps one heap of those deadlines
// and one time.Timer armed to the earliest, so a consumer is ticked when
// its deadline comes (not up to 50 ms late) and an idle Manager sleeps
// until then instead of waking on a fixed tick.
//
// Arming is lazy and never late: every step whose effects the Manager
// emits marks its consumer touched (emit); once the batch is done,
// armTouched computes each touched consumer's wakeAt and pushes it when
// earlier than what the consumer already has in the heap. wakeAt uses
// ackDue, a lower bound of the pending ack deadlines kept up by the steps
// that set one (deliver, nak, recovery), so arming costs no scan of
// pending; a deadline that an ack made moot costs one early tick, which
// computes everything exactly (tick: nextDeadline). A heap entry that is
// no longer its consumer's armed time, or whose consumer is gone, is
// dropped when it comes up.

import (
	"container/heap"
	"time"
)

// consumerPoll is how soon a consumer that has requests and could not
// deliver for want of a subscriber (a push consumer's deliver subject) or
// of an eligible request (priority groups) tries again. Only such a
// consumer is polled; the others wait for their deadlines and events.
const consumerPoll = 50 * time.Millisecond

// wakeEntry is one armed consumer deadline.
type wakeEntry struct {
	at time.Time
	c  *consumer
}

// wakeHeap orders deadlines, earliest first (container/heap).
type wakeHeap []wakeEntry

func (h wakeHeap) Len() int           { return len(h) }
func (h wakeHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h wakeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *wakeHeap) Push(x any)        { *h = append(*h, x.(wakeEntry)) }
func (h *wakeHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = wakeEntry{}
	*h = old[:len(old)-1]
	return e
}

// touch marks c for arming once the current batch is done.
func (m *Manager) touch(c *consumer) {
	if !c.touched {
		c.touched = true
		m.touched = append(m.touched, c)
	}
}

// live reports whether c is still a consumer of a stream the Manager has.
func (m *Manager) live(c *consumer) bool {
	return c.st.consumers[c.name] == c && m.streams[c.st.cfg.Name] == c.st
}

// armTouched arms the touched consumers' next deadlines and the timer.
func (m *Manager) armTouched(now time.Time) {
	for i := 0; i < len(m.touched); i++ { // a pump below may touch c again: appended, seen
		c := m.touched[i]
		m.touched[i] = nil
		c.touched = false
		if !m.live(c) {
			continue
		}
		if c.startPump {
			c.startPump = false
			m.pump(c, now) // a new or recovered consumer, after its create's reply
		}
		if w := c.wakeAt(now); !w.IsZero() && (c.armed.IsZero() || w.Before(c.armed)) {
			c.armed = w
			heap.Push(&m.wakes, wakeEntry{at: w, c: c})
		}
	}
	m.touched = m.touched[:0]
	m.armStreams(now)
	m.flushLogs()
	m.resetTimer(now)
}

// touchStream marks st for arming once the current batch is done: every
// stream step's effects pass through afterStore, which calls it, and so
// do a stream's creation, recovery and update (setLinks).
func (m *Manager) touchStream(st *stream) {
	if !st.touched {
		st.touched = true
		m.touchedStreams = append(m.touchedStreams, st)
	}
}

// armStreams brings streamsAt forward to the touched streams' next
// deadlines. A step can only make a stream's deadline earlier by adding
// something that waits (an id, a TTL, a first message under max_age, a
// schedule, a batch) or by a new config; one that moves it later (an
// expiry, a purge) costs at most one early tick, which computes all of
// them again (tickStreams). Changed links are looked at once, at once.
func (m *Manager) armStreams(now time.Time) {
	for i, st := range m.touchedStreams {
		m.touchedStreams[i] = nil
		st.touched = false
		if m.streams[st.cfg.Name] == st {
			m.streamsAt = earliest(m.streamsAt, st.armDeadline(now))
		}
	}
	m.touchedStreams = m.touchedStreams[:0]
	if m.linksChanged {
		m.linksChanged = false
		m.streamsAt = earliest(m.streamsAt, now)
	}
}

// linksDue is when the links next need a look: after streamTick while
// one is failing (its origin missing, a copy refused) or, in tests that
// pace them, behind; after linkRefresh while any exists; zero without
// links.
func (m *Manager) linksDue(now time.Time) time.Time {
	some := false
	for _, st := range m.streams {
		for _, l := range st.links {
			paced := linkPaced.Load() && l.ext == nil && l.lag > 0 && !st.cfg.Sealed // tickLinks reports no paced link behind
			if l.err != nil || paced {
				return now.Add(streamTick.Load().(time.Duration))
			}
			some = true
		}
	}
	if some {
		return now.Add(linkRefresh)
	}
	return time.Time{}
}

// earliest is the earlier of two deadlines, zero standing for none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

// resetTimer arms the timer for the earliest deadline when it is not
// already armed for it or earlier.
func (m *Manager) resetTimer(now time.Time) {
	at := m.streamsAt
	if len(m.wakes) > 0 {
		at = earliest(at, m.wakes[0].at)
	}
	if at.IsZero() || m.timer == nil {
		return
	}
	if !m.timerAt.IsZero() && !at.Before(m.timerAt) {
		return
	}
	m.timerAt = at
	m.timer.Reset(max(at.Sub(now), 0))
}

// fireDue ticks every consumer whose armed deadline is at or before now:
// one past its inactive threshold goes (with its advisory), the others
// get the time input (consumer_core.go: tick) and perform its effects.
func (m *Manager) fireDue(now time.Time) {
	m.armTouched(now) // steps taken outside run's batches (tests' rigs)
	m.timerAt = time.Time{}
	if m.timer != nil && !m.streamsAt.IsZero() && !m.streamsAt.After(now) {
		m.tickStreams(now) // run's timer stands for the streams' deadlines too
	}
	for len(m.wakes) > 0 && !m.wakes[0].at.After(now) {
		e := heap.Pop(&m.wakes).(wakeEntry)
		c := e.c
		if !e.at.Equal(c.armed) || !m.live(c) {
			continue // superseded by an earlier one, or gone
		}
		c.armed = time.Time{}
		m.touch(c) // armed again below, whatever the tick does
		if m.inactive(c, now) {
			m.deleteConsumer(c)
			m.adviseConsumer(advConsumerDeleted, actionDelete, c)
			continue
		}
		m.tickConsumer(c, now)
	}
	m.armTouched(now)
}

// wakeAt is when c next needs the time input, or zero: nextDeadline
// without the scan of pending (ackDue stands for it), and a poll while
// c is stalled.
func (c *consumer) wakeAt(now time.Time) time.Time {
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
	if len(c.pending) > 0 && !c.ackDue.IsZero() {
		soonest(c.ackDue.Add(time.Nanosecond)) // due once now is after it
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
	if c.stalled && len(c.waiting) > 0 {
		soonest(now.Add(consumerPoll))
	}
	return at
}

// noteDue keeps ackDue at or before every pending ack deadline: called
// wherever one is set.
func (c *consumer) noteDue(t time.Time) {
	if c.ackDue.IsZero() || t.Before(c.ackDue) {
		c.ackDue = t
	}
}

// pendingDue is the earliest ack deadline among pending deliveries not
// already queued again; zero when there is none.
func (c *consumer) pendingDue() time.Time {
	var at time.Time
	for seq, p := range c.pending {
		if (at.IsZero() || p.deadline.Before(at)) && !c.isQueued(seq) {
			at = p.deadline
		}
	}
	return at
}
