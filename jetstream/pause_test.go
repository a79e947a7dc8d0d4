package jetstream_test

import (
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go/jetstream"
)

// fetchN fetches up to n messages, waiting at most wait, and acks them.
func fetchN(t *testing.T, c jetstream.Consumer, n int, wait time.Duration) int {
	t.Helper()
	batch, err := c.Fetch(n, jetstream.FetchMaxWait(wait))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for m := range batch.Messages() {
		if err := m.Ack(); err != nil {
			t.Fatal(err)
		}
		got++
	}
	return got
}

// TestConsumerPause pauses and resumes a consumer through nats.go: a paused
// consumer delivers nothing, its info says so, and it delivers again when
// resumed or when pause_until passes.
func TestConsumerPause(t *testing.T) {
	s := startJS(t, loop.Options{})
	_, js := connectJS(t, s)
	st, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "PZ", Subjects: []string{"pz.>"}})
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if _, err := js.Publish(ctx(t), "pz.a", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	c, err := st.CreateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: "C", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := js.PauseConsumer(ctx(t), "PZ", "C", time.Now().Add(time.Hour))
	if err != nil || !resp.Paused || resp.PauseRemaining <= 0 {
		t.Fatalf("pause: %+v, %v", resp, err)
	}
	info, err := c.Info(ctx(t))
	if err != nil || !info.Paused || info.PauseRemaining <= 0 || info.Config.PauseUntil == nil {
		t.Fatalf("paused info: %+v, %v", info, err)
	}
	if n := fetchN(t, c, 1, 300*time.Millisecond); n != 0 {
		t.Fatalf("a paused consumer delivered %d", n)
	}
	resp, err = js.ResumeConsumer(ctx(t), "PZ", "C")
	if err != nil || resp.Paused {
		t.Fatalf("resume: %+v, %v", resp, err)
	}
	if n := fetchN(t, c, 2, 2*time.Second); n != 2 {
		t.Fatalf("resumed consumer delivered %d, want 2", n)
	}
	// A short pause ends by itself: the waiting pull is served after it.
	if _, err := js.PauseConsumer(ctx(t), "PZ", "C", time.Now().Add(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if n := fetchN(t, c, 2, 5*time.Second); n != 2 {
		t.Fatalf("after the pause: %d, want 2", n)
	}
	if waited := time.Since(start); waited < 200*time.Millisecond {
		t.Fatalf("delivered %v into a 300ms pause", waited)
	}
	// pause_until in the create request pauses from the start.
	p, err := st.CreateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: "P", PauseUntil: ptr(time.Now().Add(time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	if info, err := p.Info(ctx(t)); err != nil || !info.Paused {
		t.Fatalf("created paused: %+v, %v", info, err)
	}
	if _, err := js.PauseConsumer(ctx(t), "PZ", "MISSING", time.Now()); apiErrCode(err) != 10014 {
		t.Fatalf("pause a missing consumer: %v, want 10014", err)
	}
}

func ptr[T any](v T) *T { return &v }

// TestRestartKeepsPauseSealAndFirstSeq: a paused durable consumer stays
// paused, a sealed stream sealed, and first_seq holds across a restart.
func TestRestartKeepsPauseSealAndFirstSeq(t *testing.T) {
	dir := t.TempDir()
	s := startJS(t, loop.Options{StoreDir: dir})
	_, js := connectJS(t, s)
	cfg := jetstream.StreamConfig{Name: "RS", Subjects: []string{"rs.>"}, FirstSeq: 42}
	st, err := js.CreateStream(ctx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: "C", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx(t), "rs.a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := js.PauseConsumer(ctx(t), "RS", "C", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	cfg.Sealed = true
	if _, err := js.UpdateStream(ctx(t), cfg); err != nil {
		t.Fatal(err)
	}
	s.Shutdown()

	s2 := startJS(t, loop.Options{StoreDir: dir})
	_, js2 := connectJS(t, s2)
	st2, err := js2.Stream(ctx(t), "RS")
	if err != nil {
		t.Fatal(err)
	}
	info := st2.CachedInfo()
	if !info.Config.Sealed || info.Config.FirstSeq != 42 || info.State.FirstSeq != 42 {
		t.Fatalf("after restart: sealed %v, first_seq %d, state first %d", info.Config.Sealed, info.Config.FirstSeq, info.State.FirstSeq)
	}
	c, err := st2.Consumer(ctx(t), "C")
	if err != nil {
		t.Fatal(err)
	}
	if ci := c.CachedInfo(); !ci.Paused {
		t.Fatalf("consumer not paused after restart: %+v", ci)
	}
	if n := fetchN(t, c, 1, 300*time.Millisecond); n != 0 {
		t.Fatalf("paused consumer delivered %d after restart", n)
	}
}
