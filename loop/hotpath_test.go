package loop

import "testing"

// TestPubPathAllocs: parsing a PUB, checking it, matching it (cached) and
// formatting the MSG for a subscriber allocate nothing per message.
func TestPubPathAllocs(t *testing.T) {
	s, err := New(Options{IO: IOGoroutine, Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	ft := &fakeTransport{}
	c := newClient(s, ft, nil, nil)
	ft.c = c
	c.out.pool = &chunkPool{}
	// A bare client is pedantic, so the subject is validated on each PUB.
	c.onRead([]byte("SUB foo.bar 1\r\nSUB foo.* 2\r\n"))
	pub := []byte("PUB foo.bar 16\r\n0123456789abcdef\r\nHPUB foo.bar r 12 14\r\nNATS/1.0\r\n\r\nhi\r\n")
	c.onRead(pub) // warm the cache and the chunk pool
	if n := testing.AllocsPerRun(1000, func() { c.onRead(pub) }); n != 0 {
		t.Fatalf("%v allocations per PUB round", n)
	}
	if !c.opts.Pedantic {
		t.Fatal("test meant to run pedantic")
	}
}
