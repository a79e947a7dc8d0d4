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

// crossServer pauses and resumes its first connection (the publisher) from
// the OnTraffic of its second (the control connection), the way a broker
// pauses publishers from a subscriber's context: 'p' pauses, 'r' resumes,
// each acknowledged with one byte.
type crossServer struct {
	gnet.BuiltinEventEngine
	eng    gnet.Engine
	booted chan struct{}

	mu            sync.Mutex
	pub           gnet.Conn
	paused        bool
	got           []byte
	pausedTraffic int
	pubOpened     chan struct{}
	pubClosed     chan struct{}
}

func (s *crossServer) OnBoot(eng gnet.Engine) gnet.Action {
	s.eng = eng
	close(s.booted)
	return gnet.None
}

func (s *crossServer) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pub == nil {
		s.pub = c
		close(s.pubOpened)
	}
	return nil, gnet.None
}

func (s *crossServer) OnTraffic(c gnet.Conn) gnet.Action {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c == s.pub {
		if s.paused {
			s.pausedTraffic++
			return gnet.None
		}
		b, _ := c.Next(-1)
		s.got = append(s.got, b...)
		return gnet.None
	}
	b, _ := c.Next(-1)
	for _, op := range b {
		var err error
		if op == 'p' {
			err, s.paused = s.pub.PauseRead(), true
		} else {
			err, s.paused = s.pub.ResumeRead(), false
		}
		if err != nil {
			return gnet.Close // the publisher is gone
		}
		_, _ = c.Write([]byte{'k'})
	}
	return gnet.None
}

func (s *crossServer) OnClose(c gnet.Conn, _ error) gnet.Action {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c == s.pub {
		close(s.pubClosed)
	}
	return gnet.None
}

// Pausing and resuming a publisher from another connection's handler, many
// times while it writes flat out, loses, duplicates and reorders nothing, and
// never hands the paused publisher's input to OnTraffic.
func TestPauseReadFromOtherConnection(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			s := &crossServer{booted: make(chan struct{}), pubOpened: make(chan struct{}), pubClosed: make(chan struct{})}
			done := make(chan error, 1)
			go func() {
				done <- gnet.Run(s, "tcp://127.0.0.1:0", gnet.WithNumEventLoop(1), gnet.WithReadBufferCap(readCap),
					gnet.WithEdgeTriggeredIO(m.et), gnet.WithLogger(quiet{}))
			}()
			select {
			case <-s.booted:
			case err := <-done:
				t.Fatalf("gnet.Run: %v", err)
			}
			t.Cleanup(func() {
				_ = s.eng.Stop(context.Background())
				<-done
			})
			addr := boundAddr(t, s.eng)

			pub, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close()
			wait(t, s.pubOpened, "publisher OnOpen") // it must be the first connection
			ctl, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer ctl.Close()

			// The publisher writes until the toggling is over and at least
			// minBytes are out, then closes its side.
			const minBytes = 16 << 20
			stop := make(chan struct{})
			var total int
			wrote := make(chan error, 1)
			go func() {
				b := make([]byte, 32<<10)
				for total = 0; ; total += len(b) {
					if total >= minBytes {
						select {
						case <-stop:
							wrote <- pub.(*net.TCPConn).CloseWrite()
							return
						default:
						}
					}
					fillPat(b, total)
					if _, err := pub.Write(b); err != nil {
						wrote <- err
						return
					}
				}
			}()

			ack := make([]byte, 1)
			for i := 0; i < 100; i++ {
				op := []byte{'p'}
				if i%2 == 1 {
					op[0] = 'r'
				}
				if _, err := ctl.Write(op); err != nil {
					t.Fatal(err)
				}
				_ = ctl.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.ReadFull(ctl, ack); err != nil {
					t.Fatalf("ack %d: %v", i, err)
				}
			}
			close(stop)
			if err := <-wrote; err != nil {
				t.Fatal(err)
			}
			wait(t, s.pubClosed, "publisher OnClose")
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.pausedTraffic != 0 {
				t.Fatalf("OnTraffic ran %d times for the paused publisher", s.pausedTraffic)
			}
			checkPat(t, "publisher input", s.got[:min(len(s.got), total)], 0)
			if len(s.got) != total {
				t.Fatalf("server got %d bytes, publisher sent %d", len(s.got), total)
			}
		})
	}
}
