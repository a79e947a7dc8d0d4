package store

import (
	"testing"
)

func benchFileStore(b *testing.B, policy SyncPolicy) (*FileStore, func()) {
	w := NewWriter(OSFS{}, policy)
	s, err := OpenFileStore(FileStoreConfig{Dir: b.TempDir(), Writer: w})
	if err != nil {
		b.Fatal(err)
	}
	return s, func() { s.Close(); w.Close() }
}

// BenchmarkFileStoreAppend measures the owner's cost of an append (the
// writer goroutine writes concurrently) and waits for the last ack.
func BenchmarkFileStoreAppend(b *testing.B) {
	s, done := benchFileStore(b, SyncPolicy{})
	defer done()
	data := make([]byte, 128)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	acked := make(chan struct{}, 1)
	n := 0
	for b.Loop() {
		n++
		var cb DoneFunc
		if n%1024 == 0 {
			cb = func(uint64, error) { acked <- struct{}{} }
		}
		if _, err := s.Append("bench.subject", nil, data, 1, cb); err != nil {
			b.Fatal(err)
		}
		if cb != nil {
			<-acked // bound the backlog
		}
	}
}

func BenchmarkFileStoreLoad(b *testing.B) {
	s, done := benchFileStore(b, SyncPolicy{})
	defer done()
	data := make([]byte, 128)
	const n = 10000
	ch := make(chan struct{})
	for i := 0; i < n; i++ {
		var cb DoneFunc
		if i == n-1 {
			cb = func(uint64, error) { close(ch) }
		}
		s.Append("bench.subject", nil, data, 1, cb)
	}
	<-ch
	s.prune()
	b.ReportAllocs()
	seq := uint64(0)
	for b.Loop() {
		seq = seq%n + 1
		if _, err := s.Load(seq); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMemStoreAppend(b *testing.B) {
	s := NewMemStore()
	data := make([]byte, 128)
	b.ReportAllocs()
	for b.Loop() {
		s.Append("bench.subject", nil, data, 1, nil)
	}
}
