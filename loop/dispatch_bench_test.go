package loop

import "testing"

// BenchmarkDispatch publishes one 16-byte PUB through a fake client to
// subscribers on another fake client: two plain subscriptions, a queue
// group of two, and a queue group the no-echo publisher is a member of.
// "loop" runs the clients as if on one gnet loop (no lock, no forward);
// "goroutine" takes each subscriber's lock as the goroutine transport does.
func BenchmarkDispatch(b *testing.B) {
	for _, tr := range []string{"loop", "goroutine"} {
		for _, bc := range []struct {
			name, echo, pubSubs, subSubs string
		}{
			{"plain", "true", "", "SUB foo.bar 1\r\nSUB foo.* 2\r\n"},
			{"queue", "true", "", "SUB foo.bar q 1\r\nSUB foo.* q 2\r\n"},
			{"noecho-queue", "false", "SUB foo.bar q 1\r\n", "SUB foo.bar q 1\r\n"},
		} {
			b.Run(tr+"/"+bc.name, func(b *testing.B) {
				o := Options{IO: IOGoroutine, Loops: 1}
				if tr == "loop" {
					o.IO = IOGnet
				}
				s, err := New(o)
				if err != nil {
					b.Fatal(err)
				}
				pub, _ := newFakeClient(s)
				sub, _ := newFakeClient(s)
				if tr == "loop" {
					lp := s.tr.(*gnetTransport).loops[0]
					for _, c := range []*client{pub, sub} {
						c.lp, c.cache = lp, lp.cache
					}
				}
				connect := "CONNECT {\"verbose\":false,\"pedantic\":false,\"echo\":" + bc.echo + "}\r\n"
				pub.onRead([]byte(connect + bc.pubSubs))
				sub.onRead([]byte(connect + bc.subSubs))
				msg := []byte("PUB foo.bar 16\r\n0123456789abcdef\r\n")
				before := s.shard(0).outMsgs.Load() + s.shard(int(pub.id)).outMsgs.Load() + s.shard(int(sub.id)).outMsgs.Load()
				pub.onRead(msg)
				if after := s.shard(0).outMsgs.Load() + s.shard(int(pub.id)).outMsgs.Load() + s.shard(int(sub.id)).outMsgs.Load(); after == before && bc.echo == "true" {
					b.Fatal("nothing delivered")
				}
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					pub.onRead(msg)
				}
			})
		}
	}
}
