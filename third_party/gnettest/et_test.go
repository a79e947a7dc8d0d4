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

// etFairServer echoes what its second connection (the prober) sends, and
// consumes what its first (the flooder) sends slowly, each OnTraffic taking
// etSlowTraffic, the way a loaded handler does.
type etFairServer struct {
	gnet.BuiltinEventEngine
	eng    gnet.Engine
	booted chan struct{}

	mu         sync.Mutex
	flooder    gnet.Conn
	flooderIn  int
	flooderRun chan struct{} // closed at the flooder's first OnTraffic
}

const etSlowTraffic = 20 * time.Millisecond

func (s *etFairServer) OnBoot(eng gnet.Engine) gnet.Action {
	s.eng = eng
	close(s.booted)
	return gnet.None
}

func (s *etFairServer) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flooder == nil {
		s.flooder = c
	}
	return nil, gnet.None
}

func (s *etFairServer) OnTraffic(c gnet.Conn) gnet.Action {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, _ := c.Next(-1)
	if c == s.flooder {
		if s.flooderIn == 0 {
			close(s.flooderRun)
		}
		s.flooderIn += len(b)
		time.Sleep(etSlowTraffic) // a slow handler, not synchronisation
		return gnet.None
	}
	_, _ = c.Write(b)
	return gnet.None
}

// In ET mode a connection whose remote writes faster than the loop consumes
// is read one chunk per poll round: the other connections of the loop are
// served between two chunks. Before gnet patch 3 the read cut short at the
// chunk re-queued itself as a task, which ran up to 256 times in one round
// (here 256 chunks of one slow OnTraffic each, over 5 s) before the loop
// polled again, and the prober's round trips waited that long.
func TestETChunkedReadDoesNotStarveLoop(t *testing.T) {
	s := &etFairServer{booted: make(chan struct{}), flooderRun: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		// One read buffer per chunk: each chunk is one slow OnTraffic.
		done <- gnet.Run(s, "tcp://127.0.0.1:0", gnet.WithNumEventLoop(1), gnet.WithReadBufferCap(readCap),
			gnet.WithEdgeTriggeredIO(true), gnet.WithEdgeTriggeredIOChunk(readCap), gnet.WithLogger(quiet{}))
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

	flood, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer flood.Close()
	go func() {
		b := make([]byte, 32<<10)
		for {
			if _, err := flood.Write(b); err != nil {
				return // closed at the end of the test
			}
		}
	}()
	wait(t, s.flooderRun, "flooder OnTraffic")

	probe, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	// Fair service costs a few slow OnTraffic calls per round trip; the
	// starvation above costs 256 of them (over 5 s).
	const limit = 3 * time.Second
	b := []byte{'x'}
	var worst time.Duration
	for i := 0; i < 20; i++ {
		start := time.Now()
		if _, err := probe.Write(b); err != nil {
			t.Fatal(err)
		}
		_ = probe.SetReadDeadline(start.Add(limit))
		if _, err := io.ReadFull(probe, b); err != nil {
			t.Fatalf("round trip %d beside a flooding connection: %v (limit %v)", i, err, limit)
		}
		worst = max(worst, time.Since(start))
	}
	s.mu.Lock()
	in := s.flooderIn
	s.mu.Unlock()
	t.Logf("worst round trip %v, flooder consumed %d bytes", worst, in)
}
