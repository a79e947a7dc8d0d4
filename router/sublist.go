package router

// Concurrency: one Sublist is shared by every goroutine. mu (RWMutex)
// guards the trie and count: Match takes it shared; Insert, Remove and
// Replace exclusively. gen is bumped under mu and read lock-free by Caches.
// mu is a leaf: nothing is called while it is held. Subscriptions are
// immutable once inserted and Results never change, so both are used freely
// after the lock is dropped.

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Subscription is one client subscription. Its fields are set before Insert
// and never change afterwards, so matches may be shared across goroutines.
type Subscription struct {
	Subject string
	Queue   string // empty for a plain subscription
	SID     []byte
	Loop    int // index of the event loop that owns Owner; -1 when none
	Owner   any // the connection that receives matches
}

// Result is the immutable outcome of one match.
type Result struct {
	// Plain are non-queue matches sorted by Loop, so each loop's share is
	// one contiguous run (see Spans).
	Plain []*Subscription
	// Spans index Plain by owning loop.
	Spans []Span
	// Queues holds one slice of members per matching queue group name.
	Queues [][]*Subscription
}

// Span is the run Plain[Start:End] of subscriptions owned by loop Loop.
type Span struct{ Loop, Start, End int }

// Empty reports whether nothing matched.
func (r *Result) Empty() bool { return len(r.Plain) == 0 && len(r.Queues) == 0 }

var emptyResult = &Result{}

// Sublist is the global subscription index: a trie with one level per subject
// token. It is shared by every loop.
//
// Locking rule: mu guards root and count; readers (Match) take it shared,
// writers exclusively. gen is bumped, under mu, after every change; it is read
// without the lock by per-loop caches to tell whether their results are stale.
type Sublist struct {
	mu    sync.RWMutex
	root  *level
	count int
	gen   atomic.Uint64
}

type level struct {
	nodes    map[string]*node
	pwc, fwc *node // '*' and '>' children
}

type node struct {
	next  *level
	plain map[*Subscription]struct{}
	queue map[string]map[*Subscription]struct{}
}

// NewSublist returns an empty sublist.
func NewSublist() *Sublist { return &Sublist{root: newLevel()} }

func newLevel() *level { return &level{nodes: make(map[string]*node)} }

// Gen returns the generation, which changes whenever the contents change.
func (s *Sublist) Gen() uint64 { return s.gen.Load() }

// Count returns the number of subscriptions.
func (s *Sublist) Count() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.count
}

// Insert adds sub. Its Subject must be valid (see ValidSubject).
func (s *Sublist) Insert(sub *Subscription) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.insert(sub)
	s.gen.Add(1)
}

// Replace removes old and inserts new as one change: every match sees
// either all of old or all of new, never both and never neither (an owner
// handing its subscriptions over to another loses and repeats nothing).
func (s *Sublist) Replace(old, new []*Subscription) {
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
func (s *Sublist) insert(sub *Subscription) {
	l := s.root
	var n *node
	subject := sub.Subject
	for {
		tok, rest, more := nextToken(subject)
		switch tok {
		case "*":
			if l.pwc == nil {
				l.pwc = &node{}
			}
			n = l.pwc
		case ">":
			if l.fwc == nil {
				l.fwc = &node{}
			}
			n = l.fwc
		default:
			n = l.nodes[tok]
			if n == nil {
				n = &node{}
				l.nodes[tok] = n
			}
		}
		if !more {
			break
		}
		if n.next == nil {
			n.next = newLevel()
		}
		l = n.next
		subject = rest
	}
	if sub.Queue == "" {
		if n.plain == nil {
			n.plain = make(map[*Subscription]struct{})
		}
		n.plain[sub] = struct{}{}
	} else {
		if n.queue == nil {
			n.queue = make(map[string]map[*Subscription]struct{})
		}
		q := n.queue[sub.Queue]
		if q == nil {
			q = make(map[*Subscription]struct{})
			n.queue[sub.Queue] = q
		}
		q[sub] = struct{}{}
	}
	s.count++
}

// Remove deletes sub and prunes empty trie nodes; it reports whether sub was present.
func (s *Sublist) Remove(sub *Subscription) bool {
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
func removeFrom(l *level, subject string, sub *Subscription) bool {
	tok, rest, more := nextToken(subject)
	var n *node
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

func (l *level) empty() bool { return len(l.nodes) == 0 && l.pwc == nil && l.fwc == nil }

// Match returns every subscription whose subject matches the literal subject.
// The result is freshly built and immutable; callers cache it.
func (s *Sublist) Match(subject string) *Result {
	var m matcher
	s.matchInto(&m, subject)
	if m.empty() {
		return emptyResult
	}
	return &Result{Plain: m.plain, Spans: m.spans, Queues: m.queues} // m is ours alone
}

// matchInto fills m with the canonical match of subject (see matcher).
func (s *Sublist) matchInto(m *matcher, subject string) {
	m.reset()
	s.mu.RLock()
	m.walk(s.root, subject)
	s.mu.RUnlock()
	m.finish()
}

// matcher collects a match into buffers it reuses from one match to the
// next (a Cache keeps one for its misses), then puts it in canonical order:
// Plain by Loop, then by address; groups by name, members by address. Two
// matches of the same subscriptions are then equal element by element,
// which lets a Cache share one Result among the subjects that match alike.
type matcher struct {
	plain  []*Subscription
	groups []group // groups[:ng] are in use
	ng     int
	spans  []Span
	queues [][]*Subscription
}

// group is the members of one queue group found so far.
type group struct {
	name    string
	members []*Subscription
}

func (m *matcher) empty() bool { return len(m.plain) == 0 && m.ng == 0 }

// reset empties m, keeping its buffers and dropping its references.
func (m *matcher) reset() {
	clear(m.plain)
	m.plain = m.plain[:0]
	for i := range m.groups[:m.ng] {
		g := &m.groups[i]
		clear(g.members)
		g.name, g.members = "", g.members[:0]
	}
	m.ng = 0
	m.spans = m.spans[:0]
	clear(m.queues)
	m.queues = m.queues[:0]
}

func (m *matcher) walk(l *level, subject string) {
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

func (m *matcher) step(n *node, rest string, more bool) {
	if !more {
		m.collect(n)
		return
	}
	if n.next != nil {
		m.walk(n.next, rest)
	}
}

func (m *matcher) collect(n *node) {
	for sub := range n.plain {
		m.plain = append(m.plain, sub)
	}
	for name, members := range n.queue {
		g := m.group(name)
		for sub := range members {
			g.members = append(g.members, sub)
		}
	}
}

// group returns the group named name, adding it if it is new.
func (m *matcher) group(name string) *group {
	for i := range m.groups[:m.ng] {
		if m.groups[i].name == name {
			return &m.groups[i]
		}
	}
	if m.ng == len(m.groups) {
		m.groups = append(m.groups, group{})
	}
	g := &m.groups[m.ng]
	m.ng++
	g.name = name
	return g
}

// finish sorts the match into canonical order and indexes it: Spans over
// Plain, Queues over the groups' members.
func (m *matcher) finish() {
	slices.SortFunc(m.plain, func(a, b *Subscription) int {
		if c := cmp.Compare(a.Loop, b.Loop); c != 0 {
			return c
		}
		return cmp.Compare(addr(a), addr(b))
	})
	for i := 0; i < len(m.plain); {
		j := i + 1
		for j < len(m.plain) && m.plain[j].Loop == m.plain[i].Loop {
			j++
		}
		m.spans = append(m.spans, Span{Loop: m.plain[i].Loop, Start: i, End: j})
		i = j
	}
	groups := m.groups[:m.ng]
	slices.SortFunc(groups, func(a, b group) int { return cmp.Compare(a.name, b.name) })
	for i := range groups {
		slices.SortFunc(groups[i].members, func(a, b *Subscription) int { return cmp.Compare(addr(a), addr(b)) })
		m.queues = append(m.queues, groups[i].members)
	}
}

// addr orders subscriptions by identity (the heap does not move objects).
func addr(s *Subscription) uintptr { return uintptr(unsafe.Pointer(s)) }
