package loop

// Concurrency: an outBuf is guarded as its client's "out" fields (its loop,
// or outLock). chunkPool.mu guards the free chunk lists: one pool per gnet
// loop (uncontended), one shared by the goroutine transport, taken under a
// client's outLock (write, reset) and by writers after a write (put); a
// leaf. chunkPool.big (bigbuf.go) is used only by a gnet loop's own pool,
// on that loop, without the lock.

import (
	"math"
	"sync"
)

// Outbound chunk sizes: a small first chunk keeps a large fan-out to many
// idle-ish clients cheap; later chunks are large so big bursts take few iovecs.
const (
	smallChunk = 4 << 10
	largeChunk = 64 << 10
	maxIovecs  = 1024 // writev limit (IOV_MAX on Linux)
)

// chunkPool recycles outbound chunks without allocating. Each event loop has
// its own (so its mutex is never contended); the goroutine transport shares
// one. Locking rule: mu guards both free lists.
type chunkPool struct {
	mu           sync.Mutex
	small, large [][]byte

	// big are free forwarded-payload buffers by size class (bigbuf.go);
	// gnet loops' pools only, owned by the loop, not guarded by mu.
	big bigFree
}

const maxPooledChunks = 1024

func (p *chunkPool) get(i int) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	free, size := &p.small, smallChunk
	if i > 0 {
		free, size = &p.large, largeChunk
	}
	if n := len(*free); n > 0 {
		c := (*free)[n-1]
		(*free)[n-1] = nil
		*free = (*free)[:n-1]
		return c
	}
	return make([]byte, 0, size)
}

// put returns chunks to the pool, keeping at most maxPooledChunks of each size.
func (p *chunkPool) put(chunks [][]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range chunks {
		switch cap(c) {
		case smallChunk:
			if len(p.small) < maxPooledChunks {
				p.small = append(p.small, c[:0])
			}
		case largeChunk:
			if len(p.large) < maxPooledChunks/8 {
				p.large = append(p.large, c[:0])
			}
		}
	}
}

// outBuf is a connection's pending output as a list of chunks, written with
// one writev per flush. Messages are copied in once; chunks go back to the
// pools after the write. Owned as the client's "out" fields are.
//
// A chunk may be borrowed instead: a forwarded large payload with its MSG
// line (addRef, bigbuf.go), referenced rather than copied and released
// once written. Only peek/consume (a plaintext gnet connection's direct
// writes) and reset see borrowed chunks; the other readers (take,
// takeBytes, unwrite) copy them into pooled chunks first (ownAll), which
// happens only for a closing connection's last write.
type outBuf struct {
	pool   *chunkPool
	chunks [][]byte
	// refs[i] is the buffer chunks[i] borrows, nil for a pooled chunk;
	// kept beside chunks only while nrefs > 0, empty otherwise.
	refs  []*bigBuf
	nrefs int
	head  int // bytes of chunks[0] already written (peek/consume)
	size  int // bytes pending, head excluded
	total int // bytes ever written; total-size-(transport pending) went out
}

// write appends p, spilling into new chunks as they fill.
func (o *outBuf) write(p []byte) {
	o.size += len(p)
	o.total += len(p)
	for len(p) > 0 {
		n := len(o.chunks)
		if n == 0 || len(o.chunks[n-1]) == cap(o.chunks[n-1]) {
			i := n
			if o.nrefs > 0 {
				if o.refs[n-1] != nil {
					i = 0 // after a borrowed chunk, a small one: often just the next MSG line
				}
				o.refs = append(o.refs, nil)
			}
			o.chunks = append(o.chunks, o.pool.get(i))
			n++
		}
		last := o.chunks[n-1]
		k := copy(last[len(last):cap(last)], p)
		o.chunks[n-1] = last[:len(last)+k]
		p = p[k:]
	}
}

// addRef appends b, which lies in bb, as a borrowed chunk: bb gets one
// more reference, dropped when b has been written or dropped. Nothing is
// written into b afterwards (its capacity is cut to its length).
func (o *outBuf) addRef(b []byte, bb *bigBuf) {
	if o.nrefs == 0 {
		for range o.chunks {
			o.refs = append(o.refs, nil)
		}
	}
	o.chunks = append(o.chunks, b[:len(b):len(b)])
	o.refs = append(o.refs, bb)
	o.nrefs++
	bb.refs++
	o.size += len(b)
	o.total += len(b)
}

// ownAll copies the borrowed chunks into pooled ones and releases them, for
// the readers that hand chunks to the pool themselves. Rare (a closing
// connection's last write), so it may allocate.
func (o *outBuf) ownAll() {
	chunks, refs, head, size, total := o.chunks, o.refs, o.head, o.size, o.total
	o.chunks, o.refs, o.nrefs, o.head, o.size = nil, nil, 0, 0, 0
	for i, b := range chunks {
		if i == 0 {
			b = b[head:]
		}
		o.write(b)
	}
	o.size, o.total = size, total
	for i, b := range chunks {
		if refs[i] != nil {
			refs[i].release(o.pool)
		} else {
			o.pool.put([][]byte{b})
		}
	}
}

// Write is write as an io.Writer (a compressor's output, wsdeflate.go).
func (o *outBuf) Write(p []byte) (int, error) {
	o.write(p)
	return len(p), nil
}

// unwrite drops the last n (<= size) bytes written, handing chunks left
// empty back to the pool.
func (o *outBuf) unwrite(n int) {
	if o.nrefs > 0 {
		o.ownAll()
	}
	o.size -= n
	o.total -= n
	for n > 0 {
		last := len(o.chunks) - 1
		b := o.chunks[last]
		k := min(n, len(b))
		o.chunks[last] = b[:len(b)-k]
		n -= k
		if len(b) == k {
			o.pool.put(o.chunks[last:])
			o.chunks[last] = nil
			o.chunks = o.chunks[:last]
		}
	}
}

// take moves the pending chunks (at most maxIovecs) into dst and returns it;
// the caller writes them and hands them back with o.pool.put.
func (o *outBuf) take(dst [][]byte) [][]byte { return o.takeN(dst, maxIovecs) }

// takeN is take of at most max chunks.
func (o *outBuf) takeN(dst [][]byte, max int) [][]byte {
	dst, _ = o.takeBytes(dst, math.MaxInt, max)
	return dst
}

// takeBytes moves whole chunks from the front into dst while they fit in
// maxBytes, at most maxChunks (> 0) of them, and returns dst and the bytes
// taken. When the first chunk alone is longer (a WebSocket frame limit
// below the chunk size) it takes its first maxBytes, cut at their end so
// that the part taken never shares memory with the rest once the writer
// gives it back to the pool.
func (o *outBuf) takeBytes(dst [][]byte, maxBytes, maxChunks int) ([][]byte, int) {
	if o.nrefs > 0 {
		o.ownAll()
	}
	if o.head > 0 {
		// Part written by peek/consume: the rest goes; the chunk, resliced,
		// is not pooled (rare: a direct write cut short, then a close).
		o.chunks[0] = o.chunks[0][o.head:]
		o.head = 0
	}
	n, size := 0, 0
	for n < len(o.chunks) && n < maxChunks && size+len(o.chunks[n]) <= maxBytes {
		size += len(o.chunks[n])
		n++
	}
	if n == 0 && len(o.chunks) > 0 && maxChunks > 0 {
		b := o.chunks[0]
		o.chunks[0] = b[maxBytes:]
		o.size -= maxBytes
		return append(dst, b[:maxBytes:maxBytes]), maxBytes
	}
	dst = append(dst, o.chunks[:n]...)
	o.size -= size
	rest := copy(o.chunks, o.chunks[n:])
	clear(o.chunks[rest:])
	o.chunks = o.chunks[:rest]
	return dst, size
}

// peek is take that leaves the chunks in place, for a write that may take
// only part of them; consume then drops what was written.
func (o *outBuf) peek(dst [][]byte) [][]byte {
	n := min(len(o.chunks), maxIovecs)
	dst = append(dst, o.chunks[:n]...)
	if n > 0 {
		dst[len(dst)-n] = o.chunks[0][o.head:]
	}
	return dst
}

// consume drops the first n pending bytes, which the socket took, handing
// whole chunks back to the pool.
func (o *outBuf) consume(n int) {
	o.size -= n
	done := 0
	for done < len(o.chunks) {
		left := len(o.chunks[done]) - o.head
		if n < left {
			o.head += n
			break
		}
		n -= left
		o.head = 0
		done++
	}
	if done > 0 {
		if o.nrefs > 0 {
			o.release(done)
		}
		o.pool.put(o.chunks[:done])
		rest := copy(o.chunks, o.chunks[done:])
		clear(o.chunks[rest:])
		o.chunks = o.chunks[:rest]
	}
}

// release lets go of the borrowed chunks among the first n, leaving nil in
// their place for pool.put to skip, and drops those n from refs.
func (o *outBuf) release(n int) {
	for i, bb := range o.refs[:n] {
		if bb != nil {
			bb.release(o.pool)
			o.chunks[i] = nil
			o.nrefs--
		}
	}
	if o.nrefs == 0 {
		clear(o.refs)
		o.refs = o.refs[:0]
		return
	}
	rest := copy(o.refs, o.refs[n:])
	clear(o.refs[rest:])
	o.refs = o.refs[:rest]
}

// reset drops everything pending.
func (o *outBuf) reset() {
	if o.nrefs > 0 {
		o.release(len(o.chunks))
	}
	o.pool.put(o.chunks)
	clear(o.chunks)
	o.chunks = o.chunks[:0]
	o.size = 0
	o.head = 0
}
