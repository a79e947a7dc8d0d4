package mqtt

// Concurrency: no locks. A conn's subjects cache is used by its
// reader only; its topics cache only by deliver, under the client's outLock
// (gnet: on its loop).

import "github.com/evnats/evnats/router"

// topicCache memoizes one MQTT connection's topic <-> subject translations
// (see conn.topicOf, subjectOf) so a steady stream on known topics
// allocates nothing. No lock: each cache has one owner context (above).
//
// Topics may be 64 KiB long: keys over router.MaxCachedSubject are
// translated every time, and the cache starts over past maxTopicCache
// entries or maxTopicCacheBytes, so an idle connection pins little however
// many long topics went through it.
type topicCache[V string | []byte] struct {
	m     map[string]V
	bytes int
}

const (
	maxTopicCache      = 4096
	maxTopicCacheBytes = 256 << 10
)

func (tc *topicCache[V]) get(key []byte) (V, bool) {
	v, ok := tc.m[string(key)]
	return v, ok
}

func (tc *topicCache[V]) put(key []byte, v V) {
	if len(key) > router.MaxCachedSubject {
		return
	}
	size := len(key) + len(v)
	if tc.m == nil {
		tc.m = make(map[string]V)
	} else if len(tc.m) >= maxTopicCache || tc.bytes+size > maxTopicCacheBytes {
		tc.m = make(map[string]V) // clear would keep the grown table
		tc.bytes = 0
	}
	tc.m[string(key)] = v
	tc.bytes += size
}
