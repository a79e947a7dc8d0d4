package mqtt

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/evnats/evnats/jetstream/store"
)

// Persister keeps sessions and retained messages in stores: file stores
// under a directory (written by their own store.Writer goroutine, so callers
// never wait for the disk), or memory stores when there is no directory.
// Each session or retained topic is one record under its own subject; a
// newer record replaces (removes) the older one. Each message a session
// queues is one record of its own in a third store, under the session's
// id, removed when the client acknowledges it (or the session drops it):
// a snapshot never holds the queue, so what is written is proportional to
// what is queued, once, and a restart reads only what is still held.
//
// Locking rule: mu guards the stores and the maps; callers on any goroutine
// hold it only while queueing a record.
type Persister struct {
	mu       sync.Mutex
	writer   *store.Writer // nil for memory stores
	sessions store.Store
	retained store.Store
	queued   store.Store
	sessSeq  map[string]uint64
	retSeq   map[string]uint64
	writes   atomic.Uint64 // file records queued that a client's ack may wait for
}

// OpenPersister opens the stores in dir, or memory stores when dir is "".
func OpenPersister(dir string, fs store.FS, sync store.SyncPolicy) (*Persister, error) {
	p := &Persister{sessSeq: make(map[string]uint64), retSeq: make(map[string]uint64)}
	if dir == "" {
		p.sessions, p.retained, p.queued = store.NewMemStore(), store.NewMemStore(), store.NewMemStore()
		return p, nil
	}
	if fs == nil {
		fs = store.OSFS{}
	}
	p.writer = store.NewWriter(fs, sync)
	var err error
	if p.sessions, err = store.OpenFileStore(store.FileStoreConfig{FS: fs, Dir: filepath.Join(dir, "sessions"), Writer: p.writer}); err != nil {
		p.writer.Close()
		return nil, err
	}
	if p.retained, err = store.OpenFileStore(store.FileStoreConfig{FS: fs, Dir: filepath.Join(dir, "retained"), Writer: p.writer}); err != nil {
		p.sessions.Close()
		p.writer.Close()
		return nil, err
	}
	if p.queued, err = store.OpenFileStore(store.FileStoreConfig{FS: fs, Dir: filepath.Join(dir, "queued"), Writer: p.writer}); err != nil {
		p.sessions.Close()
		p.retained.Close()
		p.writer.Close()
		return nil, err
	}
	return p, nil
}

// Load returns every stored session and retained message.
func (p *Persister) Load() ([]*Session, []*Retained, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var sessions []*Session
	err := each(p.sessions, func(m *store.Msg) error {
		s, err := restoreSession(m.Data)
		if err != nil {
			return err
		}
		p.sessSeq[s.ID] = m.Seq
		sessions = append(sessions, s)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	byID := make(map[string]*Session, len(sessions))
	inflight := make(map[uint64]*Msg) // journaled inflight messages, by record
	for _, s := range sessions {
		byID[s.ID] = s
		for _, m := range s.inflight {
			if m.Seq != 0 {
				inflight[m.Seq] = m
			}
		}
	}
	err = each(p.queued, func(m *store.Msg) error {
		s := byID[m.Subject]
		var msg Msg
		if s == nil || decodeQueued(m, &msg) != nil {
			_, _ = p.queued.Remove(m.Seq) // its session is gone
			return nil
		}
		s.restoreQueued(inflight[m.Seq], &msg, m.Seq)
		delete(inflight, m.Seq)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if len(inflight) > 0 {
		for _, s := range sessions {
			s.dropUnrestored(inflight)
		}
	}
	var retained []*Retained
	err = each(p.retained, func(m *store.Msg) error {
		var r Retained
		if err := json.Unmarshal(m.Data, &r); err != nil {
			return err
		}
		p.retSeq[r.Subject] = m.Seq
		retained = append(retained, &r)
		return nil
	})
	return sessions, retained, err
}

func each(st store.Store, fn func(*store.Msg) error) error {
	for seq := uint64(0); ; {
		m, err := st.LoadNext("", seq)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(m); err != nil {
			return err
		}
		seq = m.Seq + 1
	}
}

// replace appends data under key and removes key's previous record.
func replace(st store.Store, seqs map[string]uint64, key string, data []byte) error {
	seq, err := st.Append(key, nil, data, 0, nil)
	if err != nil {
		return err
	}
	if old, ok := seqs[key]; ok {
		_, _ = st.Remove(old)
	}
	seqs[key] = seq
	return nil
}

func remove(st store.Store, seqs map[string]uint64, key string) error {
	old, ok := seqs[key]
	if !ok {
		return nil
	}
	delete(seqs, key)
	_, err := st.Remove(old)
	return err
}

// SaveSession stores a snapshot of s when it changed since the last one
// (or when force is set). It holds the session's lock throughout, as
// journaling does, so snapshots are stored in the order they were taken.
func (p *Persister) SaveSession(s *Session, force bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := s.snapshot(force)
	if snap == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return replace(p.sessions, p.sessSeq, s.ID, snap)
}

// Durable reports whether the persister writes files; in memory, sessions
// journal nothing (a restart loses them anyway).
func (p *Persister) Durable() bool { return p.writer != nil }

// A queued message's record is the session id as subject, the QoS and the
// topic as header, and the payload as data: no encoding, no copy beyond the
// record's. (Records with no header are the JSON of an earlier version.)
func decodeQueued(r *store.Msg, m *Msg) error {
	if len(r.Hdr) == 0 {
		return json.Unmarshal(r.Data, m)
	}
	if r.Hdr[0] > 2 {
		return errors.New("mqtt: queued message with an invalid QoS")
	}
	m.QoS, m.Topic, m.Payload = r.Hdr[0], string(r.Hdr[1:]), r.Data
	return nil
}

// JournalQueued records one message session id queues and returns its
// record's sequence.
func (p *Persister) JournalQueued(id string, m *Msg) (uint64, error) {
	hdr := append(make([]byte, 0, 1+len(m.Topic)), m.QoS)
	hdr = append(hdr, m.Topic...)
	p.mu.Lock()
	defer p.mu.Unlock()
	seq, err := p.queued.Append(id, hdr, m.Payload, 0, nil)
	if err != nil {
		return 0, err
	}
	p.wrote()
	return seq, nil
}

// ForgetQueued removes a queued message's record: acknowledged or dropped.
func (p *Persister) ForgetQueued(seq uint64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, err := p.queued.Remove(seq)
	return err
}

// wrote counts a record a publisher's acknowledgement should wait for.
func (p *Persister) wrote() {
	if p.writer != nil {
		p.writes.Add(1)
	}
}

// Writes counts the records queued to files that acknowledgements wait for
// (journaled messages, retained messages); a publish that changed it has
// its PUBACK sent only after AfterWrites. It never changes in memory.
func (p *Persister) Writes() uint64 { return p.writes.Load() }

// AfterWrites calls fn (on the writer goroutine) once every record queued
// so far has been written and synced per policy.
func (p *Persister) AfterWrites(fn func()) {
	if p.writer == nil {
		fn()
		return
	}
	p.writer.Notify(fn)
}

// DeleteSession forgets a session and its queued messages' records; the
// session journals nothing more (a late message for it stays in memory).
func (p *Persister) DeleteSession(s *Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.journal, s.forget = nil, nil
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, list := range [][]*Msg{s.inflight, s.queue} {
		for _, m := range list {
			if m.Seq != 0 {
				_, _ = p.queued.Remove(m.Seq)
				m.Seq = 0
			}
		}
	}
	return remove(p.sessions, p.sessSeq, s.ID)
}

// SaveRetained stores a retained message.
func (p *Persister) SaveRetained(r *Retained) error {
	b, _ := json.Marshal(r)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.wrote()
	return replace(p.retained, p.retSeq, r.Subject, b)
}

// DeleteRetained forgets the retained message of subject.
func (p *Persister) DeleteRetained(subject string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.wrote()
	return remove(p.retained, p.retSeq, subject)
}

// Close waits for queued writes and closes the stores.
func (p *Persister) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.writer != nil {
		p.writer.Barrier()
	}
	err := errors.Join(p.sessions.Close(), p.retained.Close(), p.queued.Close())
	if p.writer != nil {
		err = errors.Join(err, p.writer.Close())
	}
	return err
}
