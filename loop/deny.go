package loop

// Concurrency: deny is set before a subscription enters the sublist and
// never changes, so denies runs on any goroutine without a lock.

import "github.com/evnats/evnats/router"

// Delivery-time subscribe deny filters. A subscription whose wildcard is
// allowed but overlaps subscribe deny entries (">" with deny "secret.>")
// carries those entries in deny, set before it enters the sublist and never
// changed, so any goroutine may read it. Every delivery path asks denies;
// for a subscription without deny entries that is one nil check.

// denies reports whether a message on subject must not reach s.
func (s *subscription) denies(subject []byte) bool {
	return s.deny != nil && deniedBy(s.deny, subject)
}

func deniedBy(deny []string, subject []byte) bool {
	for _, d := range deny {
		if router.SubjectMatches(d, subject) {
			return true
		}
	}
	return false
}
