package loop

// Concurrency: an evLoop is touched only by its gnet loop goroutine (event
// callbacks and tasks queued with Execute), except its inbox, which other
// loops and outside publishers push into (inbox.go). No locks here.

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/evnats/evnats/router"
	"github.com/panjf2000/gnet/v2"
)

// evLoop is evnats' state for one gnet reactor loop: its clients, match
// cache, dirty list and the batches it forwards to other loops. Owned by the
// loop goroutine, except inbox, which other loops push into.
type evLoop struct {
	idx   int
	srv   *Server
	tr    *gnetTransport
	el    gnet.EventLoop // set once, on the loop's first connection
	cache *matchCache    // of the global account $G (Server.sl)
	// accCaches are its caches of other accounts' sublists, made when a
	// client of that account connects here (account.go: cacheFor).
	accCaches map[*account]*matchCache
	pool      chunkPool
	rng       *rand.PCG

	clients        map[*client]struct{}
	dirty          []*client // clients with output to flush this tick
	flushScheduled bool      // a flush is due before the loop polls again (a task queued, or a drain under way)
	flushTask      gnet.Runnable
	iov, sent      [][]byte
	tlsPlain       []byte     // decrypted input of the TLS connection being read (tlsconn.go)
	wsz            wsDeflater // compresses its WebSocket connections' output at flush (wsdeflate.go)

	// out[i] is the batch being built this tick for loop i (nil for self).
	out []*batch
	// inTraffic is set while OnTraffic parses a read; forwarded records
	// that it built batches, which it sends as soon as the read is parsed:
	// waking the other loop then costs no flush task (and eventfd write)
	// on this one when nothing here is dirty. The other loop's inbox
	// still coalesces wakeups, one per batch at most.
	inTraffic, forwarded bool
	// links are the links given messages during this read with their
	// writers left asleep (Link.Forward with later); OnTraffic wakes each
	// once when the read is parsed.
	links []Link

	inbox     inbox
	drainTask gnet.Runnable
	draining  bool // drain is running (OnWritable drains too, never nested)

	mon loopCounters // what /metrics shows of the loop (loopstats.go)

	// Flow control (flow.go): clients over their high-water mark, re-checked
	// every flowRecheck while any is.
	congested []*client
	// closedGates counts this loop's clients whose gate is flowOver;
	// publishers on other loops read it for every message they forward
	// here and look at no subscriber's gate while it is 0 (one atomic load
	// per message when nothing is closed). Written by this loop only,
	// when a gate closes or opens (flowGate.set).
	closedGates  atomic.Int32
	recheckArmed bool
	recheckTimer *time.Timer
	recheckTask  gnet.Runnable
}

func newEvLoop(idx int, s *Server, t *gnetTransport) *evLoop {
	lp := &evLoop{
		idx:     idx,
		srv:     s,
		tr:      t,
		cache:   router.NewCache(s.sl, router.DefaultCacheSize),
		rng:     rand.NewPCG(uint64(idx)+1, 0x9e3779b97f4a7c15),
		clients: make(map[*client]struct{}),
		out:     make([]*batch, s.opts.Loops),
	}
	lp.flushTask = gnet.RunnableFunc(func(context.Context) error { lp.flush(); return nil })
	lp.drainTask = gnet.RunnableFunc(func(context.Context) error { lp.drain(); return nil })
	lp.recheckTask = gnet.RunnableFunc(func(context.Context) error { lp.recheck(); return nil })
	return lp
}

// scheduleFlush arranges one flush after the current batch of I/O events:
// gnet runs queued tasks once the loop has handled every ready socket.
func (lp *evLoop) scheduleFlush() {
	if lp.flushScheduled {
		return
	}
	lp.flushScheduled = true
	if err := lp.el.Execute(context.Background(), lp.flushTask); err != nil {
		lp.flushScheduled = false
	}
}

// flush ends a loop tick: hands forwarded batches to their loops, then
// writes every dirty client's output with one writev each.
func (lp *evLoop) flush() {
	t0 := time.Now()
	defer lp.publishMon()
	defer lp.mon.flushed(t0)
	lp.flushScheduled = false
	lp.sendBatches()
	for i := 0; i < len(lp.dirty); i++ { // closing may append; index, not range
		c := lp.dirty[i]
		c.dirty = false
		lp.iov = c.t.(*gnetConn).flush(lp.iov)
	}
	clear(lp.dirty)
	lp.dirty = lp.dirty[:0]
}

// wakeLater records that l must be woken when the current read is parsed.
func (lp *evLoop) wakeLater(l Link) {
	for _, x := range lp.links {
		if x == l {
			return
		}
	}
	lp.links = append(lp.links, l)
}

// wakeLinks wakes the links given messages during the read just parsed.
func (lp *evLoop) wakeLinks() {
	for _, l := range lp.links {
		l.Wake()
	}
	clear(lp.links)
	lp.links = lp.links[:0]
}

// randn returns a random index below n for queue member choice.
func (lp *evLoop) randn(n int) int {
	return int(lp.rng.Uint64() % uint64(n))
}

// goschedBeforeWait asks the loop to yield its thread once before it next
// blocks in epoll_wait (gnet patch 5), after the loop made a goroutine
// runnable, so that the goroutine runs at once. A nil loop (goroutine
// transport) or one not yet bound (tests' fake clients) does nothing.
func (lp *evLoop) goschedBeforeWait() {
	if lp != nil && lp.el != nil {
		lp.el.GoschedBeforeWait()
	}
}
