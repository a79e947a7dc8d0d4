package store

// Concurrency: a FileStore belongs to its owner goroutine (no lock). The
// Writer goroutine runs the done callbacks of its writes: they set failed and
// block.written (atomics) and call the owner's DoneFunc there.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/evnats/evnats/router"
	"github.com/klauspost/compress/s2"
)

// DefaultMaxBlock is the size at which the file store starts a new block.
const DefaultMaxBlock = 8 << 20

var errShortWrite = errors.New("store: short write")

// FileStore keeps a stream in append-only block files in one directory (see
// record.go for the format). Writes go through a shared Writer goroutine;
// the index lives in memory and is rebuilt from the blocks on open. Owned by
// its stream's goroutine, except the fields marked atomic, which the writer
// sets.
type FileStore struct {
	fs       FS
	dir      string
	w        *Writer
	maxBlock int64
	compress bool
	noSync   bool // FileStoreConfig.NoSyncAlways

	blocks []*block // oldest first; the last one takes appends
	locs   locIndex // where each sequence's record is
	first  uint64   // no message below this sequence
	lastSq uint64
	last   map[string]uint64 // newest sequence per subject
	msgs   uint64
	bytes  uint64

	ra struct { // read-ahead: the bytes of blk from off
		blk *block
		off int64
		buf []byte
	}
	pending []pendingRec      // appended but not yet written, oldest first
	cache   map[uint64][]byte // their encoded records, readable meanwhile
	readers map[*block]File

	failed atomic.Pointer[error] // first write error (set by the writer)
	closed bool
}

// block is one block file. size is what the owner has queued to it;
// written (atomic, set by the writer) is what has reached the file.
type block struct {
	id      uint64
	name    string
	size    int64
	written atomic.Int64
	live    int // messages in it not yet removed
	// first and last are its lowest and highest message sequences (0:
	// none yet).
	first, last uint64
	// deletes are the sequences its delete records name: when the block
	// goes, those whose message may still be in an older block are written
	// again (see dropEmptyBlocks), or the message would return on restart.
	deletes []uint64
}

// loc is where a sequence's record is. present is false for removed ones.
type loc struct {
	blk     *block
	off     int64
	n       int64
	ts      int64
	subject string
	size    uint64
	present bool
}

type pendingRec struct {
	seq uint64
	blk *block
	end int64
}

// FileStoreConfig configures OpenFileStore.
type FileStoreConfig struct {
	FS       FS // default OSFS
	Dir      string
	Writer   *Writer
	MaxBlock int64 // default DefaultMaxBlock
	// Compress stores message data s2-compressed (klauspost/compress); the
	// sizes the store reports stay those of the uncompressed messages.
	Compress bool
	// NoSyncAlways: this store's writes are not fsynced one by one under
	// the Always policy but by the interval's rounds, as nats-server's
	// persist_mode async turns sync_always off for its stream.
	NoSyncAlways bool
}

// OpenFileStore opens (or creates) the store in cfg.Dir and recovers its
// index, truncating a torn record at the end of a block.
func OpenFileStore(cfg FileStoreConfig) (*FileStore, error) {
	if cfg.FS == nil {
		cfg.FS = OSFS{}
	}
	if cfg.MaxBlock <= 0 {
		cfg.MaxBlock = DefaultMaxBlock
	}
	s := &FileStore{fs: cfg.FS, dir: cfg.Dir, w: cfg.Writer, maxBlock: cfg.MaxBlock, compress: cfg.Compress, noSync: cfg.NoSyncAlways, first: 1,
		last: make(map[string]uint64), cache: make(map[uint64][]byte), readers: make(map[*block]File)}
	if err := s.fs.MkdirAll(cfg.Dir); err != nil {
		return nil, err
	}
	if err := s.recover(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *FileStore) recover() error {
	names, err := s.fs.ReadDir(s.dir)
	if err != nil {
		return err
	}
	for _, name := range names {
		var id uint64
		if !strings.HasSuffix(name, ".blk") {
			continue
		}
		if _, err := fmt.Sscanf(name, "%d.blk", &id); err != nil {
			continue
		}
		b := &block{id: id, name: filepath.Join(s.dir, name)}
		data, err := s.fs.ReadFile(b.name)
		if err != nil {
			return err
		}
		off := 0
		for off < len(data) {
			r, n := decodeRecord(data[off:])
			if n == 0 {
				if err := s.truncate(b.name, int64(off)); err != nil {
					return err
				}
				break
			}
			s.apply(r, b, int64(off), int64(n))
			off += n
		}
		b.size = int64(off)
		b.written.Store(int64(off))
		s.blocks = append(s.blocks, b)
	}
	s.advanceFirst()
	return nil
}

// truncate cuts a block at its first invalid record: a torn tail from a
// crash mid-write. Everything before it was written whole.
func (s *FileStore) truncate(name string, size int64) error {
	f, err := s.fs.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return err
	}
	return f.Sync()
}

// apply replays one recovered record into the index.
func (s *FileStore) apply(r record, b *block, off, n int64) {
	switch r.kind {
	case recMsg, recMsgS2:
		if r.seq < s.first || r.seq == 0 || r.seq > MaxSeq {
			return
		}
		dataLen := len(r.data)
		if r.kind == recMsgS2 {
			dataLen, _ = s2.DecodedLen(r.data)
		}
		subject := string(r.subject)
		s.place(r.seq, loc{blk: b, off: off, n: n, ts: r.ts, subject: subject,
			size: uint64(len(r.subject) + len(r.hdr) + dataLen + 16), present: true})
		if r.seq > s.last[subject] {
			s.last[subject] = r.seq
		}
	case recDelete:
		b.deletes = append(b.deletes, r.seq)
		s.removeIndex(r.seq)
	case recCompact:
		s.compactIndex(min(r.seq, MaxSeq+1))
	case recBatch:
		s.applyBatch(r, b, off)
	}
}

// place records loc for seq, which is above every sequence placed so far;
// a gap (removed before a crash, a failed write) costs nothing.
func (s *FileStore) place(seq uint64, l loc) {
	if !s.locs.put(seq, l) {
		return // duplicate; keep the first
	}
	s.lastSq = max(s.lastSq, seq)
	s.msgs++
	s.bytes += l.size
	l.blk.live++
	if l.blk.first == 0 {
		l.blk.first = seq
	}
	l.blk.last = seq
}

func (s *FileStore) loc(seq uint64) *loc {
	if seq < s.first {
		return nil
	}
	return s.locs.at(seq)
}

// Append implements Store.
func (s *FileStore) Append(subject string, hdr, data []byte, ts int64, done DoneFunc) (uint64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	if len(subject) > maxSubject {
		return 0, fmt.Errorf("store: subject longer than %d bytes", maxSubject)
	}
	if s.lastSq >= MaxSeq {
		return 0, ErrSeqExhausted
	}
	seq := s.lastSq + 1
	size := uint64(len(subject) + len(hdr) + len(data) + 16)
	kind, stored := recMsg, data
	if s.compress && len(data) > 0 {
		kind, stored = recMsgS2, s2.Encode(nil, data)
	}
	rec := appendRecord(make([]byte, 0, recOverhead+len(subject)+len(hdr)+len(stored)), kind, seq, ts, subject, hdr, stored)
	b, err := s.queue(rec, func(err error) {
		if done != nil {
			done(seq, err)
		}
	})
	if err != nil {
		return 0, err
	}
	s.place(seq, loc{blk: b, off: b.size - int64(len(rec)), n: int64(len(rec)), ts: ts, subject: subject,
		size: size, present: true})
	s.last[subject] = seq
	s.cache[seq] = rec
	s.pending = append(s.pending, pendingRec{seq: seq, blk: b, end: b.size})
	s.prune()
	return seq, nil
}

// queue hands one encoded record to the writer, on the current block or a
// new one, and returns the block.
func (s *FileStore) queue(rec []byte, done func(error)) (*block, error) {
	b := s.current(int64(len(rec)))
	end := b.size + int64(len(rec))
	err := s.w.submit(writeOp{file: b.name, data: rec, noSync: s.noSync, done: func(err error) {
		if err != nil {
			s.failed.CompareAndSwap(nil, &err)
		} else {
			b.written.Store(end)
		}
		done(err)
	}})
	if err != nil {
		return nil, err
	}
	b.size = end
	return b, nil
}

// current returns the block for a record of n bytes, starting a new one when
// the current one is full. A new block opens with a compact record holding
// the first sequence, so the sequence survives even if older blocks go.
func (s *FileStore) current(n int64) *block {
	if len(s.blocks) > 0 {
		if b := s.blocks[len(s.blocks)-1]; b.size == 0 || b.size+n <= s.maxBlock {
			return b
		}
	}
	var id uint64 = 1
	if len(s.blocks) > 0 {
		id = s.blocks[len(s.blocks)-1].id + 1
	}
	b := &block{id: id, name: filepath.Join(s.dir, fmt.Sprintf("%08d.blk", id))}
	s.blocks = append(s.blocks, b)
	first := appendRecord(nil, recCompact, max(s.first, 1), time.Now().UnixNano(), "", nil, nil)
	end := int64(len(first))
	if s.w.submit(writeOp{file: b.name, data: first, noSync: s.noSync, done: func(err error) {
		if err == nil {
			b.written.Store(end)
		}
	}}) == nil {
		b.size = end
	}
	return b
}

// prune drops cached records the writer has written.
func (s *FileStore) prune() {
	i := 0
	for ; i < len(s.pending); i++ {
		p := s.pending[i]
		if p.end > p.blk.written.Load() {
			break
		}
		delete(s.cache, p.seq)
	}
	if i > 0 {
		s.pending = append(s.pending[:0], s.pending[i:]...)
	}
}

// check reports a closed store, or the first write failure; after a failure
// it drops from the index whatever never reached the disk, so readers do not
// see messages that were not stored.
func (s *FileStore) check() error {
	if s.closed {
		return ErrClosed
	}
	errp := s.failed.Load()
	if errp == nil {
		return nil
	}
	for _, p := range s.pending {
		if p.end > p.blk.written.Load() {
			s.removeIndex(p.seq)
			delete(s.cache, p.seq)
		}
	}
	s.pending = s.pending[:0]
	return fmt.Errorf("store: write failed: %w", *errp)
}

// Load implements Store.
func (s *FileStore) Load(seq uint64) (*Msg, error) {
	m := new(Msg)
	if err := s.load(seq, m, false); err != nil {
		return nil, err
	}
	return m, nil
}

// PeekNext implements Peeker.
func (s *FileStore) PeekNext(filter string, seq uint64, m *Msg) error {
	for q, l, ok := s.locs.next(max(seq, s.first)); ok; q, l, ok = s.locs.next(q + 1) {
		if filter == "" || router.SubjectMatches(filter, l.subject) {
			return s.load(q, m, true)
		}
	}
	return ErrNotFound
}

// load reads seq into m: copies, or with view its header and data where
// they lie (the write cache or the read-ahead buffer), capped.
func (s *FileStore) load(seq uint64, m *Msg, view bool) error {
	if err := s.readable(); err != nil {
		return err
	}
	l := s.loc(seq)
	if l == nil {
		return ErrNotFound
	}
	rec, ok := s.cache[seq]
	if !ok {
		var err error
		if rec, err = s.read(l); err != nil {
			return err
		}
	}
	r, n := decodeRecord(rec)
	if n == 0 || r.seq != seq || (r.kind != recMsg && r.kind != recMsgS2) {
		return fmt.Errorf("%w: sequence %d in %s", ErrCorrupt, seq, l.blk.name)
	}
	hdr, data := r.hdr[:len(r.hdr):len(r.hdr)], r.data[:len(r.data):len(r.data)]
	if !view {
		hdr, data = clone(hdr), clone(data)
	}
	if len(hdr) == 0 {
		hdr = nil
	}
	if len(data) == 0 {
		data = nil
	}
	if r.kind == recMsgS2 {
		var err error
		if data, err = s2.Decode(nil, r.data); err != nil {
			return fmt.Errorf("%w: sequence %d in %s: %v", ErrCorrupt, seq, l.blk.name, err)
		}
	}
	*m = Msg{Seq: seq, Subject: l.subject, Hdr: hdr, Data: data, Time: r.ts}
	return nil
}

// readAhead is how much a read from a block file fetches: consumers load
// sequences in order, so one pread serves the records that follow.
const readAhead = 64 << 10

// read returns the record at l from its block file, through the read-ahead
// buffer. Written records never change in place (deletes are new records),
// so the buffer stays valid; callers copy what they keep.
func (s *FileStore) read(l *loc) ([]byte, error) {
	ra := &s.ra
	if ra.blk == l.blk && l.off >= ra.off && l.off+l.n <= ra.off+int64(len(ra.buf)) {
		return ra.buf[l.off-ra.off : l.off-ra.off+l.n], nil
	}
	f, err := s.reader(l.blk)
	if err != nil {
		return nil, err
	}
	n := max(l.n, min(readAhead, l.blk.written.Load()-l.off))
	if int64(cap(ra.buf)) < n {
		ra.buf = make([]byte, n)
	}
	ra.blk, ra.off, ra.buf = nil, 0, ra.buf[:n]
	got, err := f.ReadAt(ra.buf, l.off)
	if int64(got) < l.n {
		return nil, fmt.Errorf("store: read %s at %d: %w", l.blk.name, l.off, err)
	}
	ra.blk, ra.off, ra.buf = l.blk, l.off, ra.buf[:got]
	return ra.buf[:l.n], nil
}

func (s *FileStore) readable() error {
	if s.closed {
		return ErrClosed
	}
	if s.failed.Load() != nil {
		_ = s.check()
	}
	return nil
}

func (s *FileStore) reader(b *block) (File, error) {
	if f := s.readers[b]; f != nil {
		return f, nil
	}
	f, err := s.fs.OpenFile(b.name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	s.readers[b] = f
	return f, nil
}

// LoadLast implements Store.
func (s *FileStore) LoadLast(subject string) (*Msg, error) {
	seq, ok := s.last[subject]
	if !ok {
		return nil, ErrNotFound
	}
	return s.Load(seq)
}

// LoadNext implements Store.
func (s *FileStore) LoadNext(filter string, seq uint64) (*Msg, error) {
	for q, l, ok := s.locs.next(max(seq, s.first)); ok; q, l, ok = s.locs.next(q + 1) {
		if filter == "" || router.SubjectMatches(filter, l.subject) {
			return s.Load(q)
		}
	}
	return nil, ErrNotFound
}

// NumPending implements Store.
func (s *FileStore) NumPending(seq uint64, match func(string) bool) uint64 {
	var n uint64
	for q, l, ok := s.locs.next(max(seq, s.first)); ok; q, l, ok = s.locs.next(q + 1) {
		if match == nil || match(l.subject) {
			n++
		}
	}
	return n
}

// Remove implements Store.
func (s *FileStore) Remove(seq uint64) (bool, error) {
	if err := s.check(); err != nil {
		return false, err
	}
	if s.loc(seq) == nil {
		return false, nil
	}
	if err := s.queueDelete(seq); err != nil {
		return false, err
	}
	s.removeIndex(seq)
	s.dropEmptyBlocks()
	return true, nil
}

// queueDelete writes a delete record for seq to the current block.
func (s *FileStore) queueDelete(seq uint64) error {
	rec := appendRecord(nil, recDelete, seq, time.Now().UnixNano(), "", nil, nil)
	b, err := s.queue(rec, func(error) {})
	if err == nil {
		b.deletes = append(b.deletes, seq)
	}
	return err
}

// removeIndex forgets seq in memory.
func (s *FileStore) removeIndex(seq uint64) {
	l := s.loc(seq)
	if l == nil {
		return
	}
	subject := l.subject
	l.blk.live--
	s.msgs--
	s.bytes -= l.size
	s.locs.del(seq) // clears *l
	if s.last[subject] == seq {
		delete(s.last, subject)
		for q, o, ok := s.locs.prev(seq); ok && q >= s.first; q, o, ok = s.locs.prev(q - 1) {
			if o.subject == subject {
				s.last[subject] = q
				break
			}
			if q == 0 {
				break
			}
		}
	}
	s.advanceFirst()
}

// advanceFirst moves first to the oldest present sequence (or past the
// last), in steps over the index, not over the sequences.
func (s *FileStore) advanceFirst() {
	if s.loc(s.first) != nil {
		return
	}
	if q, _, ok := s.locs.next(s.first); ok {
		s.first = q
	} else if s.first <= s.lastSq {
		s.first = s.lastSq + 1
	}
}

// Compact implements Store.
func (s *FileStore) Compact(seq uint64) (uint64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	seq = min(seq, MaxSeq+1)
	rec := appendRecord(nil, recCompact, seq, time.Now().UnixNano(), "", nil, nil)
	if _, err := s.queue(rec, func(error) {}); err != nil {
		return 0, err
	}
	n := s.compactIndex(seq)
	s.dropEmptyBlocks()
	return n, nil
}

// compactIndex removes every sequence below seq from memory.
func (s *FileStore) compactIndex(seq uint64) uint64 {
	before := s.msgs
	for q, _, ok := s.locs.next(s.first); ok && q < seq; q, _, ok = s.locs.next(q + 1) {
		s.removeIndex(q)
	}
	if seq > s.lastSq+1 {
		s.lastSq = seq - 1
	}
	if seq > s.first {
		s.first = seq
	}
	s.advanceFirst()
	return before - s.msgs
}

// Purge implements Store.
func (s *FileStore) Purge() (uint64, error) { return s.Compact(s.lastSq + 1) }

// dropEmptyBlocks deletes block files (not the current one) with no live
// messages left. The delete records of a block that goes which name a
// message in a remaining block are written again first, to the current
// block: otherwise that message would return when the store is recovered.
func (s *FileStore) dropEmptyBlocks() {
	last := len(s.blocks) - 1
	if last < 1 {
		return // only the current block, which stays
	}
	drop := false
	for _, b := range s.blocks[:last] {
		if b.live == 0 {
			drop = true
			break
		}
	}
	if !drop {
		return // the common case: no scan beyond this, no allocation
	}
	var remain []*block // remaining blocks that hold messages, oldest first
	for i, b := range s.blocks {
		if (b.live > 0 || i == last) && b.first != 0 {
			remain = append(remain, b)
		}
	}
	for _, b := range s.blocks[:last] {
		if b.live > 0 {
			continue
		}
		for _, seq := range b.deletes {
			// the remaining block whose range may hold seq
			i := sort.Search(len(remain), func(i int) bool { return remain[i].last >= seq })
			if i < len(remain) && remain[i].first <= seq && s.queueDelete(seq) != nil {
				return // keep the blocks rather than lose a record
			}
		}
	}
	keep := s.blocks[:0]
	for i, b := range s.blocks {
		if b.live > 0 || i >= last {
			keep = append(keep, b)
			continue
		}
		if f := s.readers[b]; f != nil {
			_ = f.Close()
			delete(s.readers, b)
		}
		_ = s.w.submit(writeOp{file: b.name, remove: true})
	}
	clear(s.blocks[len(keep):])
	s.blocks = keep
}

// State implements Store.
func (s *FileStore) State() State {
	st := State{Msgs: s.msgs, Bytes: s.bytes, FirstSeq: s.first, LastSeq: s.lastSq}
	if s.msgs == 0 {
		st.FirstSeq = s.lastSq + 1
		return st
	}
	if l := s.loc(s.first); l != nil {
		st.FirstTime = time.Unix(0, l.ts)
	}
	if _, l, ok := s.locs.prev(s.lastSq); ok {
		st.LastTime = time.Unix(0, l.ts)
	}
	st.Deleted = int(s.lastSq-s.first+1) - int(s.msgs)
	return st
}

// Close releases read handles. Queued writes still complete: the Writer,
// shared by every store, is closed by its owner.
func (s *FileStore) Close() error {
	s.closed = true
	for _, f := range s.readers {
		_ = f.Close()
	}
	s.readers = nil
	return nil
}
