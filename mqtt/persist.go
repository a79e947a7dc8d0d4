package mqtt

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"sync"

	"github.com/evnats/evnats/jetstream/store"
)

// Persister keeps sessions and retained messages in two stores: file stores
// under a directory (written by their own store.Writer goroutine, so callers
// never wait for the disk), or memory stores when there is no directory.
// Each session or retained topic is one record under its own subject; a
// newer record replaces (removes) the older one.
//
// Locking rule: mu guards the stores and the sequence maps; callers on any
// goroutine hold it only while queueing a record.
type Persister struct {
	mu       sync.Mutex
	writer   *store.Writer // nil for memory stores
	sessions store.Store
	retained store.Store
	sessSeq  map[string]uint64
	retSeq   map[string]uint64
}

// OpenPersister opens the stores in dir, or memory stores when dir is "".
func OpenPersister(dir string, fs store.FS, sync store.SyncPolicy) (*Persister, error) {
	p := &Persister{sessSeq: make(map[string]uint64), retSeq: make(map[string]uint64)}
	if dir == "" {
		p.sessions, p.retained = store.NewMemStore(), store.NewMemStore()
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
	return p, nil
}

// Load returns every stored session and retained message.
func (p *Persister) Load() ([]*Session, []*Retained, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var sessions []*Session
	err := each(p.sessions, func(m *store.Msg) error {
		s, err := RestoreSession(m.Data)
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

// SaveSession stores a session snapshot (see Session.Snapshot).
func (p *Persister) SaveSession(id string, snap []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return replace(p.sessions, p.sessSeq, id, snap)
}

// DeleteSession forgets a session.
func (p *Persister) DeleteSession(id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return remove(p.sessions, p.sessSeq, id)
}

// SaveRetained stores a retained message.
func (p *Persister) SaveRetained(r *Retained) error {
	b, _ := json.Marshal(r)
	p.mu.Lock()
	defer p.mu.Unlock()
	return replace(p.retained, p.retSeq, r.Subject, b)
}

// DeleteRetained forgets the retained message of subject.
func (p *Persister) DeleteRetained(subject string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return remove(p.retained, p.retSeq, subject)
}

// Close waits for queued writes and closes the stores.
func (p *Persister) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.writer != nil {
		p.writer.Barrier()
	}
	err := errors.Join(p.sessions.Close(), p.retained.Close())
	if p.writer != nil {
		err = errors.Join(err, p.writer.Close())
	}
	return err
}
