package loop

// Concurrency: loopCounters are plain fields of their evLoop, written only
// by that loop's goroutine (no atomics on the message path). A scrape
// (loopStats) asks each loop for a copy through its loopPub: the loop
// answers at the end of its next read or flush (one atomic load per read
// or flush when nobody asks), and a loop with nothing to do is sent a task
// instead, as eachClient does.

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evnats/evnats/loop/monitor"
	"github.com/panjf2000/gnet/v2"
)

// loopCounters are one event loop's figures for /metrics.
type loopCounters struct {
	reads     uint64        // OnTraffic calls
	flushes   uint64        // end-of-tick flushes
	writevs   uint64        // writev calls
	iovecs    uint64        // buffers they carried
	batches   uint64        // inbox batches drained
	batchMsgs uint64        // messages in them
	busy      time.Duration // reading, draining and flushing

	pub loopPub
}

// loopPub hands the loop's counters to a scrape without waking the loop.
// The scraper holds mu, makes done, sets want, and reads snap once done
// delivers; the loop, or a task sent to it when it is idle, writes snap
// only after clearing want itself, and then signals done, once per want.
type loopPub struct {
	mu   sync.Mutex       // serialises scrapes of this loop; never taken by the loop
	want atomic.Bool      // a scrape waits for snap
	done chan struct{}    // capacity 1; made by the first scrape, before want is set
	snap monitor.LoopStat // written by the loop that cleared want, read after done
	// tasks counts the scrapes that found the loop idle and sent it a
	// task (for tests: a busy loop is not woken).
	tasks atomic.Uint64
}

// wrote counts one writev of n buffers.
func (m *loopCounters) wrote(n int) {
	m.writevs++
	m.iovecs += uint64(n)
}

// flushed counts a flush that began at t0.
func (m *loopCounters) flushed(t0 time.Time) {
	m.flushes++
	m.busy += time.Since(t0)
}

// publishMon answers a waiting scrape with the loop's counters; it costs
// one atomic load when none waits. Called by the loop goroutine at the end
// of a read or a flush.
func (lp *evLoop) publishMon() {
	p := &lp.mon.pub
	if !p.want.Load() || !p.want.CompareAndSwap(true, false) {
		return
	}
	m := &lp.mon
	p.snap = monitor.LoopStat{Index: lp.idx, Conns: len(lp.clients), Reads: m.reads, Flushes: m.flushes,
		Writevs: m.writevs, Iovecs: m.iovecs, InboxBatches: m.batches, InboxMsgs: m.batchMsgs, Busy: m.busy}
	p.done <- struct{}{}
}

// pubWait is how long a scrape waits for a loop to answer on its own
// before it sends the loop a task: a busy loop reads or flushes far more
// often than that, an idle one sleeps until woken.
const pubWait = 2 * time.Millisecond

// idleTimeout bounds the wait for a task sent to an idle loop.
const idleTimeout = 5 * time.Second

// loopStats reads every bound loop's counters, each copied by its loop.
func (t *gnetTransport) loopStats() []monitor.LoopStat {
	t.bindMu.Lock()
	bound := make([]*evLoop, 0, len(t.byEL))
	for _, lp := range t.byEL {
		bound = append(bound, lp)
	}
	t.bindMu.Unlock()
	slices.SortFunc(bound, func(a, b *evLoop) int { return a.idx - b.idx }) // one locking order for concurrent scrapes
	for _, lp := range bound {
		p := &lp.mon.pub
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.done == nil {
			p.done = make(chan struct{}, 1)
		}
		p.want.Store(true)
	}
	out := make([]monitor.LoopStat, len(bound))
	timer := time.NewTimer(pubWait)
	defer timer.Stop()
	expired := false
	var idle []int // loops that did not answer within pubWait
	for i, lp := range bound {
		p := &lp.mon.pub
		if !expired {
			select {
			case <-p.done:
				out[i] = p.snap
				continue
			case <-timer.C:
				expired = true
			}
		}
		select {
		case <-p.done:
			out[i] = p.snap
		default:
			idle = append(idle, i)
		}
	}
	for _, i := range idle {
		lp := bound[i]
		lp.mon.pub.tasks.Add(1)
		err := lp.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			lp.publishMon()
			return nil
		}))
		if err != nil && lp.mon.pub.want.CompareAndSwap(true, false) { // the loop has stopped: nobody will answer
			lp.mon.pub.snap = monitor.LoopStat{Index: lp.idx}
			lp.mon.pub.done <- struct{}{}
		}
	}
	for _, i := range idle {
		p := &bound[i].mon.pub
		select {
		case <-p.done:
		case <-time.After(idleTimeout): // a loop stopping with the task queued
			if p.want.CompareAndSwap(true, false) {
				p.snap = monitor.LoopStat{Index: bound[i].idx}
			} else {
				<-p.done // the loop is answering: take it, or the next scrape would read it
			}
		}
		out[i] = p.snap
	}
	for i := range out {
		sh := t.srv.shard(out[i].Index)
		out[i].InMsgs, out[i].OutMsgs = sh.inMsgs.Load(), sh.outMsgs.Load()
	}
	return out
}

// loopStats: the goroutine transport has no event loops.
func (t *goTransport) loopStats() []monitor.LoopStat { return nil }
