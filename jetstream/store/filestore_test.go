package store

import (
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func openFS(t *testing.T, fsys FS, dir string, w *Writer) *FileStore {
	t.Helper()
	s, err := OpenFileStore(FileStoreConfig{FS: fsys, Dir: dir, Writer: w, MaxBlock: 4096})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// flush waits until every queued write has been performed.
func flush(t *testing.T, s Store) {
	t.Helper()
	done := make(chan error, 1)
	if _, err := s.Append("_flush", nil, nil, 0, func(_ uint64, err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestRecoveryRebuildsIndex(t *testing.T) {
	dir := t.TempDir()
	w := NewWriter(OSFS{}, SyncPolicy{})
	s := openFS(t, OSFS{}, dir, w)
	for i := 1; i <= 300; i++ { // several 4 KiB blocks
		mustAppend(t, s, fmt.Sprintf("r.%d", i%5), strings.Repeat("x", i%50))
	}
	s.Remove(7)
	s.Compact(50)
	s.Remove(299)
	flush(t, s)
	want := s.State()
	s.Close()
	w.Close()

	w2 := NewWriter(OSFS{}, SyncPolicy{})
	defer w2.Close()
	r := openFS(t, OSFS{}, dir, w2)
	if got := r.State(); got.Msgs != want.Msgs || got.FirstSeq != want.FirstSeq || got.LastSeq != want.LastSeq || got.Bytes != want.Bytes {
		t.Fatalf("recovered %+v, want %+v", got, want)
	}
	if _, err := r.Load(299); !errors.Is(err, ErrNotFound) {
		t.Fatal("removed message came back")
	}
	if m, err := r.Load(123); err != nil || len(m.Data) != 123%50 {
		t.Fatalf("load 123: %v", err)
	}
	if m, err := r.LoadLast("r.4"); err != nil || m.Seq != 294 {
		t.Fatalf("last r.4: %+v %v", m, err)
	}
	if seq := mustAppend(t, r, "r.0", "new"); seq != want.LastSeq+1 {
		t.Fatalf("next seq %d, want %d", seq, want.LastSeq+1)
	}
}

func TestPurgedStoreKeepsSequenceAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	w := NewWriter(OSFS{}, SyncPolicy{})
	s := openFS(t, OSFS{}, dir, w)
	for i := 0; i < 200; i++ {
		mustAppend(t, s, "p", "0123456789012345678901234567890123456789")
	}
	s.Purge()
	flush(t, s) // appends seq 201
	s.Remove(201)
	flush(t, s) // 202
	s.Remove(202)
	s.Close()
	w.Close()
	w2 := NewWriter(OSFS{}, SyncPolicy{})
	defer w2.Close()
	r := openFS(t, OSFS{}, dir, w2)
	if st := r.State(); st.Msgs != 0 || st.LastSeq != 202 {
		t.Fatalf("state %+v", st)
	}
	if seq := mustAppend(t, r, "p", "x"); seq != 203 {
		t.Fatalf("sequence after restart %d", seq)
	}
	names, _ := OSFS{}.ReadDir(dir)
	if len(names) > 2 {
		t.Fatalf("emptied blocks not removed: %v", names)
	}
}

// TestTornTailIsTruncated cuts the last block at every offset inside its
// final record, as a crash mid-write would, and checks that recovery keeps
// every earlier record and truncates the torn one.
func TestTornTailIsTruncated(t *testing.T) {
	dir := t.TempDir()
	w := NewWriter(OSFS{}, SyncPolicy{})
	s := openFS(t, OSFS{}, dir, w)
	for i := 1; i <= 5; i++ {
		mustAppend(t, s, "t", fmt.Sprint("payload-", i))
	}
	flush(t, s)
	s.Close()
	w.Close()
	names, _ := OSFS{}.ReadDir(dir)
	path := filepath.Join(dir, names[len(names)-1])
	full, _ := os.ReadFile(path)
	lastRec := recOverhead + len("_flush")
	for cut := len(full) - lastRec; cut < len(full); cut++ {
		os.WriteFile(path, full[:cut], 0o644)
		w := NewWriter(OSFS{}, SyncPolicy{})
		r := openFS(t, OSFS{}, dir, w)
		st := r.State()
		if st.LastSeq != 5 || st.Msgs != 5 {
			t.Fatalf("cut at %d: state %+v", cut, st)
		}
		if info, _ := os.Stat(path); info.Size() != int64(len(full)-lastRec) {
			t.Fatalf("cut at %d: file not truncated to the last whole record (%d)", cut, info.Size())
		}
		// The store goes on cleanly after the truncation.
		if seq := mustAppend(t, r, "t", "after"); seq != 6 {
			t.Fatalf("seq %d", seq)
		}
		flush(t, r)
		r.Close()
		w.Close()
		os.WriteFile(path, full, 0o644)
	}
}

// TestFileMatchesMemory replays random operation sequences on both stores
// and compares every observable result.
func TestFileMatchesMemory(t *testing.T) {
	for round := 0; round < 20; round++ {
		rng := rand.New(rand.NewSource(int64(round)))
		dir := t.TempDir()
		w := NewWriter(OSFS{}, SyncPolicy{})
		fs := openFS(t, OSFS{}, dir, w)
		ms := NewMemStore()
		subjects := []string{"a", "b.x", "b.y", "c"}
		for op := 0; op < 400; op++ {
			switch k := rng.Intn(20); {
			case k < 12:
				subj, data := subjects[rng.Intn(len(subjects))], strings.Repeat("d", rng.Intn(300))
				s1, _ := fs.Append(subj, nil, []byte(data), int64(op), nil)
				s2, _ := ms.Append(subj, nil, []byte(data), int64(op), nil)
				if s1 != s2 {
					t.Fatalf("append seq %d vs %d", s1, s2)
				}
			case k < 16:
				seq := uint64(rng.Intn(int(ms.State().LastSeq) + 2))
				a, _ := fs.Remove(seq)
				b, _ := ms.Remove(seq)
				if a != b {
					t.Fatalf("remove %d: %v vs %v", seq, a, b)
				}
			case k < 17:
				seq := ms.State().FirstSeq + uint64(rng.Intn(5))
				a, _ := fs.Compact(seq)
				b, _ := ms.Compact(seq)
				if a != b {
					t.Fatalf("compact %d: %d vs %d", seq, a, b)
				}
			case k < 18 && rng.Intn(4) == 0:
				fs.Purge()
				ms.Purge()
			default:
				// Restart the file store mid-sequence: recovery must agree.
				flush(t, fs)
				ms.Append("_flush", nil, nil, 0, nil)
				fs.Close()
				w.Close()
				w = NewWriter(OSFS{}, SyncPolicy{})
				fs = openFS(t, OSFS{}, dir, w)
			}
			compareStores(t, fs, ms)
		}
		w.Close()
	}
}

func compareStores(t *testing.T, fs, ms Store) {
	t.Helper()
	a, b := fs.State(), ms.State()
	if a.Msgs != b.Msgs || a.FirstSeq != b.FirstSeq || a.LastSeq != b.LastSeq || a.Bytes != b.Bytes || a.Deleted != b.Deleted {
		t.Fatalf("state file %+v\nmemory %+v", a, b)
	}
	for seq := b.FirstSeq; seq <= b.LastSeq; seq++ {
		m1, e1 := fs.Load(seq)
		m2, e2 := ms.Load(seq)
		if (e1 == nil) != (e2 == nil) || (e1 == nil && (string(m1.Data) != string(m2.Data) || m1.Subject != m2.Subject)) {
			t.Fatalf("seq %d: file %v %v, memory %v %v", seq, m1, e1, m2, e2)
		}
	}
	for _, subj := range []string{"a", "b.x", "c"} {
		m1, e1 := fs.LoadLast(subj)
		m2, e2 := ms.LoadLast(subj)
		if (e1 == nil) != (e2 == nil) || (e1 == nil && m1.Seq != m2.Seq) {
			t.Fatalf("last %s: %v %v / %v %v", subj, m1, e1, m2, e2)
		}
	}
}

// faultFS wraps OSFS and fails writes after a byte budget: a full disk
// (error, nothing written) or a short write (part written, then error).
type faultFS struct {
	OSFS
	mu     sync.Mutex
	budget int
	short  bool
}

var errDiskFull = errors.New("no space left on device")

func (f *faultFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	file, err := f.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f}, nil
}

type faultFile struct {
	File
	fs *faultFS
}

func (f *faultFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if len(p) <= f.fs.budget {
		f.fs.budget -= len(p)
		return f.File.Write(p)
	}
	if f.fs.short && f.fs.budget > 0 {
		n, _ := f.File.Write(p[:f.fs.budget])
		f.fs.budget = 0
		return n, errDiskFull
	}
	return 0, errDiskFull
}

func TestWriteFailuresAreReportedAndRecoverable(t *testing.T) {
	for _, short := range []bool{false, true} {
		t.Run(fmt.Sprintf("short=%v", short), func(t *testing.T) {
			dir := t.TempDir()
			ffs := &faultFS{budget: 2000, short: short}
			w := NewWriter(ffs, SyncPolicy{})
			s := openFS(t, ffs, dir, w)
			acked := map[uint64]bool{}
			var mu sync.Mutex
			results := make(chan error, 100)
			for i := 0; i < 100; i++ {
				_, err := s.Append("f", nil, []byte(strings.Repeat("z", 50)), 1, func(seq uint64, err error) {
					mu.Lock()
					if err == nil {
						acked[seq] = true
					}
					mu.Unlock()
					results <- err
				})
				if err != nil {
					results <- err // refused up front after the failure was seen
				}
				time.Sleep(time.Millisecond) // let the writer hit the limit mid-stream
			}
			var failures int
			for i := 0; i < 100; i++ {
				if err := <-results; err != nil {
					failures++
					if !strings.Contains(err.Error(), "no space left") {
						t.Fatalf("error does not say why: %v", err)
					}
				}
			}
			if failures == 0 || len(acked) == 0 {
				t.Fatalf("failures %d, acked %d", failures, len(acked))
			}
			// Nothing unacked is readable; everything acked is.
			for seq := uint64(1); seq <= 100; seq++ {
				_, err := s.Load(seq)
				if acked[seq] != (err == nil) {
					t.Fatalf("seq %d acked=%v load err=%v", seq, acked[seq], err)
				}
			}
			s.Close()
			w.Close()
			// After a restart with space again, every acked message is there
			// and nothing else.
			w2 := NewWriter(OSFS{}, SyncPolicy{})
			defer w2.Close()
			r := openFS(t, OSFS{}, dir, w2)
			if int(r.State().Msgs) != len(acked) {
				t.Fatalf("recovered %d messages, %d were acked", r.State().Msgs, len(acked))
			}
			for seq := range acked {
				if _, err := r.Load(seq); err != nil {
					t.Fatalf("acked seq %d lost: %v", seq, err)
				}
			}
		})
	}
}

func TestCompressedStoreIsSmallerAndRecovers(t *testing.T) {
	dir := t.TempDir()
	w := NewWriter(OSFS{}, SyncPolicy{})
	s, err := OpenFileStore(FileStoreConfig{Dir: dir, Writer: w, Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(strings.Repeat("compressible telemetry line; ", 100))
	for i := 0; i < 100; i++ {
		mustAppend(t, s, "c", string(data))
	}
	flush(t, s)
	want := s.State()
	s.Close()
	w.Close()
	var onDisk int64
	names, _ := OSFS{}.ReadDir(dir)
	for _, n := range names {
		info, _ := os.Stat(filepath.Join(dir, n))
		onDisk += info.Size()
	}
	if raw := int64(100 * len(data)); onDisk > raw/4 {
		t.Fatalf("%d bytes on disk for %d bytes of data: not compressed", onDisk, raw)
	}
	w2 := NewWriter(OSFS{}, SyncPolicy{})
	defer w2.Close()
	r := openFS(t, OSFS{}, dir, w2) // opened without Compress: records say how they are stored
	if got := r.State(); got.Bytes != want.Bytes || got.Msgs != want.Msgs {
		t.Fatalf("recovered %+v want %+v", got, want)
	}
	if m, err := r.Load(50); err != nil || string(m.Data) != string(data) {
		t.Fatalf("load compressed: %v", err)
	}
}

// TestNoSyncAlways: under the Always policy a store opened with
// NoSyncAlways (a persist_mode async stream) is not fsynced per append,
// while a plain store is; the interval round syncs it later.
func TestNoSyncAlways(t *testing.T) {
	for _, noSync := range []bool{false, true} {
		fsys := &syncCounter{FS: OSFS{}}
		w := NewWriter(fsys, SyncPolicy{Always: true, Interval: time.Hour})
		s, err := OpenFileStore(FileStoreConfig{FS: fsys, Dir: t.TempDir(), Writer: w, NoSyncAlways: noSync})
		if err != nil {
			t.Fatal(err)
		}
		for range 10 {
			if _, err := s.Append("a", nil, []byte("x"), 0, func(uint64, error) {}); err != nil {
				t.Fatal(err)
			}
		}
		flush(t, s)
		got := fsys.syncs.Load()
		if noSync && got != 0 || !noSync && got == 0 {
			t.Errorf("NoSyncAlways %v: %d fsyncs", noSync, got)
		}
		_ = s.Close()
		_ = w.Close()
	}
}

// syncCounter counts file fsyncs.
type syncCounter struct {
	FS
	syncs atomic.Int64
}

func (c *syncCounter) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := c.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &countedFile{File: f, n: &c.syncs}, nil
}

type countedFile struct {
	File
	n *atomic.Int64
}

func (f *countedFile) Sync() error { f.n.Add(1); return f.File.Sync() }
