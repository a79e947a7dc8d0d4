package router

import (
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"testing"
)

func TestValidSubject(t *testing.T) {
	for s, want := range map[string]bool{
		"foo": true, "foo.bar": true, "foo.*": true, "foo.>": true, ">": true, "*": true,
		"foo.*bar": true, "": false, "foo.": false, ".foo": false, "foo..bar": false,
		"foo.>.bar": false, "foo bar": false, "foo\tbar": false,
	} {
		if got := ValidSubject(s); got != want {
			t.Errorf("ValidSubject(%q) = %v", s, got)
		}
	}
	for s, want := range map[string]bool{"foo.bar": true, "foo.*": false, ">": false, "a.*b": true} {
		if got := ValidLiteralSubject(s); got != want {
			t.Errorf("ValidLiteralSubject(%q) = %v", s, got)
		}
	}
}

func TestSubjectMatches(t *testing.T) {
	cases := []struct {
		p, s string
		want bool
	}{
		{"foo", "foo", true}, {"foo", "bar", false}, {"foo.*", "foo.bar", true},
		{"foo.*", "foo", false}, {"foo.*", "foo.bar.baz", false}, {"foo.>", "foo.bar.baz", true},
		{"foo.>", "foo", false}, {">", "foo", true}, {"*.bar", "foo.bar", true}, {"*", "a.b", false},
	}
	for _, c := range cases {
		if got := SubjectMatches(c.p, c.s); got != c.want {
			t.Errorf("SubjectMatches(%q,%q) = %v", c.p, c.s, got)
		}
		if got := SubjectMatches(c.p, []byte(c.s)); got != c.want {
			t.Errorf("SubjectMatches(%q,[]byte(%q)) = %v", c.p, c.s, got)
		}
	}
	// Delivery filters match subjects held as bytes without allocating.
	subj := []byte("secret.some.rather.long.subject.name")
	if n := testing.AllocsPerRun(100, func() { SubjectMatches("secret.>", subj) }); n != 0 {
		t.Fatalf("%v allocations per byte match", n)
	}
}

func TestSubjectCoversAndCollide(t *testing.T) {
	covers := []struct {
		p, s string
		want bool
	}{
		{"orders.*", "orders.new", true}, {"orders.*", "orders.*", true}, {"orders.*", "orders.>", false},
		{"orders.>", "orders.a.*", true}, {">", "a.>", true}, {"a.b", "a.*", false}, {"a.*", "a", false},
	}
	for _, c := range covers {
		if got := SubjectCovers(c.p, c.s); got != c.want {
			t.Errorf("SubjectCovers(%q,%q) = %v", c.p, c.s, got)
		}
	}
	collide := []struct {
		a, b string
		want bool
	}{
		{"a.*", "a.b", true}, {"a.>", "a.b.c", true}, {"a.>", "a", false}, {"a.*", "b.*", false},
		{"*.b", "a.*", true}, {">", "x", true}, {"a.b", "a.b.c", false}, {"a.*.c", "a.b.*", true},
	}
	for _, c := range collide {
		if got := SubjectsCollide(c.a, c.b); got != c.want {
			t.Errorf("SubjectsCollide(%q,%q) = %v", c.a, c.b, got)
		}
		if got := SubjectsCollide(c.b, c.a); got != c.want {
			t.Errorf("SubjectsCollide(%q,%q) = %v (reversed)", c.b, c.a, got)
		}
	}
}

func TestSublistBasics(t *testing.T) {
	sl := NewSublist[int]()
	a := &Subscription[int]{Subject: "foo.bar", Loop: 1}
	b := &Subscription[int]{Subject: "foo.*", Loop: 0}
	c := &Subscription[int]{Subject: "foo.>", Queue: "q", Loop: 1}
	d := &Subscription[int]{Subject: "foo.>", Queue: "q", Loop: 0}
	g0 := sl.Gen()
	for _, s := range []*Subscription[int]{a, b, c, d} {
		sl.Insert(s)
	}
	if sl.Gen() == g0 || sl.Count() != 4 {
		t.Fatal("insert did not bump generation or count")
	}
	r := sl.Match("foo.bar")
	if len(r.Plain) != 2 || r.Plain[0] != b || r.Plain[1] != a {
		t.Fatalf("plain not sorted by loop: %+v", r.Plain)
	}
	if len(r.Spans) != 2 || r.Spans[0] != (Span{0, 0, 1}) || r.Spans[1] != (Span{1, 1, 2}) {
		t.Fatalf("spans %+v", r.Spans)
	}
	if len(r.Queues) != 1 || len(r.Queues[0]) != 2 {
		t.Fatalf("queues %+v", r.Queues)
	}
	for _, s := range []*Subscription[int]{a, b, c, d} {
		if !sl.Remove(s) {
			t.Fatal("remove failed")
		}
	}
	if sl.Remove(a) {
		t.Fatal("double remove succeeded")
	}
	if !sl.root.empty() {
		t.Fatal("trie not pruned")
	}
}

// TestSublistAgainstLinear checks the trie and the cache against a naive
// linear scan over thousands of random subscriptions, removals and subjects.
func TestSublistAgainstLinear(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	toks := []string{"a", "b", "c", "foo", "bar"}
	randSubject := func(wild bool) string {
		n := 1 + rng.Intn(4)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = toks[rng.Intn(len(toks))]
			if wild && rng.Intn(5) == 0 {
				parts[i] = "*"
			}
		}
		if wild && rng.Intn(6) == 0 {
			parts[n-1] = ">"
		}
		return strings.Join(parts, ".")
	}
	sl := NewSublist[int]()
	cache := NewCache(sl, 64)
	var live []*Subscription[int]
	for round := 0; round < 5000; round++ {
		switch {
		case len(live) > 0 && rng.Intn(3) == 0:
			i := rng.Intn(len(live))
			if !sl.Remove(live[i]) {
				t.Fatal("remove of live sub failed")
			}
			live = append(live[:i], live[i+1:]...)
		default:
			s := &Subscription[int]{Subject: randSubject(true), Loop: rng.Intn(3)}
			if rng.Intn(4) == 0 {
				s.Queue = []string{"q1", "q2"}[rng.Intn(2)]
			}
			sl.Insert(s)
			live = append(live, s)
		}
		for k := 0; k < 3; k++ {
			subj := randSubject(false)
			want := linear(live, subj)
			for _, got := range []*Result[int]{sl.Match(subj), cache.Match([]byte(subj))} {
				if g := flatten(got); g != want {
					t.Fatalf("round %d subject %q:\n got %s\nwant %s", round, subj, g, want)
				}
			}
		}
	}
}

func linear(subs []*Subscription[int], subject string) string {
	var out []string
	for _, s := range subs {
		if SubjectMatches(s.Subject, subject) {
			out = append(out, s.Queue+"|"+s.Subject+"|"+ptr(s))
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func flatten(r *Result[int]) string {
	var out []string
	for _, s := range r.Plain {
		out = append(out, "|"+s.Subject+"|"+ptr(s))
	}
	for _, q := range r.Queues {
		for _, s := range q {
			if s.Queue != q[0].Queue {
				panic("mixed queue group")
			}
			out = append(out, s.Queue+"|"+s.Subject+"|"+ptr(s))
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

var ids = map[*Subscription[int]]string{}

func ptr(s *Subscription[int]) string {
	if id, ok := ids[s]; ok {
		return id
	}
	ids[s] = string(rune('A'+len(ids)%26)) + strings.Repeat("'", len(ids)/26)
	return ids[s]
}

func TestCacheInvalidation(t *testing.T) {
	sl := NewSublist[int]()
	c := NewCache(sl, 0)
	if !c.Match([]byte("x")).Empty() {
		t.Fatal("want empty")
	}
	s := &Subscription[int]{Subject: "x"}
	sl.Insert(s)
	if len(c.Match([]byte("x")).Plain) != 1 {
		t.Fatal("cache did not see insert")
	}
	sl.Remove(s)
	if !c.Match([]byte("x")).Empty() {
		t.Fatal("cache did not see remove")
	}
}

func TestCacheHitAllocs(t *testing.T) {
	sl := NewSublist[int]()
	sl.Insert(&Subscription[int]{Subject: "foo.*"})
	c := NewCache(sl, 0)
	subj := []byte("foo.bar")
	c.Match(subj)
	if n := testing.AllocsPerRun(1000, func() { c.Match(subj) }); n != 0 {
		t.Fatalf("cached match allocates %v", n)
	}
}

// Replace swaps subscriptions in one step: a concurrent matcher sees the
// old set or the new one, never both and never neither.
func TestSublistReplaceIsAtomic(t *testing.T) {
	sl := NewSublist[int]()
	a := &Subscription[int]{Subject: "x.>", Owner: 1}
	b := &Subscription[int]{Subject: "x.y", Owner: 2}
	sl.Insert(a)
	done := make(chan struct{})
	bad := make(chan int, 1)
	go func() {
		defer close(done)
		for i := 0; i < 20000; i++ {
			if n := len(sl.Match("x.y").Plain); n != 1 {
				bad <- n
				return
			}
		}
	}()
	for i := 0; ; i++ {
		select {
		case <-done:
			select {
			case n := <-bad:
				t.Fatalf("a match saw %d subscriptions during a replace", n)
			default:
			}
			if sl.Count() != 1 {
				t.Fatalf("count %d after replaces", sl.Count())
			}
			return
		default:
		}
		if i%2 == 0 {
			sl.Replace([]*Subscription[int]{a}, []*Subscription[int]{b})
		} else {
			sl.Replace([]*Subscription[int]{b}, []*Subscription[int]{a})
		}
	}
}

// TestCacheBounds: a subject over MaxCachedSubject is matched, not kept,
// and what the cache keeps stays under its byte bound however large the
// results.
func TestCacheBounds(t *testing.T) {
	sl := NewSublist[int]()
	for range 1000 {
		sl.Insert(&Subscription[int]{Subject: ">"})
	}
	c := NewCache(sl, 64)
	long := []byte(strings.Repeat("x", MaxCachedSubject+1))
	if len(c.Match(long).Plain) != 1000 || c.Len() != 0 {
		t.Fatalf("long subject: cache holds %d entries, want 0", c.Len())
	}
	for i := range 1000 {
		c.Match(fmt.Appendf(nil, "s.%d", i))
		if c.Bytes() > 64*cacheBytesPerEntry {
			t.Fatalf("cache holds %d bytes over %d entries", c.Bytes(), c.Len())
		}
	}
}

// TestCacheOneOffSubjects: subjects published to once, as nats.go's request
// reply subjects are, are matched without allocating and not kept, so they
// neither grow the cache nor start it over and push out what is in use;
// a subject seen twice is kept.
func TestCacheOneOffSubjects(t *testing.T) {
	sl := NewSublist[int]()
	inbox := &Subscription[int]{Subject: "_INBOX.abc.*", Loop: 1}
	sl.Insert(inbox)
	sl.Insert(&Subscription[int]{Subject: "svc", Queue: "q", Loop: 0})
	c := NewCache(sl, 64)
	hot := []byte("svc")
	c.Match(hot)
	c.Match(hot) // kept on its second miss
	if c.Len() != 1 {
		t.Fatalf("cache holds %d subjects after a repeated one, want 1", c.Len())
	}
	subj := []byte("_INBOX.abc.00000000")
	n := 0
	next := func() *Result[int] {
		n++
		for i, v := len(subj)-1, n; i >= len(subj)-8; i, v = i-1, v/10 {
			subj[i] = byte('0' + v%10)
		}
		return c.Match(subj)
	}
	first := next()
	if len(first.Plain) != 1 || first.Plain[0] != inbox {
		t.Fatalf("reply subject matched %v", first.Plain)
	}
	if a := testing.AllocsPerRun(1000, func() {
		if next() != first {
			t.Fatal("subjects matching the same subscription got different results")
		}
	}); a != 0 {
		t.Fatalf("a one-off subject allocates %v", a)
	}
	if c.Len() != 1 {
		t.Fatalf("cache holds %d subjects after 1000 one-off ones, want 1 (the repeated one)", c.Len())
	}
	if a := testing.AllocsPerRun(100, func() { c.Match(hot) }); a != 0 {
		t.Fatalf("the repeated subject was pushed out: %v allocations", a)
	}
	// The shared result is rebuilt after a change, never reused stale.
	other := &Subscription[int]{Subject: "_INBOX.>", Loop: 0}
	sl.Insert(other)
	if r := next(); len(r.Plain) != 2 || r.Plain[0] != other || len(r.Spans) != 2 {
		t.Fatalf("after an insert, plain %v spans %v", r.Plain, r.Spans)
	}
}

func TestWatchSeesEveryChangeOnce(t *testing.T) {
	sl := NewSublist[int]()
	a := &Subscription[int]{Subject: "a.b"}
	b := &Subscription[int]{Subject: "a.*", Queue: "q"}
	c := &Subscription[int]{Subject: ">"}
	sl.Insert(a)
	sl.Insert(b)
	live := map[*Subscription[int]]int{}
	sl.Watch(func(s *Subscription[int], added bool) {
		if added {
			live[s]++
		} else {
			live[s]--
		}
	})
	if live[a] != 1 || live[b] != 1 || len(live) != 2 {
		t.Fatalf("replay: %v", live)
	}
	sl.Insert(c)
	sl.Remove(a)
	sl.Remove(a) // absent: not seen
	sl.Replace([]*Subscription[int]{b}, []*Subscription[int]{a})
	if live[a] != 1 || live[b] != 0 || live[c] != 1 {
		t.Fatalf("after changes: a=%d b=%d c=%d", live[a], live[b], live[c])
	}
	sl.Watch(nil)
	sl.Remove(c)
	if live[c] != 1 {
		t.Fatal("a removed watcher still called")
	}
}

// TestSublistReplaceKeepsSharedNodes: a handover on the same subjects
// keeps the trie's nodes (nothing freed and made again), the same
// subscription in old and new stays, and nodes only old used are pruned.
func TestSublistReplaceKeepsSharedNodes(t *testing.T) {
	sl := NewSublist[int]()
	online := []*Subscription[int]{{Subject: "bench.sessions.1.0.*", Owner: 1}, {Subject: "only.old", Owner: 1}}
	offline := []*Subscription[int]{{Subject: "bench.sessions.1.0.*", Owner: 2}}
	sl.Replace(nil, online)
	level := sl.root.nodes["bench"].next
	sl.Replace(online, offline)
	if sl.root.nodes["bench"].next != level {
		t.Fatal("a handover on the same subject made its trie nodes again")
	}
	if sl.root.nodes["only"] != nil {
		t.Fatal("a node only the old subscriptions used was not pruned")
	}
	if n := len(sl.Match("bench.sessions.1.0.x").Plain); n != 1 || sl.Count() != 1 {
		t.Fatalf("after the handover: %d matched, count %d; want 1, 1", n, sl.Count())
	}
	sl.Replace(offline, offline) // the same subscription in both stays
	if n := len(sl.Match("bench.sessions.1.0.x").Plain); n != 1 || sl.Count() != 1 {
		t.Fatalf("after replacing a subscription with itself: %d matched, count %d", n, sl.Count())
	}
	sl.Replace(offline, nil)
	if len(sl.root.nodes) != 0 {
		t.Fatalf("nodes left after every subscription went: %d", len(sl.root.nodes))
	}
}

// TestCacheLastHit: the last-hit shortcut returns each subject's own result
// when subjects alternate, when one is a prefix of the other, and after
// the sublist changes.
func TestCacheLastHit(t *testing.T) {
	sl := NewSublist[int]()
	a := &Subscription[int]{Subject: "a.b"}
	b := &Subscription[int]{Subject: "a.b.c"}
	sl.Insert(a)
	sl.Insert(b)
	c := NewCache(sl, 0)
	check := func(subject string, want *Subscription[int]) {
		t.Helper()
		r := c.Match([]byte(subject))
		if want == nil {
			if !r.Empty() {
				t.Fatalf("%s: got %d plain, want none", subject, len(r.Plain))
			}
			return
		}
		if len(r.Plain) != 1 || r.Plain[0] != want {
			t.Fatalf("%s: got %v, want %s", subject, r.Plain, want.Subject)
		}
	}
	for range 3 { // seen twice: kept; then hits, alternating
		check("a.b", a)
		check("a.b", a)
		check("a.b.c", b)
		check("a.b.c", b)
	}
	check("a.b", a) // the last hit
	sl.Remove(a)
	check("a.b", nil)
	check("a.b.c", b)
	check("a.b.c", b)
	check("a.b", nil)
}
