package router

// Concurrency: one Sublist is shared by every goroutine. mu (RWMutex)
// guards the trie and count: Match takes it shared; Insert, Remove and
// Replace exclusively. gen is bumped under mu and read lock-free by Caches.
// mu is a leaf except for the interest watcher (Watch), which is called
// with it held and must not call back. Subscriptions are
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
	// watch, when set (Watch), sees every insertion and removal, called
	// with mu held (exclusively) so that what it sees is in the order
	// matches see it. It must not call back into the Sublist; it may take
	// its own locks, which then rank below mu.
	watch func(sub *Subscription[O], added bool)
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
	if s.watch != nil {
		s.watch(sub, true)
	}
}

// Watch installs fn to observe interest: it is called at once for every
// subscription already present (added), then for every later insertion
// and removal, always with mu held exclusively, so the calls come in the
// order the changes take effect and none is missed or seen twice. fn must
// be quick and must not call the Sublist (mu is held); any lock it takes
// ranks below mu. A nil fn stops watching. One watcher at a time.
func (s *Sublist[O]) Watch(fn func(sub *Subscription[O], added bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.watch = fn
	if fn != nil {
		eachSub(s.root, fn)
	}
}

// eachSub calls fn(sub, true) for every subscription below l.
func eachSub[O any](l *level[O], fn func(*Subscription[O], bool)) {
	visit := func(n *node[O]) {
		if n == nil {
			return
		}
		for sub := range n.plain {
			fn(sub, true)
		}
		for _, members := range n.queue {
			for sub := range members {
				fn(sub, true)
			}
		}
		if n.next != nil {
			eachSub(n.next, fn)
		}
	}
	for _, n := range l.nodes {
		visit(n)
	}
	visit(l.pwc)
	visit(l.fwc)
}

// Replace removes old and inserts new as one change: every match sees
// either all of old or all of new, never both and never neither (an owner
// handing its subscriptions over to another loses and repeats nothing).
// The trie nodes old leaves empty are pruned only after new is in, so a
// handover on the same subjects (an MQTT session's client leaving or
// coming back) keeps its nodes instead of freeing and allocating them again.
func (s *Sublist[O]) Replace(old, new []*Subscription[O]) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prune := len(new) == 0
	for _, sub := range old {
		if removeFrom(s.root, sub.Subject, sub, prune) {
			s.count--
			if s.watch != nil {
				s.watch(sub, false)
			}
		}
	}
	for _, sub := range new {
		s.insert(sub)
		if s.watch != nil {
			s.watch(sub, true)
		}
	}
	if !prune {
		for _, sub := range old {
			prunePath(s.root, sub.Subject)
		}
	}
	s.gen.Add(1)
}

// prunePath deletes the nodes on subject's path below l that hold no
// subscription and lead to none.
func prunePath[O any](l *level[O], subject string) {
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
		return
	}
	if more && n.next != nil {
		prunePath(n.next, rest)
		if n.next.empty() {
			n.next = nil
		}
	}
	if n.next == nil && len(n.plain) == 0 && len(n.queue) == 0 {
		switch tok {
		case "*":
			l.pwc = nil
		case ">":
			l.fwc = nil
		default:
			delete(l.nodes, tok)
		}
	}
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
	if !removeFrom(s.root, sub.Subject, sub, true) {
		return false
	}
	s.count--
	s.gen.Add(1)
	if s.watch != nil {
		s.watch(sub, false)
	}
	return true
}

// removeFrom removes sub below l and, with prune, prunes nodes it leaves
// empty (without, the caller prunes them: prunePath).
func removeFrom[O any](l *level[O], subject string, sub *Subscription[O], prune bool) bool {
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
		ok = removeFrom(n.next, rest, sub, prune)
		if prune && ok && n.next.empty() {
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
	if prune && ok && n.next == nil && len(n.plain) == 0 && len(n.queue) == 0 {
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
	s.matchInto(&m, subject)
	if m.empty() {
		return s.empty
	}
	return &Result[O]{Plain: m.plain, Spans: m.spans, Queues: m.queues} // m is ours alone
}

// matchInto fills m with the canonical match of subject (see matcher).
func (s *Sublist[O]) matchInto(m *matcher[O], subject string) {
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
type matcher[O any] struct {
	plain  []*Subscription[O]
	groups []group[O] // groups[:ng] are in use
	ng     int
	spans  []Span
	queues [][]*Subscription[O]
}

// group is the members of one queue group found so far.
type group[O any] struct {
	name    string
	members []*Subscription[O]
}

func (m *matcher[O]) empty() bool { return len(m.plain) == 0 && m.ng == 0 }

// reset empties m, keeping its buffers and dropping its references.
func (m *matcher[O]) reset() {
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
		g := m.group(name)
		for sub := range members {
			g.members = append(g.members, sub)
		}
	}
}

// group returns the group named name, adding it if it is new.
func (m *matcher[O]) group(name string) *group[O] {
	for i := range m.groups[:m.ng] {
		if m.groups[i].name == name {
			return &m.groups[i]
		}
	}
	if m.ng == len(m.groups) {
		m.groups = append(m.groups, group[O]{})
	}
	g := &m.groups[m.ng]
	m.ng++
	g.name = name
	return g
}

// finish sorts the match into canonical order and indexes it: Spans over
// Plain, Queues over the groups' members.
func (m *matcher[O]) finish() {
	slices.SortFunc(m.plain, func(a, b *Subscription[O]) int {
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
	slices.SortFunc(groups, func(a, b group[O]) int { return cmp.Compare(a.name, b.name) })
	for i := range groups {
		slices.SortFunc(groups[i].members, func(a, b *Subscription[O]) int { return cmp.Compare(addr(a), addr(b)) })
		m.queues = append(m.queues, groups[i].members)
	}
}

// addr orders subscriptions by identity (the heap does not move objects).
func addr[O any](s *Subscription[O]) uintptr { return uintptr(unsafe.Pointer(s)) }
