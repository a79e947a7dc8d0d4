package jetstream_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	jsapi "github.com/evnats/evnats/jetstream"
	"github.com/evnats/evnats/loop"
	server "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// batchAbandonScenario drops one atomic batch by a gap, lets another time
// out, has a third ask for an API level above the server's, commits a
// fourth that asks for level 1 (the header is not stored), and reports each publish's answer and each advisory decoded
// into nats-server's JSStreamBatchAbandonedAdvisory.
func batchAbandonScenario(t *testing.T, url string) []string {
	nc, js := dial(t, url)
	sub, err := nc.SubscribeSync("$JS.EVENT.ADVISORY.STREAM.BATCH_ABANDONED.>")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "B", Subjects: []string{"b"}, AllowAtomicPublish: true}); err != nil {
		t.Fatal(err)
	}
	var out []string
	publish := func(id string, seq int, level ...string) {
		msg := nats.NewMsg("b")
		if len(level) > 0 {
			msg.Header.Set("Nats-Required-Api-Level", level[0])
		}
		if seq < 0 { // commit
			seq = -seq
			msg.Header.Set("Nats-Batch-Commit", "1")
		}
		msg.Header.Set("Nats-Batch-Id", id)
		msg.Header.Set("Nats-Batch-Sequence", fmt.Sprint(seq))
		resp, err := nc.RequestMsg(msg, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		body := string(resp.Data)
		if v := map[string]any(nil); json.Unmarshal(resp.Data, &v) == nil {
			b, _ := json.Marshal(v) // keys sorted: the servers order fields differently
			body = string(b)
		}
		out = append(out, fmt.Sprintf("publish %s %d: %s", id, seq, body))
	}
	advisory := func() {
		msg, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("no advisory after %v: %v", out, err)
		}
		var a server.JSStreamBatchAbandonedAdvisory
		dec := json.NewDecoder(strings.NewReader(string(msg.Data)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&a); err != nil {
			t.Fatalf("%s: %v", msg.Data, err)
		}
		out = append(out, fmt.Sprintf("%s %s account %q stream %s batch %s reason %s id %d", msg.Subject, a.Type, a.Account,
			a.Stream, a.BatchId, a.Reason, len(a.ID)))
	}
	publish("gap", 1)
	publish("gap", 3)
	advisory()
	publish("slow", 1)
	advisory() // after the batch timeout
	publish("level", 1)
	publish("level", 2, "99")
	advisory()
	publish("ok", 1, "1")
	publish("ok", -2)
	for seq := uint64(1); seq <= 2; seq++ {
		m, err := js.Stream(ctx(t), "B")
		if err != nil {
			t.Fatal(err)
		}
		raw, err := m.GetMsg(ctx(t), seq)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("stored %d: level header %q", seq, raw.Header.Get("Nats-Required-Api-Level")))
	}
	return out
}

// TestBatchAbandonedAdvisoryDifferential compares the batch-abandoned
// advisories (gap, timeout) with nats-server's, both with a 500 ms batch
// timeout.
func TestBatchAbandonedAdvisoryDifferential(t *testing.T) {
	defer jsapi.SetBatchTimeout(500 * time.Millisecond)()
	s := startJS(t, loop.Options{})
	got := batchAbandonScenario(t, s.ClientURL())

	opts := &server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, JetStream: true, StoreDir: t.TempDir()}
	opts.JetStreamLimits.MaxBatchTimeout = 500 * time.Millisecond
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(ns.Shutdown)
	want := batchAbandonScenario(t, ns.ClientURL())
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("evnats:\n%s\nnats-server:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
