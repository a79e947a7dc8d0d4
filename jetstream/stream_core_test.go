package jetstream

// The stream as a state machine (stream_core.go), driven on the test's
// goroutine: no Manager goroutine, no ticker, no socket.

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evnats/evnats/jetstream/store"
)

// fileRig is a Manager that is never started, with one file stream "F"
// on subject "f" and a real Writer; what the Writer completes waits in
// the Manager's queue until drainQueue serves it.
func fileRig(t *testing.T) (*Manager, *clockHost, *stream) {
	t.Helper()
	h := &clockHost{noInterest: map[string]bool{}}
	w := store.NewWriter(store.OSFS{}, store.SyncPolicy{Interval: time.Hour})
	t.Cleanup(func() { _ = w.Close() })
	dir := t.TempDir()
	m := &Manager{host: h, writer: w, streams: map[string]*stream{}, subjects: newSubjectIndex(),
		cfg: Config{FS: store.OSFS{}, StoreDir: dir, Domain: "hub"}, streamsDir: dir + "/streams", trashDir: dir + "/trash"}
	cfg := StreamConfig{Name: "F", Subjects: []string{"f"}, Storage: "file"}
	if e := normalize(&cfg); e != nil {
		t.Fatal(e)
	}
	st, err := m.addStream(cfg, t0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.store.Close() })
	return m, h, st
}

// TestWriterCompletionsComeBackToTheManager: a file stream's PubAck is
// neither encoded nor published on the Writer goroutine; the Writer's
// completion waits in the Manager's queue, and the Manager acks from there,
// in order, with what the ack says (sequence, domain).
func TestWriterCompletionsComeBackToTheManager(t *testing.T) {
	m, h, st := fileRig(t)
	for i := range 3 {
		m.publish(&request{st: st, subject: "f", reply: "r" + string(rune('0'+i)), data: []byte("x")}, t0)
	}
	m.writer.Barrier() // every completion has run on the Writer
	if out := h.take(); len(out) != 0 {
		t.Fatalf("published before the Manager served the completions: %+v", out)
	}
	m.mu.Lock()
	queued := len(m.queue)
	m.mu.Unlock()
	if queued != 3 {
		t.Fatalf("%d completions queued, want 3", queued)
	}
	m.drainQueue()
	out := h.take()
	if len(out) != 3 {
		t.Fatalf("%d acks, want 3: %+v", len(out), out)
	}
	for i, s := range out {
		var ack PubAck
		if err := json.Unmarshal([]byte(s.data), &ack); err != nil {
			t.Fatal(err)
		}
		if s.to != "r"+string(rune('0'+i)) || ack.Seq != uint64(i+1) || ack.Stream != "F" || ack.Domain != "hub" || ack.Error != nil {
			t.Errorf("ack %d: to %s %+v", i, s.to, ack)
		}
	}
	if st.acks.len() != 0 {
		t.Errorf("%d acks still wait", st.acks.len())
	}
}

// TestCompletionErrorAcksThatMessage: a failed write answers its own
// publish with an error and releases the acks before it.
func TestCompletionErrorAcksThatMessage(t *testing.T) {
	m := &Manager{host: &clockHost{}}
	h := m.host.(*clockHost)
	st := &stream{cfg: StreamConfig{Name: "F"}}
	st.acks.push(ackWait{seq: 1, reply: "a"})
	st.acks.push(ackWait{seq: 2, reply: "b"})
	st.acks.push(ackWait{seq: 3, reply: "c"})
	m.completed(&request{durable: st, seq: 2, err: errors.New("disk full")})
	out := h.take()
	if len(out) != 2 || out[0].to != "a" || out[1].to != "b" {
		t.Fatalf("released %+v", out)
	}
	var a, b PubAck
	_ = json.Unmarshal([]byte(out[0].data), &a)
	_ = json.Unmarshal([]byte(out[1].data), &b)
	if a.Error != nil || a.Seq != 1 || b.Error == nil || b.Error.ErrCode != 10077 {
		t.Errorf("acks %+v / %+v", a, b.Error)
	}
	if st.acks.len() != 1 {
		t.Errorf("%d waiting, want 1", st.acks.len())
	}
}

// TestAckQueueReusesItsSlice: a queue that keeps emptying allocates
// nothing; one that never empties moves down instead of growing forever.
func TestAckQueueReusesItsSlice(t *testing.T) {
	var q ackQueue
	q.push(ackWait{seq: 1})
	q.release(1, func(*ackWait) {})
	seq := uint64(1)
	if n := testing.AllocsPerRun(1000, func() {
		seq++
		q.push(ackWait{seq: seq})
		q.release(seq, func(*ackWait) {})
	}); n != 0 {
		t.Errorf("%v allocations per push and release", n)
	}
	var long ackQueue
	for i := uint64(1); i <= 10000; i++ {
		long.push(ackWait{seq: i})
		if i > 10 {
			long.release(i-10, func(*ackWait) {})
		}
	}
	if long.len() != 10 || long.head > 1024+10 {
		t.Errorf("len %d head %d cap %d", long.len(), long.head, cap(long.q))
	}
}

// streamRig is one memory stream driven by its steps on a fake clock at
// t0: no Manager, no Writer, no socket.
type streamRig struct {
	t   *testing.T
	st  *stream
	now time.Time
}

func newStreamRig(t *testing.T, cfg StreamConfig) *streamRig {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "S"
	}
	if len(cfg.Subjects) == 0 {
		cfg.Subjects = []string{"s.>"}
	}
	cfg.Storage = "memory"
	if e := normalize(&cfg); e != nil {
		t.Fatal(e)
	}
	if cfg.Duplicates == 0 {
		cfg.Duplicates = defaultDuplicateWindow
	}
	st := &stream{cfg: cfg, created: t0, store: store.NewMemStore(), dedupe: map[string]dedupeEntry{},
		perSubj: map[string]uint64{}, consumers: map[string]*consumer{}}
	return &streamRig{t: t, st: st, now: t0}
}

// hdr builds a NATS/1.0 header block from "Key: value" lines.
func hdr(lines ...string) []byte {
	if len(lines) == 0 {
		return nil
	}
	b := "NATS/1.0\r\n"
	for _, l := range lines {
		b += l + "\r\n"
	}
	return []byte(b + "\r\n")
}

// pub publishes with a reply at the rig's time and returns the PubAck the
// step recorded to send now, and the effects.
func (r *streamRig) pub(subject string, h []byte, data string) (PubAck, streamEffects) {
	r.t.Helper()
	r.st.publish(subject, "reply", h, []byte(data), r.now)
	fx := r.st.ready()
	if len(fx.acks) != 1 || fx.acks[0].to != "reply" {
		r.t.Fatalf("publish on %s recorded acks %+v", subject, fx.acks)
	}
	return fx.acks[0].ack, fx
}

// ok publishes and fails the test unless the message is stored as seq.
func (r *streamRig) ok(subject string, h []byte, data string, seq uint64) {
	r.t.Helper()
	ack, fx := r.pub(subject, h, data)
	if ack.Error != nil || ack.Duplicate || ack.Seq != seq || fx.first != seq || fx.last != seq {
		r.t.Fatalf("publish on %s: ack %+v (error %v), stored %d..%d, want seq %d", subject, ack, ack.Error, fx.first, fx.last, seq)
	}
}

// refused publishes and fails the test unless the ack is error errCode.
func (r *streamRig) refused(subject string, h []byte, data string, errCode uint16) *APIError {
	r.t.Helper()
	ack, fx := r.pub(subject, h, data)
	if ack.Error == nil || ack.Error.ErrCode != errCode || fx.last != 0 {
		r.t.Fatalf("publish on %s: ack %+v (error %v), stored up to %d; want error %d", subject, ack, ack.Error, fx.last, errCode)
	}
	return ack.Error
}

// at moves the clock to t0+d (never back), runs the time input and
// returns its effects.
func (r *streamRig) at(d time.Duration) streamEffects {
	r.t.Helper()
	if t := t0.Add(d); t.Before(r.now) {
		r.t.Fatalf("clock moved back to %v", d)
	} else {
		r.now = t
	}
	r.st.tick(r.now)
	return r.st.ready()
}

func (r *streamRig) msgs() uint64 { return r.st.store.State().Msgs }

// TestStreamPublishDecisions walks the publish rules one input at a time:
// expected-* headers, the duplicate window, discard policy and limits,
// TTL headers, message size, counters, sealing.
func TestStreamPublishDecisions(t *testing.T) {
	t.Run("expected", func(t *testing.T) {
		r := newStreamRig(t, StreamConfig{})
		r.ok("s.a", hdr("Nats-Msg-Id: one"), "1", 1)
		r.refused("s.a", hdr("Nats-Expected-Stream: OTHER"), "x", 10060)
		if e := r.refused("s.a", hdr("Nats-Expected-Last-Sequence: 7"), "x", 10071); e.Description != "wrong last sequence: 1" {
			t.Errorf("description %q", e.Description)
		}
		r.ok("s.b", hdr("Nats-Expected-Last-Sequence: 1"), "2", 2)
		r.refused("s.a", hdr("Nats-Expected-Last-Subject-Sequence: 2"), "x", 10071)
		r.ok("s.a", hdr("Nats-Expected-Last-Subject-Sequence: 1"), "3", 3)
		r.refused("s.c", hdr("Nats-Expected-Last-Msg-Id: two"), "x", 10070)
		r.ok("s.c", hdr("Nats-Expected-Last-Msg-Id: one", "Nats-Expected-Stream: S"), "4", 4)
	})
	t.Run("duplicates", func(t *testing.T) {
		r := newStreamRig(t, StreamConfig{Duplicates: time.Minute})
		r.ok("s.a", hdr("Nats-Msg-Id: m1"), "1", 1)
		r.now = t0.Add(59 * time.Second)
		if ack, fx := r.pub("s.a", hdr("Nats-Msg-Id: m1"), "again"); !ack.Duplicate || ack.Seq != 1 || fx.last != 0 {
			t.Fatalf("inside the window: %+v, stored %d", ack, fx.last)
		}
		r.now = t0.Add(time.Minute)
		r.ok("s.a", hdr("Nats-Msg-Id: m1"), "after", 2)
	})
	t.Run("discard new", func(t *testing.T) {
		r := newStreamRig(t, StreamConfig{Discard: "new", MaxMsgs: 2, MaxMsgsPerSubject: 1, DiscardNewPer: true})
		r.ok("s.a", nil, "1", 1)
		r.refused("s.a", nil, "2", 10077) // per subject
		r.ok("s.b", nil, "2", 2)
		if e := r.refused("s.c", nil, "3", 10077); e.Description != "maximum messages exceeded" {
			t.Errorf("description %q", e.Description)
		}
		r2 := newStreamRig(t, StreamConfig{Discard: "new", MaxBytes: 40})
		r2.ok("s.a", nil, "0123456789", 1)
		r2.refused("s.a", nil, "0123456789012345678901234567890", 10077)
	})
	t.Run("discard old", func(t *testing.T) {
		r := newStreamRig(t, StreamConfig{MaxMsgs: 2, MaxMsgsPerSubject: 1})
		r.ok("s.a", nil, "1", 1)
		r.ok("s.a", nil, "2", 2) // replaces 1
		r.ok("s.b", nil, "3", 3)
		r.ok("s.c", nil, "4", 4) // the oldest (2) goes
		if s := r.st.store.State(); s.Msgs != 2 || s.FirstSeq != 3 {
			t.Errorf("state %+v", s)
		}
	})
	t.Run("size and seal", func(t *testing.T) {
		r := newStreamRig(t, StreamConfig{MaxMsgSize: 4})
		r.refused("s.a", nil, "12345", 10054)
		r.ok("s.a", nil, "1234", 1)
		r.st.cfg.Sealed = true
		r.refused("s.a", nil, "1", 10109)
	})
	t.Run("ttl", func(t *testing.T) {
		r := newStreamRig(t, StreamConfig{})
		r.refused("s.a", hdr("Nats-TTL: 5s"), "x", 10166)
		r2 := newStreamRig(t, StreamConfig{AllowMsgTTL: true})
		r2.refused("s.a", hdr("Nats-TTL: 500ms"), "x", 10165)
		r2.ok("s.a", hdr("Nats-TTL: 5s"), "x", 1)
		if len(r2.st.ttls) != 1 || r2.st.ttls[0].at != t0.Add(5*time.Second).UnixNano() {
			t.Errorf("ttl index %+v", r2.st.ttls)
		}
	})
	t.Run("counter", func(t *testing.T) {
		r := newStreamRig(t, StreamConfig{AllowMsgCounter: true})
		if ack, _ := r.pub("s.n", hdr("Nats-Incr: +5"), ""); ack.Error != nil || ack.Value != "5" || ack.Seq != 1 {
			t.Fatalf("first increment: %+v %v", ack, ack.Error)
		}
		if ack, _ := r.pub("s.n", hdr("Nats-Incr: -2"), ""); ack.Error != nil || ack.Value != "3" || ack.Seq != 2 {
			t.Fatalf("second increment: %+v %v", ack, ack.Error)
		}
		if ack, _ := r.pub("s.n", nil, "plain"); ack.Error == nil {
			t.Fatalf("a counter stream took a message without Nats-Incr: %+v", ack)
		}
	})
}

// TestStreamPublishWithoutReply records no ack, and a file stream's ack
// waits for the store (st.acks), not in the effects.
func TestStreamPublishWithoutReply(t *testing.T) {
	r := newStreamRig(t, StreamConfig{})
	r.st.publish("s.a", "", nil, []byte("x"), r.now)
	if fx := r.st.ready(); len(fx.acks) != 0 || fx.last != 1 {
		t.Fatalf("effects %+v", fx)
	}
	r.st.durable = func(uint64, error) {} // as a file stream's
	r.st.publish("s.a", "reply", nil, []byte("x"), r.now)
	if fx := r.st.ready(); len(fx.acks) != 0 || fx.last != 2 || r.st.acks.len() != 1 || r.st.acks.front().seq != 2 {
		t.Fatalf("effects %+v, waiting %d", fx, r.st.acks.len())
	}
}

// TestStreamMaxAgeOnAFakeClock: a message leaves when it reaches max_age,
// not a tick before, and wake names that moment.
func TestStreamMaxAgeOnAFakeClock(t *testing.T) {
	r := newStreamRig(t, StreamConfig{MaxAge: 10 * time.Second})
	r.ok("s.a", nil, "1", 1)
	r.now = t0.Add(4 * time.Second)
	r.ok("s.b", nil, "2", 2)
	if fx := r.at(5 * time.Second); !fx.wake.Equal(t0.Add(10*time.Second)) || r.msgs() != 2 {
		t.Fatalf("wake %v, %d msgs", fx.wake.Sub(t0), r.msgs())
	}
	if fx := r.at(10*time.Second - time.Nanosecond); r.msgs() != 2 || !fx.wake.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("expired early: %d msgs", r.msgs())
	}
	if fx := r.at(10 * time.Second); r.msgs() != 1 || !fx.wake.Equal(t0.Add(14*time.Second)) {
		t.Fatalf("at max_age: %d msgs, wake %v", r.msgs(), fx.wake.Sub(t0))
	}
	if fx := r.at(14 * time.Second); r.msgs() != 0 || !fx.wake.IsZero() {
		t.Fatalf("at the second's max_age: %d msgs, wake %v", r.msgs(), fx.wake)
	}
}

// TestStreamTTLAndDeleteMarkerOnAFakeClock: a message goes when its
// Nats-TTL passes; with subject_delete_marker_ttl the last one on its
// subject leaves a marker (stored: an effect), which expires in turn and
// leaves none.
func TestStreamTTLAndDeleteMarkerOnAFakeClock(t *testing.T) {
	r := newStreamRig(t, StreamConfig{SubjectDeleteMarkerTTL: 3 * time.Second})
	r.ok("s.a", hdr("Nats-TTL: 5"), "v", 1)
	r.ok("s.b", hdr("Nats-TTL: 1"), "w", 2) // raised to the marker TTL, 3 s
	if fx := r.at(2 * time.Second); fx.last != 0 || !fx.wake.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("at 2s: %+v", fx)
	}
	fx := r.at(3 * time.Second)
	if fx.first != 3 || fx.last != 3 {
		t.Fatalf("at 3s: stored %d..%d, want the marker 3", fx.first, fx.last)
	}
	m, err := r.st.store.Load(3)
	if err != nil || m.Subject != "s.b" || headerValue(m.Hdr, "Nats-Marker-Reason") != "MaxAge" ||
		headerValue(m.Hdr, "Nats-TTL") != "3s" || len(m.Data) != 0 {
		t.Fatalf("marker %+v %v", m, err)
	}
	if !fx.wake.Equal(t0.Add(5 * time.Second)) {
		t.Errorf("wake %v", fx.wake.Sub(t0))
	}
	if fx := r.at(5 * time.Second); fx.first != 4 {
		t.Fatalf("at 5s: stored %d..%d, want s.a's marker 4", fx.first, fx.last)
	}
	r.at(6 * time.Second) // the first marker expires: no marker for a marker
	if fx := r.at(8 * time.Second); fx.last != 0 || r.msgs() != 0 || !fx.wake.IsZero() {
		t.Fatalf("at 8s: %+v, %d msgs", fx, r.msgs())
	}
}

// TestStreamDuplicateWindowOnAFakeClock: the time input forgets an id
// exactly when its window ends, from the front of the stored order, and
// keeps an id stored again since.
func TestStreamDuplicateWindowOnAFakeClock(t *testing.T) {
	r := newStreamRig(t, StreamConfig{Duplicates: 10 * time.Second})
	r.ok("s.a", hdr("Nats-Msg-Id: a"), "1", 1)
	r.now = t0.Add(3 * time.Second)
	r.ok("s.a", hdr("Nats-Msg-Id: b"), "2", 2)
	if fx := r.at(5 * time.Second); !fx.wake.Equal(t0.Add(10*time.Second)) || len(r.st.dedupe) != 2 {
		t.Fatalf("wake %v, %d ids", fx.wake.Sub(t0), len(r.st.dedupe))
	}
	r.at(10 * time.Second)
	if _, ok := r.st.dedupe["a"]; ok || len(r.st.dedupe) != 1 {
		t.Fatalf("ids %v after a's window", r.st.dedupe)
	}
	r.ok("s.a", hdr("Nats-Msg-Id: a"), "3", 3) // stored again: a new window
	r.now = t0.Add(12 * time.Second)
	if ack, _ := r.pub("s.a", hdr("Nats-Msg-Id: b"), "4"); !ack.Duplicate || ack.Seq != 2 {
		t.Fatalf("b inside its window: %+v", ack)
	}
	if fx := r.at(13 * time.Second); !fx.wake.Equal(t0.Add(20 * time.Second)) {
		t.Fatalf("wake %v", fx.wake.Sub(t0))
	}
	if _, ok := r.st.dedupe["b"]; ok {
		t.Fatal("b kept past its window")
	}
	if _, ok := r.st.dedupe["a"]; !ok {
		t.Fatal("a, stored again at 10 s, forgotten at 13 s")
	}
	r.at(22 * time.Second)
	if len(r.st.dedupe) != 0 || r.st.idOrder.len() != 0 {
		t.Fatalf("ids %v, order %d", r.st.dedupe, r.st.idOrder.len())
	}
}

// TestStreamScheduleFiresOnAFakeClock: an @every schedule stores its
// message on the target each time it is due, and wake names the next.
func TestStreamScheduleFiresOnAFakeClock(t *testing.T) {
	r := newStreamRig(t, StreamConfig{AllowMsgSchedules: true})
	r.ok("s.sched", hdr("Nats-Schedule: @every 5s", "Nats-Schedule-Target: s.out"), "tick", 1)
	if fx := r.at(time.Second); fx.last != 0 || !fx.wake.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("at 1s: %+v", fx)
	}
	fx := r.at(5 * time.Second)
	if fx.first != 2 || fx.last != 2 || !fx.wake.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("at 5s: stored %d..%d, wake %v", fx.first, fx.last, fx.wake.Sub(t0))
	}
	m, err := r.st.store.Load(2)
	if err != nil || m.Subject != "s.out" || string(m.Data) != "tick" || headerValue(m.Hdr, "Nats-Scheduler") != "s.sched" {
		t.Fatalf("fired %+v %v", m, err)
	}
	if fx := r.at(10 * time.Second); fx.last != 3 {
		t.Fatalf("at 10s: stored up to %d", fx.last)
	}
}

// TestStreamBatchTimeoutOnAFakeClock: an atomic batch that sees no message
// for batchTimeout is dropped by the time input, which records its
// BATCH_ABANDONED advisory; wake names the timeout.
func TestStreamBatchTimeoutOnAFakeClock(t *testing.T) {
	r := newStreamRig(t, StreamConfig{AllowAtomic: true})
	res := r.st.stageAtomic("b1", "s.a", hdr("Nats-Batch-Id: b1", "Nats-Batch-Sequence: 1"), []byte("x"), r.now, 0, 0)
	if res.err != nil || res.commit != nil {
		t.Fatalf("stage: %+v", res)
	}
	r.now = t0.Add(2 * time.Second)
	r.st.stageAtomic("b1", "s.a", hdr("Nats-Batch-Id: b1", "Nats-Batch-Sequence: 2"), []byte("y"), r.now, 1, 1)
	if fx := r.at(11 * time.Second); len(fx.abandoned) != 0 || !fx.wake.Equal(t0.Add(12*time.Second)) {
		t.Fatalf("at 11s: %+v", fx)
	}
	fx := r.at(12 * time.Second)
	if len(fx.abandoned) != 1 || fx.abandoned[0] != (abandonNote{"b1", "timeout"}) || len(r.st.batches) != 0 || !fx.wake.IsZero() {
		t.Fatalf("at 12s: %+v, %d batches", fx, len(r.st.batches))
	}
	if r.msgs() != 0 {
		t.Fatalf("an abandoned batch stored %d messages", r.msgs())
	}
}

// TestManagerPerformsStreamEffects: the Manager's publish feeds the step
// and performs its effects on a memory stream: PubAcks as nats-server
// words them (a duplicate carries the domain, a refusal none), none with
// no_ack, and what was stored goes to a waiting pull at once.
func TestManagerPerformsStreamEffects(t *testing.T) {
	r := newClockRig(t, ConsumerConfig{})
	r.st.domain = "hub" // as addStream sets it from the Manager's config
	pub := func(subject, reply string, h []byte) []sent {
		r.m.publish(&request{st: r.st, subject: subject, reply: reply, hdr: h, data: []byte("x")}, r.now)
		return r.h.take()
	}
	r.pull("in.1", `{"batch":5,"expires":60000000000}`)
	out := pub("s.a", "r1", hdr("Nats-Msg-Id: one"))
	if len(out) != 2 || out[0].to != "r1" || out[0].data != `{"stream":"S","seq":1,"domain":"hub"}` || out[1].to != "in.1" {
		t.Fatalf("publish: %+v", out)
	}
	if out := pub("s.a", "r2", hdr("Nats-Msg-Id: one")); len(out) != 1 || out[0].data != `{"stream":"S","seq":1,"duplicate":true,"domain":"hub"}` {
		t.Fatalf("duplicate: %+v", out)
	}
	out = pub("s.a", "r3", hdr("Nats-Expected-Last-Sequence: 9"))
	if len(out) != 1 || out[0].data != `{"stream":"S","seq":0,"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 1"}}` {
		t.Fatalf("refusal: %+v", out)
	}
	r.st.cfg.NoAck = true
	if out := pub("s.b", "r4", nil); len(out) != 1 || out[0].to != "in.1" {
		t.Fatalf("no_ack: %+v", out)
	}
}

// TestTickStoresAndDeliversDeleteMarker: through the Manager's tick on a
// fake clock, a TTL expiry's delete marker is stored and delivered to a
// waiting pull in that same tick.
func TestTickStoresAndDeliversDeleteMarker(t *testing.T) {
	r := newClockRig(t, ConsumerConfig{AckPolicy: "none"})
	r.st.cfg.AllowMsgTTL, r.st.cfg.AllowRollup, r.st.cfg.SubjectDeleteMarkerTTL = true, true, 2*time.Second
	r.m.publish(&request{st: r.st, subject: "s.k", hdr: hdr("Nats-TTL: 2"), data: []byte("v")}, r.now)
	if d := deliveries(r.pull("in.1", `{"batch":5,"expires":60000000000}`)); !same(d, []string{"1/1"}) {
		t.Fatalf("first delivery %v", d)
	}
	if out := r.at(2*time.Second - 1); len(deliveries(out)) != 0 {
		t.Fatalf("before the TTL: %+v", out)
	}
	out := r.at(2 * time.Second)
	var marker *sent
	for i := range out {
		if out[i].to == "in.1" && strings.Contains(out[i].hdr, "Nats-Marker-Reason: MaxAge") {
			marker = &out[i]
		}
	}
	if marker == nil || marker.subject != "s.k" {
		t.Fatalf("at the TTL, no marker delivered: %+v", out)
	}
	if s := r.st.store.State(); s.Msgs != 1 || s.FirstSeq != 2 {
		t.Fatalf("state %+v", s)
	}
}

// TestStreamPurgeAndDeleteSteps: the purge and delete inputs' refusals
// (sealed, deny_purge, deny_delete, no such message) and their effect on
// the per-subject counts.
func TestStreamPurgeAndDeleteSteps(t *testing.T) {
	r := newStreamRig(t, StreamConfig{})
	for i := range 4 {
		r.ok("s.a", nil, "x", uint64(i+1))
	}
	r.ok("s.b", nil, "y", 5)
	if e := r.st.deleteMsg(9); e == nil || e.ErrCode != 10057 {
		t.Fatalf("delete of no message: %v", e)
	}
	if e := r.st.deleteMsg(2); e != nil || r.st.perSubj["s.a"] != 3 {
		t.Fatalf("delete: %v, s.a count %d", e, r.st.perSubj["s.a"])
	}
	if n, e, err := r.st.purgeMsgs(purgeRequest{Subject: "s.a", Keep: 1}); e != nil || err != nil || n != 2 || r.st.perSubj["s.a"] != 1 {
		t.Fatalf("purge keep 1: %d %v %v, s.a count %d", n, e, err, r.st.perSubj["s.a"])
	}
	r.st.cfg.DenyPurge, r.st.cfg.DenyDelete = true, true
	if _, e, _ := r.st.purgeMsgs(purgeRequest{}); e == nil || e.ErrCode != 10110 {
		t.Fatalf("deny_purge: %v", e)
	}
	if e := r.st.deleteMsg(5); e == nil || e.ErrCode != 10057 || e.Description != "message delete not permitted" {
		t.Fatalf("deny_delete: %v", e)
	}
	r.st.cfg.Sealed = true
	if _, e, _ := r.st.purgeMsgs(purgeRequest{}); e == nil || e.ErrCode != 10109 {
		t.Fatalf("sealed purge: %v", e)
	}
	if e := r.st.deleteMsg(5); e == nil || e.ErrCode != 10109 {
		t.Fatalf("sealed delete: %v", e)
	}
	if r.msgs() != 2 {
		t.Fatalf("%d msgs", r.msgs())
	}
}

// TestStreamAtomicBatchStep: staged messages get the empty reply and store
// nothing; the commit stores the batch (one range) and records its PubAck;
// a gap refuses the batch with its BATCH_ABANDONED reason.
func TestStreamAtomicBatchStep(t *testing.T) {
	r := newStreamRig(t, StreamConfig{AllowAtomic: true})
	step := func(seq, commit string) streamEffects {
		lines := []string{"Nats-Batch-Id: b1", "Nats-Batch-Sequence: " + seq}
		if commit != "" {
			lines = append(lines, "Nats-Batch-Commit: "+commit)
		}
		r.st.atomic("b1", "s.a", "reply", hdr(lines...), []byte("x"), r.now, len(r.st.batches), 0)
		return r.st.ready()
	}
	for _, seq := range []string{"1", "2"} {
		if fx := step(seq, ""); len(fx.acks) != 1 || !fx.acks[0].empty || fx.last != 0 {
			t.Fatalf("staging %s: %+v", seq, fx)
		}
	}
	fx := step("3", "1")
	if len(fx.acks) != 1 || fx.first != 1 || fx.last != 3 {
		t.Fatalf("commit: %+v", fx)
	}
	if a := fx.acks[0].ack; a.Seq != 3 || a.Batch != "b1" || a.Count != 3 || a.Error != nil {
		t.Fatalf("commit ack %+v", a)
	}
	step("1", "")
	fx = step("3", "")
	if len(fx.acks) != 1 || fx.acks[0].ack.Error == nil || len(fx.abandoned) != 1 || fx.abandoned[0].reason != "incomplete" {
		t.Fatalf("gap: %+v", fx)
	}
	if r.msgs() != 3 || len(r.st.batches) != 0 {
		t.Fatalf("%d msgs, %d batches", r.msgs(), len(r.st.batches))
	}
}

// subHost is a clockHost that keeps the handlers subscribed, so a test can
// publish to a stream as a client would, and tells when a reply arrives on
// "api". Handlers are registered and replies published on the Manager
// goroutine, read on the test's: mu guards subs and out.
type subHost struct {
	clockHost
	mu   sync.Mutex
	subs map[string]func(subject, reply string, hdr, data []byte)
	api  chan struct{} // closed by the first reply on "api"
}

func (h *subHost) Publish(subject, reply string, hdr, data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clockHost.Publish(subject, reply, hdr, data)
	if subject == "api" && h.api != nil {
		close(h.api)
		h.api = nil
	}
}

func (h *subHost) Subscribe(subject string, fn func(subject, reply string, hdr, data []byte)) func() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subs[subject] = fn
	return func() {}
}

func (h *subHost) handler(subject string) func(subject, reply string, hdr, data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.subs[subject]
}

// TestStopServesWriterCompletions: publishes to a file stream queued just
// before Stop are all acknowledged: the completions the Writer posts while
// it closes are served after it has.
func TestStopServesWriterCompletions(t *testing.T) {
	created := make(chan struct{})
	h := &subHost{subs: map[string]func(subject, reply string, hdr, data []byte){}, api: created}
	m, err := Start(Config{StoreDir: t.TempDir()}, h)
	if err != nil {
		t.Fatal(err)
	}
	h.handler("$JS.API.>")("$JS.API.STREAM.CREATE.F", "api", nil, []byte(`{"name":"F","subjects":["f"],"storage":"file"}`))
	select {
	case <-created:
	case <-time.After(10 * time.Second):
		t.Fatal("no reply to the stream create")
	}
	if h.handler("f") == nil {
		t.Fatalf("stream not created: %+v", h.out)
	}
	const n = 200
	for i := range n {
		h.handler("f")("f", "ack."+strconv.Itoa(i), nil, []byte("x"))
	}
	m.Stop()
	acks := 0
	for _, s := range h.out {
		if strings.HasPrefix(s.to, "ack.") {
			var a PubAck
			if err := json.Unmarshal([]byte(s.data), &a); err != nil || a.Error != nil || s.to != "ack."+strconv.Itoa(int(a.Seq)-1) {
				t.Fatalf("ack %+v: %v %v", s, err, a.Error)
			}
			acks++
		}
	}
	if acks != n {
		t.Fatalf("%d acks for %d publishes", acks, n)
	}
}

// TestStreamFastBatchStep drives a fast batch through the stream's step
// on a fake clock: the first reply grants the flow, flow acks follow every
// flow messages, the commit's PubAck counts the batch; a gap in "fail"
// mode ends the batch with a gap report and a PubAck naming the last
// stored message; an idle batch is dropped by the time input and its next
// message is answered as an unknown batch.
func TestStreamFastBatchStep(t *testing.T) {
	r := newStreamRig(t, StreamConfig{AllowBatched: true})
	step := func(id string, seq uint64, op int) []fastSend {
		reply := "_INBOX.x." + id + ".2.fail." + strconv.FormatUint(seq, 10) + "." + strconv.Itoa(op) + ".$FI"
		r.st.fastPublish(reply, "s.a", nil, []byte("x"), r.now, func() int { return len(r.st.fast) })
		return append([]fastSend(nil), r.st.ready().fast...)
	}
	body := func(f fastSend) string {
		if f.ack != nil {
			return string(mustJSON(f.ack))
		}
		return string(f.data)
	}
	want := func(got []fastSend, bodies ...string) {
		t.Helper()
		if len(got) != len(bodies) {
			t.Fatalf("replies %d, want %d: %+v", len(got), len(bodies), got)
		}
		for i, b := range bodies {
			if body(got[i]) != b {
				t.Fatalf("reply %d: %s, want %s", i, body(got[i]), b)
			}
		}
	}
	want(step("b1", 1, fastOpStart), `{"type":"ack","seq":0,"msgs":2}`)
	want(step("b1", 2, fastOpAppend), `{"type":"ack","seq":2,"msgs":2}`)
	want(step("b1", 3, fastOpAppend))
	want(step("b1", 4, fastOpCommit), `{"stream":"S","seq":4,"batch":"b1","count":4}`)
	if len(r.st.fast) != 0 || r.msgs() != 4 {
		t.Fatalf("after the commit: %d batches, %d msgs", len(r.st.fast), r.msgs())
	}

	want(step("b2", 1, fastOpStart), `{"type":"ack","seq":0,"msgs":2}`)
	want(step("b2", 3, fastOpAppend), `{"type":"gap","last_seq":2,"seq":3}`, `{"stream":"S","seq":5,"batch":"b2","count":1}`)
	if len(r.st.fast) != 0 || r.msgs() != 5 {
		t.Fatalf("after the gap: %d batches, %d msgs", len(r.st.fast), r.msgs())
	}

	want(step("b3", 1, fastOpStart), `{"type":"ack","seq":0,"msgs":2}`)
	if fx := r.at(batchTimeout - time.Nanosecond); len(r.st.fast) != 1 || !fx.wake.Equal(t0.Add(batchTimeout)) {
		t.Fatalf("before the timeout: %d batches, wake %v", len(r.st.fast), fx.wake)
	}
	r.at(batchTimeout)
	if len(r.st.fast) != 0 {
		t.Fatal("an idle fast batch was kept past its timeout")
	}
	got := step("b3", 2, fastOpAppend)
	if len(got) != 1 || got[0].ack == nil || got[0].ack.Error == nil || got[0].ack.Error.ErrCode != 10208 {
		t.Fatalf("a message of a dropped batch: %+v", got)
	}
}

// TestArmDeadlineNeverLate: the bound armed after each step (armDeadline,
// which scans no schedules or batches) is never later than the exact next
// deadline: a schedule, an atomic and a fast batch each bring it forward
// as they are added, and the time input computes it exactly again.
func TestArmDeadlineNeverLate(t *testing.T) {
	r := newStreamRig(t, StreamConfig{AllowMsgSchedules: true, AllowAtomic: true, AllowBatched: true})
	var armed time.Time // as the Manager's streamsAt: the last tick's wake, brought forward by steps
	check := func(what string) {
		t.Helper()
		armed = earliest(armed, r.st.armDeadline(r.now))
		hint := r.st.waitHint
		exact := r.st.nextDeadline(r.now)
		r.st.waitHint = hint
		if exact.IsZero() != armed.IsZero() || armed.After(exact) {
			t.Fatalf("%s: armed %v, next deadline %v", what, armed.Sub(t0), exact.Sub(t0))
		}
	}
	check("empty")
	r.ok("s.sched", hdr("Nats-Schedule: @every 5s", "Nats-Schedule-Target: s.out"), "tick", 1)
	check("a schedule")
	armed = r.at(5 * time.Second).wake
	if !r.st.waitHint.IsZero() {
		t.Fatal("the time input left the hint")
	}
	check("after its firing")
	r.now = t0.Add(6 * time.Second)
	r.st.stageAtomic("b1", "s.a", hdr("Nats-Batch-Id: b1", "Nats-Batch-Sequence: 1"), []byte("x"), r.now, 0, 0)
	r.st.ready()
	check("an atomic batch")
	r.st.fastPublish("_INBOX.x.f1.10.ok.1.0.$FI", "s.a", nil, []byte("x"), r.now, func() int { return 0 })
	r.st.ready()
	check("a fast batch")
	if !armed.Equal(t0.Add(10 * time.Second)) {
		t.Fatalf("armed for %v, want the schedule's 10s (the batches time out at 16s)", armed.Sub(t0))
	}
}

// BenchmarkArmDeadline is the arming bound's cost with 10,000 schedules
// waiting: it does not grow with them.
func BenchmarkArmDeadline(b *testing.B) {
	r := newStreamRig(&testing.T{}, StreamConfig{AllowMsgSchedules: true})
	for i := range 10_000 {
		r.st.publish("s.sched."+strconv.Itoa(i), "", hdr("Nats-Schedule: @every 1h", "Nats-Schedule-Target: s.out"), nil, r.now)
		r.st.ready()
	}
	r.st.tick(r.now)
	b.ReportAllocs()
	for b.Loop() {
		r.st.armDeadline(r.now)
	}
}

// TestPerSubjectLimitFindsOldestAtOnce: with max_msgs_per_subject 1 (a KV
// bucket), an update drops the key's previous revision without walking
// the stream from its start: the store is asked for the subject at its
// oldest message, not at sequence 0, and what is kept is right.
func TestPerSubjectLimitFindsOldestAtOnce(t *testing.T) {
	r := newStreamRig(t, StreamConfig{MaxMsgsPerSubject: 1})
	cs := &countingStore{Store: r.st.store}
	r.st.store = cs
	r.ok("s.old", nil, "kept", 1)
	for i := range 1000 {
		r.ok("s.hot", nil, strconv.Itoa(i), uint64(i+2))
	}
	if cs.fromZero > 0 {
		t.Fatalf("%d of the per-subject drops looked for the oldest from sequence 0", cs.fromZero)
	}
	if r.msgs() != 2 {
		t.Fatalf("%d messages kept, want 2", r.msgs())
	}
	if m, err := r.st.store.LoadLast("s.hot"); err != nil || string(m.Data) != "999" || m.Seq != 1001 {
		t.Fatalf("s.hot: %+v %v", m, err)
	}
	if m, err := r.st.store.Load(1); err != nil || string(m.Data) != "kept" {
		t.Fatalf("s.old: %+v %v", m, err)
	}
}

// countingStore counts LoadNext calls for a literal subject from sequence 0.
type countingStore struct {
	store.Store
	fromZero int
}

func (c *countingStore) LoadNext(filter string, seq uint64) (*store.Msg, error) {
	if filter != "" && seq == 0 {
		c.fromZero++
	}
	return c.Store.LoadNext(filter, seq)
}

// BenchmarkKVUpdate is an update of one hot key in a memory bucket
// (max_msgs_per_subject 1) that also holds an old key: its cost does not
// grow with the updates before it.
func BenchmarkKVUpdate(b *testing.B) {
	r := newStreamRig(&testing.T{}, StreamConfig{MaxMsgsPerSubject: 1})
	r.st.publish("s.old", "", nil, []byte("x"), r.now)
	r.st.ready()
	data := []byte("value")
	b.ReportAllocs()
	for b.Loop() {
		r.st.publish("s.hot", "", nil, data, r.now)
		r.st.ready()
	}
}

// TestFastDoneErrorForgetsWhatWaitedForIt: when the store fails a fast
// batch's message, the error goes out, what was released before it went
// out, and the replies that waited for that message (they would say it is
// stored) are dropped with the ended batch's tail instead of kept for ever.
func TestFastDoneErrorForgetsWhatWaitedForIt(t *testing.T) {
	h := &clockHost{}
	m := &Manager{host: h}
	st := &stream{cfg: StreamConfig{Name: "F"}}
	tail := &durableTail{appended: 2, ended: st, id: "b1",
		queued: []queuedReply{{at: 1, f: fastSend{to: "r", data: []byte("ack1")}}, {at: 2, f: fastSend{to: "r", data: []byte("final")}}}}
	st.fastEnded = map[string]*durableTail{"b1": tail}
	m.fastDone("r", tail, 1, nil)
	m.fastDone("r", tail, 2, errors.New("disk full"))
	out := h.take()
	if len(out) != 2 || string(out[0].data) != "ack1" || !strings.Contains(string(out[1].data), `"type":"err","seq":2`) {
		t.Fatalf("sent %+v", out)
	}
	if len(tail.queued) != 0 || len(st.fastEnded) != 0 {
		t.Fatalf("kept %d replies, %d ended batches", len(tail.queued), len(st.fastEnded))
	}
}
