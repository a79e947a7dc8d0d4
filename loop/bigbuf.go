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
// bigMin is where by reference costs less CPU than the second copy; below
// it the copy is cheaper than a buffer of its own (BenchmarkHop). A
// variable so that tests and benchmarks can turn the path off; set only
// before a server starts.
var bigMin = 4 << 10

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

// bigKeep is how many buffers of a class a loop keeps free, and bigDepot 4x
// that: about 1 MiB a class (at least 2 buffers). Half of bigKeep move at
// once between a loop and the depot, so in steady state a loop takes the
// depot's lock once per bigKeep/2 forwarded (or released) buffers.
func bigKeep(class int) int { return max(2, (1<<20)/bigSizes[class]) }

// bigClass returns the smallest class that holds n bytes, or -1.
func bigClass(n int) int {
	for i, s := range bigSizes {
		if n <= s {
			return i
		}
	}
	return -1
}

// bigDepot is where loops leave the buffers they free beyond bigKeep and
// take more when they run out. Locking rule: mu guards free.
var bigDepot struct {
	mu   sync.Mutex
	free [bigClasses][]*bigBuf
}

// getBig returns a free buffer of at least n bytes, or nil when n is past
// the largest class. Called on the pool's loop.
func (p *chunkPool) getBig(n int) *bigBuf {
	cl := bigClass(n)
	if cl < 0 {
		return nil
	}
	free := &p.big[cl]
	if len(*free) == 0 {
		bigDepot.mu.Lock()
		d := &bigDepot.free[cl]
		k := min(len(*d), max(1, bigKeep(cl)/2))
		*free = append(*free, (*d)[len(*d)-k:]...)
		clear((*d)[len(*d)-k:])
		*d = (*d)[:len(*d)-k]
		bigDepot.mu.Unlock()
	}
	if n := len(*free); n > 0 {
		bb := (*free)[n-1]
		(*free)[n-1] = nil
		*free = (*free)[:n-1]
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
	free := &p.big[cl]
	*free = append(*free, bb)
	keep := bigKeep(cl)
	if len(*free) <= keep {
		return
	}
	k := max(1, keep/2)
	bigDepot.mu.Lock()
	d := &bigDepot.free[cl]
	room := max(0, 4*keep-len(*d))
	*d = append(*d, (*free)[len(*free)-min(k, room):]...)
	bigDepot.mu.Unlock()
	clear((*free)[len(*free)-k:]) // what the depot had no room for goes to the GC
	*free = (*free)[:len(*free)-k]
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
