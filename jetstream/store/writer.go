package store

// Concurrency: the Writer goroutine (run) owns files, dirty, broken and
// buf; a syncer goroutine fsyncs the files run hands it on syncs. Any
// goroutine may submit: mu guards queue and closed and is a leaf (taken under
// Persister.mu); op callbacks run on the Writer goroutine after it is
// released.

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// SyncPolicy says when written data is forced to stable storage.
//
//   - Always: every acknowledged append has been fsynced. Survives power loss.
//   - Interval (the default, every DefaultSyncInterval): acknowledged appends
//     have been written to the operating system, so they survive the process
//     being killed (kill -9) but not a power loss within the interval.
type SyncPolicy struct {
	Always   bool
	Interval time.Duration
}

// DefaultSyncInterval is how often the interval policy fsyncs.
const DefaultSyncInterval = time.Second

// Writer is the dedicated goroutine that performs every file-store write:
// appends of many stores are grouped, written with one write per file per
// round, synced per policy, then acknowledged. Its methods are safe for
// concurrent use.
type Writer struct {
	fs     FS
	policy SyncPolicy

	// mu guards queue and closed; wake has capacity 1.
	mu     sync.Mutex
	queue  []writeOp
	closed bool
	wake   chan struct{}
	done   chan struct{}

	// syncs hands the interval policy's fsyncs to the syncer goroutine, so a
	// slow fsync (a second of dirty data) never holds up the writes and acks
	// queued behind it; syncDone closes when the syncer has finished.
	syncs    chan syncRound
	syncDone chan struct{}

	// Owned by the writer goroutine.
	files map[string]File
	dirty map[string]File // written since the last sync
	// newDirs holds the directories of files opened since the last sync:
	// a block's data is durable only once its directory entry is too.
	newDirs map[string]struct{}
	broken  map[string]error // files whose write failed: later appends would land after a torn record
	buf     []byte
}

// writeOp is one unit of work for the writer.
type writeOp struct {
	file   string
	data   []byte      // appended to file
	remove bool        // delete file instead
	noSync bool        // not synced under Always: the interval's rounds sync it (FileStoreConfig.NoSyncAlways)
	forget string      // with no file: close every file whose name starts with this
	done   func(error) // called after the write (and sync, per policy)
}

// NewWriter starts a writer goroutine.
func NewWriter(fs FS, policy SyncPolicy) *Writer {
	if policy.Interval <= 0 {
		policy.Interval = DefaultSyncInterval
	}
	w := &Writer{fs: fs, policy: policy, wake: make(chan struct{}, 1), done: make(chan struct{}),
		syncs: make(chan syncRound, 1), syncDone: make(chan struct{}),
		files: make(map[string]File), dirty: make(map[string]File), broken: make(map[string]error),
		newDirs: make(map[string]struct{})}
	go w.run()
	go w.syncer()
	return w
}

// submit queues ops; they are performed in order.
func (w *Writer) submit(ops ...writeOp) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	w.queue = append(w.queue, ops...)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return nil
}

// Notify calls fn on the writer goroutine once every write queued before it
// has been performed (and synced, per policy); it does not wait. After
// Close, fn runs at once.
func (w *Writer) Notify(fn func()) {
	if w.submit(writeOp{done: func(error) { fn() }}) != nil {
		fn()
	}
}

// Barrier waits until every write queued before it has been performed.
func (w *Writer) Barrier() { w.barrier("") }

// Forget waits for queued writes, then closes every file under dir, whose
// contents are about to be deleted; a later write there starts a new file.
func (w *Writer) Forget(dir string) { w.barrier(dir) }

func (w *Writer) barrier(forget string) {
	ch := make(chan struct{})
	if w.submit(writeOp{forget: forget, done: func(error) { close(ch) }}) != nil {
		return
	}
	<-ch
}

func (w *Writer) forgetPrefix(prefix string) {
	for name, f := range w.files {
		if strings.HasPrefix(name, prefix) {
			_ = f.Close() // no sync: its contents are about to be deleted
			delete(w.files, name)
			delete(w.dirty, name)
			delete(w.broken, name)
		}
	}
	for dir := range w.newDirs {
		if dir == prefix || strings.HasPrefix(dir, prefix+string(filepath.Separator)) {
			delete(w.newDirs, dir)
		}
	}
}

// Close finishes queued work, syncs and closes every file.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	<-w.done
	return nil
}

func (w *Writer) run() {
	defer close(w.done)
	tick := time.NewTicker(w.policy.Interval)
	defer tick.Stop()
	var batch []writeOp
	for {
		select {
		case <-w.wake:
		case <-tick.C:
			w.syncSoon()
			continue
		}
		w.mu.Lock()
		batch, w.queue = w.queue, batch[:0]
		closed := w.closed
		w.mu.Unlock()
		w.perform(batch)
		clear(batch)
		if closed {
			w.mu.Lock()
			rest := w.queue
			w.queue = nil
			w.mu.Unlock()
			w.perform(rest)
			close(w.syncs)
			<-w.syncDone
			w.syncDirty()
			for _, f := range w.files {
				_ = f.Close()
			}
			return
		}
	}
}

// perform writes a batch: consecutive appends to one file become one write.
func (w *Writer) perform(batch []writeOp) {
	for i := 0; i < len(batch); {
		op := batch[i]
		if op.file == "" { // a barrier: everything before it is done
			if op.forget != "" {
				w.forgetPrefix(op.forget)
			}
			finish(batch[i:i+1], nil)
			i++
			continue
		}
		if op.remove {
			err := w.removeFile(op.file)
			finish(batch[i:i+1], err)
			i++
			continue
		}
		j := i + 1
		for j < len(batch) && !batch[j].remove && batch[j].file == op.file && op.file != "" {
			j++
		}
		err := w.write(op.file, batch[i:j])
		if err == nil && w.policy.Always && !op.noSync {
			err = w.files[op.file].Sync()
			delete(w.dirty, op.file)
			if err == nil {
				err = w.syncNewDirs()
			}
		}
		finish(batch[i:j], err)
		i = j
	}
}

func finish(ops []writeOp, err error) {
	for _, op := range ops {
		if op.done != nil {
			op.done(err)
		}
	}
}

func (w *Writer) write(name string, ops []writeOp) (err error) {
	if err := w.broken[name]; err != nil {
		return err
	}
	defer func() {
		if err != nil {
			w.broken[name] = err
		}
	}()
	f, err := w.file(name)
	if err != nil {
		return err
	}
	data := ops[0].data
	if len(ops) > 1 {
		w.buf = w.buf[:0]
		for _, op := range ops {
			w.buf = append(w.buf, op.data...)
		}
		data = w.buf
	}
	n, err := f.Write(data)
	if err == nil && n < len(data) {
		err = errShortWrite
	}
	if err != nil {
		return err
	}
	w.dirty[name] = f
	return nil
}

func (w *Writer) file(name string) (File, error) {
	if f := w.files[name]; f != nil {
		return f, nil
	}
	f, err := w.fs.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	w.files[name] = f
	w.newDirs[filepath.Dir(name)] = struct{}{}
	return f, nil
}

// syncNewDirs fsyncs the directories of newly opened files.
func (w *Writer) syncNewDirs() error {
	for dir := range w.newDirs {
		if err := w.fs.SyncDir(dir); err != nil {
			return err
		}
		delete(w.newDirs, dir)
	}
	return nil
}

// syncRound is one round of the interval policy's fsyncs: the files, then
// the directories whose new entries they need.
type syncRound struct {
	files []File
	dirs  []string
}

func (w *Writer) removeFile(name string) error {
	if f := w.files[name]; f != nil {
		_ = f.Close()
		delete(w.files, name)
		delete(w.dirty, name)
	}
	delete(w.broken, name)
	if err := w.fs.Remove(name); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// syncSoon hands the files written since the last sync to the syncer; if
// it is still busy with the previous round they wait for the next tick.
func (w *Writer) syncSoon() {
	if len(w.dirty) == 0 && len(w.newDirs) == 0 {
		return
	}
	r := syncRound{files: make([]File, 0, len(w.dirty)), dirs: make([]string, 0, len(w.newDirs))}
	for _, f := range w.dirty {
		r.files = append(r.files, f)
	}
	for dir := range w.newDirs {
		r.dirs = append(r.dirs, dir)
	}
	select {
	case w.syncs <- r:
		clear(w.dirty)
		clear(w.newDirs)
	default:
	}
}

// syncer fsyncs what the writer hands it. A file the writer closes
// meanwhile (removed, or its directory forgotten) was synced or is gone;
// the error is of no interest.
func (w *Writer) syncer() {
	defer close(w.syncDone)
	for r := range w.syncs {
		for _, f := range r.files {
			_ = f.Sync()
		}
		for _, dir := range r.dirs {
			_ = w.fs.SyncDir(dir) // a directory removed meanwhile needs none
		}
	}
}

func (w *Writer) syncDirty() {
	for name, f := range w.dirty {
		_ = f.Sync()
		delete(w.dirty, name)
	}
	for dir := range w.newDirs {
		_ = w.fs.SyncDir(dir)
		delete(w.newDirs, dir)
	}
}
