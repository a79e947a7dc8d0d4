package router

// DefaultCacheSize bounds a per-loop cache; past it the cache starts over,
// which keeps memory bounded under subject churn (e.g. unique inboxes).
const DefaultCacheSize = 4096

// MaxCachedSubject is the longest subject a Cache keeps: longer ones (up to
// the 4 KB control line) are matched each time, so that a cache of a few
// hundred entries per connection cannot hold megabytes of subjects.
const MaxCachedSubject = 256

// Cache memoizes Sublist matches for one event loop. It is owned by that
// loop's goroutine and takes no locks: staleness is detected by comparing the
// sublist generation seen when the entries were filled.
type Cache struct {
	sl  *Sublist
	gen uint64
	max int
	m   map[string]*Result
}

// NewCache returns a cache over sl holding at most max subjects.
func NewCache(sl *Sublist, max int) *Cache {
	if max <= 0 {
		max = DefaultCacheSize
	}
	return &Cache{sl: sl, gen: sl.Gen(), max: max, m: make(map[string]*Result)}
}

// Match returns the subscriptions matching subject, from the cache when the
// sublist has not changed since it was filled. It does not allocate on a hit.
func (c *Cache) Match(subject []byte) *Result {
	// Read the generation before matching: a change racing with the match
	// then leaves a newer generation behind and the entry is dropped next time.
	if g := c.sl.Gen(); g != c.gen {
		clear(c.m)
		c.gen = g
	}
	if r, ok := c.m[string(subject)]; ok {
		return r
	}
	r := c.sl.Match(string(subject))
	if len(subject) > MaxCachedSubject {
		return r
	}
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[string(subject)] = r
	return r
}

// Len reports the number of cached subjects.
func (c *Cache) Len() int { return len(c.m) }
