package store

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// factories builds every Store implementation for the shared suite.
func factories(t *testing.T) map[string]func() Store {
	return map[string]func() Store{
		"memory": func() Store { return NewMemStore() },
		"file": func() Store {
			w := NewWriter(OSFS{}, SyncPolicy{})
			t.Cleanup(func() { w.Close() })
			fs, err := OpenFileStore(FileStoreConfig{Dir: t.TempDir(), Writer: w, MaxBlock: 4096})
			if err != nil {
				t.Fatal(err)
			}
			return fs
		},
		"file-s2": func() Store {
			w := NewWriter(OSFS{}, SyncPolicy{})
			t.Cleanup(func() { w.Close() })
			fs, err := OpenFileStore(FileStoreConfig{Dir: t.TempDir(), Writer: w, MaxBlock: 4096, Compress: true})
			if err != nil {
				t.Fatal(err)
			}
			return fs
		},
	}
}

// conformance runs f against every implementation.
func conformance(t *testing.T, f func(t *testing.T, s Store)) {
	for name, mk := range factories(t) {
		t.Run(name, func(t *testing.T) { f(t, mk()) })
	}
}

func mustAppend(t *testing.T, s Store, subject, data string) uint64 {
	t.Helper()
	seq, err := s.Append(subject, nil, []byte(data), time.Now().UnixNano(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

func TestAppendLoad(t *testing.T) {
	conformance(t, func(t *testing.T, s Store) {
		for i := 1; i <= 100; i++ {
			if seq := mustAppend(t, s, fmt.Sprintf("s.%d", i%7), fmt.Sprint(i)); seq != uint64(i) {
				t.Fatalf("seq %d want %d", seq, i)
			}
		}
		hdrSeq, _ := s.Append("h", []byte("NATS/1.0\r\nA: b\r\n\r\n"), []byte("x"), 42, nil)
		m, err := s.Load(hdrSeq)
		if err != nil || string(m.Hdr) != "NATS/1.0\r\nA: b\r\n\r\n" || string(m.Data) != "x" || m.Time != 42 || m.Subject != "h" {
			t.Fatalf("load %+v %v", m, err)
		}
		m, err = s.Load(50)
		if err != nil || string(m.Data) != "50" || m.Subject != "s.1" {
			t.Fatalf("load 50: %+v %v", m, err)
		}
		if _, err := s.Load(999); !errors.Is(err, ErrNotFound) {
			t.Fatalf("load missing: %v", err)
		}
		last, err := s.LoadLast("s.3")
		if err != nil || string(last.Data) != "94" {
			t.Fatalf("last: %+v %v", last, err)
		}
		next, err := s.LoadNext("s.*", 96)
		if err != nil || next.Seq != 96 {
			t.Fatalf("next: %+v %v", next, err)
		}
		if _, err := s.LoadNext("nomatch", 1); !errors.Is(err, ErrNotFound) {
			t.Fatalf("next nomatch: %v", err)
		}
		if n := s.NumPending(95, nil); n != 7 {
			t.Fatalf("num pending from 95: %d", n)
		}
		if n := s.NumPending(1, func(subj string) bool { return subj == "s.3" }); n != 14 {
			t.Fatalf("num pending s.3: %d", n)
		}
		st := s.State()
		if st.Msgs != 101 || st.FirstSeq != 1 || st.LastSeq != 101 || st.Bytes == 0 {
			t.Fatalf("state %+v", st)
		}
	})
}

func TestRemoveCompactPurge(t *testing.T) {
	conformance(t, func(t *testing.T, s Store) {
		for i := 1; i <= 20; i++ {
			mustAppend(t, s, "a", fmt.Sprint(i))
		}
		if ok, _ := s.Remove(1); !ok {
			t.Fatal("remove 1")
		}
		if ok, _ := s.Remove(1); ok {
			t.Fatal("removed twice")
		}
		s.Remove(5)
		s.Remove(20) // the newest of subject "a": LoadLast must fall back
		if m, err := s.LoadLast("a"); err != nil || m.Seq != 19 {
			t.Fatalf("last after remove: %+v %v", m, err)
		}
		st := s.State()
		if st.Msgs != 17 || st.FirstSeq != 2 || st.LastSeq != 20 || st.Deleted != 2 {
			t.Fatalf("state %+v", st)
		}
		if n, _ := s.Compact(10); n != 7 {
			t.Fatalf("compact removed %d, want 7", n)
		}
		if st := s.State(); st.FirstSeq != 10 || st.Msgs != 10 {
			t.Fatalf("after compact %+v", st)
		}
		if n, _ := s.Purge(); n != 10 {
			t.Fatalf("purge removed %d", n)
		}
		st = s.State()
		if st.Msgs != 0 || st.FirstSeq != 21 || st.LastSeq != 20 || st.Bytes != 0 {
			t.Fatalf("after purge %+v", st)
		}
		if seq := mustAppend(t, s, "a", "next"); seq != 21 {
			t.Fatalf("sequence restarted at %d", seq)
		}
		if n, _ := s.Compact(100); n != 1 {
			t.Fatal("compact past end")
		}
		if seq := mustAppend(t, s, "a", "far"); seq != 100 {
			t.Fatalf("after compact past end got seq %d, want 100", seq)
		}
	})
}

func TestDoneCallback(t *testing.T) {
	conformance(t, func(t *testing.T, s Store) {
		done := make(chan uint64, 10)
		for i := 0; i < 10; i++ {
			s.Append("d", nil, []byte("x"), 1, func(seq uint64, err error) {
				if err != nil {
					t.Error(err)
				}
				done <- seq
			})
		}
		for i := 1; i <= 10; i++ {
			select {
			case seq := <-done:
				if seq != uint64(i) {
					t.Fatalf("done out of order: %d want %d", seq, i)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no done callback")
			}
		}
	})
}
