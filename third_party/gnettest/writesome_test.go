package gnettest

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// streamer sends total pattern bytes to its one client with WritevSome,
// continuing from OnWritable whenever the socket was full, optionally after
// putting first bytes through Writev (buffered) and with reading paused.
// Fields below mu are guarded by it.
type streamer struct {
	gnet.BuiltinEventEngine
	eng      gnet.Engine
	booted   chan struct{}
	done     chan error
	total    int
	first    int  // bytes sent with Writev before WritevSome takes over
	pause    bool // PauseRead once the socket is full
	paused   bool // loop-owned
	buf      []byte
	off      int // loop-owned: bytes handed to the socket (or to gnet's buffer)
	writable chan struct{}
	full     chan struct{} // a value when a write was cut short

	mu        sync.Mutex
	calls     int // OnWritable calls
	buffered  int // most OutboundBuffered seen after a WritevSome
	writeErr  error
	streaming bool
}

func (s *streamer) OnBoot(eng gnet.Engine) gnet.Action {
	s.eng = eng
	close(s.booted)
	return gnet.None
}

func (s *streamer) OnTraffic(c gnet.Conn) gnet.Action {
	_, _ = c.Discard(-1)
	s.mu.Lock()
	started := s.streaming
	s.streaming = true
	s.mu.Unlock()
	if started {
		return gnet.None
	}
	if s.first > 0 {
		if _, err := c.Writev([][]byte{s.buf[:s.first]}); err != nil {
			s.fail(err)
		}
		s.off = s.first
	}
	s.send(c)
	return gnet.None
}

func (s *streamer) OnWritable(c gnet.Conn) gnet.Action {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	select {
	case s.writable <- struct{}{}:
	default:
	}
	s.send(c)
	return gnet.None
}

// send writes on until the socket is full or everything went.
func (s *streamer) send(c gnet.Conn) {
	for s.off < s.total {
		end := min(s.off+256<<10, s.total)
		// Several iovecs per call, as a broker's output chunks.
		var iov [][]byte
		for p := s.off; p < end; p += 64 << 10 {
			iov = append(iov, s.buf[p:min(p+64<<10, end)])
		}
		n, err := c.WritevSome(iov)
		if err != nil {
			s.fail(err)
			return
		}
		s.off += n
		s.mu.Lock()
		s.buffered = max(s.buffered, c.OutboundBuffered()-s.first)
		s.mu.Unlock()
		if n < end-(s.off-n) {
			// Pausing now must keep the writable interest the cut
			// short write asked for.
			if s.pause && !s.paused {
				s.paused = true
				if err := c.PauseRead(); err != nil {
					s.fail(err)
				}
			}
			select {
			case s.full <- struct{}{}:
			default:
			}
			return // OnWritable continues
		}
	}
}

func (s *streamer) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.writeErr == nil {
		s.writeErr = err
	}
}

// WritevSome leaves what the socket does not take with the caller (gnet
// buffers nothing) and OnWritable brings the caller back until every byte
// went, in order: plain, with reading paused (so writable interest must
// survive the pause), and behind bytes gnet itself buffered (WritevSome then
// writes nothing and OnWritable follows the drain).
func TestWritevSome(t *testing.T) {
	cases := []struct {
		name  string
		pause bool
		first int
	}{
		{"plain", false, 0},
		{"paused", true, 0},
		{"behind-buffered", false, 2 << 20},
	}
	for _, m := range modes {
		for _, tc := range cases {
			t.Run(m.name+"/"+tc.name, func(t *testing.T) {
				const total = 8 << 20
				s := &streamer{
					booted: make(chan struct{}), done: make(chan error, 1),
					total: total, first: tc.first, pause: tc.pause,
					buf: make([]byte, total), writable: make(chan struct{}, 1),
					full: make(chan struct{}, 1),
				}
				fillPat(s.buf, 0)
				go func() {
					s.done <- gnet.Run(s, "tcp://127.0.0.1:0", gnet.WithNumEventLoop(1),
						gnet.WithEdgeTriggeredIO(m.et), gnet.WithLogger(quiet{}))
				}()
				select {
				case <-s.booted:
				case err := <-s.done:
					t.Fatalf("gnet.Run: %v", err)
				}
				t.Cleanup(func() {
					_ = s.eng.Stop(context.Background())
					<-s.done
				})
				nc, err := net.Dial("tcp", boundAddr(t, s.eng))
				if err != nil {
					t.Fatal(err)
				}
				defer nc.Close()
				_ = nc.(*net.TCPConn).SetReadBuffer(128 << 10)
				if _, err := nc.Write([]byte{1}); err != nil {
					t.Fatal(err)
				}
				// Read nothing until the socket is full and the server
				// waits for room: then OnWritable must bring the rest.
				wait(t, s.full, "a write cut short")
				got := make([]byte, total)
				_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
				if _, err := io.ReadFull(nc, got); err != nil {
					t.Fatalf("read: %v", err)
				}
				checkPat(t, "client input", got, 0)
				s.mu.Lock()
				defer s.mu.Unlock()
				if s.writeErr != nil {
					t.Fatal(s.writeErr)
				}
				if s.calls == 0 {
					t.Fatal("OnWritable never called, yet 8 MiB cannot fit the socket buffers")
				}
				if s.buffered > 0 {
					t.Fatalf("gnet buffered %d bytes of WritevSome output", s.buffered)
				}
			})
		}
	}
}
