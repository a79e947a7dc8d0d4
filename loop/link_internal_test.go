package loop

import (
	"bufio"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

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

// wakeLink counts what a gnet loop hands it: messages and wakeups.
type wakeLink struct{ msgs, laters, wakes atomic.Int64 }

func (l *wakeLink) Forward(subject, reply []byte, hdrLen int, msg []byte, queues []string, later bool) bool {
	l.msgs.Add(1)
	if later {
		l.laters.Add(1)
	}
	return later
}

func (l *wakeLink) Wake() { l.wakes.Add(1) }

// TestLinkWokenPerRead: on a gnet loop, a read of many publishes to a
// link wakes its writer once per read, not once per message.
func TestLinkWokenPerRead(t *testing.T) {
	s, err := New(Options{Host: "127.0.0.1", Port: -1, Loops: 1, LogWriter: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	l := &wakeLink{}
	s.LinkSubscribe(l, "foo", "", nil)
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	br := bufio.NewReader(nc)
	br.ReadString('\n') // INFO
	const n = 200
	b := []byte("CONNECT {\"verbose\":false}\r\n")
	for range n {
		b = append(b, "PUB foo 2\r\nhi\r\n"...)
	}
	b = append(b, "PING\r\n"...)
	nc.Write(b)
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := br.ReadString('\n'); err != nil || line != "PONG\r\n" {
		t.Fatalf("%q %v", line, err)
	}
	if l.msgs.Load() != n || l.laters.Load() != n {
		t.Fatalf("%d messages, %d deferred; want %d", l.msgs.Load(), l.laters.Load(), n)
	}
	// One wakeup per read; the kernel may split the write into a few.
	if w := l.wakes.Load(); w < 1 || w > n/10 {
		t.Fatalf("%d wakeups for %d messages", w, n)
	}
}
