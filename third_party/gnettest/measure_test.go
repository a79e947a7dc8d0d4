package gnettest

import (
	"bufio"
	"context"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// TestMeasureBlast reports the server's memory while a client blasts 1 GiB at
// a connection whose handler cannot keep up: "paused" pauses reading (TCP
// pushes back), "held" leaves the input unconsumed as unpatched gnet allows
// (all of it piles up in the inbound buffer). Run each in its own process,
// since RSS high-water marks do not come down:
//
//	GNETTEST_MEASURE=1 go test -count=1 -v -run 'TestMeasureBlast/paused' ./third_party/gnettest
//	GNETTEST_MEASURE=1 go test -count=1 -v -run 'TestMeasureBlast/held' ./third_party/gnettest
func TestMeasureBlast(t *testing.T) {
	if os.Getenv("GNETTEST_MEASURE") == "" {
		t.Skip("set GNETTEST_MEASURE=1 to measure")
	}
	const total = 1 << 30
	for _, mode := range []string{"paused", "held"} {
		t.Run(mode, func(t *testing.T) {
			s := &server{pauseOnOpen: mode == "paused", hold: mode == "held", discard: true}
			start(t, s, false, -1)
			nc := s.dial(t)
			var sent atomic.Int64
			done := make(chan error, 1)
			go func() {
				b := make([]byte, 256<<10)
				for sent.Load() < total {
					n, err := nc.Write(b)
					sent.Add(int64(n))
					if err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			begin := time.Now()
			// Wait until the client is done or, paused, has made no progress for a second.
			last, still := int64(-1), time.Now()
			for {
				select {
				case err := <-done:
					if err != nil {
						t.Fatal(err)
					}
				case <-time.After(100 * time.Millisecond):
					if n := sent.Load(); n != last {
						last, still = n, time.Now()
						continue
					}
					// The held server must take it all; the paused one stops it.
					if mode == "held" || time.Since(still) < time.Second {
						continue
					}
				}
				break
			}
			var inbound int
			s.onLoop(t, func(c gnet.Conn) { inbound = c.InboundBuffered() })
			report(t, mode, sent.Load(), inbound, time.Since(begin))

			if mode == "paused" {
				// Let it through: the handler discards, the client finishes.
				t0 := time.Now()
				s.resume(t, -1)
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				s.waitN(t, total)
				d := time.Since(t0)
				t.Logf("after ResumeRead: the rest of the 1 GiB arrived in %v (%.0f MB/s)", d, float64(total-last)/d.Seconds()/1e6)
				report(t, "paused, after resume", sent.Load(), 0, time.Since(begin))
			}
		})
	}
}

// waitN waits until a discarding handler has consumed n bytes.
func (s *server) waitN(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		s.mu.Lock()
		got := s.gotN
		s.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-s.progress:
		case <-deadline:
			t.Fatalf("server consumed %d bytes, want %d", got, n)
		}
	}
}

func report(t testing.TB, what string, sent int64, inbound int, d time.Duration) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("%s: client wrote %d MiB in %v; server inbound buffer %d KiB; heap in use %d MiB, sys %d MiB; RSS %s, peak RSS %s",
		what, sent>>20, d.Round(time.Millisecond), inbound>>10, ms.HeapInuse>>20, ms.Sys>>20, procStatus("VmRSS"), procStatus("VmHWM"))
}

func procStatus(key string) string {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return "?"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return "?"
}

// BenchmarkPauseResume measures a PauseRead+ResumeRead pair on an idle
// connection, run on its event loop (two epoll_ctl calls on Linux):
//
//	go test -run '^$' -bench PauseResume ./third_party/gnettest
func BenchmarkPauseResume(b *testing.B) {
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			s := &server{}
			start(b, s, m.et, -1)
			s.dial(b)
			var c gnet.Conn
			s.mu.Lock()
			c = s.conn
			s.mu.Unlock()
			done := make(chan error, 1)
			b.ResetTimer()
			err := c.EventLoop().Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
				for i := 0; i < b.N; i++ {
					if err := c.PauseRead(); err != nil {
						done <- err
						return nil
					}
					if err := c.ResumeRead(); err != nil {
						done <- err
						return nil
					}
				}
				done <- nil
				return nil
			}))
			if err != nil {
				b.Fatal(err)
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
		})
	}
}
