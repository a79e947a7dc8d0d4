package router

// Concurrency: a Cache belongs to one goroutine (a gnet loop, a
// goroutine-transport client's reader, or the JetStream Manager through
// jsHost.Deliver) and takes no locks of its own; a miss calls Sublist.Match
// (shared lock), staleness is an atomic load of Sublist.gen.

import "unsafe"

// DefaultCacheSize bounds a per-loop cache; past it the cache starts over,
// which keeps memory bounded under subject churn (e.g. unique inboxes).
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
type Cache[O any] struct {
	sl    *Sublist[O]
	gen   uint64
	max   int
	bytes int // subjects and result slices held
	m     map[string]*Result[O]
}

// NewCache returns a cache over sl holding at most max subjects.
func NewCache[O any](sl *Sublist[O], max int) *Cache[O] {
	if max <= 0 {
		max = DefaultCacheSize
	}
	return &Cache[O]{sl: sl, gen: sl.Gen(), max: max, m: make(map[string]*Result[O])}
}

// Match returns the subscriptions matching subject, from the cache when the
// sublist has not changed since it was filled. It does not allocate on a hit.
func (c *Cache[O]) Match(subject []byte) *Result[O] {
	// Read the generation before matching: a change racing with the match
	// then leaves a newer generation behind and the entry is dropped next time.
	if g := c.sl.Gen(); g != c.gen {
		c.reset()
		c.gen = g
	}
	if r, ok := c.m[string(subject)]; ok {
		return r
	}
	r := c.sl.Match(string(subject))
	if len(subject) > MaxCachedSubject {
		return r
	}
	size := len(subject) + resultSize(r)
	if len(c.m) >= c.max || c.bytes+size > c.max*cacheBytesPerEntry {
		c.reset()
	}
	c.m[string(subject)] = r
	c.bytes += size
	return r
}

func (c *Cache[O]) reset() {
	clear(c.m)
	c.bytes = 0
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
