package jetstream_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// apiErrCode returns the err_code of a JetStream API error, or 0. Some
// nats.go calls wrap it without %w, leaving only its text.
func apiErrCode(err error) jetstream.ErrorCode {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode
	}
	if err != nil {
		if _, code, ok := strings.Cut(err.Error(), "err_code="); ok {
			n, _ := strconv.Atoi(strings.TrimRightFunc(code[:min(len(code), 5)], func(r rune) bool { return r < '0' || r > '9' }))
			return jetstream.ErrorCode(n)
		}
	}
	return 0
}

// TestFirstSeq: a stream created with first_seq numbers its first message so.
func TestFirstSeq(t *testing.T) {
	eachSetup(t, func(t *testing.T, js jetstream.JetStream, storage jetstream.StorageType) {
		if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "FS", Storage: storage, FirstSeq: 100}); err != nil {
			t.Fatal(err)
		}
		ack, err := js.Publish(ctx(t), "FS", []byte("x"))
		if err != nil || ack.Sequence != 100 {
			t.Fatalf("first publish: seq %v, %v; want 100", ack, err)
		}
		_, err = js.UpdateStream(ctx(t), jetstream.StreamConfig{Name: "FS", Storage: storage, FirstSeq: 5})
		if apiErrCode(err) != 10052 {
			t.Fatalf("changing first_seq: %v, want err_code 10052", err)
		}
	})
}

// TestSealedStream: create refuses sealed; an update seals the stream,
// after which publishes, deletes and purges fail with 10109, and it
// cannot be unsealed.
func TestSealedStream(t *testing.T) {
	s := startJS(t, loop.Options{})
	_, js := connectJS(t, s)
	cfg := jetstream.StreamConfig{Name: "SEAL", Subjects: []string{"seal.>"}, Sealed: true, MaxAge: time.Hour}
	if _, err := js.CreateStream(ctx(t), cfg); apiErrCode(err) != 10052 {
		t.Fatalf("create sealed: %v, want err_code 10052", err)
	}
	cfg.Sealed = false
	st, err := js.CreateStream(ctx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := js.Publish(ctx(t), "seal.a", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Sealed = true
	sealed, err := js.UpdateStream(ctx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := sealed.CachedInfo().Config
	if !c.Sealed || !c.DenyDelete || !c.DenyPurge || c.AllowRollup || c.MaxAge != 0 || c.Discard != jetstream.DiscardNew {
		t.Fatalf("sealed config %+v", c)
	}
	if _, err := js.Publish(ctx(t), "seal.a", []byte("x")); apiErrCode(err) != 10109 {
		t.Fatalf("publish to sealed: %v, want 10109", err)
	}
	if err := st.DeleteMsg(ctx(t), 1); apiErrCode(err) != 10109 {
		t.Fatalf("delete from sealed: %v, want 10109", err)
	}
	if err := st.Purge(ctx(t)); apiErrCode(err) != 10109 {
		t.Fatalf("purge sealed: %v, want 10109", err)
	}
	if _, err := js.UpdateStream(ctx(t), c); err != nil {
		t.Fatalf("restating the sealed config: %v", err)
	}
	c.Sealed = false
	if _, err := js.UpdateStream(ctx(t), c); apiErrCode(err) != 10052 {
		t.Fatalf("unseal: %v, want 10052", err)
	}
	if info, err := st.Info(ctx(t)); err != nil || info.State.Msgs != 2 {
		t.Fatalf("sealed stream state %+v, %v", info, err)
	}
}

// TestPlacement: a single server accepts tags, and refuses a cluster it is
// not in with nats-server's no-peers error.
func TestPlacement(t *testing.T) {
	s := startJS(t, loop.Options{})
	_, js := connectJS(t, s)
	pt, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "PT", Placement: &jetstream.Placement{Tags: []string{"ssd"}}})
	if err != nil {
		t.Fatal(err)
	}
	if p := pt.CachedInfo().Config.Placement; p == nil || len(p.Tags) != 1 {
		t.Fatalf("tags placement echoed as %+v", p)
	}
	_, err = js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "PC", Placement: &jetstream.Placement{Cluster: "east"}})
	if apiErrCode(err) != 10005 {
		t.Fatalf("cluster placement: %v, want err_code 10005", err)
	}
}

// TestPullRequestLimits: max_expires and max_bytes refuse larger pulls
// with nats-server's 409 statuses; a pull on a push consumer is refused.
func TestPullRequestLimits(t *testing.T) {
	s := startJS(t, loop.Options{})
	nc, js := connectJS(t, s)
	st, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "PL", Subjects: []string{"pl.>"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: "C", MaxRequestExpires: time.Second, MaxRequestMaxBytes: 1000}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: "P", DeliverSubject: "pl.out.x"}); err == nil {
		t.Fatal("a deliver subject the stream captures was accepted")
	}
	if _, err := st.CreateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: "P", DeliverSubject: "out.x"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ subject, body, want string }{
		{"C", `{"batch":1,"expires":5000000000}`, "Exceeded MaxRequestExpires of 1s"},
		{"C", `{"batch":1,"max_bytes":2000,"expires":500000000}`, "Exceeded MaxRequestMaxBytes of 1000"},
		{"P", `{"batch":1}`, "Consumer is push based"},
	} {
		msg, err := nc.Request("$JS.API.CONSUMER.MSG.NEXT.PL."+tc.subject, []byte(tc.body), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if msg.Header.Get("Status") != "409" || msg.Header.Get("Description") != tc.want {
			t.Fatalf("%s %s: status %q %q, want 409 %q", tc.subject, tc.body, msg.Header.Get("Status"), msg.Header.Get("Description"), tc.want)
		}
	}
	// Within the limits a pull is served.
	if _, err := js.Publish(ctx(t), "pl.a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	msg, err := nc.Request("$JS.API.CONSUMER.MSG.NEXT.PL.C", []byte(`{"batch":1,"max_bytes":900,"expires":500000000}`), 5*time.Second)
	if err != nil || string(msg.Data) != "x" {
		t.Fatalf("pull within limits: %v, %v", msg, err)
	}
}

// TestInactiveThreshold: a durable consumer with inactive_threshold goes
// when idle, as nats-server's since 2.9; a push consumer counts as active
// while its deliver subject has a subscriber.
func TestInactiveThreshold(t *testing.T) {
	s := startJS(t, loop.Options{})
	nc, js := connectJS(t, s)
	st, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "IT", Subjects: []string{"it.>"}})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := nc.SubscribeSync("out.watched")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	const idle = 300 * time.Millisecond
	for _, cfg := range []jetstream.ConsumerConfig{
		{Durable: "PULL", InactiveThreshold: idle},
		{Durable: "PUSH", DeliverSubject: "out.nobody", InactiveThreshold: idle},
		{Durable: "WATCHED", DeliverSubject: "out.watched", InactiveThreshold: idle},
	} {
		if _, err := st.CreateConsumer(ctx(t), cfg); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(name string) bool {
		return request(t, nc, "$JS.API.CONSUMER.INFO.IT."+name, nil).Error == nil
	}
	deadline := time.Now().Add(5 * time.Second)
	for exists("PULL") || exists("PUSH") {
		if time.Now().After(deadline) {
			t.Fatalf("idle durable consumers still there: PULL %v, PUSH %v", exists("PULL"), exists("PUSH"))
		}
		time.Sleep(50 * time.Millisecond) // polling: deletion sends no signal a client sees
	}
	if !exists("WATCHED") {
		t.Fatal("a push consumer with a subscriber was removed")
	}
}

// TestStreamConsumerLimits: a stream's consumer_limits default and cap its
// consumers' max_ack_pending and inactive_threshold, and an update may not
// lower them under an existing consumer.
func TestStreamConsumerLimits(t *testing.T) {
	s := startJS(t, loop.Options{})
	_, js := connectJS(t, s)
	cfg := jetstream.StreamConfig{Name: "CL", Subjects: []string{"cl.>"},
		ConsumerLimits: jetstream.StreamConsumerLimits{MaxAckPending: 10, InactiveThreshold: time.Hour}}
	st, err := js.CreateStream(ctx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.CreateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: "C"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.CachedInfo().Config; got.MaxAckPending != 10 || got.InactiveThreshold != time.Hour {
		t.Fatalf("defaults from the stream: max_ack_pending %d, inactive_threshold %v", got.MaxAckPending, got.InactiveThreshold)
	}
	if _, err := st.CreateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: "D", MaxAckPending: 20}); apiErrCode(err) != 10121 {
		t.Fatalf("max_ack_pending over the stream's: %v, want 10121", err)
	}
	if _, err := st.CreateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: "D", InactiveThreshold: 2 * time.Hour}); apiErrCode(err) != 10153 {
		t.Fatalf("inactive_threshold over the stream's: %v, want 10153", err)
	}
	cfg.ConsumerLimits.MaxAckPending = 5
	if _, err := js.UpdateStream(ctx(t), cfg); apiErrCode(err) != 10069 {
		t.Fatalf("limits under consumer C: %v, want 10069", err)
	}
}

// TestPedanticRefused: evnats has no pedantic mode, so a create asking
// for one is refused (10157) rather than served without it.
func TestPedanticRefused(t *testing.T) {
	s := startJS(t, loop.Options{})
	nc, js := connectJS(t, s)
	r := request(t, nc, "$JS.API.STREAM.CREATE.PD", map[string]any{"name": "PD", "pedantic": true})
	if r.Error == nil || r.Error.ErrCode != 10157 {
		t.Fatalf("pedantic stream create: %+v", r)
	}
	if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "PD"}); err != nil {
		t.Fatal(err)
	}
	r = request(t, nc, "$JS.API.CONSUMER.CREATE.PD.C", map[string]any{"stream_name": "PD", "pedantic": true,
		"config": map[string]any{"durable_name": "C", "ack_policy": "explicit"}})
	if r.Error == nil || r.Error.ErrCode != 10157 {
		t.Fatalf("pedantic consumer create: %+v", r)
	}
}

// TestDeliverGroup: a push consumer with a deliver group hands each
// message to one member of the queue group on its deliver subject.
func TestDeliverGroup(t *testing.T) {
	s := startJS(t, loop.Options{})
	nc, js := connectJS(t, s)
	st, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "DG", Subjects: []string{"dg.>"}})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 100)
	for range 2 {
		if _, err := nc.QueueSubscribe("out.dg", "workers", func(m *nats.Msg) {
			got <- string(m.Data)
			_ = m.Ack()
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: "G", DeliverSubject: "out.dg", DeliverGroup: "workers", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	const n = 20
	for i := range n {
		if _, err := js.Publish(ctx(t), "dg.x", []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	timeout := time.After(5 * time.Second)
	for len(seen) < n {
		select {
		case d := <-got:
			if seen[d] {
				t.Fatalf("message %s delivered to two members", d)
			}
			seen[d] = true
		case <-timeout:
			t.Fatalf("got %d of %d", len(seen), n)
		}
	}
}
