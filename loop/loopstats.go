package loop

// Concurrency: loopCounters are plain fields of their evLoop, written only
// by that loop's goroutine (no atomics on the message path); loopStats
// reads them with a task on each loop, like eachClient.

import (
	"context"
	"slices"
	"sync"
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

// loopStats reads every bound loop's counters on that loop and waits.
func (t *gnetTransport) loopStats() []monitor.LoopStat {
	t.bindMu.Lock()
	bound := make([]*evLoop, 0, len(t.byEL))
	for _, lp := range t.byEL {
		bound = append(bound, lp)
	}
	t.bindMu.Unlock()
	out := make([]monitor.LoopStat, len(bound))
	var wg sync.WaitGroup
	for i, lp := range bound {
		wg.Add(1)
		st := &out[i]
		err := lp.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			defer wg.Done()
			m := &lp.mon
			*st = monitor.LoopStat{Index: lp.idx, Conns: len(lp.clients), Reads: m.reads, Flushes: m.flushes,
				Writevs: m.writevs, Iovecs: m.iovecs, InboxBatches: m.batches, InboxMsgs: m.batchMsgs, Busy: m.busy}
			return nil
		}))
		if err != nil {
			st.Index = lp.idx
			wg.Done()
		}
	}
	wg.Wait()
	slices.SortFunc(out, func(a, b monitor.LoopStat) int { return a.Index - b.Index })
	for i := range out {
		sh := t.srv.shard(out[i].Index)
		out[i].InMsgs, out[i].OutMsgs = sh.inMsgs.Load(), sh.outMsgs.Load()
	}
	return out
}

// loopStats: the goroutine transport has no event loops.
func (t *goTransport) loopStats() []monitor.LoopStat { return nil }
