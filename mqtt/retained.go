package mqtt

// Concurrency: one RetainedSet is shared by every connection. mu (RWMutex)
// guards the set: publishers Set and Clear, SUBSCRIBE replays Match (under
// the subscriber's outLock); Restore runs at startup. A leaf.
// Stored Retained values never change once in the set.

import (
	"cmp"
	"sync"

	"github.com/evnats/evnats/router"
)

// Retained is the last retained message of one topic.
type Retained struct {
	Topic   string `json:"topic"`
	Subject string `json:"subject"`
	QoS     byte   `json:"qos"`
	Payload []byte `json:"payload"`
	// Hdr is the header block of an MQTT 5 message (its properties).
	Hdr []byte `json:"hdr,omitempty"`
	// Expires is when an MQTT 5 message expiry interval runs out (unix
	// seconds; 0: never): the message is retained until then.
	Expires int64 `json:"exp,omitempty"`
}

// expired reports whether r's message expiry interval has run out at now.
func (r *Retained) expired(now int64) bool { return r.Expires != 0 && now >= r.Expires }

// DefaultMaxRetainedMsgs and DefaultMaxRetainedBytes bound the retained
// messages the server keeps, all of them in memory: last-known states,
// typically small, so 100,000 of them or 64 MiB (topic + payload) is far
// more than such use needs and still a bounded share of a server's memory.
const (
	DefaultMaxRetainedMsgs  = 100_000
	DefaultMaxRetainedBytes = 64 << 20
)

// RetainedSet holds one retained message per subject, within limits on
// their number and bytes.
//
// Locking rule: mu guards msgs, the totals and the limits. Expire takes
// Persister.mu under it; nothing holding Persister.mu takes mu. Publishers on
// any loop set and clear entries; subscribers on any loop read matches.
type RetainedSet struct {
	mu                sync.RWMutex
	msgs              map[string]*Retained
	bytes             int
	maxMsgs, maxBytes int
	expiring          int // messages with an expiry: Expire scans only while there are some
}

// NewRetainedSet returns an empty set with the default limits.
func NewRetainedSet() *RetainedSet {
	return &RetainedSet{msgs: make(map[string]*Retained), maxMsgs: DefaultMaxRetainedMsgs, maxBytes: DefaultMaxRetainedBytes}
}

// SetLimits sets the most messages and bytes the set holds (0: the default).
func (rs *RetainedSet) SetLimits(msgs, bytes int) {
	rs.mu.Lock()
	rs.maxMsgs, rs.maxBytes = cmp.Or(msgs, DefaultMaxRetainedMsgs), cmp.Or(bytes, DefaultMaxRetainedBytes)
	rs.mu.Unlock()
}

// size is what a retained message counts toward the byte limit.
func (r *Retained) size() int { return len(r.Topic) + len(r.Payload) + len(r.Hdr) }

// Set stores r, replacing the topic's previous retained message, and
// reports true; when r would take the set past its limits it is not stored
// and the topic's previous message is discarded too (MQTT 3.1.1 lets a
// server discard a retained message; a stale one would misinform new
// subscribers): it reports false and whether there was one.
func (rs *RetainedSet) Set(r *Retained) (stored, cleared bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	old := rs.msgs[r.Subject]
	msgs, bytes := len(rs.msgs)+1, rs.bytes+r.size()
	if old != nil {
		msgs, bytes = msgs-1, bytes-old.size()
	}
	if msgs > rs.maxMsgs || bytes > rs.maxBytes {
		if old != nil {
			rs.drop(r.Subject, old)
		}
		return false, old != nil
	}
	rs.put(r, old)
	rs.bytes = bytes
	return true, false
}

// put stores r in place of old (nil: none), counting the expiring ones.
// Caller holds mu.
func (rs *RetainedSet) put(r, old *Retained) {
	if old != nil && old.Expires != 0 {
		rs.expiring--
	}
	if r.Expires != 0 {
		rs.expiring++
	}
	rs.msgs[r.Subject] = r
}

// Expire removes the messages whose expiry interval has run out at now,
// calling gone with each one's subject under mu, so that a retained
// publish on the subject (Set, then its store record) comes wholly before
// or after gone removes the expired message's record.
func (rs *RetainedSet) Expire(now int64, gone func(subject string)) {
	rs.mu.RLock()
	n := rs.expiring
	rs.mu.RUnlock()
	if n == 0 {
		return
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for subj, r := range rs.msgs {
		if r.expired(now) {
			rs.drop(subj, r)
			gone(subj)
		}
	}
}

// drop removes r, the message of subj. Caller holds mu.
func (rs *RetainedSet) drop(subj string, r *Retained) {
	rs.bytes -= r.size()
	if r.Expires != 0 {
		rs.expiring--
	}
	delete(rs.msgs, subj)
}

// Restore stores r whatever the limits: a message kept before a restart
// (the limits may have been lowered since).
func (rs *RetainedSet) Restore(r *Retained) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	old := rs.msgs[r.Subject]
	if old != nil {
		rs.bytes -= old.size()
	}
	rs.put(r, old)
	rs.bytes += r.size()
}

// Held returns the number of retained messages and their bytes.
func (rs *RetainedSet) Held() (msgs, bytes int) {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	return len(rs.msgs), rs.bytes
}

// Clear removes the retained message of subject and reports whether there was one.
func (rs *RetainedSet) Clear(subject string) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	old, ok := rs.msgs[subject]
	if ok {
		rs.drop(subject, old)
	}
	return ok
}

// Match returns the retained messages a new subscription to filter (already
// mapped to its NATS subjects) receives; filters starting with a wildcard do
// not see '$' topics.
func (rs *RetainedSet) Match(subjects []string, skipDollar bool) []*Retained {
	now := unixNow() // an expired message waiting for Expire is not sent
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	if len(subjects) == 1 && router.ValidLiteralSubject(subjects[0]) {
		// A filter without wildcards names one topic: no scan of the set,
		// which a SUBSCRIBE of many filters would repeat per filter.
		if r := rs.msgs[subjects[0]]; r != nil && !r.expired(now) {
			return []*Retained{r}
		}
		return nil
	}
	var out []*Retained
	expiring := rs.expiring > 0
	for subj, r := range rs.msgs {
		if skipDollar && len(r.Topic) > 0 && r.Topic[0] == '$' || expiring && r.expired(now) {
			continue
		}
		for _, pattern := range subjects {
			if router.SubjectMatches(pattern, subj) {
				out = append(out, r)
				break
			}
		}
	}
	return out
}
