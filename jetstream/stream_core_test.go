package jetstream

// The stream as a state machine (stream_core.go), driven on the test's
// goroutine: no Manager goroutine, no ticker, no socket.

import (
	"encoding/json"
	"errors"
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
		m.publish(&request{st: st, subject: "f", reply: "r" + string(rune('0'+i)), data: []byte("x")})
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
