package loop

import "testing"

// countLink is a Link that counts what it is given.
type countLink struct {
	n      int
	queues []string
}

func (l *countLink) Forward(subject, reply []byte, hdrLen int, msg []byte, queues []string, later bool) bool {
	l.n++
	l.queues = append(l.queues[:0], queues...)
	return false
}

func (l *countLink) Wake() {}

// TestLinkForwardOnceNoAllocs: a message matching several of a link's
// interests goes to it once, allocating nothing; a queue group with a
// local member keeps the message here, and one without names itself.
func TestLinkForwardOnceNoAllocs(t *testing.T) {
	s, err := New(Options{IO: IOGoroutine, Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := newFakeClient(s)
	l := &countLink{}
	s.LinkSubscribe(l, "foo.>", "", nil)
	s.LinkSubscribe(l, "foo.bar", "", nil)
	c.onRead([]byte("SUB foo.bar 1\r\n"))
	pub := []byte("PUB foo.bar 2\r\nhi\r\n")
	c.onRead(pub)
	if l.n != 1 || len(l.queues) != 0 {
		t.Fatalf("forwarded %d times (queues %v), want once, plain", l.n, l.queues)
	}
	if n := testing.AllocsPerRun(1000, func() { c.onRead(pub) }); n != 0 {
		t.Fatalf("%v allocations per message to a link", n)
	}

	l.n = 0
	s.LinkSubscribe(l, "work", "q", nil)
	c.onRead([]byte("SUB work q 2\r\n"))
	for range 100 {
		c.onRead([]byte("PUB work 1\r\nx\r\n"))
	}
	if l.n != 0 {
		t.Fatalf("%d of 100 went over the link with a local member", l.n)
	}
	c.onRead([]byte("UNSUB 2\r\nPUB work 1\r\nx\r\n"))
	if l.n != 1 || len(l.queues) != 1 || l.queues[0] != "q" {
		t.Fatalf("no local member: forwarded %d times, queues %v", l.n, l.queues)
	}
}

// TestLinkPublishNoAllocs: a message from a link reaches local
// subscribers without allocating, and never goes back to that link.
func TestLinkPublishNoAllocs(t *testing.T) {
	s, err := New(Options{IO: IOGoroutine, Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := newFakeClient(s)
	c.onRead([]byte("SUB foo 1\r\n"))
	l := &countLink{}
	s.LinkSubscribe(l, "foo", "", nil)
	p := s.NewLinkPublisher(l)
	subj, msg := []byte("foo"), []byte("hi")
	before := s.shard(0).outMsgs.Load()
	p.Publish(subj, nil, -1, msg, nil)
	if got := s.shard(0).outMsgs.Load() - before; got != 1 || l.n != 0 {
		t.Fatalf("%d local deliveries, %d back over the link; want 1 and 0", got, l.n)
	}
	if n := testing.AllocsPerRun(1000, func() { p.Publish(subj, nil, -1, msg, nil) }); n != 0 {
		t.Fatalf("%v allocations per message from a link", n)
	}
}
