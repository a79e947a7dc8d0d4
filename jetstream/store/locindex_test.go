package store

import "testing"

// The index must never move entries as it grows (no copy of the whole index
// on the store's goroutine) and must keep answering correctly as whole pages
// leave the front.
func TestLocIndexPages(t *testing.T) {
	var x locIndex
	x.put(100, loc{n: 100})
	first := x.at(100)
	end := uint64(100 + 3*locPage + 7)
	for seq := uint64(101); seq < end; seq++ {
		x.put(seq, loc{n: int64(seq)})
	}
	if x.at(100) != first {
		t.Fatal("growing the index moved an entry")
	}
	if x.top != end || len(x.pages) != 4 {
		t.Fatalf("top %d pages %d", x.top, len(x.pages))
	}
	for seq := uint64(100); seq < locPage; seq++ {
		x.del(seq) // empties the first page: it goes
	}
	if len(x.pages) != 3 || x.at(99) != nil || x.at(locPage-1) != nil {
		t.Fatalf("after emptying page 0: %d pages", len(x.pages))
	}
	for _, seq := range []uint64{locPage, 2*locPage + 1, end - 1} {
		if got := x.at(seq); got == nil || got.n != int64(seq) {
			t.Fatalf("seq %d holds %v", seq, got)
		}
	}
	if x.put(end-1, loc{}) {
		t.Fatal("put below top accepted")
	}
}

// A far jump in sequence (a purge to a huge sequence) must cost neither
// memory nor time in proportion to the gap: pages exist only where entries
// are, and walks step over pages.
func TestLocIndexSparse(t *testing.T) {
	var x locIndex
	for seq := uint64(1); seq <= 10; seq++ {
		x.put(seq, loc{n: int64(seq)})
	}
	far := uint64(MaxSeq - 5)
	for seq := far; seq <= MaxSeq; seq++ {
		x.put(seq, loc{n: int64(seq)})
	}
	if len(x.pages) != 2 {
		t.Fatalf("%d pages for two clusters", len(x.pages))
	}
	if q, _, ok := x.next(11); !ok || q != far {
		t.Fatalf("next(11) = %d %v", q, ok)
	}
	if q, _, ok := x.prev(far - 1); !ok || q != 10 {
		t.Fatalf("prev(far-1) = %d %v", q, ok)
	}
	if q, _, ok := x.prev(1<<64 - 1); !ok || q != MaxSeq {
		t.Fatalf("prev(max) = %d %v", q, ok)
	}
	if _, _, ok := x.next(MaxSeq + 1); ok {
		t.Fatal("next past MaxSeq found something")
	}
	n := 0
	for q, _, ok := x.next(0); ok; q, _, ok = x.next(q + 1) {
		n++
	}
	if n != 16 {
		t.Fatalf("walked %d entries, want 16", n)
	}
	for seq := uint64(1); seq <= 10; seq++ {
		x.del(seq)
	}
	if len(x.pages) != 1 || x.at(5) != nil || x.at(far).n != int64(far) {
		t.Fatalf("after deleting the low cluster: %d pages", len(x.pages))
	}
}
