package store

import "testing"

// A removed message stays removed after recovery even when the block
// holding its delete record empties and goes while the message's own block
// remains (kept by another message): the delete record moves forward.
func TestRemovedStayRemovedWhenTheirDeleteBlockGoes(t *testing.T) {
	dir := t.TempDir()
	open := func() (*FileStore, *Writer) {
		w := NewWriter(OSFS{}, SyncPolicy{})
		s, err := OpenFileStore(FileStoreConfig{Dir: dir, Writer: w, MaxBlock: 1024})
		if err != nil {
			t.Fatal(err)
		}
		return s, w
	}
	s, w := open()
	data := make([]byte, 100)
	if _, err := s.Append("stuck", nil, data, 0, nil); err != nil { // keeps block 1
		t.Fatal(err)
	}
	var live []uint64
	for round := 0; round < 2; round++ {
		for i := 0; i < 200; i++ {
			q, err := s.Append("flow", nil, data, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			live = append(live, q)
			if len(live) > 5 {
				if _, err := s.Remove(live[0]); err != nil {
					t.Fatal(err)
				}
				live = live[1:]
			}
		}
		want := s.State()
		w.Barrier()
		w.Close()
		s, w = open()
		if got := s.State(); got.Msgs != want.Msgs || got.FirstSeq != want.FirstSeq {
			t.Fatalf("round %d: recovered %d messages from %d, want %d from %d", round, got.Msgs, got.FirstSeq, want.Msgs, want.FirstSeq)
		}
	}
	w.Close()
}
