package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// runJS publishes n messages into a fresh stream: one at a time waiting for
// each ack (sync), or pipelined with up to 4096 acks outstanding (async).
func runJS(r row, url string, w *window, n int) (sample, error) {
	nc, err := dial(url)
	if err != nil {
		return sample{}, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return sample{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	storage := jetstream.FileStorage
	if r.JS == "memory" {
		storage = jetstream.MemoryStorage
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "BENCH", Subjects: []string{"bench.js"}, Storage: storage}); err != nil {
		return sample{}, fmt.Errorf("create stream: %w", err)
	}
	defer js.DeleteStream(context.Background(), "BENCH")
	payload := make([]byte, r.Payload)
	if r.Consume != "" {
		return consumeRow(ctx, js, r, w, n, payload)
	}
	w.Start()
	if r.Async {
		if err := publishAsync(ctx, js, n, payload); err != nil {
			return sample{}, err
		}
	} else {
		for i := 0; i < n; i++ {
			if _, err := js.Publish(ctx, "bench.js", payload); err != nil {
				return sample{}, err
			}
		}
	}
	w.Stop()
	st, err := js.Stream(ctx, "BENCH")
	if err != nil {
		return sample{}, err
	}
	if info, err := st.Info(ctx); err != nil || info.State.Msgs != uint64(n) {
		return sample{}, fmt.Errorf("stream holds %v messages, want %d (%v)", info.State.Msgs, n, err)
	}
	return sample{Msgs: int64(n), Bytes: int64(n * r.Payload)}, nil
}

// fetchWait is how long one Fetch waits for its batch: a stall guard only,
// since each Fetch asks for no more messages than the stream still holds.
const fetchWait = 5 * time.Second

// consumeRow fills the stream outside the window, then measures reading it
// back: with an ordered consumer, or a durable pull consumer (Consume's
// callback or Fetch batches of up to 256) acking each message. The clock
// stops at the last message, so no request's expiry is timed.
func consumeRow(ctx context.Context, js jetstream.JetStream, r row, w *window, n int, payload []byte) (sample, error) {
	if err := publishAsync(ctx, js, n, payload); err != nil {
		return sample{}, err
	}
	st, err := js.Stream(ctx, "BENCH")
	if err != nil {
		return sample{}, err
	}
	var cons jetstream.Consumer
	if r.Consume == "ordered" {
		cons, err = st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	} else {
		cons, err = st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "bench", AckPolicy: jetstream.AckExplicitPolicy})
	}
	if err != nil {
		return sample{}, err
	}
	ack := r.Consume != "ordered"
	w.Start()
	if r.Consume == "fetch" {
		err = fetchAll(cons, n, ack)
	} else {
		err = consumeAll(cons, n, ack)
	}
	if err != nil {
		return sample{}, err
	}
	w.Stop()
	return sample{Msgs: int64(n), Bytes: int64(n * r.Payload)}, nil
}

// fetchAll reads n messages with Fetch, never asking for more than remain:
// a batch larger than what is left would wait fetchWait for the rest.
func fetchAll(cons jetstream.Consumer, n int, ack bool) error {
	for got := 0; got < n; {
		b, err := cons.Fetch(fetchSize(n-got), jetstream.FetchMaxWait(fetchWait))
		if err != nil {
			return err
		}
		k := 0
		for m := range b.Messages() {
			if ack {
				_ = m.Ack()
			}
			k++
		}
		if k == 0 {
			return fmt.Errorf("consumer stalled after %d of %d: %v", got, n, b.Error())
		}
		got += k
	}
	return nil
}

// fetchSize is the batch to request when remaining messages are left.
func fetchSize(remaining int) int { return min(256, remaining) }

// consumeAll reads n messages through Consume's callback and returns at the
// n-th; it fails when no message arrives for fetchWait.
func consumeAll(cons jetstream.Consumer, n int, ack bool) error {
	var got atomic.Int64
	done := make(chan struct{})
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if ack {
			_ = m.Ack()
		}
		if got.Add(1) == int64(n) {
			close(done)
		}
	})
	if err != nil {
		return err
	}
	defer cc.Stop()
	last := int64(-1)
	for {
		select {
		case <-done:
			return nil
		case <-time.After(fetchWait):
			g := got.Load()
			if g == last {
				return fmt.Errorf("consumer stalled after %d of %d", g, n)
			}
			last = g
		}
	}
}

// publishAsync publishes n messages pipelined and waits for every ack.
func publishAsync(ctx context.Context, js jetstream.JetStream, n int, payload []byte) error {
	for i := 0; i < n; i++ {
		if _, err := js.PublishAsync("bench.js", payload); err != nil {
			return err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("async acks: %d outstanding", js.PublishAsyncPending())
	}
}
