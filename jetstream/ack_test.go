package jetstream_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// forge publishes body on an ack subject as any client could, and waits
// for the server's reply to it (a double ack), which orders it before
// whatever the test checks next.
func forge(t *testing.T, nc *nats.Conn, subject, body string) {
	t.Helper()
	if _, err := nc.Request(subject, []byte(body), 2*time.Second); err != nil {
		t.Fatalf("%s %s: %v", subject, body, err)
	}
}

// The repro: on a work-queue stream, +ACK (or +TERM) published to
// an ack subject for messages never delivered removed them. Acks now act
// only on sequences pending for that consumer; malformed subjects are
// ignored.
func TestForgedAcksDoNotDeleteMessages(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		s := startJS(t, o)
		nc, js := connectJS(t, s)
		c := ctx(t)
		st, err := js.CreateStream(c, jetstream.StreamConfig{Name: "WQ", Subjects: []string{"wq.>"}, Retention: jetstream.WorkQueuePolicy})
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 5; i++ {
			if _, err := js.Publish(c, "wq.a", []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
		cons, err := st.CreateOrUpdateConsumer(c, jetstream.ConsumerConfig{Durable: "W", AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			t.Fatal(err)
		}
		msgs := func() uint64 {
			info, err := st.Info(c)
			if err != nil {
				t.Fatal(err)
			}
			return info.State.Msgs
		}
		for seq := 1; seq <= 5; seq++ {
			forge(t, nc, fmt.Sprintf("$JS.ACK.WQ.W.1.%d.1.0.0", seq), "+ACK")
			forge(t, nc, fmt.Sprintf("$JS.ACK.WQ.W.1.%d.1.0.0", seq), "+TERM")
		}
		for _, subj := range []string{
			"$JS.ACK.WQ.W.1.1.1.0.0.1",   // ten tokens
			"$JS.ACK.WQ.W.1.1.1.0",       // eight
			"$JS.ACK.WQ.W.x.1.1.0.0",     // not a number
			"$JS.ACK.WQ.W.1.-1.1.0.0",    // negative
			"$JS.ACK.WQ.W.1.0.1.0.0",     // sequence 0
			"$JS.ACK.WQ.W.1..1.0.0",      // empty token
			"$JS.ACK.WQ.W.1.1.1.0.0.x.y", // longer
		} {
			nc.Publish(subj, []byte("+ACK"))
		}
		forge(t, nc, "$JS.ACK.WQ.W.1.2.1.0.0", "+ACK") // orders the ones above
		if n := msgs(); n != 5 {
			t.Fatalf("forged acks removed messages: %d left of 5", n)
		}
		// Deliver two; a forged ack for the third (not delivered) does
		// nothing, one for a delivered one acts like the real ack.
		b, err := cons.Fetch(2, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var got []jetstream.Msg
		for m := range b.Messages() {
			got = append(got, m)
		}
		if len(got) != 2 {
			t.Fatalf("fetched %d", len(got))
		}
		forge(t, nc, "$JS.ACK.WQ.W.1.3.3.0.0", "+ACK")
		if n := msgs(); n != 5 {
			t.Fatalf("ack of an undelivered message removed it: %d left", n)
		}
		if err := got[0].DoubleAck(c); err != nil {
			t.Fatal(err)
		}
		forge(t, nc, "$JS.ACK.WQ.W.1.2.2.0.0", "+ACK")
		if n := msgs(); n != 3 {
			t.Fatalf("after two real acks: %d left, want 3", n)
		}
		info, err := cons.Info(c)
		if err != nil {
			t.Fatal(err)
		}
		if info.AckFloor.Stream != 2 || info.NumAckPending != 0 || info.Delivered.Stream != 2 {
			t.Fatalf("consumer %+v %+v pending %d", info.Delivered, info.AckFloor, info.NumAckPending)
		}
	})
}

// With ack policy all, an ack settles what was delivered up to it; an ack
// beyond the delivered sequence is ignored rather than settling messages
// the consumer never saw.
func TestAckAllBeyondDelivered(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		s := startJS(t, o)
		nc, js := connectJS(t, s)
		c := ctx(t)
		st, err := js.CreateStream(c, jetstream.StreamConfig{Name: "IN", Subjects: []string{"in.>"}, Retention: jetstream.InterestPolicy})
		if err != nil {
			t.Fatal(err)
		}
		cons, err := st.CreateOrUpdateConsumer(c, jetstream.ConsumerConfig{Durable: "A", AckPolicy: jetstream.AckAllPolicy})
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 5; i++ {
			js.Publish(c, "in.a", []byte(fmt.Sprint(i)))
		}
		b, err := cons.Fetch(2, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for range b.Messages() {
			n++
		}
		if n != 2 {
			t.Fatalf("fetched %d", n)
		}
		forge(t, nc, "$JS.ACK.IN.A.1.5.5.0.0", "+ACK")
		info, err := cons.Info(c)
		if err != nil {
			t.Fatal(err)
		}
		if info.AckFloor.Stream != 0 || info.NumAckPending != 2 {
			t.Fatalf("ack beyond delivered applied: floor %+v pending %d", info.AckFloor, info.NumAckPending)
		}
		if si, _ := st.Info(c); si.State.Msgs != 5 {
			t.Fatalf("ack beyond delivered removed messages: %d left", si.State.Msgs)
		}
		forge(t, nc, "$JS.ACK.IN.A.1.2.2.0.0", "+ACK")
		if info, _ = cons.Info(c); info.AckFloor.Stream != 2 || info.NumAckPending != 0 {
			t.Fatalf("ack all of the delivered: floor %+v pending %d", info.AckFloor, info.NumAckPending)
		}
		if si, _ := st.Info(c); si.State.Msgs != 3 {
			t.Fatalf("interest stream holds %d, want 3", si.State.Msgs)
		}
	})
}
