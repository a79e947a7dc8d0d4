package loop

import "testing"

// TestPubPathAllocs: parsing a PUB, checking it, matching it (cached) and
// formatting the MSG for a subscriber allocate nothing per message.
func TestPubPathAllocs(t *testing.T) {
	s, err := New(Options{IO: IOGoroutine, Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := newFakeClient(s)
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

// denyClient connects, as user "u" with the given subscribe deny list, a
// client subscribed to ">" on a server of its own.
func denyClient(tb testing.TB, deny ...string) (*Server, *client) {
	tb.Helper()
	var perms *Permissions
	if len(deny) > 0 {
		perms = &Permissions{Subscribe: &SubjectPermission{Deny: deny}}
	}
	s, err := New(Options{IO: IOGoroutine, Loops: 1, Users: []*User{{Username: "u", Password: "p", Permissions: perms}}})
	if err != nil {
		tb.Fatal(err)
	}
	c, _ := newFakeClient(s)
	c.onRead([]byte("CONNECT {\"user\":\"u\",\"pass\":\"p\",\"verbose\":false}\r\nSUB > 1\r\n"))
	if !c.connected.Load() {
		tb.Fatal("not connected")
	}
	return s, c
}

// TestDenyFilterAllocs: filtering a delivery through a subscription's deny
// entries allocates nothing, whether the message passes or is dropped.
func TestDenyFilterAllocs(t *testing.T) {
	s, c := denyClient(t, "secret.>", "audit.x")
	pub := []byte("PUB public.some.subject.longer.than.thirty.two.bytes 2\r\nhi\r\nPUB secret.some.subject.longer.than.thirty.two.bytes 2\r\nhi\r\n")
	before := s.shard(0).outMsgs.Load()
	c.onRead(pub)
	if got := s.shard(0).outMsgs.Load() - before; got != 1 {
		t.Fatalf("%d deliveries, want 1 (the denied one dropped)", got)
	}
	if n := testing.AllocsPerRun(1000, func() { c.onRead(pub) }); n != 0 {
		t.Fatalf("%v allocations per round", n)
	}
}

// BenchmarkDeliverDeny compares a delivery to ">" for a user without deny
// entries with one whose deny entries sit inside ">" and must be checked.
func BenchmarkDeliverDeny(b *testing.B) {
	for _, bc := range []struct {
		name string
		deny []string
	}{{"nodeny", nil}, {"deny", []string{"secret.>", "audit.*.x"}}} {
		b.Run(bc.name, func(b *testing.B) {
			_, c := denyClient(b, bc.deny...)
			pub := []byte("PUB public.orders.x 16\r\n0123456789abcdef\r\n")
			c.onRead(pub)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				c.onRead(pub)
			}
		})
	}
}
