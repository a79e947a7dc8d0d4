package loop

import "testing"

// TestAccountPubPathAllocs: a client of an account other than $G
// publishes on its own account's cache (client.cache, picked at CONNECT):
// matching and delivering allocate nothing per message, as in $G, and the
// message stays in the account.
func TestAccountPubPathAllocs(t *testing.T) {
	s, err := New(Options{IO: IOGoroutine, Loops: 1, Accounts: []*Account{
		{Name: "A", Users: []*User{{Username: "a", Password: "a"}}},
		{Name: "B", Users: []*User{{Username: "b", Password: "b"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	login := func(u string) *client {
		c, _ := newFakeClient(s)
		c.onRead([]byte(`CONNECT {"user":"` + u + `","pass":"` + u + `","verbose":false}` + "\r\nSUB foo.bar 1\r\n"))
		if !c.connected.Load() || c.acc.name != "A" && c.acc.name != "B" {
			t.Fatalf("%s not connected into its account", u)
		}
		return c
	}
	a, b := login("a"), login("b")
	if a.cache == b.cache || a.acc.sl == s.sl {
		t.Fatal("accounts share a cache or the global sublist")
	}
	pub := []byte("PUB foo.bar 16\r\n0123456789abcdef\r\n")
	a.onRead(pub)
	if n := testing.AllocsPerRun(1000, func() { a.onRead(pub) }); n != 0 {
		t.Fatalf("%v allocations per PUB in account A", n)
	}
	if b.subs["1"].delivered != 0 {
		t.Fatalf("B's subscriber got %d of A's messages", b.subs["1"].delivered)
	}
	if a.subs["1"].delivered == 0 {
		t.Fatal("A's subscriber got nothing")
	}
}
