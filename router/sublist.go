package router

// Concurrency: one Sublist is shared by every goroutine. mu (RWMutex)
// guards the trie and count: Match takes it shared; Insert, Remove and
// Replace exclusively. gen is bumped under mu and read lock-free by Caches.
// mu is a leaf: nothing is called while it is held. Subscriptions are
// immutable once inserted and Results never change, so both are used freely
// after the lock is dropped.

import (
	"sort"
	"sync"
	"sync/atomic"
)

// Subscription is one subscription. O is the type of its owner (loop's
// subscription record), so a match needs no type assertion. Its fields are
// set before Insert and never change afterwards, so matches may be shared
// across goroutines.
type Subscription[O any] struct {
	Subject string
	Queue   string // empty for a plain subscription
	SID     []byte
	Loop    int // index of the event loop that owns Owner; -1 when none
	Owner   O   // the connection that receives matches
}

// Result is the immutable outcome of one match.
type Result[O any] struct {
	// Plain are non-queue matches sorted by Loop, so each loop's share is
	// one contiguous run (see Spans).
	Plain []*Subscription[O]
	// Spans index Plain by owning loop.
	Spans []Span
	// Queues holds one slice of members per matching queue group name.
	Queues [][]*Subscription[O]
}

// Span is the run Plain[Start:End] of subscriptions owned by loop Loop.
type Span struct{ Loop, Start, End int }

// Empty reports whether nothing matched.
func (r *Result[O]) Empty() bool { return len(r.Plain) == 0 && len(r.Queues) == 0 }

// Sublist is the global subscription index: a trie with one level per subject
// token. It is shared by every loop.
//
// Locking rule: mu guards root and count; readers (Match) take it shared,
// writers exclusively. gen is bumped, under mu, after every change; it is read
// without the lock by per-loop caches to tell whether their results are stale.
type Sublist[O any] struct {
	mu    sync.RWMutex
	root  *level[O]
	empty *Result[O] // what every empty match returns, shared
	count int
	gen   atomic.Uint64
}

type level[O any] struct {
	nodes    map[string]*node[O]
	pwc, fwc *node[O] // '*' and '>' children
}

type node[O any] struct {
	next  *level[O]
	plain map[*Subscription[O]]struct{}
	queue map[string]map[*Subscription[O]]struct{}
}

// NewSublist returns an empty sublist.
func NewSublist[O any]() *Sublist[O] { return &Sublist[O]{root: newLevel[O](), empty: &Result[O]{}} }

func newLevel[O any]() *level[O] { return &level[O]{nodes: make(map[string]*node[O])} }

// Gen returns the generation, which changes whenever the contents change.
func (s *Sublist[O]) Gen() uint64 { return s.gen.Load() }

// Count returns the number of subscriptions.
func (s *Sublist[O]) Count() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.count
}

// Insert adds sub. Its Subject must be valid (see ValidSubject).
func (s *Sublist[O]) Insert(sub *Subscription[O]) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.insert(sub)
	s.gen.Add(1)
}

// Replace removes old and inserts new as one change: every match sees
// either all of old or all of new, never both and never neither (an owner
// handing its subscriptions over to another loses and repeats nothing).
func (s *Sublist[O]) Replace(old, new []*Subscription[O]) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sub := range old {
		if removeFrom(s.root, sub.Subject, sub) {
			s.count--
		}
	}
	for _, sub := range new {
		s.insert(sub)
	}
	s.gen.Add(1)
}

// insert adds sub; the caller holds mu and bumps gen.
func (s *Sublist[O]) insert(sub *Subscription[O]) {
	l := s.root
	var n *node[O]
	subject := sub.Subject
	for {
		tok, rest, more := nextToken(subject)
		switch tok {
		case "*":
			if l.pwc == nil {
				l.pwc = &node[O]{}
			}
			n = l.pwc
		case ">":
			if l.fwc == nil {
				l.fwc = &node[O]{}
			}
			n = l.fwc
		default:
			n = l.nodes[tok]
			if n == nil {
				n = &node[O]{}
				l.nodes[tok] = n
			}
		}
		if !more {
			break
		}
		if n.next == nil {
			n.next = newLevel[O]()
		}
		l = n.next
		subject = rest
	}
	if sub.Queue == "" {
		if n.plain == nil {
			n.plain = make(map[*Subscription[O]]struct{})
		}
		n.plain[sub] = struct{}{}
	} else {
		if n.queue == nil {
			n.queue = make(map[string]map[*Subscription[O]]struct{})
		}
		q := n.queue[sub.Queue]
		if q == nil {
			q = make(map[*Subscription[O]]struct{})
			n.queue[sub.Queue] = q
		}
		q[sub] = struct{}{}
	}
	s.count++
}

// Remove deletes sub and prunes empty trie nodes; it reports whether sub was present.
func (s *Sublist[O]) Remove(sub *Subscription[O]) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !removeFrom(s.root, sub.Subject, sub) {
		return false
	}
	s.count--
	s.gen.Add(1)
	return true
}

// removeFrom removes sub below l and prunes nodes it leaves empty.
func removeFrom[O any](l *level[O], subject string, sub *Subscription[O]) bool {
	tok, rest, more := nextToken(subject)
	var n *node[O]
	switch tok {
	case "*":
		n = l.pwc
	case ">":
		n = l.fwc
	default:
		n = l.nodes[tok]
	}
	if n == nil {
		return false
	}
	var ok bool
	if more {
		if n.next == nil {
			return false
		}
		ok = removeFrom(n.next, rest, sub)
		if ok && n.next.empty() {
			n.next = nil
		}
	} else if sub.Queue == "" {
		_, ok = n.plain[sub]
		delete(n.plain, sub)
	} else if q := n.queue[sub.Queue]; q != nil {
		_, ok = q[sub]
		delete(q, sub)
		if len(q) == 0 {
			delete(n.queue, sub.Queue)
		}
	}
	if ok && n.next == nil && len(n.plain) == 0 && len(n.queue) == 0 {
		switch tok {
		case "*":
			l.pwc = nil
		case ">":
			l.fwc = nil
		default:
			delete(l.nodes, tok)
		}
	}
	return ok
}

func (l *level[O]) empty() bool { return len(l.nodes) == 0 && l.pwc == nil && l.fwc == nil }

// Match returns every subscription whose subject matches the literal subject.
// The result is freshly built and immutable; callers cache it.
func (s *Sublist[O]) Match(subject string) *Result[O] {
	var m matcher[O]
	s.mu.RLock()
	m.walk(s.root, subject)
	s.mu.RUnlock()
	if len(m.plain) == 0 && len(m.queues) == 0 {
		return s.empty
	}
	return m.result()
}

type matcher[O any] struct {
	plain  []*Subscription[O]
	queues map[string][]*Subscription[O]
}

func (m *matcher[O]) walk(l *level[O], subject string) {
	tok, rest, more := nextToken(subject)
	if tok == "" {
		return // an empty token matches nothing
	}
	if l.fwc != nil {
		m.collect(l.fwc)
	}
	if n := l.pwc; n != nil {
		m.step(n, rest, more)
	}
	if n := l.nodes[tok]; n != nil {
		m.step(n, rest, more)
	}
}

func (m *matcher[O]) step(n *node[O], rest string, more bool) {
	if !more {
		m.collect(n)
		return
	}
	if n.next != nil {
		m.walk(n.next, rest)
	}
}

func (m *matcher[O]) collect(n *node[O]) {
	for sub := range n.plain {
		m.plain = append(m.plain, sub)
	}
	for name, members := range n.queue {
		if m.queues == nil {
			m.queues = make(map[string][]*Subscription[O])
		}
		q := m.queues[name]
		for sub := range members {
			q = append(q, sub)
		}
		m.queues[name] = q
	}
}

func (m *matcher[O]) result() *Result[O] {
	r := &Result[O]{Plain: m.plain}
	sort.Slice(r.Plain, func(i, j int) bool { return r.Plain[i].Loop < r.Plain[j].Loop })
	for i := 0; i < len(r.Plain); {
		j := i + 1
		for j < len(r.Plain) && r.Plain[j].Loop == r.Plain[i].Loop {
			j++
		}
		r.Spans = append(r.Spans, Span{Loop: r.Plain[i].Loop, Start: i, End: j})
		i = j
	}
	for _, q := range m.queues {
		r.Queues = append(r.Queues, q)
	}
	return r
}
