package jetstream_test

import (
	"encoding/json"
	"fmt"
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

// TestAuditAdvisoryClient checks the API audit advisory names the client
// that sent the request, as nats-server's ClientInfo.
func TestAuditAdvisoryClient(t *testing.T) {
	s := startJS(t, loop.Options{Loops: 2})
	nc, err := nats.Connect(s.ClientURL(), nats.Name("auditor"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	adv, err := nc.SubscribeSync("$JS.EVENT.ADVISORY.API")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Request("$JS.API.INFO", nil, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	m, err := adv.NextMsg(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var a struct {
		Type   string `json:"type"`
		Client *struct {
			Start   *time.Time `json:"start"`
			Host    string     `json:"host"`
			ID      uint64     `json:"id"`
			Account string     `json:"acc"`
			Name    string     `json:"name"`
			Lang    string     `json:"lang"`
			Version string     `json:"ver"`
			Kind    string     `json:"kind"`
			Type    string     `json:"client_type"`
		} `json:"client"`
	}
	if err := json.Unmarshal(m.Data, &a); err != nil {
		t.Fatal(err)
	}
	c := a.Client
	if a.Type != "io.nats.jetstream.advisory.v1.api_audit" || c == nil {
		t.Fatalf("advisory %s", m.Data)
	}
	if c.Name != "auditor" || c.Lang != "go" || c.Version == "" || c.Account != "$G" || c.Host != "127.0.0.1" ||
		c.ID == 0 || c.Start == nil || c.Kind != "Client" || c.Type != "nats" {
		t.Fatalf("client %s", m.Data)
	}
}

// TestInPlaceKeepsOrder publishes pipelined to a memory stream while
// another connection keeps the Manager busy with API requests, so
// publishes go now in place, now through the queue: each must still be
// stored in the order it was sent.
func TestInPlaceKeepsOrder(t *testing.T) {
	for _, io := range []string{loop.IOGnet, loop.IOGoroutine} {
		t.Run(io, func(t *testing.T) {
			s := startJS(t, loop.Options{IO: io, Loops: 2})
			_, js := connectJS(t, s)
			busy, _ := connectJS(t, s)
			c := ctx(t)
			if _, err := js.CreateStream(c, njs.StreamConfig{Name: "O", Subjects: []string{"o"}, Storage: njs.MemoryStorage}); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				for {
					select {
					case <-stop:
						return
					default:
					}
					_, _ = busy.Request("$JS.API.STREAM.INFO.O", nil, time.Second)
				}
			}()
			const n = 3000
			acks := make([]njs.PubAckFuture, n)
			for i := range acks {
				f, err := js.PublishAsync("o", []byte(fmt.Sprint(i)))
				if err != nil {
					t.Fatal(err)
				}
				acks[i] = f
			}
			for i, f := range acks {
				select {
				case a := <-f.Ok():
					if a.Sequence != uint64(i+1) {
						t.Fatalf("publish %d stored as %d", i, a.Sequence)
					}
				case err := <-f.Err():
					t.Fatal(err)
				case <-c.Done():
					t.Fatal("no ack")
				}
			}
			close(stop)
			<-done
		})
	}
}
