package jetstream_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go"
)

// TestLegacyJetStreamContext drives the older nats.JetStreamContext API:
// AddStream, Publish, PullSubscribe/Fetch, and a push Subscribe with acks.
func TestLegacyJetStreamContext(t *testing.T) {
	s := startJS(t, loop.Options{})
	nc, _ := connectJS(t, s)
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AddStream(&nats.StreamConfig{Name: "L", Subjects: []string{"l.>"}}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 20; i++ {
		if ack, err := js.Publish("l.x", []byte(fmt.Sprint(i))); err != nil || ack.Sequence != uint64(i) {
			t.Fatalf("publish %d: %+v %v", i, ack, err)
		}
	}
	sub, err := js.PullSubscribe("l.x", "puller")
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := sub.Fetch(10, nats.MaxWait(2*time.Second))
	if err != nil || len(msgs) != 10 || string(msgs[0].Data) != "1" {
		t.Fatalf("fetch: %d %v", len(msgs), err)
	}
	for _, m := range msgs {
		m.Ack()
	}
	got := make(chan *nats.Msg, 32)
	push, err := js.Subscribe("l.x", func(m *nats.Msg) { m.Ack(); got <- m }, nats.Durable("pusher"), nats.ManualAck())
	if err != nil {
		t.Fatal(err)
	}
	defer push.Unsubscribe()
	for i := 1; i <= 20; i++ {
		select {
		case m := <-got:
			if string(m.Data) != fmt.Sprint(i) {
				t.Fatalf("push got %q want %d", m.Data, i)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("push consumer stalled at %d", i)
		}
	}
	if _, err := js.ConsumerInfo("L", "pusher"); err != nil {
		t.Fatal(err)
	}
}
