package loop

// Concurrency: forward, sendBatches and drain run on the owning loop;
// receive, inject, queued and wake on any goroutine. inbox.mu guards batches
// and open; it is held only to append or swap them, and inject takes
// batchFree.mu (a leaf) under it. bytes and scheduled are atomics.

import (
	"sync"
	"sync/atomic"
	"time"
)

// maxBatchBytes hands a batch over early when a tick forwards a lot, to bound
// memory and latency. Batches are allocated with room for it plus one more
// typical message, so their buffers do not grow in steady state.
const (
	maxBatchBytes = 256 << 10
	batchCap      = maxBatchBytes + 64<<10
	maxFreeBatch  = 256
)

// batch carries messages from one loop to another: each message is copied
// once into buf (a large payload into a bigBuf of its own, bigbuf.go),
// whatever the number of subscribers it reaches there.
// Owned by the sending loop until pushed, then by the receiving loop.
type batch struct {
	buf      []byte
	msgs     []fwdMsg
	bigBytes int // payload bytes in the msgs' bigBufs
	// sink is the one client every message of the batch goes to (plain
	// subscriptions only, payloads of bigMin or more), nil when there are
	// others, none or a smaller payload: while its socket is full the batch
	// can wait for its OnWritable (receive). Small messages are left out:
	// a megabyte of them takes the drain milliseconds to format, time in
	// which the socket that just made room would be written nothing (pub/sub
	// 1:1 16 B ran 0.91x main's msgs/s with them held too).
	sink *client
}

// size is what the batch holds, for the early hand-over and the inbox's
// flow-control count.
func (b *batch) size() int { return len(b.buf) + b.bigBytes }

// fwdMsg is one forwarded message; its byte fields are offsets into buf.
// When big is set the message is big's payload (msgEnd == replyEnd).
type fwdMsg struct {
	subs                      []*routerSub // plain: all owned by the receiving loop; queue: the group
	q                         qpick        // queue: subs[q.pick] is owned by the receiving loop
	subjEnd, replyEnd, msgEnd int
	hdrLen                    int
	big                       *bigBuf
}

// batchFree recycles batches between loops without allocating; sync.Pool
// would drop them at every GC and make their buffers grow again.
// Locking rule: mu guards list.
var batchFree struct {
	mu   sync.Mutex
	list []*batch
}

func getBatch() *batch {
	batchFree.mu.Lock()
	defer batchFree.mu.Unlock()
	if n := len(batchFree.list); n > 0 {
		b := batchFree.list[n-1]
		batchFree.list = batchFree.list[:n-1]
		return b
	}
	return &batch{buf: make([]byte, 0, batchCap)}
}

func putBatch(b *batch) {
	b.buf = b.buf[:0]
	b.bigBytes = 0
	b.sink = nil
	clear(b.msgs)
	b.msgs = b.msgs[:0]
	if cap(b.buf) > 4*batchCap {
		return // one huge message grew it; let it go
	}
	batchFree.mu.Lock()
	if len(batchFree.list) < maxFreeBatch {
		batchFree.list = append(batchFree.list, b)
	}
	batchFree.mu.Unlock()
}

// inbox is a loop's queue of batches from other loops.
// Locking rule: mu guards batches; scheduled is set by the pusher that must
// wake the loop (0 -> 1) and cleared by the loop before it drains.
type inbox struct {
	mu        sync.Mutex
	batches   []*batch
	spare     []*batch // the drained list, emptied, swapped back in by the next drain; owned by the loop
	open      *batch   // the batch outside publishers append to (also in batches); guarded by mu
	scheduled atomic.Bool

	// bytes counts what waits in batches; past the high-water mark the
	// gate closes for publishers on other loops until the next drain.
	bytes atomic.Int64
	_     [cacheLine]byte // gate.state is read per message, bytes written per batch
	gate  flowGate
}

// queued records n more bytes waiting; called by pushers after adding them
// and before waking the loop, so that a drain always follows a closing.
func (lp *evLoop) queued(n int) {
	if lp.inbox.bytes.Add(int64(n)) > int64(lp.srv.flowHigh()) {
		lp.inbox.gate.state.CompareAndSwap(flowOK, flowOver)
	}
}

// forward copies a message into the batch for loop dst, to be delivered there
// to subs (to one member of group subs when qp.left > 0).
func (lp *evLoop) forward(dst int, subs []*routerSub, qp qpick, subject, reply []byte, hdrLen int, msg []byte) {
	b := lp.out[dst]
	if b == nil {
		b = getBatch()
		lp.out[dst] = b
	}
	if len(msg) >= bigMin {
		b.addBig(&lp.pool, subs, qp, subject, reply, hdrLen, msg)
	} else {
		b.add(subs, qp, subject, reply, hdrLen, msg)
	}
	var sink *client
	if qp.left == 0 && len(subs) == 1 && len(msg) >= bigMin {
		sink = subs[0].Owner.c // nil for an internal subscription or a link's
	}
	if len(b.msgs) == 1 {
		b.sink = sink
	} else if b.sink != sink {
		b.sink = nil
	}
	switch {
	case b.size() >= maxBatchBytes:
		lp.sendBatch(dst)
	case lp.inTraffic:
		lp.forwarded = true // OnTraffic sends it when the read is done
	default:
		lp.scheduleFlush()
	}
}

// add copies one message into the batch.
func (b *batch) add(subs []*routerSub, qp qpick, subject, reply []byte, hdrLen int, msg []byte) {
	b.buf = append(b.buf, subject...)
	subjEnd := len(b.buf)
	b.buf = append(b.buf, reply...)
	replyEnd := len(b.buf)
	b.buf = append(b.buf, msg...)
	b.msgs = append(b.msgs, fwdMsg{subs: subs, q: qp, subjEnd: subjEnd, replyEnd: replyEnd, msgEnd: len(b.buf), hdrLen: hdrLen})
}

// addBig adds one message whose payload goes into a bigBuf from pool (the
// forwarding loop's), or into the batch when it is too large for one.
func (b *batch) addBig(pool *chunkPool, subs []*routerSub, qp qpick, subject, reply []byte, hdrLen int, msg []byte) {
	bb := pool.getBig(len(msg) + 2 + len(subject) + len(reply) + bigHeadRoom)
	if bb == nil {
		b.add(subs, qp, subject, reply, hdrLen, msg)
		return
	}
	bb.fill(msg)
	b.buf = append(b.buf, subject...)
	subjEnd := len(b.buf)
	b.buf = append(b.buf, reply...)
	replyEnd := len(b.buf)
	b.bigBytes += len(msg)
	b.msgs = append(b.msgs, fwdMsg{subs: subs, q: qp, subjEnd: subjEnd, replyEnd: replyEnd, msgEnd: replyEnd, hdrLen: hdrLen, big: bb})
}

// sendBatches pushes every batch built this tick.
func (lp *evLoop) sendBatches() {
	for dst, b := range lp.out {
		if b != nil {
			lp.sendBatch(dst)
		}
	}
}

// sendBatch pushes the batch for dst into its inbox and wakes dst only if it
// is not already due to drain: one wakeup per batch at most.
func (lp *evLoop) sendBatch(dst int) {
	b := lp.out[dst]
	lp.out[dst] = nil
	lp.tr.loops[dst].receive(b)
}

// drain delivers every batch waiting in the inbox, then flushes. A queue
// member that turns a message down passes it on (dispatch.go: queue).
func (lp *evLoop) drain() {
	t0 := time.Now()
	lp.draining = true
	defer func() { lp.draining = false }()
	lp.inbox.scheduled.Store(false) // a push after this wakes us again
	lp.inbox.mu.Lock()
	batches := lp.inbox.batches
	lp.inbox.batches = lp.inbox.spare // two lists taking turns: no allocation per drain
	lp.inbox.open = nil
	lp.inbox.mu.Unlock()
	// The flush at the end writes whatever the deliveries queue: no
	// client needs a flush task of its own (one more eventfd write and
	// loop round per drain).
	lp.flushScheduled = true
	n := 0
	d := delivery{origin: origin{lp: lp}}
	lp.mon.batches += uint64(len(batches))
	for _, b := range batches {
		n += b.size()
		lp.mon.batchMsgs += uint64(len(b.msgs))
		for i := range b.msgs {
			m := &b.msgs[i]
			start := 0
			if i > 0 {
				start = b.msgs[i-1].msgEnd
			}
			d.subject = b.buf[start:m.subjEnd]
			d.reply = b.buf[m.subjEnd:m.replyEnd]
			d.msg = b.buf[m.replyEnd:m.msgEnd]
			if d.big = m.big; d.big != nil {
				d.msg = d.big.payload()
			}
			d.hdrLen = m.hdrLen
			if m.q.left > 0 {
				d.queue(m.subs, m.q)
			} else {
				for _, rs := range m.subs {
					d.deliverHere(rs.Owner)
				}
			}
			if d.lk.l != nil {
				d.flushLink()
			}
			if d.big != nil {
				d.big.release(&lp.pool) // the batch's reference
				d.big = nil
			}
		}
		putBatch(b)
	}
	clear(batches)
	lp.inbox.spare = batches[:0]
	lp.inbox.bytes.Add(-int64(n))
	if lp.inbox.gate.closed() {
		lp.inbox.gate.open(flowOK)
	}
	lp.mon.busy += time.Since(t0) // the flush counts its own
	lp.flush()
}
