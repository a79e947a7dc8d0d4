package jetstream_test

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func setupStream(t *testing.T, js jetstream.JetStream, storage jetstream.StorageType, n int) jetstream.Stream {
	t.Helper()
	c := ctx(t)
	st, err := js.CreateStream(c, jetstream.StreamConfig{Name: "EV", Subjects: []string{"ev.>"}, Storage: storage})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		if _, err := js.Publish(c, fmt.Sprintf("ev.%d", i%2), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func TestPullConsumerFetchAndAck(t *testing.T) {
	eachSetup(t, func(t *testing.T, js jetstream.JetStream, storage jetstream.StorageType) {
		c := ctx(t)
		st := setupStream(t, js, storage, 10)
		cons, err := st.CreateOrUpdateConsumer(c, jetstream.ConsumerConfig{Durable: "d", AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			t.Fatal(err)
		}
		batch, err := cons.Fetch(5, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		want := 1
		for m := range batch.Messages() {
			if string(m.Data()) != fmt.Sprint(want) {
				t.Fatalf("got %q want %d", m.Data(), want)
			}
			md, _ := m.Metadata()
			if md.Sequence.Stream != uint64(want) || md.Sequence.Consumer != uint64(want) || md.NumPending != uint64(10-want) {
				t.Fatalf("metadata %+v", md)
			}
			if err := m.Ack(); err != nil {
				t.Fatal(err)
			}
			want++
		}
		if batch.Error() != nil || want != 6 {
			t.Fatalf("batch err %v, got %d messages", batch.Error(), want-1)
		}
		// The acks are in flight; a double ack waits for the server.
		batch, _ = cons.Fetch(10, jetstream.FetchMaxWait(300*time.Millisecond))
		for m := range batch.Messages() {
			if err := m.DoubleAck(c); err != nil {
				t.Fatalf("double ack: %v", err)
			}
			want++
		}
		if want != 11 {
			t.Fatalf("second fetch ended at %d", want)
		}
		info, err := cons.Info(c)
		if err != nil {
			t.Fatal(err)
		}
		if info.NumAckPending != 0 || info.Delivered.Stream != 10 || info.AckFloor.Stream != 10 || info.NumPending != 0 {
			t.Fatalf("info %+v", info)
		}
		start := time.Now()
		batch, _ = cons.FetchNoWait(5)
		n := 0
		for range batch.Messages() {
			n++
		}
		if n != 0 || time.Since(start) > time.Second {
			t.Fatalf("no-wait fetch on an empty consumer: %d messages after %v", n, time.Since(start))
		}
	})
}

func TestPullConsumerRedelivery(t *testing.T) {
	eachSetup(t, func(t *testing.T, js jetstream.JetStream, storage jetstream.StorageType) {
		c := ctx(t)
		st := setupStream(t, js, storage, 1)
		cons, _ := st.CreateOrUpdateConsumer(c, jetstream.ConsumerConfig{Durable: "r", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 200 * time.Millisecond})
		fetchOne := func() jetstream.Msg {
			t.Helper()
			b, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			for m := range b.Messages() {
				return m
			}
			t.Fatalf("no message: %v", b.Error())
			return nil
		}
		m1 := fetchOne() // not acked: the pending fetch gets it again after ack wait
		again := fetchOne()
		md, _ := again.Metadata()
		if string(again.Data()) != string(m1.Data()) || md.NumDelivered != 2 {
			t.Fatalf("redelivery: %q delivered %d", again.Data(), md.NumDelivered)
		}
		again.Term() // never again
		js.Publish(c, "ev.2", []byte("2"))
		js.Publish(c, "ev.3", []byte("3"))
		m2 := fetchOne()
		if string(m2.Data()) != "2" {
			t.Fatalf("after term got %q", m2.Data())
		}
		m2.Nak() // straight back
		if m := fetchOne(); string(m.Data()) != "2" {
			t.Fatalf("after nak got %q", m.Data())
		} else {
			m.Ack()
		}
		if m := fetchOne(); string(m.Data()) != "3" {
			t.Fatalf("got %q", m.Data())
		}
		info, _ := cons.Info(c)
		if info.NumRedelivered != 2 {
			t.Fatalf("num_redelivered %d", info.NumRedelivered)
		}
	})
}

func TestConsumeCallbackAndOrdered(t *testing.T) {
	eachSetup(t, func(t *testing.T, js jetstream.JetStream, storage jetstream.StorageType) {
		c := ctx(t)
		st := setupStream(t, js, storage, 200)
		cons, _ := st.CreateOrUpdateConsumer(c, jetstream.ConsumerConfig{Durable: "cb", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "ev.1"})
		var got atomic.Int64
		done := make(chan struct{})
		cc, err := cons.Consume(func(m jetstream.Msg) {
			m.Ack()
			if got.Add(1) == 100 {
				close(done)
			}
		}, jetstream.PullMaxMessages(20))
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("consume got %d of 100", got.Load())
		}
		cc.Stop()

		oc, err := st.OrderedConsumer(c, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"ev.0"}})
		if err != nil {
			t.Fatal(err)
		}
		want := 2
		for want <= 200 {
			b, err := oc.Fetch(50, jetstream.FetchMaxWait(2*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for m := range b.Messages() {
				if string(m.Data()) != fmt.Sprint(want) {
					t.Fatalf("ordered got %q want %d", m.Data(), want)
				}
				want += 2
				n++
			}
			if n == 0 {
				t.Fatalf("ordered consumer stalled at %d: %v", want, b.Error())
			}
		}
	})
}

func TestConsumerPoliciesAndManagement(t *testing.T) {
	eachSetup(t, func(t *testing.T, js jetstream.JetStream, storage jetstream.StorageType) {
		c := ctx(t)
		st := setupStream(t, js, storage, 10)
		first := func(cfg jetstream.ConsumerConfig) string {
			t.Helper()
			cons, err := st.CreateOrUpdateConsumer(c, cfg)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := cons.Fetch(1, jetstream.FetchMaxWait(500*time.Millisecond))
			for m := range b.Messages() {
				return string(m.Data())
			}
			return "none"
		}
		if got := first(jetstream.ConsumerConfig{Durable: "last", DeliverPolicy: jetstream.DeliverLastPolicy}); got != "10" {
			t.Fatalf("deliver last: %s", got)
		}
		if got := first(jetstream.ConsumerConfig{Durable: "seq", DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: 7}); got != "7" {
			t.Fatalf("by start sequence: %s", got)
		}
		if got := first(jetstream.ConsumerConfig{Durable: "new", DeliverPolicy: jetstream.DeliverNewPolicy}); got != "none" {
			t.Fatalf("deliver new: %s", got)
		}
		if got := first(jetstream.ConsumerConfig{Durable: "flt", FilterSubject: "ev.0"}); got != "2" {
			t.Fatalf("filter: %s", got)
		}
		names := st.ConsumerNames(c)
		var list []string
		for n := range names.Name() {
			list = append(list, n)
		}
		if len(list) != 4 {
			t.Fatalf("names %v", list)
		}
		if _, err := st.Consumer(c, "nope"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
			t.Fatalf("missing consumer: %v", err)
		}
		if _, err := st.CreateConsumer(c, jetstream.ConsumerConfig{Durable: "last", DeliverPolicy: jetstream.DeliverAllPolicy}); !errors.Is(err, jetstream.ErrConsumerExists) {
			t.Fatalf("create existing with other config: %v", err)
		}
		if err := st.DeleteConsumer(c, "last"); err != nil {
			t.Fatal(err)
		}
		si, _ := st.Info(c)
		if si.State.Consumers != 3 {
			t.Fatalf("consumer_count %d", si.State.Consumers)
		}
	})
}

// TestDurableConsumerSurvivesRestart: positions, acks and pending
// redeliveries of a durable consumer come back after a restart.
func TestDurableConsumerSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := startJS(t, loop.Options{StoreDir: dir})
	_, js := connectJS(t, s)
	c := ctx(t)
	st := setupStream(t, js, jetstream.FileStorage, 10)
	cons, err := st.CreateOrUpdateConsumer(c, jetstream.ConsumerConfig{Durable: "keep", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := cons.Fetch(5, jetstream.FetchMaxWait(2*time.Second))
	for m := range b.Messages() {
		if md, _ := m.Metadata(); md.Sequence.Stream <= 3 {
			if err := m.DoubleAck(c); err != nil {
				t.Fatal(err)
			}
		}
	}
	s.Shutdown()

	s2 := startJS(t, loop.Options{StoreDir: dir})
	_, js2 := connectJS(t, s2)
	st2, _ := js2.Stream(c, "EV")
	cons2, err := st2.Consumer(c, "keep")
	if err != nil {
		t.Fatalf("durable consumer lost: %v", err)
	}
	info, _ := cons2.Info(c)
	if info.Delivered.Stream != 5 || info.Delivered.Consumer != 5 || info.AckFloor.Stream != 3 || info.NumAckPending != 2 {
		t.Fatalf("restored %+v / %+v, ack pending %d", info.Delivered, info.AckFloor, info.NumAckPending)
	}
	got := map[string]int{}
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < 7 && time.Now().Before(deadline) {
		b, _ := cons2.Fetch(10, jetstream.FetchMaxWait(time.Second))
		for m := range b.Messages() {
			md, _ := m.Metadata()
			got[string(m.Data())] = int(md.NumDelivered)
			m.Ack()
		}
	}
	if len(got) != 7 || got["4"] != 2 || got["5"] != 2 || got["6"] != 1 || got["1"] != 0 {
		t.Fatalf("after restart got %v", got)
	}
}

func TestWorkQueueRetention(t *testing.T) {
	eachSetup(t, func(t *testing.T, js jetstream.JetStream, storage jetstream.StorageType) {
		c := ctx(t)
		st, err := js.CreateStream(c, jetstream.StreamConfig{Name: "WQ", Subjects: []string{"wq.>"}, Storage: storage, Retention: jetstream.WorkQueuePolicy})
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 5; i++ {
			js.Publish(c, "wq.a", []byte(fmt.Sprint(i)))
		}
		js.Publish(c, "wq.b", []byte("b"))
		var apiErr *jetstream.APIError
		if _, err := st.CreateOrUpdateConsumer(c, jetstream.ConsumerConfig{Durable: "none", AckPolicy: jetstream.AckNonePolicy}); !errors.As(err, &apiErr) || apiErr.ErrorCode != 10084 {
			t.Fatalf("ack none on a work queue: %v", err)
		}
		cons, err := st.CreateOrUpdateConsumer(c, jetstream.ConsumerConfig{Durable: "wa", FilterSubject: "wq.a", AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.CreateOrUpdateConsumer(c, jetstream.ConsumerConfig{Durable: "all", FilterSubject: "wq.>", AckPolicy: jetstream.AckExplicitPolicy}); !errors.As(err, &apiErr) || apiErr.ErrorCode != 10100 {
			t.Fatalf("overlapping work-queue consumer: %v", err)
		}
		b, _ := cons.Fetch(3, jetstream.FetchMaxWait(2*time.Second))
		i := 0
		for m := range b.Messages() {
			if i == 2 {
				m.Term() // terminated work is done with too
			} else if err := m.DoubleAck(c); err != nil {
				t.Fatal(err)
			}
			i++
		}
		// Acked and terminated messages leave the stream; the rest stay.
		deadline := time.Now().Add(5 * time.Second)
		for {
			info, _ := st.Info(c)
			if info.State.Msgs == 3 && info.State.FirstSeq == 4 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("work queue holds %+v after 3 settled", info.State)
			}
			time.Sleep(10 * time.Millisecond) // the TERM is fire-and-forget: no signal to wait on
		}
	})
}

func TestInterestRetention(t *testing.T) {
	eachSetup(t, func(t *testing.T, js jetstream.JetStream, storage jetstream.StorageType) {
		c := ctx(t)
		st, err := js.CreateStream(c, jetstream.StreamConfig{Name: "IN", Subjects: []string{"in.>"}, Storage: storage, Retention: jetstream.InterestPolicy})
		if err != nil {
			t.Fatal(err)
		}
		js.Publish(c, "in.a", []byte("nobody listens"))
		msgs := func() uint64 { i, _ := st.Info(c); return i.State.Msgs }
		if n := msgs(); n != 0 {
			t.Fatalf("message without interest kept: %d", n)
		}
		a, _ := st.CreateOrUpdateConsumer(c, jetstream.ConsumerConfig{Durable: "a", AckPolicy: jetstream.AckExplicitPolicy})
		b, _ := st.CreateOrUpdateConsumer(c, jetstream.ConsumerConfig{Durable: "b", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "in.b"})
		js.Publish(c, "in.a", []byte("for a"))
		js.Publish(c, "in.b", []byte("for a and b"))
		if n := msgs(); n != 2 {
			t.Fatalf("interested messages: %d", n)
		}
		ackAll := func(cons jetstream.Consumer) {
			bt, _ := cons.Fetch(10, jetstream.FetchMaxWait(300*time.Millisecond))
			for m := range bt.Messages() {
				if err := m.DoubleAck(c); err != nil {
					t.Fatal(err)
				}
			}
		}
		ackAll(a) // in.a is done; in.b still waits for b
		if n := msgs(); n != 1 {
			t.Fatalf("after a acked: %d messages, want 1", n)
		}
		ackAll(b)
		if n := msgs(); n != 0 {
			t.Fatalf("after both acked: %d messages", n)
		}
		js.Publish(c, "in.b", []byte("again"))
		if err := st.DeleteConsumer(c, "b"); err != nil {
			t.Fatal(err)
		}
		if n := msgs(); n != 1 {
			t.Fatalf("a still needs in.b: %d", n)
		}
		if err := st.DeleteConsumer(c, "a"); err != nil {
			t.Fatal(err)
		}
		if n := msgs(); n != 0 {
			t.Fatalf("no consumers left but %d messages", n)
		}
	})
}

// +NXT acks one message and asks for the next with the ack's reply subject,
// the way nats.go's legacy AckNext and older clients pull.
func TestAckNext(t *testing.T) {
	eachSetup(t, func(t *testing.T, js jetstream.JetStream, storage jetstream.StorageType) {
		c := ctx(t)
		nc := js.Conn()
		st := setupStream(t, js, storage, 4)
		cons, err := st.CreateOrUpdateConsumer(c, jetstream.ConsumerConfig{Durable: "n", AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			t.Fatal(err)
		}
		b, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		m1 := <-b.Messages()
		if m1 == nil || string(m1.Data()) != "1" {
			t.Fatalf("first fetch: %v", b.Error())
		}
		m2, err := nc.Request(m1.Reply(), []byte("+NXT"), 2*time.Second)
		if err != nil || string(m2.Data) != "2" {
			t.Fatalf("+NXT answered %v %v", m2, err)
		}
		inbox := nats.NewInbox() // not a request-mux inbox: it would claim these messages
		sub, _ := nc.SubscribeSync(inbox)
		nc.PublishRequest(m2.Reply, inbox, []byte(`+NXT {"batch":2}`))
		for _, want := range []string{"3", "4"} {
			m, err := sub.NextMsg(2 * time.Second)
			if err != nil || string(m.Data) != want {
				t.Fatalf("batch of 2 after +NXT: %v %v, want %s", m, err, want)
			}
		}
		raw, err := nc.Request("$JS.API.CONSUMER.INFO.EV.n", nil, time.Second)
		t.Logf("raw %v %q %v", err, raw.Data, raw.Subject)
		info, err := cons.Info(c)
		if err != nil {
			t.Fatal(err)
		}
		if info.AckFloor.Stream != 2 || info.NumAckPending != 2 {
			t.Fatalf("after two +NXT acks: floor %d ack pending %d", info.AckFloor.Stream, info.NumAckPending)
		}
	})
}

// TestMaxDeliverDropSurvivesRestart: a message NAKed on its last allowed
// delivery leaves pending at the next delivery attempt (as nats-server
// 2.15), and a durable consumer's log keeps that across a restart: it is
// not pending, nor redelivered, afterwards.
func TestMaxDeliverDropSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := startJS(t, loop.Options{StoreDir: dir})
	_, js := connectJS(t, s)
	c := ctx(t)
	st := setupStream(t, js, jetstream.FileStorage, 3)
	cons, err := st.CreateOrUpdateConsumer(c, jetstream.ConsumerConfig{Durable: "md", AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 1})
	if err != nil {
		t.Fatal(err)
	}
	next := func(cons jetstream.Consumer) jetstream.Msg {
		t.Helper()
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	if m := next(cons); string(m.Data()) != "1" {
		t.Fatalf("first %q", m.Data())
	} else if err := m.Nak(); err != nil {
		t.Fatal(err)
	}
	m := next(cons)
	if string(m.Data()) != "2" {
		t.Fatalf("after the NAK past max_deliver got %q, want the next message", m.Data())
	}
	if err := m.DoubleAck(c); err != nil { // on disk, and the drop before it
		t.Fatal(err)
	}
	check := func(cons jetstream.Consumer, when string) {
		t.Helper()
		info, err := cons.Info(c)
		if err != nil {
			t.Fatal(err)
		}
		if info.NumAckPending != 0 || info.AckFloor.Stream != 2 || info.Delivered.Stream != 2 {
			t.Fatalf("%s: ack pending %d, ack floor %+v, delivered %+v", when, info.NumAckPending, info.AckFloor, info.Delivered)
		}
	}
	check(cons, "before the restart")
	s.Shutdown()

	s2 := startJS(t, loop.Options{StoreDir: dir})
	_, js2 := connectJS(t, s2)
	cons2, err := js2.Consumer(c, "EV", "md")
	if err != nil {
		t.Fatal(err)
	}
	check(cons2, "after the restart")
	if m := next(cons2); string(m.Data()) != "3" {
		t.Fatalf("after the restart got %q, want message 3", m.Data())
	}
}
