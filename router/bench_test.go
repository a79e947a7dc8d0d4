package router

import (
	"strconv"
	"testing"
)

func benchSublist() *Sublist[int] {
	sl := NewSublist[int]()
	for i := 0; i < 1000; i++ {
		sl.Insert(&Subscription[int]{Subject: "svc." + strconv.Itoa(i) + ".req", Loop: i % 4})
	}
	sl.Insert(&Subscription[int]{Subject: "foo.bar", Loop: 0})
	sl.Insert(&Subscription[int]{Subject: "wild.*.x", Loop: 1})
	sl.Insert(&Subscription[int]{Subject: "wild.>", Loop: 2})
	for i := 0; i < 4; i++ {
		sl.Insert(&Subscription[int]{Subject: "work", Queue: "q", Loop: i})
	}
	return sl
}

func BenchmarkMatchLiteralUncached(b *testing.B) {
	sl := benchSublist()
	b.ReportAllocs()
	for b.Loop() {
		sl.Match("foo.bar")
	}
}

func BenchmarkMatchWildcardUncached(b *testing.B) {
	sl := benchSublist()
	b.ReportAllocs()
	for b.Loop() {
		sl.Match("wild.y.x")
	}
}

func BenchmarkMatchQueueUncached(b *testing.B) {
	sl := benchSublist()
	b.ReportAllocs()
	for b.Loop() {
		sl.Match("work")
	}
}

func benchCached(b *testing.B, subject string) {
	c := NewCache(benchSublist(), 0)
	s := []byte(subject)
	b.ReportAllocs()
	for b.Loop() {
		c.Match(s)
	}
}

func BenchmarkMatchLiteralCached(b *testing.B)  { benchCached(b, "foo.bar") }
func BenchmarkMatchWildcardCached(b *testing.B) { benchCached(b, "wild.y.x") }
func BenchmarkMatchQueueCached(b *testing.B)    { benchCached(b, "work") }
