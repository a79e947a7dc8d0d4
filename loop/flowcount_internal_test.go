package loop

import "testing"

// TestClosedGatesCount: a loop's count of closed client gates follows
// every transition (close, stall, open, release), idempotent ones
// included, so holdForRemote may skip the subscribers' gates at 0.
func TestClosedGatesCount(t *testing.T) {
	s, err := New(Options{IO: IOGnet, Loops: 2})
	if err != nil {
		t.Fatal(err)
	}
	lp := s.tr.(*gnetTransport).loops[1]
	c, _ := newFakeClient(s)
	c.lp = lp
	g := &c.fc.gate
	step := func(what string, f func(), want int32) {
		t.Helper()
		f()
		if n := lp.closedGates.Load(); n != want {
			t.Fatalf("after %s: %d closed gates, want %d", what, n, want)
		}
	}
	step("close", func() { g.set(flowOver) }, 1)
	step("close again", func() { g.set(flowOver) }, 1)
	step("stall", g.stall, 0)
	step("stall again", g.stall, 0)
	step("close a stalled gate", func() { g.set(flowOver) }, 1)
	step("open", func() { g.open(flowOK) }, 0)
	step("open again", func() { g.open(flowOK) }, 0)
	step("close", func() { g.set(flowOver) }, 1)
	step("release", c.releaseFlow, 0)
	if n := s.tr.(*gnetTransport).loops[0].closedGates.Load(); n != 0 {
		t.Fatalf("loop 0 counted %d", n)
	}
}

// TestGateRefusesInternalWaitersOnceClosed: a push consumer holding a match
// made before a subscriber's cleanup must not start waiting at its gate
// afterwards (nobody would open it); before cleanup, a stalled gate takes
// it and cleanup resumes it.
func TestGateRefusesInternalWaitersOnceClosed(t *testing.T) {
	s, err := New(Options{IO: IOGoroutine})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := newFakeClient(s)
	c.fc.gate.stall()
	resumed := 0
	if !c.fc.gate.addFunc(func() { resumed++ }) {
		t.Fatal("a stalled gate refused an internal waiter")
	}
	c.fc.gate.watch.Stop()
	c.cleanup()
	if resumed != 1 {
		t.Fatalf("cleanup resumed %d internal waiters, want 1", resumed)
	}
	if c.fc.gate.addFunc(func() { resumed++ }) {
		t.Fatal("a closed client's gate took an internal waiter")
	}
}
