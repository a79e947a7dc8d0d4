package jetstream_test

import (
	"testing"
	"time"

	"github.com/evnats/evnats/jetstream"
	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go"
	njs "github.com/nats-io/nats.go/jetstream"
)

// TestConsumerTimersNeedNoTick runs a server whose periodic tick never
// fires (an hour) and checks that every consumer deadline still comes, on
// time, from the timers armed by the consumers' own deadlines: a pull
// request's expiry (408), an idle heartbeat, an ack-wait redelivery and
// the inactive threshold. With consumers on the tick, none would arrive.
func TestConsumerTimersNeedNoTick(t *testing.T) {
	defer jetstream.SetStreamTick(time.Hour)()
	for _, io := range []string{loop.IOGnet, loop.IOGoroutine} {
		t.Run(io, func(t *testing.T) {
			s := startJS(t, loop.Options{IO: io, Loops: 2})
			nc, js := connectJS(t, s)
			c := ctx(t)
			st, err := js.CreateStream(c, njs.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Storage: njs.MemoryStorage})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.CreateOrUpdateConsumer(c, njs.ConsumerConfig{Durable: "P", AckPolicy: njs.AckExplicitPolicy}); err != nil {
				t.Fatal(err)
			}
			status := func(sub *nats.Subscription, want string) {
				t.Helper()
				m, err := sub.NextMsg(2 * time.Second)
				if err != nil {
					t.Fatalf("waiting for a %s status: %v", want, err)
				}
				if got := m.Header.Get("Status"); got != want {
					t.Fatalf("status %q (%q), want %s", got, m.Header.Get("Description"), want)
				}
			}

			// A pull that expires in 50 ms ends with a 408.
			inbox := nats.NewInbox()
			sub, err := nc.SubscribeSync(inbox)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if err := nc.PublishRequest("$JS.API.CONSUMER.MSG.NEXT.T.P", inbox, []byte(`{"batch":1,"expires":50000000}`)); err != nil {
				t.Fatal(err)
			}
			status(sub, "408")
			if d := time.Since(start); d > time.Second {
				t.Fatalf("408 after %v", d)
			}

			// A pull with a 100 ms heartbeat gets one before its expiry.
			if err := nc.PublishRequest("$JS.API.CONSUMER.MSG.NEXT.T.P", inbox, []byte(`{"batch":1,"expires":5000000000,"idle_heartbeat":100000000}`)); err != nil {
				t.Fatal(err)
			}
			status(sub, "100")

			// A message not acked within its ack wait comes again.
			if _, err := st.CreateOrUpdateConsumer(c, njs.ConsumerConfig{Durable: "W", AckPolicy: njs.AckExplicitPolicy, AckWait: 100 * time.Millisecond}); err != nil {
				t.Fatal(err)
			}
			if _, err := js.Publish(c, "t.1", []byte("x")); err != nil {
				t.Fatal(err)
			}
			w, err := st.Consumer(c, "W")
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 2; i++ {
				b, err := w.Fetch(1, njs.FetchMaxWait(2*time.Second))
				if err != nil {
					t.Fatal(err)
				}
				m, ok := <-b.Messages()
				if !ok {
					t.Fatalf("delivery %d never came: %v", i, b.Error())
				}
				if md, _ := m.Metadata(); md.NumDelivered != uint64(i) {
					t.Fatalf("delivery %d: delivered %d times", i, md.NumDelivered)
				}
			}

			// A consumer idle past its inactive threshold goes, with its advisory.
			adv, err := nc.SubscribeSync("$JS.EVENT.ADVISORY.CONSUMER.DELETED.T.I")
			if err != nil {
				t.Fatal(err)
			}
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			if _, err := st.CreateOrUpdateConsumer(c, njs.ConsumerConfig{Name: "I", AckPolicy: njs.AckExplicitPolicy, InactiveThreshold: 100 * time.Millisecond}); err != nil {
				t.Fatal(err)
			}
			if _, err := adv.NextMsg(2 * time.Second); err != nil {
				t.Fatalf("inactive consumer not deleted: %v", err)
			}
		})
	}
}
