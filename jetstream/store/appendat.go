package store

// Concurrency: as the store it extends: its owner goroutine only.

import "fmt"

// SeqAppender is a Store that can append under a chosen sequence: a mirror
// keeps its origin's sequence numbers, so a gap in the origin (deleted
// messages, a filtered mirror) becomes a gap in the mirror rather than a
// renumbering. Both stores implement it.
type SeqAppender interface {
	// AppendAt stores a message under seq, which must be above the last
	// sequence; the sequences skipped read as deleted. done as in Append.
	AppendAt(seq uint64, subject string, hdr, data []byte, ts int64, done DoneFunc) (uint64, error)
}

// AppendAt implements SeqAppender. An empty store moves its first
// sequence on (as Compact does); otherwise the gap is only the absence of
// the skipped sequences, which the index tolerates.
func (s *MemStore) AppendAt(seq uint64, subject string, hdr, data []byte, ts int64, done DoneFunc) (uint64, error) {
	if err := skipTo(s, &s.lastSq, seq); err != nil {
		return 0, err
	}
	return s.Append(subject, hdr, data, ts, done)
}

// AppendAt implements SeqAppender. The record carries its sequence, so a
// recovered store places it after the same gap.
func (s *FileStore) AppendAt(seq uint64, subject string, hdr, data []byte, ts int64, done DoneFunc) (uint64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	if err := skipTo(s, &s.lastSq, seq); err != nil {
		return 0, err
	}
	return s.Append(subject, hdr, data, ts, done)
}

// skipTo makes seq the next sequence st's Append assigns.
func skipTo(st Store, last *uint64, seq uint64) error {
	switch {
	case seq <= *last || seq == 0:
		return fmt.Errorf("store: sequence %d is not above the last (%d)", seq, *last)
	case seq > MaxSeq:
		return ErrSeqExhausted
	case seq == *last+1:
		return nil
	case st.State().Msgs == 0:
		_, err := st.Compact(seq) // an empty store starts at seq, durably
		return err
	}
	*last = seq - 1
	return nil
}
