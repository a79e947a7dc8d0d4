package loop_test

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go"
)

func TestPubSubBasic(t *testing.T) {
	eachTransport(t, loop.Options{}, func(t *testing.T, s *loop.Server) {
		sub := connect(t, s)
		pub := connect(t, s)
		ch := make(chan *nats.Msg, 10)
		if _, err := sub.ChanSubscribe("foo.bar", ch); err != nil {
			t.Fatal(err)
		}
		if _, err := sub.ChanSubscribe("foo.*", ch); err != nil {
			t.Fatal(err)
		}
		if _, err := sub.ChanSubscribe("foo.>", ch); err != nil {
			t.Fatal(err)
		}
		sub.Flush()
		if err := pub.Publish("foo.bar", []byte("hello")); err != nil {
			t.Fatal(err)
		}
		pub.Publish("foo.bar.baz", []byte("deep"))
		pub.Publish("other", []byte("none"))
		pub.Flush()
		got := map[string]int{}
		for i := 0; i < 4; i++ {
			select {
			case m := <-ch:
				got[m.Subject+"="+string(m.Data)]++
			case <-time.After(5 * time.Second):
				t.Fatalf("timeout; got %v", got)
			}
		}
		if got["foo.bar=hello"] != 3 || got["foo.bar.baz=deep"] != 1 {
			t.Fatalf("got %v", got)
		}
		select {
		case m := <-ch:
			t.Fatalf("unexpected %s", m.Subject)
		case <-time.After(50 * time.Millisecond):
		}
	})
}

func TestRequestReply(t *testing.T) {
	eachTransport(t, loop.Options{}, func(t *testing.T, s *loop.Server) {
		svc := connect(t, s)
		svc.Subscribe("svc.echo", func(m *nats.Msg) { m.Respond(append([]byte("re:"), m.Data...)) })
		svc.Flush()
		cl := connect(t, s)
		for i := 0; i < 100; i++ {
			m, err := cl.Request("svc.echo", []byte(fmt.Sprint(i)), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if string(m.Data) != fmt.Sprintf("re:%d", i) {
				t.Fatalf("got %q", m.Data)
			}
		}
	})
}

func TestOrderedManyMessages(t *testing.T) {
	eachTransport(t, loop.Options{}, func(t *testing.T, s *loop.Server) {
		const n = 100_000
		sub := connect(t, s)
		done := make(chan error, 1)
		next := 0
		sub.Subscribe("seq", func(m *nats.Msg) {
			if string(m.Data) != fmt.Sprint(next) {
				select {
				case done <- fmt.Errorf("got %q want %d", m.Data, next):
				default:
				}
				return
			}
			next++
			if next == n {
				done <- nil
			}
		})
		sub.Flush()
		pub := connect(t, s)
		for i := 0; i < n; i++ {
			pub.Publish("seq", []byte(fmt.Sprint(i)))
		}
		pub.Flush()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("timeout at %d", next)
		}
	})
}

func TestLargePayload(t *testing.T) {
	eachTransport(t, loop.Options{MaxPayload: 8 << 20}, func(t *testing.T, s *loop.Server) {
		sub := connect(t, s)
		pub := connect(t, s)
		ch := make(chan *nats.Msg, 4)
		sub.ChanSubscribe("big", ch)
		sub.Flush()
		data := bytes.Repeat([]byte("0123456789abcdef"), 4<<20/16) // 4 MiB
		data[12345] = 'X'
		pub.Publish("big", data)
		select {
		case m := <-ch:
			if !bytes.Equal(m.Data, data) {
				t.Fatal("payload corrupted")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("timeout")
		}
		if pub.MaxPayload() != 8<<20 {
			t.Fatalf("max payload %d", pub.MaxPayload())
		}
	})
}

func TestFanOutAcrossLoops(t *testing.T) {
	eachTransport(t, loop.Options{}, func(t *testing.T, s *loop.Server) {
		const subs, msgs = 20, 1000
		var wg sync.WaitGroup
		wg.Add(subs)
		for i := 0; i < subs; i++ {
			nc := connect(t, s)
			count := 0
			nc.Subscribe("fan", func(m *nats.Msg) {
				if count++; count == msgs {
					wg.Done()
				}
			})
			nc.Flush()
		}
		pub := connect(t, s)
		for i := 0; i < msgs; i++ {
			pub.Publish("fan", []byte("x"))
		}
		pub.Flush()
		waitGroup(t, &wg, 20*time.Second)
	})
}

func waitGroup(t *testing.T, wg *sync.WaitGroup, d time.Duration) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatal("timeout waiting for deliveries")
	}
}
