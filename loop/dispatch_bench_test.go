package loop

import "testing"

// dispatchCases are a publisher's and a subscriber's subscriptions: two
// plain subscriptions, a queue group of two, and a queue group the no-echo
// publisher is a member of.
var dispatchCases = []struct {
	name, echo, pubSubs, subSubs string
}{
	{"plain", "true", "", "SUB foo.bar 1\r\nSUB foo.* 2\r\n"},
	{"queue", "true", "", "SUB foo.bar q 1\r\nSUB foo.* q 2\r\n"},
	{"noecho-queue", "false", "SUB foo.bar q 1\r\n", "SUB foo.bar q 1\r\n"},
}

var dispatchPub = []byte("PUB foo.bar 16\r\n0123456789abcdef\r\n")

// dispatchClients returns a publisher with its subscriptions and those of a
// subscriber in place, both fake clients: on one gnet loop ("loop": no
// lock, no forward) or as on the goroutine transport (each subscriber's
// lock taken).
func dispatchClients(tb testing.TB, tr, echo, pubSubs, subSubs string) *client {
	o := Options{IO: IOGoroutine, Loops: 1}
	if tr == "loop" {
		o.IO = IOGnet
	}
	s, err := New(o)
	if err != nil {
		tb.Fatal(err)
	}
	pub, _ := newFakeClient(s)
	sub, _ := newFakeClient(s)
	if tr == "loop" {
		lp := s.tr.(*gnetTransport).loops[0]
		for _, c := range []*client{pub, sub} {
			c.lp, c.cache = lp, lp.cache
		}
	}
	connect := "CONNECT {\"verbose\":false,\"pedantic\":false,\"echo\":" + echo + "}\r\n"
	pub.onRead([]byte(connect + pubSubs))
	sub.onRead([]byte(connect + subSubs))
	before := sub.shard.outMsgs.Load()
	pub.onRead(dispatchPub) // warm caches and chunk pools
	sub.foldStats()         // on a loop, counted per read or flush (not called here)
	if sub.shard.outMsgs.Load() == before {
		tb.Fatal("nothing delivered")
	}
	return pub
}

// TestDispatchAllocs: dispatch allocates nothing per message, on a loop or
// on the goroutine transport, to plain subscriptions or queue groups.
func TestDispatchAllocs(t *testing.T) {
	for _, tr := range []string{"loop", "goroutine"} {
		for _, dc := range dispatchCases {
			pub := dispatchClients(t, tr, dc.echo, dc.pubSubs, dc.subSubs)
			if n := testing.AllocsPerRun(1000, func() { pub.onRead(dispatchPub) }); n != 0 {
				t.Errorf("%s/%s: %v allocations per PUB", tr, dc.name, n)
			}
		}
	}
}

// BenchmarkDispatch publishes one 16-byte PUB through dispatchClients.
func BenchmarkDispatch(b *testing.B) {
	for _, tr := range []string{"loop", "goroutine"} {
		for _, dc := range dispatchCases {
			b.Run(tr+"/"+dc.name, func(b *testing.B) {
				pub := dispatchClients(b, tr, dc.echo, dc.pubSubs, dc.subSubs)
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					pub.onRead(dispatchPub)
				}
			})
		}
	}
}
