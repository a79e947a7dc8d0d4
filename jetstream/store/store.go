// Package store keeps a JetStream stream's messages: a memory store and a
// file store behind one interface, checked by one conformance suite.
//
// A Store is owned by the goroutine that runs its stream's state machine: it
// is not safe for concurrent use. The file store hands its writes to a
// dedicated Writer goroutine and reports durability through a callback, so
// the owner never blocks on the disk.
package store

// Concurrency: see the package doc: a Store belongs to one goroutine (a
// stream's: the JetStream Manager; MQTT's: whoever holds Persister.mu).

import (
	"errors"
	"time"
)

// Sentinel errors.
var (
	ErrNotFound = errors.New("store: no message found")
	ErrClosed   = errors.New("store: closed")
	ErrCorrupt  = errors.New("store: corrupt record")
	// ErrSeqExhausted refuses an append past MaxSeq.
	ErrSeqExhausted = errors.New("store: sequence numbers exhausted")
)

// MaxSeq is the highest sequence a store assigns. It leaves room above it
// for one-past-the-end values (MaxSeq+1), so sequence arithmetic never wraps
// to 0; compacting clamps to MaxSeq+1.
const MaxSeq = 1<<64 - 2

// Msg is one stored message. Its slices must not be modified.
type Msg struct {
	Seq     uint64
	Subject string
	Hdr     []byte
	Data    []byte
	Time    int64 // unix nanoseconds
}

func (m *Msg) size() uint64 { return uint64(len(m.Subject) + len(m.Hdr) + len(m.Data) + 16) }

// State summarises a store.
type State struct {
	Msgs      uint64
	Bytes     uint64
	FirstSeq  uint64
	LastSeq   uint64
	FirstTime time.Time
	LastTime  time.Time
	Deleted   int // sequences between FirstSeq and LastSeq that were removed
}

// DoneFunc learns whether an appended message became durable under the sync
// policy. The memory store calls it before Append returns; the file store
// calls it from its Writer goroutine, so it must not touch the store: post the
// result to the owner instead.
type DoneFunc func(seq uint64, err error)

// Peeker is a Store that can lend a message instead of copying it.
type Peeker interface {
	// PeekNext is LoadNext into m, whose Hdr and Data may be views of the
	// store's buffers: valid until the store's next call, capped so that
	// an append to them copies. For a reader that uses the message at once
	// (a consumer's delivery, which the host copies).
	PeekNext(filter string, seq uint64, m *Msg) error
}

// Store is the storage of one stream.
type Store interface {
	// Append stores a message under the next sequence and returns it. done
	// (may be nil) reports durability. After a write failure the store
	// refuses further appends with that error.
	Append(subject string, hdr, data []byte, ts int64, done DoneFunc) (uint64, error)
	// AppendBatch stores msgs under consecutive sequences, all or none
	// (also across a crash), and returns the first; done reports the last.
	AppendBatch(msgs []BatchMsg, ts int64, done DoneFunc) (uint64, error)
	// Load returns the message with sequence seq.
	Load(seq uint64) (*Msg, error)
	// LoadLast returns the newest message on exactly this subject.
	LoadLast(subject string) (*Msg, error)
	// LoadNext returns the first message at or after seq matching filter
	// (a subject that may hold wildcards; empty matches all).
	LoadNext(filter string, seq uint64) (*Msg, error)
	// NumPending counts the messages at or after seq whose subject match
	// accepts (nil accepts all), from the index, without reading messages.
	NumPending(seq uint64, match func(subject string) bool) uint64
	// Remove deletes one message; it reports whether it existed.
	Remove(seq uint64) (bool, error)
	// Compact removes every message below seq and returns how many; a seq
	// past the end moves the sequence on (clamped to MaxSeq+1).
	Compact(seq uint64) (uint64, error)
	// Purge removes every message and returns how many; sequences go on
	// from where they were.
	Purge() (uint64, error)
	State() State
	Close() error
}
