package router

// Concurrency: a Cache belongs to one goroutine (a gnet loop, a
// goroutine-transport client's reader, or the JetStream Manager through
// jsHost.Deliver) and takes no locks of its own; a miss walks the trie
// under the Sublist's shared lock (matchInto) into buffers the Cache owns,
// staleness is an atomic load of Sublist.gen.

import (
	"hash/maphash"
	"slices"
	"unsafe"
)

// DefaultCacheSize bounds a per-loop cache; past it the cache starts over,
// which keeps memory bounded under subject churn. Subjects published to
// once (unique inboxes) are not kept at all (see Cache).
const DefaultCacheSize = 4096

// MaxCachedSubject is the longest subject a cache keeps: a longer one is
// matched every time. Subjects may be 64 KiB (an MQTT topic) or 4 KiB (a
// NATS control line); caching them would let one client pin its share of
// DefaultCacheSize times that, on every loop, long after it left.
const MaxCachedSubject = 256

// cacheBytesPerEntry sets a cache's byte bound from its entry bound: what
// it holds (subjects and the slices of their results) stays under this
// times max entries. Normal traffic, short subjects matching a few
// subscriptions, stays far below it; past it the cache starts over, as
// past max entries.
const cacheBytesPerEntry = 1 << 10

// Cache memoizes Sublist matches for one event loop. It is owned by that
// loop's goroutine and takes no locks: staleness is detected by comparing the
// sublist generation seen when the entries were filled.
//
// Many subjects are published to once only: the reply subjects of nats.go's
// requests (_INBOX.<id>.<token>, a new token each time) all match the
// requester's one wildcard subscription. Keeping each would fill the cache
// with dead entries, start it over every max of them (dropping the live
// ones with them), and allocate a key and a result per request: garbage
// that makes the collector run, whose workers take the loops' CPUs, in the
// middle of request/reply traffic. So a miss matches into buffers the cache
// reuses, results are shared among the subjects that match the same
// subscriptions (interned), and a subject is only kept once it is seen a
// second time. A one-off subject then allocates nothing.
type Cache[O any] struct {
	sl    *Sublist[O]
	gen   uint64
	max   int
	bytes int // subjects held and interned results
	m     map[string]*Result[O]

	scratch  matcher[O]
	interned map[uint64]*Result[O] // by resultHash of their contents
	seen     []uint64              // admission filter: hashes of subjects missed once

	// lastKey and lastR are the last subject found in m and its result: a
	// publisher repeating its subject skips the map's hash and probe.
	// Dropped with m (reset).
	lastKey []byte
	lastR   *Result[O]
}

// NewCache returns a cache over sl holding at most max subjects.
func NewCache[O any](sl *Sublist[O], max int) *Cache[O] {
	if max <= 0 {
		max = DefaultCacheSize
	}
	return &Cache[O]{sl: sl, gen: sl.Gen(), max: max, m: make(map[string]*Result[O])}
}

// Match returns the subscriptions matching subject, from the cache when the
// sublist has not changed since it was filled. The result is immutable and
// may be kept. It does not allocate on a hit, nor on a miss whose
// subscriptions matched alike before (see Cache).
func (c *Cache[O]) Match(subject []byte) *Result[O] {
	// Read the generation before matching: a change racing with the match
	// then leaves a newer generation behind and the entry is dropped next time.
	if g := c.sl.Gen(); g != c.gen {
		c.reset()
		c.gen = g
	}
	if c.lastR != nil && string(subject) == string(c.lastKey) {
		return c.lastR
	}
	if r, ok := c.m[string(subject)]; ok {
		c.lastKey = append(c.lastKey[:0], subject...) // kept subjects are short (MaxCachedSubject)
		c.lastR = r
		return r
	}
	// The trie only looks the subject's tokens up; nothing keeps them.
	c.sl.matchInto(&c.scratch, unsafe.String(unsafe.SliceData(subject), len(subject)))
	r := c.intern()
	if len(subject) > MaxCachedSubject || !c.admit(subject) {
		return r
	}
	size := len(subject) + entryOverhead
	if len(c.m) >= c.max || c.bytes+size > c.max*cacheBytesPerEntry {
		c.reset()
		r = c.intern() // reset dropped it
	}
	c.m[string(subject)] = r
	c.bytes += size
	return r
}

// entryOverhead approximates a kept subject's map slot and string header.
const entryOverhead = 48

// maxInterned bounds the distinct results a cache shares.
const maxInterned = 1024

// intern returns the shared Result equal to the scratch match, making one
// if there is none.
func (c *Cache[O]) intern() *Result[O] {
	m := &c.scratch
	if m.empty() {
		return c.sl.empty
	}
	h := m.hash()
	if r, ok := c.interned[h]; ok && m.equal(r) {
		return r
	}
	r := m.clone()
	size := resultSize(r)
	if len(c.interned) >= maxInterned || c.bytes+size > c.max*cacheBytesPerEntry {
		c.reset()
	}
	if c.interned == nil {
		c.interned = make(map[uint64]*Result[O])
	}
	if old, ok := c.interned[h]; ok { // a hash collision: the newer one wins
		c.bytes -= resultSize(old)
	}
	c.interned[h] = r
	c.bytes += size
	return r
}

// admit reports whether subject was missed before, recording it otherwise.
// The filter is a table of subject hashes, one per slot: a subject is kept
// on its second miss unless another one took its slot in between.
func (c *Cache[O]) admit(subject []byte) bool {
	if c.seen == nil {
		c.seen = make([]uint64, seenSlots(c.max))
	}
	h := maphash.Bytes(seenSeed, subject) | 1 // 0 marks an empty slot
	slot := &c.seen[h&uint64(len(c.seen)-1)]
	if *slot == h {
		*slot = 0
		return true
	}
	*slot = h
	return false
}

var seenSeed = maphash.MakeSeed()

// seenSlots sizes the admission filter: a power of two near max/2.
func seenSlots(max int) int {
	n := 64
	for n < max/2 {
		n <<= 1
	}
	return n
}

func (c *Cache[O]) reset() {
	c.lastR = nil
	clear(c.m)
	clear(c.interned)
	c.bytes = 0
}

// hash digests the canonical match (the identities of its subscriptions,
// in order, and the shape of its groups).
func (m *matcher[O]) hash() uint64 {
	const prime = 0x100000001b3
	h := uint64(0xcbf29ce484222325)
	mix := func(v uint64) { h = (h ^ v) * prime }
	mix(uint64(len(m.plain)))
	for _, s := range m.plain {
		mix(uint64(addr(s)))
	}
	for _, q := range m.queues {
		mix(uint64(len(q)))
		for _, s := range q {
			mix(uint64(addr(s)))
		}
	}
	return h ^ h>>29
}

// equal reports whether r holds exactly the canonical match m.
func (m *matcher[O]) equal(r *Result[O]) bool {
	if !slices.Equal(r.Plain, m.plain) || len(r.Queues) != len(m.queues) {
		return false
	}
	for i, q := range r.Queues {
		if !slices.Equal(q, m.queues[i]) {
			return false
		}
	}
	return true // Spans follow from Plain
}

// clone copies the match into a Result of its own.
func (m *matcher[O]) clone() *Result[O] {
	r := &Result[O]{Plain: slices.Clone(m.plain), Spans: slices.Clone(m.spans)}
	if len(m.queues) > 0 {
		r.Queues = make([][]*Subscription[O], len(m.queues))
		for i, q := range m.queues {
			r.Queues[i] = slices.Clone(q)
		}
	}
	return r
}

// resultSize estimates the bytes a cached result keeps alive: its slices
// (the subscriptions themselves belong to the sublist).
func resultSize[O any](r *Result[O]) int {
	const ptr = int(unsafe.Sizeof(uintptr(0)))
	n := len(r.Plain)*ptr + len(r.Spans)*int(unsafe.Sizeof(Span{}))
	for _, q := range r.Queues {
		n += 3*ptr + len(q)*ptr
	}
	return n
}

// Len reports the number of cached subjects.
func (c *Cache[O]) Len() int { return len(c.m) }

// Bytes reports the bytes the cached subjects and results account for.
func (c *Cache[O]) Bytes() int { return c.bytes }
