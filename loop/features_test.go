package loop_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go"
)

func TestQueueGroupBalance(t *testing.T) {
	eachTransport(t, loop.Options{}, func(t *testing.T, s *loop.Server) {
		const n = 2000
		var counts [3]atomic.Int64
		var total sync.WaitGroup
		total.Add(n)
		for i := range counts {
			nc := connect(t, s)
			nc.QueueSubscribe("work", "workers", func(*nats.Msg) { counts[i].Add(1); total.Done() })
			nc.Flush()
		}
		pub := connect(t, s)
		for i := 0; i < n; i++ {
			pub.Publish("work", []byte("job"))
		}
		pub.Flush()
		waitGroup(t, &total, 10*time.Second)
		for i := range counts {
			// Random choice: each of 3 members should see roughly a third.
			if c := counts[i].Load(); c < n/6 {
				t.Errorf("member %d got %d of %d", i, c, n)
			}
		}
	})
}

func TestAutoUnsubscribe(t *testing.T) {
	eachTransport(t, loop.Options{}, func(t *testing.T, s *loop.Server) {
		nc := connect(t, s)
		var got atomic.Int64
		sub, _ := nc.Subscribe("au", func(*nats.Msg) { got.Add(1) })
		sub.AutoUnsubscribe(10)
		nc.Flush()
		pub := connect(t, s)
		for i := 0; i < 25; i++ {
			pub.Publish("au", nil)
		}
		pub.Flush()
		nc.Flush() // round trip after the publisher's flush: deliveries are in
		time.Sleep(50 * time.Millisecond)
		if g := got.Load(); g != 10 {
			t.Fatalf("got %d messages, want 10", g)
		}
		waitFor(t, func() bool { return s.NumSubscriptions() == 0 })
	})
}

func TestNoEcho(t *testing.T) {
	eachTransport(t, loop.Options{}, func(t *testing.T, s *loop.Server) {
		nc := connect(t, s, nats.NoEcho())
		other := connect(t, s)
		ch := make(chan *nats.Msg, 4)
		nc.ChanSubscribe("echo", ch)
		nc.Flush()
		nc.Publish("echo", []byte("self"))
		nc.Flush()
		other.Publish("echo", []byte("other"))
		other.Flush()
		m := recv(t, ch)
		if string(m.Data) != "other" {
			t.Fatalf("got %q: own message was echoed", m.Data)
		}
	})
}

func TestHeaders(t *testing.T) {
	eachTransport(t, loop.Options{}, func(t *testing.T, s *loop.Server) {
		nc := connect(t, s)
		ch := make(chan *nats.Msg, 1)
		nc.ChanSubscribe("hdr", ch)
		nc.Flush()
		m := nats.NewMsg("hdr")
		m.Header.Set("X-Trace", "abc")
		m.Header.Add("X-Multi", "1")
		m.Header.Add("X-Multi", "2")
		m.Data = []byte("body")
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
		got := recv(t, ch)
		if got.Header.Get("X-Trace") != "abc" || len(got.Header.Values("X-Multi")) != 2 || string(got.Data) != "body" {
			t.Fatalf("got headers %v data %q", got.Header, got.Data)
		}
	})
}

func TestHeadersStrippedForOldClients(t *testing.T) {
	eachTransport(t, loop.Options{}, func(t *testing.T, s *loop.Server) {
		rc := dialRaw(t, s)
		rc.send("CONNECT {\"verbose\":false,\"headers\":false}\r\nSUB h 1\r\nPING\r\n")
		rc.expect("PONG")
		nc := connect(t, s)
		m := nats.NewMsg("h")
		m.Header.Set("A", "B")
		m.Data = []byte("payload")
		nc.PublishMsg(m)
		rc.expect("MSG h 1 7")
		rc.expect("payload")
	})
}

func TestNoResponders(t *testing.T) {
	eachTransport(t, loop.Options{}, func(t *testing.T, s *loop.Server) {
		nc := connect(t, s)
		start := time.Now()
		_, err := nc.Request("nobody.home", []byte("?"), 5*time.Second)
		if !errors.Is(err, nats.ErrNoResponders) {
			t.Fatalf("got %v, want no responders", err)
		}
		if time.Since(start) > 2*time.Second {
			t.Fatal("no-responders answer came by timeout, not from the server")
		}
	})
}

func TestNoRespondersExactBytes(t *testing.T) {
	eachTransport(t, loop.Options{}, func(t *testing.T, s *loop.Server) {
		rc := dialRaw(t, s)
		rc.send("CONNECT {\"verbose\":false,\"headers\":true,\"no_responders\":true}\r\nSUB _INBOX.x 7\r\nPUB svc _INBOX.x 2\r\nhi\r\n")
		rc.expect("HMSG _INBOX.x 7 35 35")
		rc.expect("NATS/1.0 503")
		rc.expect("Nats-Subject: svc")
		rc.expect("")
	})
}

func TestManyPublishersAndSubscribers(t *testing.T) {
	eachTransport(t, loop.Options{}, func(t *testing.T, s *loop.Server) {
		const pubs, subs, each = 4, 4, 2000
		var wg sync.WaitGroup
		wg.Add(subs)
		for i := 0; i < subs; i++ {
			nc := connect(t, s)
			seen := make([]int, pubs)
			count := 0
			var bad atomic.Bool
			nc.Subscribe("mp.*", func(m *nats.Msg) {
				p := int(m.Subject[3] - '0')
				if int(m.Data[0])|int(m.Data[1])<<8 != seen[p] {
					bad.Store(true) // per-publisher order must hold
				}
				seen[p]++
				if count++; count == pubs*each {
					if bad.Load() {
						t.Error("out of order delivery")
					}
					wg.Done()
				}
			})
			nc.Flush()
		}
		var pw sync.WaitGroup
		for p := 0; p < pubs; p++ {
			nc := connect(t, s)
			pw.Add(1)
			go func() {
				defer pw.Done()
				subj := "mp." + string(rune('0'+p))
				for i := 0; i < each; i++ {
					nc.Publish(subj, []byte{byte(i), byte(i >> 8)})
				}
				nc.Flush()
			}()
		}
		pw.Wait()
		waitGroup(t, &wg, 20*time.Second)
	})
}

func recv(t *testing.T, ch chan *nats.Msg) *nats.Msg {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("timeout waiting for message")
		return nil
	}
}

// waitFor polls cond for state that has no signal (server-side counters).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
