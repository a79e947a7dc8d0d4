package store

import "testing"

// The index must never move entries as it grows (no copy of the whole index
// on the store's goroutine) and must keep answering correctly as whole pages
// leave the front.
func TestLocIndexPages(t *testing.T) {
	x := locIndex{base: 100}
	x.push(loc{n: 100})
	first := x.at(100)
	for seq := uint64(101); seq < 100+3*locPage+7; seq++ {
		x.push(loc{n: int64(seq)})
	}
	if x.at(100) != first {
		t.Fatal("growing the index moved an entry")
	}
	if x.end() != 100+3*locPage+7 {
		t.Fatalf("end %d", x.end())
	}
	x.dropBelow(100 + locPage + 5) // frees exactly one page
	if x.base != 100+locPage || len(x.pages) != 3 {
		t.Fatalf("after drop: base %d pages %d", x.base, len(x.pages))
	}
	for _, seq := range []uint64{100 + locPage, 100 + 2*locPage + 1, x.end() - 1} {
		if got := x.at(seq).n; got != int64(seq) {
			t.Fatalf("seq %d holds %d", seq, got)
		}
	}
	x.dropBelow(x.end() + 10*locPage)
	if x.n != 0 && x.base > x.end() {
		t.Fatalf("drop past the end: base %d n %d", x.base, x.n)
	}
}
