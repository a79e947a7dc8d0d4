package store

// Concurrency: part of a FileStore; its owner goroutine only, no locks.

import "sort"

// locPage is the number of sequences per index page.
const locPage = 4096

// locIndex maps sequences to record locations in fixed-size pages, kept in
// sequence order. Only pages holding a present entry exist: a purge to a far
// sequence leaves no pages behind, and walks (next, prev) go over pages, so
// nothing costs time or memory in proportion to a gap in the sequences.
// Appending never copies entries (a flat slice of a million 64-byte entries
// copies 64 MB when it grows, which stalled acks for longer than clients
// wait). Owned with its store.
type locIndex struct {
	pages []*locPg // ascending by no
	top   uint64   // one past the highest sequence ever put; 0 when none
}

// locPg holds the entries of sequences [no*locPage, (no+1)*locPage).
type locPg struct {
	no   uint64
	live int // present entries
	e    []loc
}

// find returns the index of the page with number no, or -1.
func (x *locIndex) find(no uint64) int {
	if len(x.pages) == 0 {
		return -1
	}
	// Dense case first: pages are consecutive unless a gap was skipped.
	if d := no - x.pages[0].no; no >= x.pages[0].no && d < uint64(len(x.pages)) && x.pages[d].no == no {
		return int(d)
	}
	i := x.search(no)
	if i < len(x.pages) && x.pages[i].no == no {
		return i
	}
	return -1
}

// search returns the index of the first page numbered no or above.
func (x *locIndex) search(no uint64) int {
	return sort.Search(len(x.pages), func(i int) bool { return x.pages[i].no >= no })
}

// put records l (present) for seq, which must be at or above top; it
// reports false for a sequence below top (a duplicate on recovery).
func (x *locIndex) put(seq uint64, l loc) bool {
	if seq < x.top {
		return false
	}
	no := seq / locPage
	var p *locPg
	if n := len(x.pages); n > 0 && x.pages[n-1].no == no {
		p = x.pages[n-1]
	} else {
		p = &locPg{no: no, e: make([]loc, locPage)}
		x.pages = append(x.pages, p)
	}
	l.present = true
	p.e[seq%locPage] = l
	p.live++
	x.top = seq + 1 // seq <= MaxSeq: no wrap
	return true
}

// at returns the present entry of seq, or nil.
func (x *locIndex) at(seq uint64) *loc {
	i := x.find(seq / locPage)
	if i < 0 {
		return nil
	}
	if l := &x.pages[i].e[seq%locPage]; l.present {
		return l
	}
	return nil
}

// del marks seq not present and frees its page once nothing in it is.
func (x *locIndex) del(seq uint64) {
	i := x.find(seq / locPage)
	if i < 0 {
		return
	}
	p := x.pages[i]
	l := &p.e[seq%locPage]
	if !l.present {
		return
	}
	*l = loc{}
	if p.live--; p.live == 0 {
		if i == 0 { // the usual case, oldest first: no copy
			x.pages[0] = nil
			x.pages = x.pages[1:]
			return
		}
		copy(x.pages[i:], x.pages[i+1:])
		x.pages[len(x.pages)-1] = nil
		x.pages = x.pages[:len(x.pages)-1]
	}
}

// next returns the first present sequence at or above seq.
func (x *locIndex) next(seq uint64) (uint64, *loc, bool) {
	for i := x.search(seq / locPage); i < len(x.pages); i++ {
		p := x.pages[i]
		j := uint64(0)
		if p.no == seq/locPage {
			j = seq % locPage
		}
		for ; j < locPage; j++ {
			if p.e[j].present {
				return p.no*locPage + j, &p.e[j], true
			}
		}
	}
	return 0, nil, false
}

// prev returns the last present sequence at or below seq.
func (x *locIndex) prev(seq uint64) (uint64, *loc, bool) {
	i := x.search(seq/locPage + 1) // first page past seq's (no wrap: seq < 2^64-1)
	for i--; i >= 0; i-- {
		p := x.pages[i]
		j := uint64(locPage - 1)
		if p.no == seq/locPage {
			j = seq % locPage
		}
		for {
			if p.e[j].present {
				return p.no*locPage + j, &p.e[j], true
			}
			if j == 0 {
				break
			}
			j--
		}
	}
	return 0, nil, false
}
