package store

import (
	"testing"
	"time"
)

// TestAppendAt: a chosen sequence above the last leaves a gap that reads
// as deleted; an empty store starts at it; a sequence at or below the last
// is refused; the file store recovers the same state.
func TestAppendAt(t *testing.T) {
	conformance(t, func(t *testing.T, s Store) {
		sa := s.(SeqAppender)
		if _, err := sa.AppendAt(5, "a", nil, []byte("5"), time.Now().UnixNano(), nil); err != nil {
			t.Fatal(err)
		}
		if st := s.State(); st.FirstSeq != 5 || st.LastSeq != 5 || st.Msgs != 1 || st.Deleted != 0 {
			t.Fatalf("after AppendAt(5) on an empty store: %+v", st)
		}
		if _, err := sa.AppendAt(9, "b", nil, []byte("9"), time.Now().UnixNano(), nil); err != nil {
			t.Fatal(err)
		}
		if st := s.State(); st.FirstSeq != 5 || st.LastSeq != 9 || st.Msgs != 2 || st.Deleted != 3 {
			t.Fatalf("after AppendAt(9): %+v", st)
		}
		if m, err := s.LoadNext("", 6); err != nil || m.Seq != 9 || string(m.Data) != "9" {
			t.Fatalf("LoadNext(6): %+v %v", m, err)
		}
		for _, bad := range []uint64{9, 3, 0} {
			if _, err := sa.AppendAt(bad, "c", nil, nil, 0, nil); err == nil {
				t.Fatalf("AppendAt(%d) after 9 accepted", bad)
			}
		}
		if seq := mustAppend(t, s, "c", "10"); seq != 10 {
			t.Fatalf("Append after the gap: %d", seq)
		}
	})
}

func TestAppendAtRecovered(t *testing.T) {
	dir := t.TempDir()
	open := func() *FileStore {
		w := NewWriter(OSFS{}, SyncPolicy{})
		t.Cleanup(func() { w.Close() })
		fs, err := OpenFileStore(FileStoreConfig{Dir: dir, Writer: w, MaxBlock: 4096})
		if err != nil {
			t.Fatal(err)
		}
		return fs
	}
	fs := open()
	done := make(chan error, 3)
	for _, seq := range []uint64{3, 4, 100} {
		if _, err := fs.AppendAt(seq, "s", nil, []byte("x"), 1, func(_ uint64, err error) { done <- err }); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	fs.Close()
	fs = open()
	if st := fs.State(); st.FirstSeq != 3 || st.LastSeq != 100 || st.Msgs != 3 || st.Deleted != 95 {
		t.Fatalf("recovered %+v", st)
	}
	if seq := mustAppend(t, fs, "s", "y"); seq != 101 {
		t.Fatalf("next append %d", seq)
	}
}
