package loop

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

// pickQueueMember returns the index of the member of queue group q that
// gets a message on subject: the first, from start on and wrapping, that
// does not deny it (as nats-server, which tries the next member rather than
// drop the message), or -1 when every member does.
//
// A member over its high-water mark or stalled (flow.go) is passed over
// while another will do, a stalled one last, so one that stops reading
// stops getting work.
func pickQueueMember(q []*router.Subscription, start int, subject []byte) int {
	best, rank := -1, int32(0)
	for k := range q {
		i := start + k
		if i >= len(q) {
			i -= len(q)
		}
		s := q[i].Owner.(*subscription)
		if s.denies(subject) {
			continue
		}
		if s.c == nil {
			return i
		}
		// flowOK < flowOver (behind, reading) < flowStalled (not reading)
		st := s.c.fc.gate.state.Load()
		if st == flowOK {
			return i
		}
		if best < 0 || st < rank {
			best, rank = i, st
		}
	}
	return best
}
