package store

import (
	"errors"
	"testing"
	"time"
)

// Compacting to a sequence far past the end moves the sequence on, up to
// MaxSeq+1 and no further; the store then takes appends up to MaxSeq and
// refuses the next one: nothing is ever stored under a wrapped sequence 0.
func TestPurgeToHugeSequence(t *testing.T) {
	conformance(t, func(t *testing.T, s Store) {
		mustAppend(t, s, "a", "1")
		mustAppend(t, s, "b", "2")
		if n, err := s.Compact(1<<64 - 1); err != nil || n != 2 {
			t.Fatalf("compact to 2^64-1: %d %v", n, err)
		}
		st := s.State()
		if st.Msgs != 0 || st.LastSeq != MaxSeq || st.FirstSeq != MaxSeq+1 {
			t.Fatalf("after compact: %+v", st)
		}
		if _, err := s.Append("c", nil, nil, 0, nil); !errors.Is(err, ErrSeqExhausted) {
			t.Fatalf("append past MaxSeq: %v", err)
		}
		if _, err := s.Load(0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("something stored at 0: %v", err)
		}
	})
}

func TestAppendAtMaxSeq(t *testing.T) {
	conformance(t, func(t *testing.T, s Store) {
		mustAppend(t, s, "a", "1")
		if _, err := s.Compact(MaxSeq - 1); err != nil {
			t.Fatal(err)
		}
		if seq := mustAppend(t, s, "x", "y"); seq != MaxSeq-1 {
			t.Fatalf("seq %d", seq)
		}
		if seq := mustAppend(t, s, "x", "z"); seq != MaxSeq {
			t.Fatalf("seq %d", seq)
		}
		if _, err := s.Append("x", nil, nil, 0, nil); !errors.Is(err, ErrSeqExhausted) {
			t.Fatalf("append past MaxSeq: %v", err)
		}
		st := s.State()
		if st.Msgs != 2 || st.FirstSeq != MaxSeq-1 || st.LastSeq != MaxSeq || st.Deleted != 0 {
			t.Fatalf("state %+v", st)
		}
		if m, err := s.LoadNext("", 0); err != nil || m.Seq != MaxSeq-1 {
			t.Fatalf("LoadNext(0): %v %v", m, err)
		}
		if m, err := s.LoadLast("x"); err != nil || m.Seq != MaxSeq {
			t.Fatalf("LoadLast: %v %v", m, err)
		}
		if n := s.NumPending(0, nil); n != 2 {
			t.Fatalf("NumPending %d", n)
		}
		if ok, _ := s.Remove(MaxSeq); !ok {
			t.Fatal("remove MaxSeq")
		}
		if m, err := s.LoadLast("x"); err != nil || m.Seq != MaxSeq-1 {
			t.Fatalf("LoadLast after remove: %v %v", m, err)
		}
		if n, err := s.Purge(); err != nil || n != 1 {
			t.Fatalf("purge: %d %v", n, err)
		}
		if st := s.State(); st.Msgs != 0 || st.FirstSeq != MaxSeq+1 {
			t.Fatalf("after purge %+v", st)
		}
	})
}

// A store purged to a far sequence recovers in time linear in its files,
// not in the sequence gap (it used to spin forever in advanceFirst).
func TestFarSequenceRecoversQuickly(t *testing.T) {
	dir := t.TempDir()
	w := NewWriter(OSFS{}, SyncPolicy{})
	s := openFS(t, OSFS{}, dir, w)
	for i := 0; i < 10; i++ {
		mustAppend(t, s, "a", "x")
	}
	s.Remove(3)
	if _, err := s.Compact(MaxSeq - 1); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "a", "far")
	flush(t, s) // the flush message lands on MaxSeq
	want := s.State()
	s.Close()
	w.Close()

	w2 := NewWriter(OSFS{}, SyncPolicy{})
	defer w2.Close()
	done := make(chan *FileStore, 1)
	go func() {
		r, err := OpenFileStore(FileStoreConfig{Dir: dir, Writer: w2, MaxBlock: 4096})
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	var r *FileStore
	select {
	case r = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("recovery of a store at a far sequence did not finish")
	}
	if r == nil {
		return
	}
	if got := r.State(); got.Msgs != want.Msgs || got.FirstSeq != want.FirstSeq || got.LastSeq != want.LastSeq {
		t.Fatalf("recovered %+v, want %+v", got, want)
	}
	if m, err := r.Load(MaxSeq - 1); err != nil || string(m.Data) != "far" {
		t.Fatalf("load far message: %v %v", m, err)
	}
	if _, err := r.Append("a", nil, nil, 0, nil); !errors.Is(err, ErrSeqExhausted) {
		t.Fatalf("append after recovery: %v", err)
	}
}
