// Package gnettest tests evnats' patches to the gnet copy in third_party/gnet
// through real sockets, independently of gnet's own test suite.
package gnettest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// readCap is the servers' read buffer: a paused connection may hold at most
// this much unconsumed input.
const readCap = 64 << 10

// pat is the byte at offset i of every test stream; 251 is prime so chunk
// boundaries never line up with the pattern.
func pat(i int) byte { return byte(i % 251) }

func fillPat(b []byte, off int) {
	for i := range b {
		b[i] = pat(off + i)
	}
}

func checkPat(t testing.TB, what string, b []byte, off int) {
	t.Helper()
	for i := range b {
		if b[i] != pat(off+i) {
			t.Fatalf("%s: byte %d is %d, want %d", what, off+i, b[i], pat(off+i))
		}
	}
}

// modes are the gnet I/O modes every test runs in.
var modes = []struct {
	name string
	et   bool
}{{"LT", false}, {"ET", true}}

// server is a one-loop gnet server whose OnTraffic consumes up to budget
// bytes and then pauses reading. Its fields are guarded by mu: the handler
// runs on the loop, the test reads them from its own goroutine.
type server struct {
	gnet.BuiltinEventEngine
	eng    gnet.Engine
	addr   string
	booted chan struct{}
	done   chan error

	pauseOnOpen bool // pause in OnOpen, before any input is read
	writeBack   int  // on the first OnTraffic: pause, then write this many pattern bytes
	hold        bool // OnTraffic consumes nothing: gnet keeps all input in the inbound buffer
	discard     bool // OnTraffic counts what it consumes in gotN instead of keeping it

	mu            sync.Mutex
	conn          gnet.Conn
	budget        int // bytes OnTraffic may still consume before pausing; <0: no limit
	paused        bool
	got           []byte
	gotN          int
	pausedTraffic int   // OnTraffic calls while paused: must stay 0
	maxInbound    int   // most input left unconsumed after an OnTraffic
	closeErr      error // what OnClose got
	opened        chan struct{}
	pausedCh      chan struct{} // a value each time the handler pauses
	progress      chan struct{} // a value (coalesced) after each OnTraffic
	closed        chan struct{}
}

func (s *server) OnBoot(eng gnet.Engine) gnet.Action {
	s.eng = eng
	close(s.booted)
	return gnet.None
}

func (s *server) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conn = c
	if s.pauseOnOpen {
		s.pause(c)
	}
	close(s.opened)
	return nil, gnet.None
}

// pause pauses c; mu is held.
func (s *server) pause(c gnet.Conn) {
	if err := c.PauseRead(); err != nil {
		panic(err)
	}
	s.paused = true
	s.pausedCh <- struct{}{}
}

func (s *server) OnTraffic(c gnet.Conn) gnet.Action {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.paused {
		s.pausedTraffic++
		return gnet.None
	}
	if s.hold {
		return gnet.None
	}
	n := c.InboundBuffered()
	if s.budget >= 0 {
		n = min(n, s.budget)
		s.budget -= n
	}
	b, err := c.Next(n)
	if err != nil {
		panic(err)
	}
	if s.discard {
		s.gotN += len(b)
	} else {
		s.got = append(s.got, b...)
	}
	if s.budget == 0 {
		s.pause(c)
	}
	if s.writeBack > 0 {
		s.pause(c) // before writing, so the writes see a paused connection
		out := make([]byte, s.writeBack)
		fillPat(out, 0)
		s.writeBack = 0
		if _, err := c.Write(out); err != nil {
			panic(err)
		}
	}
	s.maxInbound = max(s.maxInbound, c.InboundBuffered())
	select {
	case s.progress <- struct{}{}:
	default:
	}
	return gnet.None
}

func (s *server) OnClose(_ gnet.Conn, err error) gnet.Action {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeErr = err
	close(s.closed)
	return gnet.None
}

// start runs s on 127.0.0.1 with a random port; budget is its initial one.
func start(t testing.TB, s *server, et bool, budget int) {
	t.Helper()
	s.booted, s.done = make(chan struct{}), make(chan error, 1)
	s.opened, s.closed = make(chan struct{}), make(chan struct{})
	s.pausedCh, s.progress = make(chan struct{}, 16), make(chan struct{}, 1)
	s.budget = budget
	const proto = "tcp://127.0.0.1:0"
	go func() {
		s.done <- gnet.Run(s, proto, gnet.WithNumEventLoop(1), gnet.WithReadBufferCap(readCap),
			gnet.WithEdgeTriggeredIO(et), gnet.WithLogger(quiet{}))
	}()
	select {
	case <-s.booted:
	case err := <-s.done:
		t.Fatalf("gnet.Run: %v", err)
	}
	s.addr = boundAddr(t, s.eng)
	t.Cleanup(func() {
		_ = s.eng.Stop(context.Background())
		if err := <-s.done; err != nil {
			t.Errorf("gnet.Run: %v", err)
		}
	})
}

func boundAddr(t testing.TB, eng gnet.Engine) string {
	fd, err := eng.DupListener("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port)
}

func (s *server) dial(t testing.TB) *net.TCPConn {
	t.Helper()
	nc, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	wait(t, s.opened, "OnOpen")
	return nc.(*net.TCPConn)
}

// onLoop runs fn on the connection's event loop and waits for it.
func (s *server) onLoop(t testing.TB, fn func(c gnet.Conn)) {
	t.Helper()
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	done := make(chan struct{})
	err := c.EventLoop().Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		defer close(done)
		fn(c)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	wait(t, done, "loop task")
}

// resume lets the handler consume budget more bytes (<0: all) and resumes reading.
func (s *server) resume(t testing.TB, budget int) {
	t.Helper()
	s.onLoop(t, func(c gnet.Conn) {
		s.budget, s.paused = budget, false
		if err := c.ResumeRead(); err != nil {
			t.Errorf("ResumeRead: %v", err)
		}
	})
}

// waitGot waits until the handler has consumed n bytes.
func (s *server) waitGot(t testing.TB, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		got := len(s.got)
		s.mu.Unlock()
		if got >= n {
			if got > n {
				t.Fatalf("server consumed %d bytes, want %d", got, n)
			}
			return
		}
		select {
		case <-s.progress:
		case <-deadline:
			t.Fatalf("server consumed %d bytes, want %d", got, n)
		}
	}
}

// checkPaused asserts the handler saw no input while paused and holds at
// most one read of it.
func (s *server) checkPaused(t testing.TB) {
	t.Helper()
	s.onLoop(t, func(c gnet.Conn) {
		if s.pausedTraffic != 0 {
			t.Errorf("OnTraffic ran %d times while paused", s.pausedTraffic)
		}
		if n := c.InboundBuffered(); n > readCap {
			t.Errorf("paused connection buffers %d bytes of input, want <= %d", n, readCap)
		}
		// The guard in gnet's read hides a wrongly armed EPOLLIN (LT mode
		// would spin): look at the interest itself.
		if ev, ok := epollInterest(t, c.Fd()); ok && ev&(unix.EPOLLIN|unix.EPOLLRDHUP) != 0 {
			t.Errorf("paused connection's epoll interest is %#x, want no EPOLLIN/EPOLLRDHUP", ev)
		}
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.maxInbound > readCap {
		t.Errorf("connection buffered up to %d bytes of input, want <= %d", s.maxInbound, readCap)
	}
}

// epollInterest returns the events an epoll instance of this process watches
// for fd, read from /proc/self/fdinfo; false where that is not available.
func epollInterest(t testing.TB, fd int) (uint32, bool) {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, false
	}
	for _, e := range ents {
		if l, _ := os.Readlink("/proc/self/fd/" + e.Name()); l != "anon_inode:[eventpoll]" {
			continue
		}
		info, _ := os.ReadFile("/proc/self/fdinfo/" + e.Name())
		for _, line := range strings.Split(string(info), "\n") {
			// tfd:        9 events:       19 data: ...
			f := strings.Fields(line)
			if len(f) < 4 || f[0] != "tfd:" || f[1] != strconv.Itoa(fd) || f[2] != "events:" {
				continue
			}
			ev, err := strconv.ParseUint(f[3], 16, 32)
			if err != nil {
				t.Fatalf("fdinfo line %q: %v", line, err)
			}
			return uint32(ev), true
		}
	}
	t.Fatalf("fd %d is in no epoll instance", fd)
	return 0, false
}

func wait(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// writer writes the pattern stream to a connection.
type writer struct {
	nc  net.Conn
	off int
	buf []byte
}

// fill writes until the connection stays unwritable for a while, proving the
// peer exerts backpressure, and returns the offset reached.
func (w *writer) fill(t testing.TB) int {
	t.Helper()
	if w.buf == nil {
		w.buf = make([]byte, 32<<10)
	}
	for start := w.off; ; {
		fillPat(w.buf, w.off)
		_ = w.nc.SetWriteDeadline(time.Now().Add(150 * time.Millisecond))
		n, err := w.nc.Write(w.buf)
		w.off += n
		if errors.Is(err, os.ErrDeadlineExceeded) {
			_ = w.nc.SetWriteDeadline(time.Time{})
			return w.off
		}
		if err != nil {
			t.Fatalf("write: %v", err)
		}
		if w.off-start > 1<<30 {
			t.Fatalf("wrote %d bytes to a paused connection without blocking", w.off-start)
		}
	}
}

// write writes n more pattern bytes.
func (w *writer) write(t testing.TB, n int) {
	t.Helper()
	b := make([]byte, n)
	fillPat(b, w.off)
	if _, err := w.nc.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
	w.off += n
}

// quiet drops gnet's logging.
type quiet struct{}

func (quiet) Debugf(string, ...any) {}
func (quiet) Infof(string, ...any)  {}
func (quiet) Warnf(string, ...any)  {}
func (quiet) Errorf(string, ...any) {}
func (quiet) Fatalf(string, ...any) {}
