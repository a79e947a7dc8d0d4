package mqtt

import "testing"

// TestRequestsEvictAndSweep: a full table makes room from the biggest
// holder's oldest entry, not from a holder with no more than the
// requester; sweep forgets entries past their time, each client's oldest
// first, and keeps the counts in step; a table of one-entry clients has
// no one to take from.
func TestRequestsEvictAndSweep(t *testing.T) {
	var r requests
	r.init(nil, nil)
	r.once.Do(func() {})          // no internal subscription: replySubject only
	for range maxClientRequests { // its share (one more is refused, and logged through the bridge)
		r.replySubject("hog", "s", []byte("c"))
	}
	hog := r.byClient["hog"]
	if hog == nil || hog.n != maxClientRequests {
		t.Fatalf("hog holds %+v, want its share %d", hog, maxClientRequests)
	}
	// Fill the rest of the table with clients of one entry each.
	for i := 0; len(r.pending) < maxRequests; i++ {
		r.replySubject("c"+itoa(i), "s", []byte("c"))
	}
	oldest := hog.tokens[hog.head]
	subj, ok := r.replySubject("new", "s", []byte("c"))
	if !ok || subj == "s" {
		t.Fatalf("new client in a full table: %q %v, want an entry", subj, ok)
	}
	if r.pending[oldest] != nil || hog.n != maxClientRequests-1 || len(r.pending) != maxRequests {
		t.Fatalf("hog's oldest entry kept (%v), hog holds %d, table %d", r.pending[oldest] != nil, hog.n, len(r.pending))
	}
	r.sweep(unixNow() + requestTTL + 1)
	if len(r.pending) != 0 || len(r.byClient) != 0 || r.bytes != 0 {
		t.Fatalf("after the sweep: %d pending, %d clients, %d bytes", len(r.pending), len(r.byClient), r.bytes)
	}
	// A table full of one-entry clients has no one to take from: the
	// request goes without an entry (its response topic as reply subject).
	for i := 0; len(r.pending) < maxRequests; i++ {
		r.replySubject("c"+itoa(i), "s", []byte("c"))
	}
	if subj, ok := r.replySubject("new", "s", []byte("c")); !ok || subj != "s" {
		t.Fatalf("new client in a table of one-entry clients: %q %v", subj, ok)
	}
	if !r.noVictim {
		t.Fatal("no victim found, yet the next full request would scan again")
	}
}

func itoa(i int) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + i%10)}, b...)
		if i /= 10; i == 0 {
			return string(b)
		}
	}
}
