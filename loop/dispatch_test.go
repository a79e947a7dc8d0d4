package loop

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestQueueMemberTurnsDown: a queue member that turns a message down when
// it is delivered (its subscription closed after the publisher matched it,
// as when it auto-unsubscribes or unsubscribes with messages in flight)
// passes the message to another member, also when the member lives on
// another loop than the publisher and the one that takes it on a third,
// as nats-server tries the next member rather than drop it.
func TestQueueMemberTurnsDown(t *testing.T) {
	for _, tr := range []struct {
		name  string
		io    string
		loops int
	}{{"gnet-1loop", IOGnet, 1}, {"gnet-3loops", IOGnet, 3}, {"goroutine", IOGoroutine, 0}} {
		t.Run(tr.name, func(t *testing.T) {
			s, err := New(Options{Host: "127.0.0.1", Port: -1, IO: tr.io, Loops: tr.loops, StoreDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Shutdown)
			dial := func(name string) *nats.Conn {
				nc, err := nats.Connect(s.ClientURL(), nats.Name(name), nats.NoReconnect())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(nc.Close)
				return nc
			}
			pub, gone, taker := dial("pub"), dial("gone"), dial("taker")
			const n = 60
			var got atomic.Int64
			all := make(chan struct{})
			if _, err := gone.QueueSubscribe("foo", "q", func(*nats.Msg) { t.Error("closed member got a message") }); err != nil {
				t.Fatal(err)
			}
			if _, err := taker.QueueSubscribe("foo", "q", func(*nats.Msg) {
				if got.Add(1) == n {
					close(all)
				}
			}); err != nil {
				t.Fatal(err)
			}
			for _, nc := range []*nats.Conn{gone, taker} {
				if err := nc.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			// Close "gone"'s subscription in its owner's context but leave
			// it in the sublist: every publisher still matches it.
			var mu sync.Mutex // eachClient runs on every loop at once
			loops := map[string]int{}
			s.tr.eachClient(func(c *client) {
				c.t.outLock()
				defer c.t.outUnlock()
				if c.lp != nil {
					mu.Lock()
					loops[c.opts.Name] = c.lp.idx
					mu.Unlock()
				}
				if c.opts.Name == "gone" {
					for _, sub := range c.subs {
						sub.closed = true
					}
				}
			})
			if tr.loops == 3 && (loops["pub"] == loops["gone"] || loops["gone"] == loops["taker"] || loops["pub"] == loops["taker"]) {
				t.Fatalf("want three loops, got %v", loops)
			}
			for range n {
				if err := pub.Publish("foo", []byte("x")); err != nil {
					t.Fatal(err)
				}
			}
			if err := pub.Flush(); err != nil {
				t.Fatal(err)
			}
			select {
			case <-all:
			case <-time.After(5 * time.Second):
				t.Fatalf("the remaining member got %d of %d", got.Load(), n)
			}
		})
	}
}
