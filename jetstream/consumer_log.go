package jetstream

// Concurrency: runs on the JetStream Manager goroutine only, which owns
// streams, consumers and their stores; no locks.

import (
	"encoding/binary"
	"encoding/json"
	"path/filepath"
	"time"

	"github.com/evnats/evnats/jetstream/store"
)

// consumerLog persists a durable consumer's state as an event log in its own
// file store: every delivery and ack is a record, replayed on start, with a
// snapshot record now and then so the log stays short. Acks are written
// through the shared Writer like messages, so an ack confirmed to a client
// (double ack) survives kill -9. Owned by the Manager goroutine.
type consumerLog struct {
	dir    string
	files  store.FS // where meta.json is written
	fs     *store.FileStore
	events int // records since the last snapshot
	// start is the position the consumer was created at, kept in its
	// meta.json: that file is durable before the create is acknowledged,
	// the log's first snapshot only per the sync policy.
	start *consumerSnapshot

	// The events of the current Manager step, written as one evBatch
	// record when it ends (Manager.flushLogs), and the dones (double
	// acks' confirmations) that wait for that record. queued: l is in
	// *dirty, the Manager's list to flush.
	buf    []byte
	dones  []func()
	queued bool
	dirty  *[]*consumerLog
}

// Event kinds, stored as the record subject.
const (
	evSnapshot  = "S"
	evDelivered = "D"
	evAck       = "A" // also +TERM: the message is done either way
	evDropped   = "X" // given up on after max_deliver: leaves pending, acks nothing else
	// evBatch holds the events of one Manager step, each its kind's byte
	// and payload (D: 20 bytes, A and X: 8), in order.
	evBatch = "B"
)

const snapshotEvery = 4096

type consumerSnapshot struct {
	Next     uint64            `json:"next"`
	DSeq     uint64            `json:"dseq"`
	AckFloor SequenceInfo      `json:"ack_floor"`
	Pending  map[uint64][2]int `json:"pending"` // sseq -> {dseq, deliveries}
	Redeliv  int               `json:"redelivered"`
}

type consumerMeta struct {
	Config  ConsumerConfig    `json:"config"`
	Created time.Time         `json:"created"`
	Start   *consumerSnapshot `json:"start,omitempty"` // absent in stores written before it existed
}

// durable reports whether the consumer's state belongs on disk.
func (c *consumer) durable() bool {
	return c.cfg.Durable != "" && c.st.dir != "" && !c.cfg.MemoryStorage
}

// consumerDir is where a durable consumer's files live, inside its stream's.
func consumerDir(st *stream, name string) (string, error) { return storePath(st.dir, "obs", name) }

// writeMeta stores the consumer's config next to its log; when it returns
// nil the config is durable (store.WriteFileDurable) and a create or update
// may be acknowledged.
func (c *consumer) writeMeta() error {
	b, _ := json.MarshalIndent(consumerMeta{c.cfg, c.created, c.log.start}, "", "  ")
	return store.WriteFileDurable(c.log.files, c.log.dir, "meta.json", b)
}

// createLog gives a new durable consumer its files: a leftover directory of
// the same name (an unacknowledged create, an interrupted delete) is
// removed, the config and starting position are written durably, then the
// log is opened and starts with a snapshot.
func (m *Manager) createLog(c *consumer) error {
	dir, err := consumerDir(c.st, c.name)
	if err != nil {
		return err
	}
	if err := m.removeDurable(dir); err != nil {
		return err
	}
	if err := store.MkdirDurable(m.cfg.FS, filepath.Join(dir, "log"), c.st.dir); err != nil {
		return err
	}
	start := c.state()
	c.log = &consumerLog{dir: dir, files: m.cfg.FS, start: &start, dirty: &m.dirtyLogs}
	if err := c.writeMeta(); err != nil {
		c.log = nil
		return err
	}
	if err := m.openLog(c); err != nil {
		return err
	}
	c.snapshot()
	return nil
}

// openLog opens (or creates) the log in c.log.dir, whose meta.json is
// written.
func (m *Manager) openLog(c *consumer) error {
	fs, err := store.OpenFileStore(store.FileStoreConfig{FS: m.cfg.FS, Dir: filepath.Join(c.log.dir, "log"), Writer: m.writer, MaxBlock: 1 << 20})
	if err != nil {
		return err // c.log stays, so deleting c removes its directory
	}
	c.log.fs = fs
	return nil
}

// restore sets the consumer's position from a snapshot.
func (c *consumer) restore(s *consumerSnapshot) {
	c.next, c.dseq, c.ackFloor, c.redelivN = s.Next, s.DSeq, s.AckFloor, s.Redeliv
	c.pending = make(map[uint64]*pendingAck, len(s.Pending))
	for sseq, p := range s.Pending {
		c.pending[sseq] = &pendingAck{dseq: uint64(p[0]), deliveries: p[1]}
	}
}

// replay rebuilds the consumer's state from its starting position and log.
func (c *consumer) replay(now time.Time) {
	if c.log.start != nil {
		c.restore(c.log.start)
	}
	for seq := uint64(0); ; seq++ {
		m, err := c.log.fs.LoadNext("", seq)
		if err != nil {
			break
		}
		seq = m.Seq
		switch m.Subject {
		case evSnapshot:
			var s consumerSnapshot
			if json.Unmarshal(m.Data, &s) != nil {
				continue
			}
			c.restore(&s)
		case evDelivered, evAck, evDropped:
			c.replayEvent(m.Subject[0], m.Data) // written one per record before evBatch
		case evBatch:
			for b := m.Data; len(b) > 0; {
				n := eventSize(b[0])
				if n == 0 || len(b) < 1+n {
					break // not one this store wrote
				}
				c.replayEvent(b[0], b[1:1+n])
				b = b[1+n:]
			}
		}
	}
	for _, p := range c.pending {
		p.deadline = now.Add(c.ackWait(p.deliveries)) // unacked: redelivered after ack wait
		c.noteDue(p.deadline)
	}
	c.next = max(c.next, 1) // a damaged snapshot may say 0
	c.advanceAckFloor()
	c.snapshot()
}

// eventSize is the payload size of an event kind; 0 for an unknown one.
func eventSize(kind byte) int {
	switch kind {
	case evDelivered[0]:
		return 20
	case evAck[0], evDropped[0]:
		return 8
	}
	return 0
}

// replayEvent applies one logged event to the consumer's state.
func (c *consumer) replayEvent(kind byte, data []byte) {
	if len(data) < eventSize(kind) {
		return
	}
	switch kind {
	case evDelivered[0]:
		sseq := binary.LittleEndian.Uint64(data)
		dseq := binary.LittleEndian.Uint64(data[8:])
		n := int(binary.LittleEndian.Uint32(data[16:]))
		c.dseq = max(c.dseq, dseq)
		c.next = max(c.next, sseq+1)
		if c.cfg.AckPolicy != "none" {
			c.pending[sseq] = &pendingAck{dseq: dseq, deliveries: n}
		}
		if n == 2 {
			c.redelivN++
		}
	case evAck[0]:
		c.applyAck(binary.LittleEndian.Uint64(data))
	case evDropped[0]:
		delete(c.pending, binary.LittleEndian.Uint64(data))
	}
}

// logDelivered records a delivery.
func (c *consumer) logDelivered(sseq, dseq uint64, deliveries int) {
	if c.log == nil {
		return
	}
	b := c.log.event(evDelivered[0], 20)
	binary.LittleEndian.PutUint64(b, sseq)
	binary.LittleEndian.PutUint64(b[8:], dseq)
	binary.LittleEndian.PutUint32(b[16:], uint32(deliveries))
	c.counted()
}

// logAck records an ack (or term); done runs once it is durable.
func (c *consumer) logAck(sseq uint64, done func()) {
	if c.log == nil {
		if done != nil {
			done()
		}
		return
	}
	binary.LittleEndian.PutUint64(c.log.event(evAck[0], 8), sseq)
	if done != nil {
		c.log.dones = append(c.log.dones, done)
	}
	c.counted()
}

// logDropped records a delivery given up on after max_deliver.
func (c *consumer) logDropped(sseq uint64) {
	if c.log == nil {
		return
	}
	binary.LittleEndian.PutUint64(c.log.event(evDropped[0], 8), sseq)
	c.counted()
}

// event appends an event of kind with an n-byte payload to the buffer the
// Manager writes at the end of its step (flushLogs) and returns the
// payload to fill.
func (l *consumerLog) event(kind byte, n int) []byte {
	if !l.queued {
		l.queued = true
		*l.dirty = append(*l.dirty, l)
	}
	at := len(l.buf) + 1
	l.buf = append(append(l.buf, kind), make([]byte, n)...)
	return l.buf[at:]
}

// counted counts an event toward the next snapshot.
func (c *consumer) counted() {
	if c.log.events++; c.log.events >= snapshotEvery {
		c.snapshot()
	}
}

// flush writes the buffered events as one batch record; their dones run
// once it is durable (or at once when it cannot be written).
func (l *consumerLog) flush() {
	l.queued = false
	if len(l.buf) == 0 || l.fs == nil {
		l.finish()
		return
	}
	_, err := l.fs.Append(evBatch, nil, l.buf, 0, l.doneFunc())
	l.buf = l.buf[:0]
	if err != nil {
		l.finish()
	}
}

// doneFunc takes the waiting dones into the callback of the record that
// makes them durable; nil when none wait.
func (l *consumerLog) doneFunc() store.DoneFunc {
	if len(l.dones) == 0 {
		return nil
	}
	dones := append([]func(){}, l.dones...)
	clear(l.dones)
	l.dones = l.dones[:0]
	return func(uint64, error) {
		for _, d := range dones {
			d()
		}
	}
}

// finish runs the waiting dones now (nothing to wait for).
func (l *consumerLog) finish() {
	if cb := l.doneFunc(); cb != nil {
		cb(0, nil)
	}
}

// flushLogs writes each consumer log's events of this step as one record:
// at the end of every step that owned the state (timers.go: armTouched),
// so a batch of acks or a pump's deliveries is one Writer op, not one per
// message.
func (m *Manager) flushLogs() {
	for i, l := range m.dirtyLogs {
		l.flush()
		m.dirtyLogs[i] = nil
	}
	m.dirtyLogs = m.dirtyLogs[:0]
}

// state is the consumer's position as a snapshot records it.
func (c *consumer) state() consumerSnapshot {
	s := consumerSnapshot{Next: c.next, DSeq: c.dseq, AckFloor: c.ackFloor, Redeliv: c.redelivN,
		Pending: make(map[uint64][2]int, len(c.pending))}
	for sseq, p := range c.pending {
		s.Pending[sseq] = [2]int{int(p.dseq), p.deliveries}
	}
	return s
}

// snapshot writes the whole state and drops the events before it; the
// buffered ones are in it, and their dones wait for it.
func (c *consumer) snapshot() {
	if c.log == nil {
		return
	}
	c.log.buf = c.log.buf[:0]
	seq, err := c.log.fs.Append(evSnapshot, nil, mustJSON(c.state()), 0, c.log.doneFunc())
	if err == nil {
		_, _ = c.log.fs.Compact(seq)
	} else {
		c.log.finish()
	}
	c.log.events = 0
}

// closeLog closes the log; remove also deletes the consumer's files, in
// one durable step (Manager.removeDurable), unless its stream is being
// deleted, whose directory takes them along.
func (m *Manager) closeLog(c *consumer, remove bool) error {
	if c.log == nil {
		return nil
	}
	c.log.buf = c.log.buf[:0] // the consumer goes: its events with it
	c.log.finish()
	if c.log.fs != nil {
		c.log.fs.Close()
	}
	dir := c.log.dir
	c.log = nil
	if !remove || m.streams[c.st.cfg.Name] != c.st {
		return nil
	}
	m.writer.Forget(dir)
	return m.removeDurable(dir)
}

// recoverConsumers recreates a stream's durable consumers from disk. A
// directory without meta.json (a create that was never acknowledged) is
// skipped; a leftover meta.json.tmp is removed.
func (m *Manager) recoverConsumers(st *stream, now time.Time) error {
	obs := filepath.Join(st.dir, "obs")
	names, err := m.cfg.FS.ReadDir(obs)
	if err != nil {
		return nil // none
	}
	st.recovering = true
	defer func() { st.recovering = false }()
	for _, name := range names {
		if !validName(name) {
			continue // not a directory this store made
		}
		dir := filepath.Join(obs, name)
		_ = m.cfg.FS.Remove(filepath.Join(dir, "meta.json"+store.TempSuffix))
		b, err := m.cfg.FS.ReadFile(filepath.Join(dir, "meta.json"))
		if err != nil {
			continue
		}
		var meta consumerMeta
		if err := json.Unmarshal(b, &meta); err != nil {
			return err
		}
		if meta.Config.Durable != name {
			m.logf("jetstream: stream %s: skipping consumer directory %s: its meta.json names %q", st.cfg.Name, name, meta.Config.Durable)
			continue
		}
		if meta.Config.Name == "" {
			meta.Config.Name = name // written before creates set it, as nats-server does
		}
		c := m.newConsumer(st, name, meta.Config, meta.Created, now)
		c.log = &consumerLog{dir: dir, files: m.cfg.FS, start: meta.Start, dirty: &m.dirtyLogs}
		if err := m.openLog(c); err != nil {
			return err
		}
		c.replay(now)
	}
	return nil
}
