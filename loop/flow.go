package loop

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// Flow control. A destination (a client's output, or a loop's inbox) whose
// pending bytes pass the high-water mark closes its gate; a publisher whose
// message went through a closed gate stops reading its socket (gnet:
// PauseRead after the current read; goroutine transport: its reader blocks)
// and waits at the gate until the destination drains below the low-water
// mark. A client gate that sees no bytes accepted by its socket for the
// stall window while closed (time the server ran to see it: stallCredit) is
// marked stalled: its waiters are let go and publishers no longer wait for
// it; it buffers up to max_pending and is cut as a slow consumer beyond that
// or after write_deadline without progress.
//
// Concurrency: a gate's state is written by its owner (the client's
// context: its loop, or under its outLock; for a loop inbox, pushers and the
// loop, see inbox.go) and read by any publisher. mu guards waiters, and
// state changes that open the gate, so that a publisher registering under
// mu either sees the gate open or is resumed by the opener. mu is a leaf,
// taken alone by publishers (add) and under the destination's outLock by
// openers (flowProgress, markSlow, cleanup); waiters are resumed after it
// is released.
const (
	flowOK      int32 = iota
	flowOver          // above the high-water mark: publishers wait
	flowStalled       // its socket accepts nothing: publishers no longer wait
)

// The marks and the stall window are options (flow_high_water,
// flow_low_water, flow_stall_window; options.go). Their defaults:
//   - high-water mark min(max_pending/4, 8 MiB): enough to keep a fast
//     subscriber's socket busy through a publisher's pause and resume,
//     small against max_pending;
//   - low-water mark: half of it;
//   - stall window 100 ms: how long a closed gate may see no bytes accepted
//     by its socket before its publishers are let go: far above a reading
//     client's gaps between reads (a GC pause, a scheduling hiccup on a
//     busy host), far below what costs a publisher a noticeable share of
//     its rate when a subscriber stops reading for good.
const (
	// A loop re-checks its closed gates (gnet has no callback when a
	// socket drains) when it expects the first to reach the low-water mark
	// at the drain rate seen since the last check, within these bounds:
	// each check is a timer and a loop wakeup, a few µs, so a fixed fast
	// poll would cost a few percent of a loop's CPU.
	flowRecheckMin   = 250 * time.Microsecond
	flowRecheckFirst = time.Millisecond
	flowRecheckMax   = 10 * time.Millisecond
)

const cacheLine = 64

// flowGate is where publishers wait for one destination.
type flowGate struct {
	state   atomic.Int32
	owner   *client // the destination client; nil for a loop inbox
	mu      sync.Mutex
	waiters []*client
	// Internal publishers (JetStream push consumers) waiting: each is a
	// function that queues the publisher's resumption; it must not block.
	// They wait through a stall too, until the owner drains below the
	// low-water mark or goes: one holds up nobody but itself.
	notify []func()
	// While internal publishers wait at a client gate, a timer re-checks
	// its owner every stall window in the owner's context (a stalled gate
	// is watched by nobody else, and on the goroutine transport an over
	// one only by waiting readers and by the writer between writes).
	// watch and watchArmed are guarded by mu.
	watch      *time.Timer
	watchArmed bool
	// gone: the owner has closed; no internal publisher may start waiting
	// (nobody would open the gate again). Guarded by mu.
	gone bool
}

// closed reports whether publishers must wait.
func (g *flowGate) closed() bool { return g.state.Load() == flowOver }

// add registers publisher p; false when the gate has opened meanwhile.
func (g *flowGate) add(p *client) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state.Load() != flowOver {
		return false
	}
	g.waiters = append(g.waiters, p)
	return true
}

// addFunc registers an internal publisher's resume function at a gate
// that is closed or stalled; false when it is open. resume runs once,
// when the gate opens or its owner goes.
func (g *flowGate) addFunc(resume func()) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state.Load() == flowOK || g.gone {
		return false
	}
	g.notify = append(g.notify, resume)
	if d := g.owner; d != nil && !g.watchArmed {
		g.watchArmed = true
		if g.watch == nil {
			check := d.watchGate
			g.watch = time.AfterFunc(d.srv.opts.FlowStallWindow, func() { d.t.run(check) })
		} else {
			g.watch.Reset(d.srv.opts.FlowStallWindow)
		}
	}
	return true
}

// watchGate re-checks c's gate for its internal waiters, in c's context
// (client.run), every stall window until it opens. run skips it once c is
// closed: cleanup has released them then.
func (c *client) watchGate() {
	c.flowProgress(time.Now())
	g := &c.fc.gate
	g.mu.Lock()
	if g.state.Load() != flowOK && len(g.notify) > 0 {
		g.watch.Reset(c.srv.opts.FlowStallWindow)
	} else {
		g.watchArmed = false
	}
	g.mu.Unlock()
}

// open sets state (flowOK or flowStalled) and resumes every waiter.
func (g *flowGate) open(state int32) {
	g.mu.Lock()
	g.set(state)
	w, fns := g.waiters, g.notify
	g.waiters, g.notify = nil, nil
	g.mu.Unlock()
	if len(w) > 0 {
		resumeWaiters(w)
	}
	for _, fn := range fns {
		fn()
	}
}

// set changes the state of a gate, keeping its loop's count of closed
// client gates (evLoop.closedGates) true; in the owner's context, and
// under mu when it opens the gate. The count goes up before the state
// closes: a publisher that reads it as 0 then misses at most the message
// it is on.
func (g *flowGate) set(state int32) {
	var n *atomic.Int32
	if o := g.owner; o != nil && o.lp != nil {
		n = &o.lp.closedGates
	}
	if state == flowOver && n != nil && g.state.Load() != flowOver {
		n.Add(1)
	}
	if g.state.Swap(state) == flowOver && state != flowOver && n != nil {
		n.Add(-1)
	}
}

// stall marks the gate stalled and lets its publishers go; internal
// waiters stay (see notify).
func (g *flowGate) stall() {
	g.mu.Lock()
	g.set(flowStalled)
	w := g.waiters
	g.waiters = nil
	g.mu.Unlock()
	if len(w) > 0 {
		resumeWaiters(w)
	}
}

// flowState is a client's flow-control state, as destination and as
// publisher. Owned as the client's "out" fields are, except where noted.
type flowState struct {
	// gate.state is read by publishers on other loops for every message:
	// keep it off the cache lines the owner writes per message (scratch,
	// out) and per pause (the publisher fields below).
	_    [cacheLine]byte
	gate flowGate
	// sockFull (gnet, plaintext): a direct write left output waiting and
	// OnWritable will follow, which drains the loop's inbox first; another
	// loop forwarding only to this client may then push its batch without
	// waking the loop (inbox.go: receive). Written by the owning loop on
	// each transition, read once per batch by the others.
	sockFull atomic.Bool
	_        [cacheLine]byte
	lastAcc  int       // bytes accepted by the socket at the last progress
	lastProg time.Time // when accepted bytes last grew
	// Stall time: while closed without progress, each check adds the time
	// since the one before, at most stallCredit (see flowProgress).
	lastCheck time.Time
	idle      time.Duration
	next      time.Duration // gnet: when to re-check a closed gate
	watched   bool          // on its loop's congested list (gnet)
	high      int           // the high-water mark, below max_pending

	// As a publisher; owned by the client's reader (its loop, or reader
	// goroutine).
	wait       *flowGate   // the gate it waits at; nil when running
	readPaused bool        // gnet: PauseRead is in force
	paused     atomic.Bool // for tick: pings go unanswered while paused
	wake       chan struct{}
}

func (s *Server) flowHigh() int { return s.opts.FlowHighWater }
func (s *Server) flowLow() int  { return s.opts.FlowLowWater }

// holdFor makes publisher c wait at g if g is closed; c stops reading when
// its current read is parsed. A publisher waits at one gate at a time.
// Inlined on the delivery path: the common case is two loads. c is not nil.
func (c *client) holdFor(g *flowGate) {
	if c.fc.wait == nil && g.closed() {
		c.waitAt(g)
	}
}

func (c *client) waitAt(g *flowGate) {
	if g.add(c) {
		c.fc.wait = g
		c.fc.paused.Store(true)
	}
}

// accepted is how many bytes c's socket has taken, given its pending p.
func (c *client) accepted(p int) int { return c.out.total - p }

// afterDeliver runs in c's context after output was queued for it:
// max_pending, then the high-water mark. The common case is a compare and a
// load of c's own state.
func (c *client) afterDeliver() {
	if p := c.out.size + c.t.pendingOut(); p > c.fc.high || c.fc.gate.state.Load() != flowOK {
		c.flowCheck(p)
		return
	}
	c.t.flushSoon()
}

// flowCheck is afterDeliver's slow path; it reports false if c was cut.
func (c *client) flowCheck(p int) bool {
	if p > c.srv.opts.MaxPending {
		c.markSlow(reasonSlowPendingBytes, "max pending of "+strconv.Itoa(c.srv.opts.MaxPending)+" exceeded")
		return false
	}
	switch st := c.fc.gate.state.Load(); {
	case st == flowStalled && c.accepted(p) == c.fc.lastAcc:
		// still not reading: publishers do not wait for it
	case st != flowOver && p > c.fc.high: // over the mark, or a stalled one reading again
		now := time.Now()
		c.fc.lastAcc, c.fc.lastProg, c.fc.next = c.accepted(p), now, flowRecheckFirst
		c.fc.lastCheck, c.fc.idle = now, 0
		c.fc.gate.set(flowOver)
		c.watchFlow()
	case st == flowStalled: // reading again, below the mark
		c.fc.gate.open(flowOK) // internal waiters may wait through a stall
	}
	c.t.flushSoon()
	return true
}

// watchFlow has c's loop re-check c's gate until it opens (gnet; on the
// goroutine transport its writer and waiting publishers check).
func (c *client) watchFlow() {
	if c.lp != nil && !c.fc.watched {
		c.fc.watched = true
		c.lp.congested = append(c.lp.congested, c)
		c.lp.armRecheck(c.fc.next)
	}
}

// flowProgress re-checks c's closed or stalled gate in c's context: open
// when drained below the low-water mark, stalled when its socket took
// nothing for the stall window while closed. It reports whether the gate is
// still closed (a stalled gate is not: its loop stops watching it).
func (c *client) flowProgress(now time.Time) bool {
	st := c.fc.gate.state.Load()
	if st == flowOK {
		return false
	}
	p := c.out.size + c.t.pendingOut()
	if p < c.srv.flowLow() || c.closed {
		c.fc.gate.open(flowOK)
		return false
	}
	if st == flowStalled {
		return false
	}
	if acc := c.accepted(p); acc != c.fc.lastAcc {
		// Expect the low-water mark at the rate seen since the last progress.
		c.fc.next = flowRecheckMax
		if dt := now.Sub(c.fc.lastProg); dt > 0 {
			c.fc.next = time.Duration(float64(dt) * float64(p-c.srv.flowLow()) / float64(acc-c.fc.lastAcc))
		}
		c.fc.lastAcc, c.fc.lastProg = acc, now
		c.fc.lastCheck, c.fc.idle = now, 0
		return true
	}
	c.fc.next = flowRecheckMax
	c.fc.idle += min(now.Sub(c.fc.lastCheck), c.stallCredit())
	c.fc.lastCheck = now
	if c.fc.idle >= c.srv.opts.FlowStallWindow {
		c.srv.Debugf("client %d: stalled with %d bytes pending; publishers no longer wait for it", c.id, p)
		c.fc.gate.stall()
		return false
	}
	return true
}

// stallCredit is the most one check adds to a closed gate's stall time. A
// check that comes much later than it was due means this process was not
// running (the host is overloaded, a long GC pause), so the subscriber had
// no chance to be seen reading: the stall window counts time the server
// was watching, not time it was starved. gnet loops check every
// flowRecheckMax at most; the goroutine transport every half window.
func (c *client) stallCredit() time.Duration {
	if c.lp != nil {
		return 2 * flowRecheckMax
	}
	return c.srv.opts.FlowStallWindow / 2
}

// writeDeadlineExpired reports, from c's per-second tick on a loop, whether
// c's socket has taken none of its pending output for write_deadline.
func (c *client) writeDeadlineExpired(now time.Time) bool {
	p := c.out.size + c.t.pendingOut()
	if p == 0 {
		c.fc.lastProg = now
		return false
	}
	if acc := c.accepted(p); acc != c.fc.lastAcc || c.fc.lastProg.IsZero() {
		c.fc.lastAcc, c.fc.lastProg = acc, now
		return false
	}
	return now.Sub(c.fc.lastProg) >= c.srv.opts.WriteDeadline
}

// resumeWaiters lets publishers read again: on gnet one task per loop
// resumes that loop's publishers; on the goroutine transport each reader
// is woken.
func resumeWaiters(w []*client) {
	var byLoop map[*evLoop][]*client
	for _, p := range w {
		if p.lp == nil {
			select {
			case p.fc.wake <- struct{}{}:
			default:
			}
			continue
		}
		if byLoop == nil {
			byLoop = make(map[*evLoop][]*client, 1)
		}
		byLoop[p.lp] = append(byLoop[p.lp], p)
	}
	for lp, list := range byLoop {
		_ = lp.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			for _, p := range list {
				p.resumeRead()
			}
			return nil
		}))
	}
}

// resumeRead runs on p's loop: p reads again.
func (p *client) resumeRead() {
	p.fc.wait = nil
	p.fc.paused.Store(false)
	if !p.fc.readPaused {
		return
	}
	p.fc.readPaused = false
	if g := p.t.(*gnetConn); !g.gone {
		_ = g.conn.ResumeRead()
	}
}

// pauseIfWaiting runs on p's loop after its read was parsed: if a message
// went through a closed gate, stop reading until the gate opens.
func (p *client) pauseIfWaiting(gc gnet.Conn) {
	if p.fc.wait != nil && !p.fc.readPaused {
		if gc.PauseRead() == nil {
			p.fc.readPaused = true
		}
	}
}

// releaseFlow opens c's gate when c goes away, so nobody waits for it.
// Once c is closed, internal publishers may not start waiting at it either:
// one holding a match made before c's subscriptions were removed would
// wait for good.
func (c *client) releaseFlow() {
	if c.closed {
		c.fc.gate.mu.Lock()
		c.fc.gate.gone = true
		c.fc.gate.mu.Unlock()
	}
	if c.fc.gate.state.Load() != flowOK {
		c.fc.gate.open(flowStalled)
	}
}

// armRecheck schedules a re-check of the loop's congested clients in d
// (bounded), unless one is already due.
func (lp *evLoop) armRecheck(d time.Duration) {
	if lp.recheckArmed {
		return
	}
	lp.recheckArmed = true
	d = min(max(d, flowRecheckMin), flowRecheckMax)
	if lp.recheckTimer == nil {
		lp.recheckTimer = time.AfterFunc(d, func() {
			_ = lp.el.Execute(context.Background(), lp.recheckTask) // fails only once the engine stops
		})
		return
	}
	lp.recheckTimer.Reset(d)
}

// recheck runs on the loop: re-checks every congested client.
func (lp *evLoop) recheck() {
	lp.recheckArmed = false
	if len(lp.congested) == 0 {
		return
	}
	now := time.Now()
	keep := lp.congested[:0]
	next := flowRecheckMax
	for _, c := range lp.congested {
		if c.flowProgress(now) {
			keep = append(keep, c)
			next = min(next, c.fc.next)
		} else {
			c.fc.watched = false
		}
	}
	clear(lp.congested[len(keep):])
	lp.congested = keep
	if len(keep) > 0 {
		lp.armRecheck(next)
	}
}

// waitFlow blocks the goroutine transport's reader while its publisher
// waits at a gate, checking the destination's progress every half stall
// window (stallCredit).
func (g *goConn) waitFlow() {
	c := g.c
	defer func() {
		c.fc.wait = nil
		c.fc.paused.Store(false)
	}()
	gate := c.fc.wait
	window := g.t.srv.opts.FlowStallWindow / 2
	t := time.NewTimer(window)
	defer t.Stop()
	for {
		select {
		case <-c.fc.wake:
			return
		case <-g.done:
			return
		case now := <-t.C:
			if d := gate.owner; d != nil {
				d.t.outLock()
				d.flowProgress(now)
				open := !gate.closed()
				d.t.outUnlock()
				if open {
					return
				}
			}
			t.Reset(window)
		}
	}
}
