package main

import (
	"context"
	"fmt"
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

// consumeRow fills the stream outside the window, then measures reading it
// back: with an ordered consumer, or a durable pull consumer fetching
// batches of 256 and acking each message.
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
	w.Start()
	got := 0
	for got < n {
		b, err := cons.Fetch(256, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return sample{}, err
		}
		k := 0
		for m := range b.Messages() {
			if r.Consume == "fetch" {
				_ = m.Ack()
			}
			k++
		}
		if k == 0 {
			return sample{}, fmt.Errorf("consumer stalled after %d of %d: %v", got, n, b.Error())
		}
		got += k
	}
	w.Stop()
	return sample{Msgs: int64(n), Bytes: int64(n * r.Payload)}, nil
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
