package loop

// Concurrency: a bigBuf is filled by the loop that forwards it (forward),
// then belongs to the destination loop from the moment its batch is pushed
// into that loop's inbox (inbox.mu orders the two): refs, head and the
// release are touched only there, with no lock. A loop's free lists
// (chunkPool.big) are touched only by that loop's goroutine. Surplus and
// shortfall move between loops in groups through bigDepot, whose mu (a
// leaf) guards its lists.

import "sync"

// Large payloads cross loops by reference. A payload of at least bigMin
// bytes forwarded to another loop is copied once, into a bigBuf of its own
// (not into the batch); the destination loop hands that buffer to a
// plaintext subscriber's output as a borrowed chunk (outBuf.addRef), with
// the MSG line written into the room left in front of the payload, so the
// socket write (flushDirect's writev) reads the one copy. nats-server makes
// one copy per message too; the batch path made two (docs/PERFORMANCE.md,
// "Large payloads across loops").
//
// bigMin is where by reference costs less server CPU than the second copy.
// Measured with `go run ./bench` on 1:1 rows against the copying build in
// the same rounds (docs/PERFORMANCE.md, round 16): 16 KiB 0.91x the CPU
// per message, 8 KiB level, 4 KiB 1.24x (a buffer of its own and an iovec
// per message cost more than copying 4 KiB into 64 KiB chunks). A
// variable so that tests and benchmarks can move it; set only before a
// server starts.
var bigMin = 16 << 10

// bigBuf is one forwarded payload. Layout: b[:off] is room for a MSG line,
// b[off:end-2] the payload, b[end-2:end] CRLF. Owned by the forwarding
// loop until its batch is pushed, then by the destination loop.
type bigBuf struct {
	b        []byte // its whole capacity, a size class
	off, end int
	refs     int32 // the batch's reference, and one per output chunk borrowing it
	head     bool  // b[:off] holds a subscriber's MSG line already
	class    int8
}

// payload is the message as forwarded (headers and payload, no CRLF).
func (bb *bigBuf) payload() []byte { return bb.b[bb.off : bb.end-2] }

// bigHeadRoom is what forward keeps in front of a payload beyond its subject
// and reply for the rest of a MSG/HMSG line (verb, sid, sizes); a line that
// does not fit (a long sid) is copied instead.
const bigHeadRoom = 80

// Size classes, two per octave from 8 KiB to 2 MiB: at most a third of a
// buffer is room. A larger message is copied into the batch as before.
var bigSizes = func() []int {
	var s []int
	for n := 8 << 10; n <= 2<<20; n *= 2 {
		s = append(s, n)
		if n < 2<<20 {
			s = append(s, n+n/2)
		}
	}
	return s
}()

const bigClasses = 17 // len(bigSizes)

// Free buffers are kept by bytes: a loop keeps up to bigLoopKeep of them,
// the depot up to bigDepotKeep; what is past both goes to the GC. They move
// between a loop and the depot bigMoveBytes at a time (at least one
// buffer), so in steady state a loop takes the depot's lock once per that
// many bytes forwarded or released. The budgets cover what flow control
// lets one subscriber hold (its high-water mark, 8 MiB by default, plus
// what waits in an inbox), so a steady stream to it reuses its buffers
// instead of allocating and collecting them; the chunk pools keep about as
// much (outbuf.go: maxPooledChunks).
const (
	bigLoopKeep  = 8 << 20
	bigDepotKeep = 16 << 20
	bigMoveBytes = 1 << 20
)

// bigFree is a set of free buffers by class with their total size.
type bigFree struct {
	lists [bigClasses][]*bigBuf
	bytes int
}

// move takes up to k buffers of class cl from f into t (t nil: drops them).
func (f *bigFree) move(t *bigFree, cl, k int) {
	l := f.lists[cl]
	k = min(k, len(l))
	if t != nil {
		t.lists[cl] = append(t.lists[cl], l[len(l)-k:]...)
		t.bytes += k * bigSizes[cl]
	}
	clear(l[len(l)-k:])
	f.lists[cl] = l[:len(l)-k]
	f.bytes -= k * bigSizes[cl]
}

// bigMove is how many buffers of class cl move at once.
func bigMove(cl int) int { return max(1, bigMoveBytes/bigSizes[cl]) }

// bigClass returns the smallest class that holds n bytes, or -1.
func bigClass(n int) int {
	for i, s := range bigSizes {
		if n <= s {
			return i
		}
	}
	return -1
}

// bigDepot is where loops leave the buffers they free beyond bigLoopKeep
// and take more when they run out. Locking rule: mu guards free.
var bigDepot struct {
	mu   sync.Mutex
	free bigFree
}

// getBig returns a free buffer of at least n bytes, or nil when n is past
// the largest class. Called on the pool's loop.
func (p *chunkPool) getBig(n int) *bigBuf {
	cl := bigClass(n)
	if cl < 0 {
		return nil
	}
	if len(p.big.lists[cl]) == 0 {
		bigDepot.mu.Lock()
		bigDepot.free.move(&p.big, cl, bigMove(cl))
		bigDepot.mu.Unlock()
	}
	if l := p.big.lists[cl]; len(l) > 0 {
		bb := l[len(l)-1]
		l[len(l)-1] = nil
		p.big.lists[cl] = l[:len(l)-1]
		p.big.bytes -= bigSizes[cl]
		return bb
	}
	return &bigBuf{b: make([]byte, bigSizes[cl]), class: int8(cl)}
}

// release drops one reference to bb; the last returns it to p (the pool of
// the loop that owns bb).
func (bb *bigBuf) release(p *chunkPool) {
	if bb.refs--; bb.refs > 0 {
		return
	}
	cl := int(bb.class)
	p.big.lists[cl] = append(p.big.lists[cl], bb)
	p.big.bytes += bigSizes[cl]
	if p.big.bytes <= bigLoopKeep {
		return
	}
	k := bigMove(cl)
	bigDepot.mu.Lock()
	if bigDepot.free.bytes+k*bigSizes[cl] <= bigDepotKeep {
		p.big.move(&bigDepot.free, cl, k)
	} else {
		p.big.move(nil, cl, k)
	}
	bigDepot.mu.Unlock()
}

// fill copies msg into bb after the room for a line and CRLF after it; bb
// then holds the batch's one reference.
func (bb *bigBuf) fill(msg []byte) {
	bb.end = len(bb.b)
	bb.off = bb.end - 2 - len(msg)
	copy(bb.b[bb.off:], msg)
	bb.b[bb.end-2], bb.b[bb.end-1] = '\r', '\n'
	bb.refs, bb.head = 1, false
}
