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
	s.SetJournal(func(m *Msg) {
		if err := p.JournalQueued(s.ID, m); err != nil {
			t.Error(err)
		}
	})
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
	r.SetJournal(func(m *Msg) { _ = p2.JournalQueued(r.ID, m) })
	if err := p2.SaveSession(r, true); err != nil {
		t.Fatal(err)
	}
	r.Enqueue("a/b", []byte("4"), 1)
	_, got = crashAndReopen(t, p2, dir)
	if q := queued(got["dev"]); fmt.Sprint(q) != "[1 2 3 4]" {
		t.Fatalf("after a snapshot and a second crash: %v", q)
	}
}
