package loop

// Concurrency: an outBuf is guarded as its client's "out" fields (its loop,
// or outLock). chunkPool.mu guards the free lists: one pool per gnet loop
// (uncontended), one shared by the goroutine transport, taken under a
// client's outLock (write, reset) and by writers after a write (put); a
// leaf.

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
type outBuf struct {
	pool   *chunkPool
	chunks [][]byte
	head   int // bytes of chunks[0] already written (peek/consume)
	size   int // bytes pending, head excluded
	total  int // bytes ever written; total-size-(transport pending) went out
}

// write appends p, spilling into new chunks as they fill.
func (o *outBuf) write(p []byte) {
	o.size += len(p)
	o.total += len(p)
	for len(p) > 0 {
		n := len(o.chunks)
		if n == 0 || len(o.chunks[n-1]) == cap(o.chunks[n-1]) {
			o.chunks = append(o.chunks, o.pool.get(n))
			n++
		}
		last := o.chunks[n-1]
		k := copy(last[len(last):cap(last)], p)
		o.chunks[n-1] = last[:len(last)+k]
		p = p[k:]
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
		o.pool.put(o.chunks[:done])
		rest := copy(o.chunks, o.chunks[done:])
		clear(o.chunks[rest:])
		o.chunks = o.chunks[:rest]
	}
}

// reset drops everything pending.
func (o *outBuf) reset() {
	o.pool.put(o.chunks)
	clear(o.chunks)
	o.chunks = o.chunks[:0]
	o.size = 0
	o.head = 0
}
