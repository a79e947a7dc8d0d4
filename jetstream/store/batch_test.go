package store_test

import (
	"fmt"
	"testing"

	"github.com/evnats/evnats/jetstream/store"
	"github.com/evnats/evnats/jetstream/store/storetest"
)

func batchOf(n int, tag string) []store.BatchMsg {
	msgs := make([]store.BatchMsg, n)
	for i := range msgs {
		msgs[i] = store.BatchMsg{Subject: fmt.Sprint("b.", i), Hdr: []byte("NATS/1.0\r\nK: v\r\n\r\n"), Data: []byte(fmt.Sprint(tag, i))}
	}
	return msgs
}

// appendWait appends a batch and waits for its done callback.
func appendWait(t *testing.T, s store.Store, msgs []store.BatchMsg) (uint64, uint64, error) {
	t.Helper()
	done := make(chan error, 1)
	var last uint64
	first, err := s.AppendBatch(msgs, 7, func(seq uint64, err error) { last = seq; done <- err })
	if err != nil {
		return 0, 0, err
	}
	return first, last, <-done
}

// TestBatchIsAllOrNoneAcrossCrash tears the write of a batch at every
// crash point the writer has (kill -9 and power loss): after the restart
// the store holds the messages before the batch and none of it, or (the
// batch acknowledged) all of it; never a prefix.
func TestBatchIsAllOrNoneAcrossCrash(t *testing.T) {
	for _, compress := range []bool{false, true} {
		for _, powerLoss := range []bool{false, true} {
			for n := 1; ; n++ {
				fs := storetest.NewCrashFS("/r")
				if err := store.MkdirDurable(fs, "/r/s", "/r"); err != nil {
					t.Fatal(err)
				}
				w := store.NewWriter(fs, store.SyncPolicy{Always: true})
				s, err := store.OpenFileStore(store.FileStoreConfig{FS: fs, Dir: "/r/s", Writer: w, Compress: compress})
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i < 2; i++ {
					if _, _, err := appendWait(t, s, batchOf(1, "single")); err != nil {
						t.Fatal(err)
					}
				}
				fs.Arm(n, nil)
				_, last, err := appendWait(t, s, batchOf(5, "batch"))
				crashed := fs.Crashed()
				s.Close()
				w.Close()
				fs.Restart(powerLoss)
				w2 := store.NewWriter(fs, store.SyncPolicy{Always: true})
				r, oerr := store.OpenFileStore(store.FileStoreConfig{FS: fs, Dir: "/r/s", Writer: w2, Compress: compress})
				if oerr != nil {
					t.Fatal(oerr)
				}
				st := r.State()
				switch {
				case !crashed && (err != nil || last != 7 || st.Msgs != 7):
					t.Fatalf("no crash: err %v, last %d, state %+v", err, last, st)
				case crashed && err == nil && st.Msgs != 7:
					t.Fatalf("crash at %d after the ack, power loss %v: state %+v", n, powerLoss, st)
				case st.Msgs != 2 && st.Msgs != 7:
					t.Fatalf("crash at %d (%v), power loss %v: a torn batch is half visible: %+v", n, fs.Ops(), powerLoss, st)
				}
				if st.Msgs == 7 {
					for seq := uint64(3); seq <= 7; seq++ {
						m, err := r.Load(seq)
						if err != nil || string(m.Data) != fmt.Sprint("batch", seq-3) || m.Subject != fmt.Sprint("b.", seq-3) || m.Time != 7 {
							t.Fatalf("seq %d: %+v %v", seq, m, err)
						}
					}
				}
				// The store goes on after the truncation, at the next sequence.
				if seq, err := r.Append("after", nil, []byte("x"), 0, nil); err != nil || seq != st.LastSeq+1 {
					t.Fatalf("append after recovery: %d %v", seq, err)
				}
				r.Close()
				w2.Close()
				if !crashed {
					break
				}
			}
		}
	}
}

// TestBatchMatchesSingles: a batch reads back, from the cache and after a
// reopen, exactly as the same messages appended one by one, in the memory
// store too.
func TestBatchMatchesSingles(t *testing.T) {
	dir := t.TempDir()
	w := store.NewWriter(store.OSFS{}, store.SyncPolicy{})
	defer w.Close()
	fsst, err := store.OpenFileStore(store.FileStoreConfig{Dir: dir, Writer: w, MaxBlock: 512})
	if err != nil {
		t.Fatal(err)
	}
	mem := store.NewMemStore()
	for _, s := range []store.Store{fsst, mem} {
		s.Append("x", nil, []byte("first"), 1, nil)
		first, last, err := appendWait(t, s, batchOf(40, "m"))
		if err != nil || first != 2 || last != 41 {
			t.Fatalf("%T: %d..%d %v", s, first, last, err)
		}
		if st := s.State(); st.Msgs != 41 || st.LastSeq != 41 {
			t.Fatalf("%T: %+v", s, st)
		}
		if m, err := s.LoadLast("b.39"); err != nil || m.Seq != 41 {
			t.Fatalf("%T: last %+v %v", s, m, err)
		}
	}
	fsst.Close()
	re, err := store.OpenFileStore(store.FileStoreConfig{Dir: dir, Writer: w, MaxBlock: 512})
	if err != nil {
		t.Fatal(err)
	}
	defer re.Close()
	for seq := uint64(1); seq <= 41; seq++ {
		a, err1 := re.Load(seq)
		b, err2 := mem.Load(seq)
		if err1 != nil || err2 != nil || a.Subject != b.Subject || string(a.Data) != string(b.Data) || string(a.Hdr) != string(b.Hdr) {
			t.Fatalf("seq %d: %+v %v / %+v %v", seq, a, err1, b, err2)
		}
	}
}
