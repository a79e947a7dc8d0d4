package mqtt

// Concurrency: no locks. A conn's subjects cache is used by its
// reader only; its topics cache only by deliver, under the client's outLock
// (gnet: on its loop).

import "github.com/evnats/evnats/router"

// topicCache memoizes one MQTT connection's topic <-> subject translations
// (see conn.topicOf, subjectOf) so a steady stream on known topics
// allocates nothing. No lock: each cache has one owner context (above).
//
// The entry hit last is checked first, with one comparison of bytes and
// no hashing: a stream on one topic, the common case, never looks in the
// map.
//
// Topics may be 64 KiB long: keys over router.MaxCachedSubject are
// translated every time, and the cache starts over past maxTopicCache
// entries or maxTopicCacheBytes, so an idle connection pins little however
// many long topics went through it.
type topicCache[V string | []byte] struct {
	m     map[string]*topicEntry[V]
	last  *topicEntry[V]
	bytes int
}

// topicEntry is one translation; key is the map's key.
type topicEntry[V string | []byte] struct {
	key string
	val V
}

const (
	maxTopicCache      = 4096
	maxTopicCacheBytes = 256 << 10
)

func (tc *topicCache[V]) get(key []byte) (V, bool) {
	if e := tc.last; e != nil && e.key == string(key) {
		return e.val, true
	}
	e := tc.m[string(key)]
	if e == nil {
		var zero V
		return zero, false
	}
	tc.last = e
	return e.val, true
}

func (tc *topicCache[V]) put(key []byte, v V) {
	if len(key) > router.MaxCachedSubject {
		return
	}
	size := len(key) + len(v)
	if tc.m == nil {
		tc.m = make(map[string]*topicEntry[V])
	} else if len(tc.m) >= maxTopicCache || tc.bytes+size > maxTopicCacheBytes {
		tc.m = make(map[string]*topicEntry[V]) // clear would keep the grown table
		tc.bytes = 0
	}
	e := &topicEntry[V]{key: string(key), val: v}
	tc.m[e.key] = e
	tc.last = e
	tc.bytes += size
}
