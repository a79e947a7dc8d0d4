package mqtt

// Concurrency: any goroutine (connection readers, publishers journaling
// through a Session, housekeeping, Shutdown). mu guards the stores, which it
// owns, and the maps. Lock order: Session.mu, then mu, then the store's
// Writer.mu (submit). AfterWrites callbacks run on the Writer goroutine with
// no lock held; writes is an atomic. Close waits for the Writer holding no
// lock.

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
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
	appended uint64        // queued records appended since CompactQueued last looked

	// dirtyMu guards dirty: the persistent sessions that changed since
	// the housekeeping last saved them (Session.markDirty lists each
	// once), so that it saves those without looking at every session.
	// A leaf lock, taken under Session.mu.
	dirtyMu sync.Mutex
	dirty   []*Session
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
	restored := make(map[uint64]*Msg) // by record, for records that replace one
	err = each(p.queued, func(m *store.Msg) error {
		s := byID[m.Subject]
		var msg Msg
		replaces, err := decodeQueued(m, &msg)
		if s == nil || err != nil {
			_, _ = p.queued.Remove(m.Seq) // its session is gone
			return nil
		}
		if old := restored[replaces]; replaces != 0 && old != nil {
			// Moved forward (see CompactQueued); the crash came before the
			// old record's removal was written.
			_, _ = p.queued.Remove(replaces)
			delete(restored, replaces)
			old.Seq, restored[m.Seq] = m.Seq, old
			return nil
		}
		in := inflight[m.Seq]
		if in == nil && msg.Released {
			_, _ = p.queued.Remove(m.Seq) // its PUBREL state went with an older snapshot
			return nil
		}
		restored[m.Seq] = s.restoreQueued(in, &msg, m.Seq)
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

// ListDirty lists s for the next SaveDirty; it is Session.onDirty for the
// persistent sessions stored here, called with s.mu held.
func (p *Persister) ListDirty(s *Session) {
	p.dirtyMu.Lock()
	p.dirty = append(p.dirty, s)
	p.dirtyMu.Unlock()
}

// SaveDirty stores a snapshot of each listed session that changed since its
// last one, unless it was deleted since; fail reports a failed save. Its
// cost follows the sessions that changed, not all there are.
func (p *Persister) SaveDirty(fail func(*Session, error)) {
	p.dirtyMu.Lock()
	list := p.dirty
	p.dirty = nil
	p.dirtyMu.Unlock()
	for _, s := range list {
		if err := p.saveListed(s); err != nil {
			fail(s, err)
		}
	}
}

// saveListed is SaveSession for a session SaveDirty took off the list:
// unlisted under its lock before the snapshot, so a change after it lists
// the session again.
func (p *Persister) saveListed(s *Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listed = false
	if s.onDirty == nil {
		return nil // deleted
	}
	snap := s.snapshot(false)
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

// A queued message's record is the session id as subject, a header and
// the payload as data: no encoding, no copy beyond the record's. The header
// is a flags byte (the QoS in its low bits, flagReleased, flagReplaces),
// with flagReplaces the 8-byte sequence of the record it replaces, with
// flagV5 what an MQTT 5 message adds (4-byte length and header block,
// 8-byte expiry, 2-byte length and shared subscription group), then the
// topic. (Records with no header are the JSON of an earlier version.)
const (
	flagV5       = 0x20
	flagReleased = 0x40
	flagReplaces = 0x80
)

func encodeQueued(m *Msg, replaces uint64) []byte {
	flags := m.QoS
	if m.Released {
		flags |= flagReleased
	}
	hdr := make([]byte, 1, 9+len(m.Topic))
	if replaces != 0 {
		flags |= flagReplaces
		hdr = binary.BigEndian.AppendUint64(hdr, replaces)
	}
	if m.Hdr != nil || m.Expires != 0 || m.Group != "" {
		flags |= flagV5
		hdr = binary.BigEndian.AppendUint32(hdr, uint32(len(m.Hdr)))
		hdr = append(hdr, m.Hdr...)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(m.Expires))
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(len(m.Group)))
		hdr = append(hdr, m.Group...)
	}
	hdr[0] = flags
	return append(hdr, m.Topic...)
}

func decodeQueued(r *store.Msg, m *Msg) (replaces uint64, err error) {
	h := r.Hdr
	if len(h) == 0 {
		return 0, json.Unmarshal(r.Data, m)
	}
	flags := h[0]
	h = h[1:]
	if flags&flagReplaces != 0 {
		if len(h) < 8 {
			return 0, errors.New("mqtt: short queued message header")
		}
		replaces, h = binary.BigEndian.Uint64(h), h[8:]
	}
	if flags&flagV5 != 0 {
		short := errors.New("mqtt: short queued MQTT 5 message header")
		if len(h) < 4 {
			return 0, short
		}
		n := int(binary.BigEndian.Uint32(h))
		if len(h) < 4+n+10 {
			return 0, short
		}
		m.Hdr, h = h[4:4+n:4+n], h[4+n:]
		m.Expires, h = int64(binary.BigEndian.Uint64(h)), h[8:]
		g := int(binary.BigEndian.Uint16(h))
		if len(h) < 2+g {
			return 0, short
		}
		m.Group, h = string(h[2:2+g]), h[2+g:]
		if len(m.Hdr) == 0 {
			m.Hdr = nil
		}
	}
	if flags&3 > 2 {
		return 0, errors.New("mqtt: queued message with an invalid QoS")
	}
	m.QoS, m.Released, m.Topic, m.Payload = flags&3, flags&flagReleased != 0, string(h), r.Data
	return replaces, nil
}

// JournalQueued records one message session id queues and returns its
// record's sequence.
func (p *Persister) JournalQueued(id string, m *Msg) (uint64, error) {
	hdr := encodeQueued(m, 0)
	p.mu.Lock()
	defer p.mu.Unlock()
	seq, err := p.queued.Append(id, hdr, m.Payload, 0, nil)
	if err != nil {
		return 0, err
	}
	p.appended++
	p.wrote()
	return seq, nil
}

// compactSlack is how far the queued store's sequence span may exceed
// twice what it holds before CompactQueued moves records; a variable for
// tests.
var compactSlack uint64 = 1 << 16

// CompactQueued keeps the queued store's sequence span, which its index and
// its recovery follow, proportional to what it holds, not to how much went
// through it: one session whose client never returns would otherwise pin
// the oldest sequence forever. When the span is more than twice the records
// (plus compactSlack), each session holding a record in the older half has
// all its records appended again, in order, each naming the one it
// replaces, which is then removed. The housekeeping calls it once a second;
// sessions lists the persistent sessions, called only when records move.
func (p *Persister) CompactQueued(sessions func() []*Session) {
	if p.writer == nil {
		return
	}
	p.mu.Lock()
	if p.appended < compactSlack/4 {
		p.mu.Unlock()
		return // the span cannot have grown by much since the last look
	}
	p.appended = 0
	st := p.queued.State()
	p.mu.Unlock()
	span := st.LastSeq - st.FirstSeq + 1
	if st.Msgs == 0 || span <= 2*st.Msgs+compactSlack {
		return
	}
	below := st.FirstSeq + span/2
	for _, s := range sessions() {
		p.moveQueued(s, below)
	}
}

// moveQueued appends s's records again when one is below seq below.
func (p *Persister) moveQueued(s *Session, below uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := func(m *Msg) bool { return m.Seq != 0 && m.Seq < below }
	if s.journal == nil || !slices.ContainsFunc(s.inflight, old) && !slices.ContainsFunc(s.queue, old) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, list := range [][]*Msg{s.inflight, s.queue} {
		for _, m := range list {
			if m.Seq == 0 {
				continue
			}
			seq, err := p.queued.Append(s.ID, encodeQueued(m, m.Seq), m.Payload, 0, nil)
			if err != nil {
				return
			}
			_, _ = p.queued.Remove(m.Seq)
			m.Seq = seq
		}
	}
	s.markDirty() // the snapshot names inflight messages by record
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
	s.journal, s.forget, s.onDirty = nil, nil, nil
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

// SaveRetained stores a retained message. In memory it does nothing: the
// RetainedSet holds the message and a restart loses both anyway, so a
// second copy would only double what retained messages cost.
func (p *Persister) SaveRetained(r *Retained) error {
	if p.writer == nil {
		return nil
	}
	b, _ := json.Marshal(r)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.wrote()
	return replace(p.retained, p.retSeq, r.Subject, b)
}

// DeleteRetained forgets the retained message of subject.
func (p *Persister) DeleteRetained(subject string) error {
	if p.writer == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.wrote()
	return remove(p.retained, p.retSeq, subject)
}

// Close waits for queued writes and closes the stores. It waits for the
// writer holding no lock: the writer's AfterWrites callbacks take a
// connection's lock, whose holder may be waiting for mu (a session
// journaling a message), so Close is safe whenever it runs, not only once
// every connection is gone. A record queued after the barrier is still
// written by the writer's Close; one queued after the stores are closed
// fails as any write to a closed store.
func (p *Persister) Close() error {
	if p.writer != nil {
		p.writer.Barrier()
	}
	p.mu.Lock()
	err := errors.Join(p.sessions.Close(), p.retained.Close(), p.queued.Close())
	p.mu.Unlock()
	if p.writer != nil {
		err = errors.Join(err, p.writer.Close())
	}
	return err
}
