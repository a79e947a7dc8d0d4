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
}

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
// Locking rule: mu guards msgs, the totals and the limits. Publishers on
// any loop set and clear entries; subscribers on any loop read matches.
type RetainedSet struct {
	mu                sync.RWMutex
	msgs              map[string]*Retained
	bytes             int
	maxMsgs, maxBytes int
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
			delete(rs.msgs, r.Subject)
			rs.bytes -= old.size()
		}
		return false, old != nil
	}
	rs.msgs[r.Subject] = r
	rs.bytes = bytes
	return true, false
}

// Restore stores r whatever the limits: a message kept before a restart
// (the limits may have been lowered since).
func (rs *RetainedSet) Restore(r *Retained) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if old := rs.msgs[r.Subject]; old != nil {
		rs.bytes -= old.size()
	}
	rs.msgs[r.Subject] = r
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
		rs.bytes -= old.size()
		delete(rs.msgs, subject)
	}
	return ok
}

// Match returns the retained messages a new subscription to filter (already
// mapped to its NATS subjects) receives; filters starting with a wildcard do
// not see '$' topics.
func (rs *RetainedSet) Match(subjects []string, skipDollar bool) []*Retained {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	if len(subjects) == 1 && router.ValidLiteralSubject(subjects[0]) {
		// A filter without wildcards names one topic: no scan of the set,
		// which a SUBSCRIBE of many filters would repeat per filter.
		if r := rs.msgs[subjects[0]]; r != nil {
			return []*Retained{r}
		}
		return nil
	}
	var out []*Retained
	for subj, r := range rs.msgs {
		if skipDollar && len(r.Topic) > 0 && r.Topic[0] == '$' {
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
