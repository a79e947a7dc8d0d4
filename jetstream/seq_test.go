package jetstream_test

import (
	"errors"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	"github.com/nats-io/nats.go/jetstream"
)

const maxSeq = 1<<64 - 2 // store.MaxSeq

// The repro: purge to sequence 2^64-1, then publish. The message
// used to be acked with sequence 2^64-1 and the next with 0 (unreadable),
// and the server then spun forever on restart. Now the purge moves the
// sequence to the end of its space, publishes get an error ack, and the
// server restarts at once with the same state.
func TestPurgeToHugeSequence(t *testing.T) {
	for _, storage := range []jetstream.StorageType{jetstream.FileStorage, jetstream.MemoryStorage} {
		t.Run(storage.String(), func(t *testing.T) {
			dir := t.TempDir()
			s := startJS(t, loop.Options{StoreDir: dir})
			_, js := connectJS(t, s)
			c := ctx(t)
			st, err := js.CreateStream(c, jetstream.StreamConfig{Name: "P", Subjects: []string{"p.>"}, Storage: storage})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := js.Publish(c, "p.a", []byte("1")); err != nil {
				t.Fatal(err)
			}
			if err := st.Purge(c, jetstream.WithPurgeSequence(1<<64-1)); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 2; i++ {
				ack, err := js.Publish(c, "p.a", []byte("2"))
				var apiErr *jetstream.APIError
				if !errors.As(err, &apiErr) || apiErr.ErrorCode != 10077 {
					t.Fatalf("publish %d past the sequence space: ack %+v err %v", i, ack, err)
				}
			}
			info, err := st.Info(c)
			if err != nil {
				t.Fatal(err)
			}
			if info.State.Msgs != 0 || info.State.LastSeq != maxSeq || info.State.FirstSeq != maxSeq+1 {
				t.Fatalf("state %+v", info.State)
			}
			if storage == jetstream.MemoryStorage {
				return
			}
			s.Shutdown()

			done := make(chan *loop.Server, 1)
			go func() { // recovery must finish; before the fix it never did
				s2, err := loop.New(loop.Options{Host: "127.0.0.1", Port: -1, StoreDir: dir, JetStream: true})
				if err == nil {
					err = s2.Start()
				}
				if err != nil {
					t.Error(err)
					s2 = nil
				}
				done <- s2
			}()
			var s2 *loop.Server
			select {
			case s2 = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("server did not restart within 5s")
			}
			if s2 == nil {
				return
			}
			t.Cleanup(s2.Shutdown)
			_, js2 := connectJS(t, s2)
			st2, err := js2.Stream(c, "P")
			if err != nil {
				t.Fatal(err)
			}
			if info, _ := st2.Info(c); info.State.Msgs != 0 || info.State.LastSeq != maxSeq {
				t.Fatalf("after restart %+v", info.State)
			}
			if _, err := js2.Publish(c, "p.a", nil); err == nil {
				t.Fatal("publish past the sequence space accepted after restart")
			}
		})
	}
}

// A consumer with a delivery pending below a far purge must settle acks in
// time that does not depend on the gap (the ack floor used to walk it).
func TestAckFloorAcrossFarPurge(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		s := startJS(t, o)
		_, js := connectJS(t, s)
		c := ctx(t)
		st, err := js.CreateStream(c, jetstream.StreamConfig{Name: "F", Subjects: []string{"f.>"}})
		if err != nil {
			t.Fatal(err)
		}
		js.Publish(c, "f.a", []byte("low"))
		cons, err := st.CreateOrUpdateConsumer(c, jetstream.ConsumerConfig{Durable: "d", AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			t.Fatal(err)
		}
		low, err := cons.Next(jetstream.FetchMaxWait(2 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		const far = 1 << 62
		if err := st.Purge(c, jetstream.WithPurgeSequence(far)); err != nil {
			t.Fatal(err)
		}
		if ack, err := js.Publish(c, "f.a", []byte("high")); err != nil || ack.Sequence != far {
			t.Fatalf("publish after purge: %+v %v", ack, err)
		}
		high, err := cons.Next(jetstream.FetchMaxWait(2 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if md, _ := high.Metadata(); md.Sequence.Stream != far {
			t.Fatalf("delivered %d", md.Sequence.Stream)
		}
		// Acking the low one leaves the far one pending: the floor moves to
		// just below it without walking 2^62 sequences.
		if err := low.DoubleAck(c); err != nil {
			t.Fatal(err)
		}
		info, err := cons.Info(c)
		if err != nil {
			t.Fatal(err)
		}
		if info.AckFloor.Stream != far-1 || info.NumAckPending != 1 {
			t.Fatalf("after acking the low one: floor %+v pending %d", info.AckFloor, info.NumAckPending)
		}
		if err := high.DoubleAck(c); err != nil {
			t.Fatal(err)
		}
		if info, _ = cons.Info(c); info.AckFloor.Stream != far || info.NumAckPending != 0 {
			t.Fatalf("after acking both: floor %+v pending %d", info.AckFloor, info.NumAckPending)
		}
	})
}
