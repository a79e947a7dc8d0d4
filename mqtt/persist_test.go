package mqtt

import (
	"fmt"
	"testing"

	"github.com/evnats/evnats/jetstream/store"
)

// crashAndReopen abandons p without closing it, as a kill -9 would once the
// writer has written what was queued, and opens the same directory again.
func crashAndReopen(t *testing.T, p *Persister, dir string) (*Persister, map[string]*Session) {
	t.Helper()
	p.writer.Barrier() // what was queued is in the files; nothing else happens
	q, err := OpenPersister(dir, nil, store.SyncPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	sessions, _, err := q.Load()
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]*Session{}
	for _, s := range sessions {
		byID[s.ID] = s
	}
	return q, byID
}

// journalTo makes s journal its queue in p, as the server does.
func journalTo(t *testing.T, p *Persister, s *Session) {
	s.SetJournal(func(m *Msg) uint64 {
		seq, err := p.JournalQueued(s.ID, m)
		if err != nil {
			t.Error(err)
		}
		return seq
	}, func(seq uint64) {
		if err := p.ForgetQueued(seq); err != nil {
			t.Error(err)
		}
	})
}

func queued(s *Session) []string {
	var out []string
	for _, m := range s.Resume() {
		out = append(out, string(m.Payload))
	}
	return out
}

// Messages queued for an absent client are journaled one by one, so they
// survive a crash before the next snapshot, and a snapshot supersedes the
// journal records it includes (no duplicates after the next crash).
func TestJournalSurvivesCrash(t *testing.T) {
	dir := t.TempDir()
	p, err := OpenPersister(dir, nil, store.SyncPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	s := NewSession("dev", false)
	journalTo(t, p, s)
	s.Subscribe("a/#", 1)
	if err := p.SaveSession(s, true); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		s.Enqueue("a/b", []byte(fmt.Sprint(i)), 1)
	}
	p2, got := crashAndReopen(t, p, dir)
	r := got["dev"]
	if r == nil || fmt.Sprint(queued(r)) != "[1 2 3]" || r.Subs()["a/#"] != 1 {
		t.Fatalf("after a crash: %v", r)
	}

	// A snapshot now includes them; one more message is journaled after it.
	// (Resume above moved them inflight; the snapshot keeps them there.)
	journalTo(t, p2, r)
	if err := p2.SaveSession(r, true); err != nil {
		t.Fatal(err)
	}
	r.Enqueue("a/b", []byte("4"), 1)
	p3, got := crashAndReopen(t, p2, dir)
	r = got["dev"]
	if q := queued(r); fmt.Sprint(q) != "[1 2 3 4]" {
		t.Fatalf("after a snapshot and a second crash: %v", q)
	}

	// An acknowledged message's record goes at once: gone after a crash
	// even before the next snapshot.
	journalTo(t, p3, r)
	r.Acked(r.inflight[0].ID)
	_, got = crashAndReopen(t, p3, dir)
	if q := queued(got["dev"]); fmt.Sprint(q) != "[2 3 4]" {
		t.Fatalf("after an ack and a third crash: %v", q)
	}
}

// A snapshot holds no queued message: its size does not depend on the
// queue, and housekeeping writes nothing for a session that only queues.
func TestSnapshotSizeIndependentOfQueue(t *testing.T) {
	p, err := OpenPersister("", nil, store.SyncPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	s := NewSession("dev", false)
	journalTo(t, p, s)
	s.Subscribe("a/#", 1)
	s.mu.Lock()
	empty := len(s.snapshot(true))
	s.mu.Unlock()
	for i := 0; i < 1000; i++ {
		s.Enqueue("a/b", make([]byte, 1024), 1)
		s.mu.Lock()
		again := s.snapshot(false)
		s.mu.Unlock()
		if again != nil {
			t.Fatalf("a queued message made the snapshot dirty (%d bytes)", len(again))
		}
	}
	s.mu.Lock()
	full := len(s.snapshot(true))
	s.mu.Unlock()
	if full != empty {
		t.Fatalf("snapshot: %d bytes empty, %d with 1000 x 1 KiB queued", empty, full)
	}
	if n, b := s.Held(); n != 1000 || b != 1000*(1024+3) {
		t.Fatalf("held %d messages, %d bytes", n, b)
	}
	if st := p.queued.State(); st.Msgs != 1000 {
		t.Fatalf("%d journal records, want 1000", st.Msgs)
	}
}

// A session restored with more than its limits allow keeps all of it (the
// limits may have been lowered, or were higher when the messages came);
// only new messages are refused until it drains below them.
func TestRestoreKeepsQueueAboveDefaultLimits(t *testing.T) {
	dir := t.TempDir()
	p, err := OpenPersister(dir, nil, store.SyncPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	s := NewSession("big", false)
	journalTo(t, p, s)
	s.SetLimits(DefaultMaxQueueMsgs+10, 0)
	if err := p.SaveSession(s, true); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < DefaultMaxQueueMsgs+10; i++ {
		if !s.Enqueue("t", nil, 1) {
			t.Fatalf("message %d refused below the limit", i)
		}
	}
	if s.Enqueue("t", nil, 1) {
		t.Fatal("message accepted above the limit")
	}
	_, got := crashAndReopen(t, p, dir)
	r := got["big"]
	if n, _ := r.Held(); n != DefaultMaxQueueMsgs+10 {
		t.Fatalf("restored %d messages, want %d", n, DefaultMaxQueueMsgs+10)
	}
	if r.Enqueue("t", nil, 1) {
		t.Fatal("a new message accepted while above the default limit")
	}
}

// A store written by the previous version (the queue inside the snapshot,
// journal records as JSON) loads whole, and moves to one record per
// message without duplicates.
func TestLoadsEarlierFormat(t *testing.T) {
	dir := t.TempDir()
	p, err := OpenPersister(dir, nil, store.SyncPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	p.sessions.Append("dev", nil, []byte(`{"id":"dev","subs":{"a/#":1},"queue":[{"topic":"a/b","qos":1,"payload":"c25hcA=="}]}`), 0, nil)
	p.queued.Append("dev", nil, []byte(`{"topic":"a/b","qos":1,"payload":"am91cm5hbA=="}`), 0, nil)
	p2, got := crashAndReopen(t, p, dir)
	r := got["dev"]
	journalTo(t, p2, r)
	if err := p2.SaveSession(r, false); err != nil {
		t.Fatal(err)
	}
	_, got = crashAndReopen(t, p2, dir)
	if q := queued(got["dev"]); fmt.Sprint(q) != "[snap journal]" {
		t.Fatalf("queued %v", q)
	}
}

// One session whose client never returns does not pin the queued store's
// oldest sequence: as others' messages go through, its records move
// forward, so the store's span (which its index and recovery follow) stays
// proportional to what is held; a restart restores both sessions exactly.
func TestQueuedStoreSpanFollowsWhatIsHeld(t *testing.T) {
	defer func(v uint64) { compactSlack = v }(compactSlack)
	compactSlack = 100
	dir := t.TempDir()
	p, err := OpenPersister(dir, nil, store.SyncPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	stuck, busy := NewSession("stuck", false), NewSession("busy", false)
	for _, s := range []*Session{stuck, busy} {
		journalTo(t, p, s)
		if err := p.SaveSession(s, true); err != nil {
			t.Fatal(err)
		}
	}
	stuck.Enqueue("s", []byte("old"), 1)
	stuck.Enqueue("s", []byte("older"), 2)
	for i := 0; i < 20_000; i++ {
		busy.Enqueue("b", []byte(fmt.Sprint(i)), 1)
		for _, m := range busy.Resume() {
			busy.Acked(m.ID)
		}
		if i%500 == 0 {
			p.CompactQueued(func() []*Session { return []*Session{stuck, busy} })
		}
	}
	busy.Enqueue("b", []byte("last"), 1)
	p.CompactQueued(func() []*Session { return []*Session{stuck, busy} })
	st := p.queued.State()
	if span := st.LastSeq - st.FirstSeq + 1; st.Msgs != 3 || span > 2*st.Msgs+compactSlack+500 {
		t.Fatalf("%d records over a span of %d sequences", st.Msgs, span)
	}
	_, got := crashAndReopen(t, p, dir)
	if q := queued(got["stuck"]); fmt.Sprint(q) != "[old older]" {
		t.Fatalf("stuck: %v", q)
	}
	if q := queued(got["busy"]); fmt.Sprint(q) != "[last]" {
		t.Fatalf("busy: %v", q)
	}
}

// A moved record whose original was not yet removed when the server
// crashed replaces it on restore: the message comes back once, in place.
func TestMovedRecordReplacesOnce(t *testing.T) {
	dir := t.TempDir()
	p, err := OpenPersister(dir, nil, store.SyncPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	s := NewSession("dev", false)
	journalTo(t, p, s)
	if err := p.SaveSession(s, true); err != nil {
		t.Fatal(err)
	}
	s.Enqueue("a", []byte("1"), 1)
	s.Enqueue("a", []byte("2"), 1)
	first := s.queue[0]
	// The move's append was written; its removal of the original was not.
	if _, err := p.queued.Append("dev", encodeQueued(first, first.Seq), first.Payload, 0, nil); err != nil {
		t.Fatal(err)
	}
	_, got := crashAndReopen(t, p, dir)
	if q := queued(got["dev"]); fmt.Sprint(q) != "[1 2]" {
		t.Fatalf("queued %v", q)
	}
}

// The housekeeping saves the sessions listed as they changed: one listed
// once however often it changes, each saved with its latest state, none
// once deleted, and an unchanged one not looked at.
func TestSaveDirtyListsChangedSessions(t *testing.T) {
	dir := t.TempDir()
	p, err := OpenPersister(dir, nil, store.SyncPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	var sessions []*Session
	for _, id := range []string{"quiet", "busy", "gone"} {
		s := NewSession(id, false)
		s.SetDirtyHook(p.ListDirty)
		journalTo(t, p, s)
		s.Subscribe(id+"/a", 1)
		sessions = append(sessions, s)
	}
	p.SaveDirty(func(s *Session, err error) { t.Fatal(s.ID, err) })
	if n := len(p.dirty); n != 0 {
		t.Fatalf("%d sessions still listed after a save", n)
	}
	busy, gone := sessions[1], sessions[2]
	busy.Subscribe("busy/b", 1)
	busy.Subscribe("busy/c", 0)
	gone.Subscribe("gone/b", 1)
	if n := len(p.dirty); n != 2 {
		t.Fatalf("%d sessions listed, want busy and gone once each", n)
	}
	if err := p.DeleteSession(gone); err != nil {
		t.Fatal(err)
	}
	p.SaveDirty(func(s *Session, err error) { t.Fatal(s.ID, err) })
	_, got := crashAndReopen(t, p, dir)
	if len(got) != 2 || got["gone"] != nil {
		t.Fatalf("restored %v, want quiet and busy", got)
	}
	if subs := got["busy"].Subs(); len(subs) != 3 || subs["busy/c"] != 0 {
		t.Fatalf("busy restored with %v", subs)
	}
	if subs := got["quiet"].Subs(); len(subs) != 1 {
		t.Fatalf("quiet restored with %v", subs)
	}
}

// BenchmarkSaveDirtyIdle is a housekeeping save with 100,000 persistent
// sessions of which one changed.
func BenchmarkSaveDirtyIdle(b *testing.B) {
	p, err := OpenPersister("", nil, store.SyncPolicy{})
	if err != nil {
		b.Fatal(err)
	}
	var one *Session
	for i := 0; i < 100_000; i++ {
		s := NewSession(fmt.Sprint("s", i), false)
		s.SetDirtyHook(p.ListDirty)
		s.Subscribe("a/b", 1)
		one = s
	}
	p.SaveDirty(func(s *Session, err error) { b.Fatal(err) })
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		one.Subscribe(fmt.Sprint("x/", i%2), 1)
		p.SaveDirty(func(s *Session, err error) { b.Fatal(err) })
	}
}
