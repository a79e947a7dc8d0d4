package store

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// TestPeekNextLendsWhatLoadCopies: PeekNext gives the message LoadNext
// gives, from the write cache and from the block file, filtered, and an
// append to the lent header or data copies instead of overwriting the
// records behind it in the store's buffers.
func TestPeekNextLendsWhatLoadCopies(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprint("compress=", compress), func(t *testing.T) {
			w := NewWriter(OSFS{}, SyncPolicy{})
			defer w.Close()
			s, err := OpenFileStore(FileStoreConfig{Dir: t.TempDir(), Writer: w, MaxBlock: 4096, Compress: compress})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			type msg struct {
				subject   string
				hdr, data []byte
			}
			sent := map[uint64]msg{}
			for i := range 50 {
				var hdr []byte
				if i%3 == 0 {
					hdr = fmt.Appendf(nil, "NATS/1.0\r\nI: %d\r\n\r\n", i)
				}
				subj, data := fmt.Sprintf("s.%d", i%2), fmt.Appendf(nil, "data %d", i)
				seq, err := s.Append(subj, hdr, data, int64(i), nil)
				if err != nil {
					t.Fatal(err)
				}
				sent[seq] = msg{subj, hdr, data}
			}
			check := func(when string) {
				var m Msg
				for _, filter := range []string{"", "s.1"} {
					for seq := uint64(1); ; seq = m.Seq + 1 {
						want, werr := s.LoadNext(filter, seq)
						gerr := s.PeekNext(filter, seq, &m)
						if werr != nil || gerr != nil {
							if !errors.Is(werr, ErrNotFound) || !errors.Is(gerr, ErrNotFound) {
								t.Fatalf("%s: seq %d: LoadNext %v, PeekNext %v", when, seq, werr, gerr)
							}
							break
						}
						if m.Seq != want.Seq || m.Subject != want.Subject || !bytes.Equal(m.Hdr, want.Hdr) || !bytes.Equal(m.Data, want.Data) || m.Time != want.Time {
							t.Fatalf("%s: peeked %+v, loaded %+v", when, m, *want)
						}
						if e, ok := sent[m.Seq]; ok && m.Subject != e.subject || !bytes.Equal(m.Hdr, e.hdr) || !bytes.Equal(m.Data, e.data) {
							t.Fatalf("%s: peeked %+v, stored %+v", when, m, e)
						}
						_ = append(m.Hdr, "XXXX"...)
						_ = append(m.Data, "YYYY"...)
					}
				}
			}
			check("cached")
			flush(t, s)
			s.prune()
			check("from the file")
			check("again") // nothing the appends above wrote shows
			if len(sent) != 50 {
				t.Fatal(len(sent))
			}
		})
	}
}
