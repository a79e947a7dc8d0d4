package gnettest

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// A paused connection is not read: the client's writes block once the socket
// buffers are full, the server holds at most one read of input, and after
// resuming (twice, the first time with data waiting and the client idle)
// every byte arrives once and in order.
func TestPauseReadBackpressure(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			const step = 100_000
			s := &server{}
			start(t, s, m.et, step)
			nc := s.dial(t)
			w := &writer{nc: nc}

			sent := w.fill(t)
			wait(t, s.pausedCh, "pause")
			s.waitGot(t, step)
			s.checkPaused(t)
			if sent < step+readCap {
				t.Fatalf("client blocked after %d bytes, before the server's budget and read buffer were full", sent)
			}
			t.Logf("client blocked after %d bytes, server consumed %d", sent, step)

			// Data is waiting in the inbound buffer and the socket, the
			// client writes nothing: resuming must find it (in ET mode
			// there is no new edge) and the handler pauses again.
			s.resume(t, step)
			wait(t, s.pausedCh, "second pause")
			s.waitGot(t, 2*step)
			s.checkPaused(t)

			s.resume(t, -1)
			s.waitGot(t, sent)
			w.write(t, 1<<20)
			if err := nc.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			wait(t, s.closed, "OnClose")
			s.mu.Lock()
			defer s.mu.Unlock()
			if len(s.got) != w.off {
				t.Fatalf("server got %d bytes, client sent %d", len(s.got), w.off)
			}
			checkPat(t, "server input", s.got, 0)
			if s.pausedTraffic != 0 {
				t.Fatalf("OnTraffic ran %d times while paused", s.pausedTraffic)
			}
		})
	}
}

// Pausing with output pending (and writing more while paused) still flushes
// all of it to a slow reader, and draining it does not turn reading back on.
func TestPauseReadFlushesOutput(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			const out = 16 << 20 // more than the socket buffers hold
			s := &server{writeBack: out}
			start(t, s, m.et, -1)
			nc := s.dial(t)
			_ = nc.SetReadBuffer(256 << 10) // no autotuning: keep output pending
			w := &writer{nc: nc}
			w.write(t, 1)
			wait(t, s.pausedCh, "pause")

			sent := w.fill(t)
			s.checkPaused(t)
			s.onLoop(t, func(c gnet.Conn) {
				if c.OutboundBuffered() == 0 {
					t.Errorf("no output pending: the test does not cover flushing while paused")
				}
			})

			b := make([]byte, out)
			_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(nc, b); err != nil {
				t.Fatalf("reading the server's output: %v", err)
			}
			checkPat(t, "server output", b, 0)
			s.onLoop(t, func(c gnet.Conn) {
				if n := c.OutboundBuffered(); n != 0 {
					t.Errorf("%d bytes of output still pending after the client read all", n)
				}
			})

			// Output is drained; input must still be off.
			sent2 := w.fill(t)
			s.checkPaused(t)
			s.mu.Lock()
			got := len(s.got)
			s.mu.Unlock()
			if got >= sent {
				t.Fatalf("server consumed %d bytes while paused (client sent %d)", got, sent)
			}

			s.resume(t, -1)
			if err := nc.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			wait(t, s.closed, "OnClose")
			s.mu.Lock()
			defer s.mu.Unlock()
			if len(s.got) != sent2 {
				t.Fatalf("server got %d bytes, client sent %d", len(s.got), sent2)
			}
			checkPat(t, "server input", s.got, 0)
		})
	}
}

// The server closing a paused connection closes and cleans it up.
func TestPauseReadServerClose(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			s := &server{pauseOnOpen: true}
			start(t, s, m.et, -1)
			nc := s.dial(t)
			(&writer{nc: nc}).fill(t)
			s.onLoop(t, func(c gnet.Conn) {
				if err := c.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			wait(t, s.closed, "OnClose")
			_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := nc.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("client read after server close: %v, want EOF or reset", err)
			}
			checkGone(t, s)
		})
	}
}

// Stopping the engine closes a paused connection too.
func TestPauseReadEngineStop(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			s := &server{pauseOnOpen: true}
			start(t, s, m.et, -1)
			nc := s.dial(t)
			(&writer{nc: nc}).fill(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := s.eng.Stop(ctx); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			wait(t, s.closed, "OnClose")
			_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := nc.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("client read after engine stop: %v, want EOF or reset", err)
			}
		})
	}
}

// A remote EOF on a paused connection waits behind its unread data: it is
// seen, after that data, once reading resumes.
func TestPauseReadRemoteEOF(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			s := &server{pauseOnOpen: true}
			start(t, s, m.et, -1)
			nc := s.dial(t)
			sent := (&writer{nc: nc}).fill(t)
			if err := nc.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			// The FIN is on the server's socket at once (loopback); give a
			// wrongly armed poller a moment to report it.
			select {
			case <-s.closed:
				t.Fatal("paused connection closed on the remote's EOF before its data was read")
			case <-time.After(100 * time.Millisecond):
			}
			s.resume(t, -1)
			wait(t, s.closed, "OnClose")
			s.mu.Lock()
			defer s.mu.Unlock()
			if len(s.got) != sent {
				t.Fatalf("server got %d bytes, client sent %d", len(s.got), sent)
			}
			checkPat(t, "server input", s.got, 0)
		})
	}
}

// A reset of a paused connection closes it without waiting for a resume.
func TestPauseReadRemoteReset(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			s := &server{pauseOnOpen: true}
			start(t, s, m.et, -1)
			nc := s.dial(t)
			(&writer{nc: nc}).fill(t)
			_ = nc.SetLinger(0)
			_ = nc.Close() // RST
			wait(t, s.closed, "OnClose")
			checkGone(t, s)
		})
	}
}

// Input left in the inbound buffer when pausing, with nothing more on the
// socket to wake the loop, is handed to OnTraffic after resuming.
func TestPauseReadResumeDeliversBuffered(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			s := &server{}
			start(t, s, m.et, 300)
			nc := s.dial(t)
			w := &writer{nc: nc}
			w.write(t, 1000)
			wait(t, s.pausedCh, "pause")
			s.onLoop(t, func(c gnet.Conn) {
				if n := c.InboundBuffered(); n == 0 {
					t.Errorf("nothing buffered: the client's 1000 bytes came in pieces, the test proves nothing")
				}
			})
			s.resume(t, -1)
			s.waitGot(t, 1000)
			s.mu.Lock()
			defer s.mu.Unlock()
			checkPat(t, "server input", s.got, 0)
		})
	}
}

// Pause and resume are idempotent, refused on closed connections, and a
// connection resumed before anything arrived reads normally.
func TestPauseReadAPI(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			s := &server{}
			start(t, s, m.et, -1)
			nc := s.dial(t)
			s.onLoop(t, func(c gnet.Conn) {
				for i, err := range []error{c.ResumeRead(), c.PauseRead(), c.PauseRead(), c.ResumeRead(), c.ResumeRead()} {
					if err != nil {
						t.Errorf("call %d: %v", i, err)
					}
				}
			})
			w := &writer{nc: nc}
			w.write(t, 1000)
			s.waitGot(t, 1000)
			_ = nc.Close()
			wait(t, s.closed, "OnClose")
			s.onLoop(t, func(c gnet.Conn) {
				if err := c.PauseRead(); !errors.Is(err, net.ErrClosed) {
					t.Errorf("PauseRead on a closed connection: %v, want net.ErrClosed", err)
				}
				if err := c.ResumeRead(); !errors.Is(err, net.ErrClosed) {
					t.Errorf("ResumeRead on a closed connection: %v, want net.ErrClosed", err)
				}
			})
		})
	}
}

// checkGone asserts the engine dropped the connection.
func checkGone(t *testing.T, s *server) {
	t.Helper()
	if n := s.eng.CountConnections(); n != 0 {
		t.Fatalf("engine still counts %d connections", n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pausedTraffic != 0 {
		t.Fatalf("OnTraffic ran %d times while paused", s.pausedTraffic)
	}
}
