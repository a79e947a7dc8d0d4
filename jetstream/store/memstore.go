package store

// Concurrency: a MemStore belongs to its owner goroutine (no lock); done
// runs synchronously on that goroutine.

import (
	"time"

	"github.com/evnats/evnats/router"
)

// MemStore keeps messages in memory. Owned by its stream's goroutine.
type MemStore struct {
	msgs   map[uint64]*Msg
	last   map[string]uint64 // newest sequence per subject
	first  uint64            // first sequence still possibly present
	lastSq uint64
	bytes  uint64
	closed bool
}

// NewMemStore returns an empty memory store.
func NewMemStore() *MemStore {
	return &MemStore{msgs: make(map[uint64]*Msg), last: make(map[string]uint64), first: 1}
}

func (s *MemStore) Append(subject string, hdr, data []byte, ts int64, done DoneFunc) (uint64, error) {
	if s.closed {
		return 0, ErrClosed
	}
	if s.lastSq >= MaxSeq {
		return 0, ErrSeqExhausted
	}
	s.lastSq++
	m := &Msg{Seq: s.lastSq, Subject: subject, Hdr: clone(hdr), Data: clone(data), Time: ts}
	s.msgs[m.Seq] = m
	s.last[subject] = m.Seq
	s.bytes += m.size()
	if done != nil {
		done(m.Seq, nil)
	}
	return m.Seq, nil
}

func (s *MemStore) Load(seq uint64) (*Msg, error) {
	if m := s.msgs[seq]; m != nil {
		return m, nil
	}
	return nil, ErrNotFound
}

func (s *MemStore) LoadLast(subject string) (*Msg, error) {
	seq, ok := s.last[subject]
	if !ok {
		return nil, ErrNotFound
	}
	return s.Load(seq)
}

func (s *MemStore) LoadNext(filter string, seq uint64) (*Msg, error) {
	for seq = max(seq, s.first); seq <= s.lastSq; seq++ {
		if m := s.msgs[seq]; m != nil && (filter == "" || router.SubjectMatches(filter, m.Subject)) {
			return m, nil
		}
	}
	return nil, ErrNotFound
}

func (s *MemStore) NumPending(seq uint64, match func(string) bool) uint64 {
	var n uint64
	for seq = max(seq, s.first); seq <= s.lastSq; seq++ {
		if m := s.msgs[seq]; m != nil && (match == nil || match(m.Subject)) {
			n++
		}
	}
	return n
}

func (s *MemStore) Remove(seq uint64) (bool, error) {
	m := s.msgs[seq]
	if m == nil {
		return false, nil
	}
	s.drop(m)
	return true, nil
}

func (s *MemStore) drop(m *Msg) {
	delete(s.msgs, m.Seq)
	s.bytes -= m.size()
	if s.last[m.Subject] == m.Seq {
		delete(s.last, m.Subject)
		for q := m.Seq - 1; q >= s.first && q > 0; q-- { // rare: newest of a subject removed
			if o := s.msgs[q]; o != nil && o.Subject == m.Subject {
				s.last[m.Subject] = q
				break
			}
		}
	}
	s.advanceFirst()
}

// advanceFirst moves first past removed sequences.
func (s *MemStore) advanceFirst() {
	for s.first <= s.lastSq && s.msgs[s.first] == nil {
		s.first++
	}
}

func (s *MemStore) Compact(seq uint64) (uint64, error) {
	seq = min(seq, MaxSeq+1)
	var n uint64
	for q := s.first; q < seq && q <= s.lastSq; q++ {
		if m := s.msgs[q]; m != nil {
			s.drop(m)
			n++
		}
	}
	if seq > s.lastSq+1 {
		s.lastSq = seq - 1 // compacting past the end moves the sequence on
	}
	if seq > s.first {
		s.first = seq
	}
	s.advanceFirst()
	return n, nil
}

func (s *MemStore) Purge() (uint64, error) { return s.Compact(s.lastSq + 1) }

func (s *MemStore) State() State {
	st := State{Msgs: uint64(len(s.msgs)), Bytes: s.bytes, LastSeq: s.lastSq, FirstSeq: s.first}
	if st.Msgs == 0 {
		st.FirstSeq = s.lastSq + 1
	} else {
		st.FirstTime = time.Unix(0, s.msgs[s.first].Time)
		for q := s.lastSq; q >= s.first; q-- {
			if m := s.msgs[q]; m != nil {
				st.LastTime = time.Unix(0, m.Time)
				break
			}
		}
		st.Deleted = int(s.lastSq-st.FirstSeq+1) - len(s.msgs)
	}
	return st
}

func (s *MemStore) Close() error { s.closed = true; return nil }

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}
