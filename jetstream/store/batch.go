package store

// Concurrency: as the store it belongs to (its owner goroutine); the done
// callback runs where a single append's would (see DoneFunc).

import (
	"fmt"

	"github.com/klauspost/compress/s2"
)

// BatchMsg is one message of an atomic batch.
type BatchMsg struct {
	Subject string
	Hdr     []byte
	Data    []byte
}

// recBatch is a record whose data is the message records of one atomic
// batch, written whole: its single checksum covers them all, so recovery
// either replays every message of the batch or (a torn write) none.
const recBatch byte = 5

// batchInner is where a batch record's first inner record starts, from the
// start of the batch record: no subject, no header.
const batchInner = 4 + recFixed

// AppendBatch stores msgs under consecutive sequences as one unit: all or
// none are stored, also across a crash. It returns the first sequence;
// done (may be nil) is called once, with the last sequence.
func (s *FileStore) AppendBatch(msgs []BatchMsg, ts int64, done DoneFunc) (uint64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	if len(msgs) == 0 {
		return 0, fmt.Errorf("store: empty batch")
	}
	if s.lastSq > MaxSeq-uint64(len(msgs)) {
		return 0, ErrSeqExhausted
	}
	inner := make([]byte, 0, len(msgs)*recOverhead)
	ends := make([]int, len(msgs))
	for i, m := range msgs {
		if len(m.Subject) > maxSubject {
			return 0, fmt.Errorf("store: subject longer than %d bytes", maxSubject)
		}
		kind, stored := recMsg, m.Data
		if s.compress && len(m.Data) > 0 {
			kind, stored = recMsgS2, s2.Encode(nil, m.Data)
		}
		inner = appendRecord(inner, kind, s.lastSq+1+uint64(i), ts, m.Subject, m.Hdr, stored)
		ends[i] = len(inner)
	}
	first, last := s.lastSq+1, s.lastSq+uint64(len(msgs))
	rec := appendRecord(make([]byte, 0, recOverhead+len(inner)), recBatch, last, ts, "", nil, inner)
	b, err := s.queue(rec, func(err error) {
		if done != nil {
			done(last, err)
		}
	})
	if err != nil {
		return 0, err
	}
	base := b.size - int64(len(rec)) + batchInner
	start := 0
	for i, m := range msgs {
		seq := first + uint64(i)
		r := rec[batchInner+start : batchInner+ends[i]]
		s.place(seq, loc{blk: b, off: base + int64(start), n: int64(len(r)), ts: ts, subject: m.Subject,
			size: uint64(len(m.Subject) + len(m.Hdr) + len(m.Data) + 16), present: true})
		s.last[m.Subject] = seq
		s.cache[seq] = r
		s.pending = append(s.pending, pendingRec{seq: seq, blk: b, end: b.size})
		start = ends[i]
	}
	s.prune()
	return first, nil
}

// applyBatch replays the message records inside a recovered batch record
// found at off in b.
func (s *FileStore) applyBatch(r record, b *block, off int64) {
	inner := r.data
	at := 0
	for at < len(inner) {
		m, n := decodeRecord(inner[at:])
		if n == 0 || (m.kind != recMsg && m.kind != recMsgS2) {
			return // cannot happen under a valid outer checksum
		}
		s.apply(m, b, off+batchInner+int64(at), int64(n))
		at += n
	}
}

// AppendBatch stores msgs under consecutive sequences; the memory store
// has nothing to tear, so it is a loop of appends that cannot fail halfway.
func (s *MemStore) AppendBatch(msgs []BatchMsg, ts int64, done DoneFunc) (uint64, error) {
	if s.closed {
		return 0, ErrClosed
	}
	if len(msgs) == 0 {
		return 0, fmt.Errorf("store: empty batch")
	}
	if s.lastSq > MaxSeq-uint64(len(msgs)) {
		return 0, ErrSeqExhausted
	}
	first := s.lastSq + 1
	for _, m := range msgs {
		_, _ = s.Append(m.Subject, m.Hdr, m.Data, ts, nil)
	}
	if done != nil {
		done(s.lastSq, nil)
	}
	return first, nil
}
