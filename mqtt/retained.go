package mqtt

import (
	"sync"

	"github.com/evnats/evnats/router"
)

// Retained is the last retained message of one topic.
type Retained struct {
	Topic   string `json:"topic"`
	Subject string `json:"subject"`
	QoS     byte   `json:"qos"`
	Payload []byte `json:"payload"`
}

// RetainedSet holds one retained message per subject.
//
// Locking rule: mu guards msgs. Publishers on any loop set and clear
// entries; subscribers on any loop read matches.
type RetainedSet struct {
	mu   sync.RWMutex
	msgs map[string]*Retained
}

// NewRetainedSet returns an empty set.
func NewRetainedSet() *RetainedSet { return &RetainedSet{msgs: make(map[string]*Retained)} }

// Set stores r, replacing the topic's previous retained message.
func (rs *RetainedSet) Set(r *Retained) {
	rs.mu.Lock()
	rs.msgs[r.Subject] = r
	rs.mu.Unlock()
}

// Clear removes the retained message of subject and reports whether there was one.
func (rs *RetainedSet) Clear(subject string) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	_, ok := rs.msgs[subject]
	delete(rs.msgs, subject)
	return ok
}

// Match returns the retained messages a new subscription to filter (already
// mapped to its NATS subjects) receives; filters starting with a wildcard do
// not see '$' topics.
func (rs *RetainedSet) Match(subjects []string, skipDollar bool) []*Retained {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
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
