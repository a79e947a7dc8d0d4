package store

// locPage is the number of sequences per index page.
const locPage = 4096

// locIndex maps sequences to record locations in fixed-size pages. Appending
// never copies the index (a flat slice of a million 64-byte entries copies
// 64 MB when it grows, which stalled acks for longer than clients wait), and
// dropping the front frees whole pages. Owned with its store.
type locIndex struct {
	pages [][]loc
	base  uint64 // the sequence of pages[0][0]
	n     uint64 // entries from base on
}

// end is the first sequence past the index.
func (x *locIndex) end() uint64 { return x.base + x.n }

// push appends the entry for sequence end().
func (x *locIndex) push(l loc) {
	p := x.n / locPage
	if p == uint64(len(x.pages)) {
		x.pages = append(x.pages, make([]loc, 0, locPage))
	}
	x.pages[p] = append(x.pages[p], l)
	x.n++
}

// at returns the entry of seq, which must be in [base, end()).
func (x *locIndex) at(seq uint64) *loc {
	i := seq - x.base
	return &x.pages[i/locPage][i%locPage]
}

// dropBelow frees the whole pages holding only sequences below seq.
func (x *locIndex) dropBelow(seq uint64) {
	if seq <= x.base {
		return
	}
	k := min((seq-x.base)/locPage, uint64(len(x.pages)))
	if k == 0 {
		return
	}
	clear(x.pages[:k])
	x.pages = x.pages[k:]
	x.base += k * locPage
	x.n -= min(x.n, k*locPage)
}
