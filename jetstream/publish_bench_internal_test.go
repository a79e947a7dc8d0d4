package jetstream

import (
	"testing"
	"time"

	"github.com/evnats/evnats/jetstream/store"
)

// benchStream is a memory stream with default limits, for the publish path
// without the Manager's queue or a client.
func benchStream() *stream {
	return &stream{cfg: StreamConfig{Name: "B", Subjects: []string{"b"}, Duplicates: 2 * time.Minute},
		store: store.NewMemStore(), dedupe: map[string]dedupeEntry{}, perSubj: map[string]uint64{},
		consumers: map[string]*consumer{}}
}

// BenchmarkStoreMsgHeaders stores a message carrying headers that none of
// the publish rules look for (a trace id, as many clients add): the rules
// read six headers per publish, which should cost no allocation.
func BenchmarkStoreMsgHeaders(b *testing.B) {
	st := benchStream()
	hdr := []byte("NATS/1.0\r\nTraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\nX-Tenant: acme\r\n\r\n")
	data := make([]byte, 128)
	now := time.Now()
	b.ReportAllocs()
	for range b.N {
		st.storeMsg("b", hdr, data, now, false, nil)
	}
}

// BenchmarkAckBody applies an ack whose body is longer than the 32 bytes
// the compiler converts to a string on the stack (+TERM with a reason), for
// a sequence no longer pending: reading the body should not allocate.
func BenchmarkAckBody(b *testing.B) {
	m := &Manager{streams: map[string]*stream{}}
	st := benchStream()
	c := &consumer{st: st, name: "c", cfg: ConsumerConfig{AckPolicy: "explicit"}, pending: map[uint64]*pendingAck{}}
	body := []byte("+TERM the payload failed validation: field 'id' missing")
	now := time.Now()
	b.ReportAllocs()
	for range b.N {
		m.ack(c, 1, body, now, nil)
	}
}

// TestHeaderValue reads headers as nats-server does: the first value of a
// key in any case, trimmed; nothing from the status line or a malformed line.
func TestHeaderValue(t *testing.T) {
	hdr := []byte("NATS/1.0 503\r\nNats-Msg-Id:  abc \r\nnats-msg-id: second\r\nbroken line\r\nX-Empty:\r\nNats-Expected-Stream: S\r\n\r\n")
	for key, want := range map[string]string{"Nats-Msg-Id": "abc", "NATS-MSG-ID": "abc", "X-Empty": "",
		"Nats-Expected-Stream": "S", "broken line": "", "NATS/1.0 503": "", "Missing": ""} {
		if got := headerValue(hdr, key); got != want {
			t.Errorf("headerValue(%q) = %q, want %q", key, got, want)
		}
	}
	if headerValue(nil, "Nats-Msg-Id") != "" {
		t.Error("value from no headers")
	}
	if n := testing.AllocsPerRun(100, func() { headerValue(hdr, "Nats-Rollup") }); n != 0 {
		t.Errorf("headerValue of a missing key: %v allocations", n)
	}
}

// BenchmarkFeatureHeaderRules runs the header rules counters and schedules
// add to every publish, on headers neither uses: one scan each, no
// allocation.
func BenchmarkFeatureHeaderRules(b *testing.B) {
	st := benchStream()
	hdr := []byte("NATS/1.0\r\nTraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\nX-Tenant: acme\r\n\r\n")
	now := time.Now()
	b.ReportAllocs()
	for range b.N {
		_, _ = st.checkIncr(hdr, nil, false)
		_, _ = st.checkSchedule("b", hdr, now)
		st.noteSchedule(1, "b", hdr, 0, now, false)
	}
}

func TestFeatureHeaderRulesAllocateNothing(t *testing.T) {
	st := benchStream()
	hdr := []byte("NATS/1.0\r\nTraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\nX-Tenant: acme\r\n\r\n")
	now := time.Now()
	if n := testing.AllocsPerRun(100, func() {
		_, _ = st.checkIncr(hdr, nil, false)
		_, _ = st.checkSchedule("b", hdr, now)
		st.noteSchedule(1, "b", hdr, 0, now, false)
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

// TestPubAckJSON checks pubAckJSON writes json.Marshal's bytes for plain
// acks, escaped names, domains and the fields it leaves to json.Marshal.
func TestPubAckJSON(t *testing.T) {
	for _, a := range []PubAck{{Stream: "S", Seq: 1}, {Stream: "ORDERS", Seq: 18446744073709551615, Domain: "hub"},
		{Stream: "a<b", Seq: 2}, {Stream: "é", Seq: 3}, {Stream: `q"`, Seq: 4, Domain: "d&"}, {Stream: "S", Seq: 5, Duplicate: true},
		{Stream: "S", Seq: 6, Value: "10"}, {Stream: "S", Seq: 7, Batch: "b", Count: 2}, {Stream: "S", Error: newErr(errInsufficient)}, {}} {
		if got, want := string(pubAckJSON(&a)), string(mustJSON(&a)); got != want {
			t.Errorf("pubAckJSON %+v = %s, want %s", a, got, want)
		}
	}
	a := &PubAck{Stream: "S", Seq: 9, Domain: "d"}
	if n := testing.AllocsPerRun(100, func() { pubAckJSON(a) }); n != 1 {
		t.Errorf("%v allocations, want 1", n)
	}
}

// nopHost discards what the Manager publishes and delivers.
type nopHost struct{ n int }

func (h *nopHost) Subscribe(string, func(subject, reply string, hdr, data []byte)) func() {
	return func() {}
}
func (h *nopHost) Publish(string, string, []byte, []byte)                      { h.n++ }
func (h *nopHost) Deliver(string, string, string, []byte, []byte, func()) bool { h.n++; return true }
func (h *nopHost) Interest(string) bool                                        { return false }

// drainQueue serves what reached the Manager's queue (the store Writer's
// completions), as its goroutine would, swapping the queue with the
// slice it served last time as run does.
func (m *Manager) drainQueue() {
	m.mu.Lock()
	q := m.queue
	m.queue = drained[:0]
	m.mu.Unlock()
	for i := range q {
		m.handle(&q[i])
	}
	clear(q)
	drained = q
}

var drained []request // drainQueue's spare; benchmarks only, one at a time

// BenchmarkPublish runs a publish with a reply through the Manager's
// publish step (no queue in front, no client), a memory and a file
// stream, the PubAck encoded and handed to the host: what one stored
// message costs the Manager and, for a file stream, the Writer.
func BenchmarkPublish(b *testing.B) {
	for _, storage := range []string{"memory", "file"} {
		b.Run(storage, func(b *testing.B) {
			h := &nopHost{}
			w := store.NewWriter(store.OSFS{}, store.SyncPolicy{Interval: time.Hour})
			defer w.Close()
			dir := b.TempDir()
			m := &Manager{host: h, writer: w, streams: map[string]*stream{}, subjects: newSubjectIndex(),
				cfg: Config{FS: store.OSFS{}, StoreDir: dir}, streamsDir: dir + "/streams", trashDir: dir + "/trash"}
			cfg := StreamConfig{Name: "B", Subjects: []string{"b"}, Storage: storage}
			if e := normalize(&cfg); e != nil {
				b.Fatal(e)
			}
			st, err := m.addStream(cfg, time.Now())
			if err != nil {
				b.Fatal(err)
			}
			data := make([]byte, 128)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				r := request{st: st, subject: "b", reply: "_INBOX.r", data: data}
				m.publish(&r, time.Now())
				if i%256 == 255 {
					m.drainQueue()
				}
			}
			w.Barrier()
			m.drainQueue()
			b.StopTimer()
			if h.n < b.N {
				b.Fatalf("%d acks for %d publishes", h.n, b.N)
			}
			st.store.Close()
		})
	}
}
