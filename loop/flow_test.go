package loop_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	"github.com/nats-io/nats.go"
)

// flowTransports are the set-ups flow control is checked on: gnet with one,
// two and three loops (publisher and subscriber on the same loop or not)
// and the goroutine transport.
var flowTransports = append([]looptest.Transport{{Name: "gnet-2loops", IO: loop.IOGnet, Loops: 2}}, looptest.Transports...)

func eachFlowTransport(t *testing.T, opts loop.Options, f func(t *testing.T, s *loop.Server)) {
	for _, tr := range flowTransports {
		t.Run(tr.Name, func(t *testing.T) {
			o := opts
			o.IO, o.Loops = tr.IO, tr.Loops
			f(t, startServer(t, o))
		})
	}
}

// streamOneToOne publishes n messages of size bytes as fast as nats.go
// goes to one subscriber with unlimited pending limits, and checks that
// every one arrives and nobody is cut as a slow consumer.
func streamOneToOne(t *testing.T, s *loop.Server, n, size int, opts ...nats.Option) {
	c := countTo(t, connect(t, s, opts...), "flow", n)
	publishN(t, connect(t, s, opts...), "flow", n, size)
	waitAll(t, s, c.done, c.got.Load, n, true)
}

// counted is a subscription that counts its messages; done closes at the
// nth.
type counted struct {
	got  atomic.Int64
	done chan struct{}
}

// countTo subscribes nc to subject with unlimited pending limits (nats.go
// must never be the one to drop) and counts what arrives.
func countTo(t *testing.T, nc *nats.Conn, subject string, n int) *counted {
	t.Helper()
	c := &counted{done: make(chan struct{})}
	sb, err := nc.Subscribe(subject, func(*nats.Msg) {
		if c.got.Add(1) == int64(n) {
			close(c.done)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = sb.SetPendingLimits(-1, -1)
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return c
}

// publishN publishes n messages of size bytes as fast as nats.go goes,
// then waits for the server to have read them all.
func publishN(t *testing.T, nc *nats.Conn, subject string, n, size int) {
	t.Helper()
	payload := make([]byte, size)
	for i := 0; i < n; i++ {
		if err := nc.Publish(subject, payload); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.FlushTimeout(60 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// waitAll waits for done, failing at once if noSlow and a slow consumer
// was cut (it would never be done).
func waitAll(t *testing.T, s *loop.Server, done <-chan struct{}, got func() int64, n int, noSlow bool) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			if sc := s.SlowConsumers(); noSlow && sc != 0 {
				t.Fatalf("%d slow consumers, want 0", sc)
			}
			return
		case <-tick.C:
			if noSlow && s.SlowConsumers() != 0 {
				t.Fatalf("received %d of %d; a slow consumer was cut", got(), n)
			}
		case <-deadline:
			t.Fatalf("received %d of %d; slow consumers %d", got(), n, s.SlowConsumers())
		}
	}
}

// TestFlowControl16KiB: a subscriber that keeps reading gets all of a
// 16 KiB stream that outruns it; the publisher is slowed instead.
func TestFlowControl16KiB(t *testing.T) {
	eachFlowTransport(t, loop.Options{}, func(t *testing.T, s *loop.Server) {
		streamOneToOne(t, s, 50000/flowScale, 16<<10)
	})
}

// TestFlowControl1KiB: the same with many small messages.
func TestFlowControl1KiB(t *testing.T) {
	eachFlowTransport(t, loop.Options{}, func(t *testing.T, s *loop.Server) {
		streamOneToOne(t, s, 200000/flowScale, 1<<10)
	})
}

// stalledSub subscribes a raw connection that never reads again; its
// receive buffer is kept small so that the kernel holds little for it.
func stalledSub(t *testing.T, s *loop.Server, subject, queue string) *rawConn {
	rc := dialRaw(t, s)
	if tc, ok := rc.nc.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(64 << 10)
	}
	rc.send("CONNECT {\"verbose\":false}\r\nSUB %s %s 1\r\nPING\r\n", subject, queue)
	rc.expect("PONG")
	return rc
}

// expectSlowConsumerCut reads what the server sent a stalled subscriber
// and checks that it was cut: the stream ends, with -ERR 'Slow Consumer'
// when the server could still write it.
func expectSlowConsumerCut(t *testing.T, s *loop.Server, rc *rawConn) {
	t.Helper()
	waitFor(t, func() bool { return s.SlowConsumers() >= 1 })
	_ = rc.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	rest, err := io.ReadAll(rc.r)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("stalled subscriber not closed")
	}
	if len(rest) > 80<<20 {
		t.Fatalf("stalled subscriber was sent %d bytes, beyond max_pending", len(rest))
	}
	if !bytes.Contains(rest, []byte("-ERR 'Slow Consumer'")) {
		t.Logf("stream of %d bytes ended without -ERR (%v)", len(rest), err)
	}
}

// throttledSub subscribes a raw connection that keeps reading, but slower
// than a publisher can send: about 200 MB/s. It counts the messages of
// size bytes it receives on subject "flow" with sid 1.
func throttledSub(t *testing.T, s *loop.Server, size int) (got *atomic.Int64) {
	rc := dialRaw(t, s)
	rc.send("CONNECT {\"verbose\":false}\r\nSUB flow 1\r\nPING\r\n")
	rc.expect("PONG")
	per := int64(len(fmt.Sprintf("MSG flow 1 %d\r\n", size)) + size + 2)
	got = new(atomic.Int64)
	go func() {
		buf := make([]byte, 64<<10)
		var total, since int64
		for {
			_ = rc.nc.SetReadDeadline(time.Now().Add(60 * time.Second))
			k, err := rc.r.Read(buf)
			total += int64(k)
			since += int64(k)
			got.Store(total / per)
			if err != nil {
				return
			}
			if since >= 1<<20 {
				since = 0
				time.Sleep(5 * time.Millisecond)
			}
		}
	}()
	return got
}

// TestHealthySubscriberBesideStalled: a subscriber that never reads does
// not hold the publisher or the healthy subscribers hostage: it is cut as a
// slow consumer, the publisher finishes and the healthy subscribers (one
// nats.go, one reading slower than the publisher sends) get every message.
func TestHealthySubscriberBesideStalled(t *testing.T) {
	eachFlowTransport(t, loop.Options{}, func(t *testing.T, s *loop.Server) {
		const n = 300000
		stalled := stalledSub(t, s, "flow", "")
		slowReader := throttledSub(t, s, 512)
		good := connect(t, s)
		var got atomic.Int64
		done := make(chan struct{})
		sb, _ := good.Subscribe("flow", func(*nats.Msg) {
			if got.Add(1) == n {
				close(done)
			}
		})
		_ = sb.SetPendingLimits(-1, -1)
		good.Flush()
		pub := connect(t, s)
		payload := make([]byte, 512)
		start := time.Now()
		for i := 0; i < n; i++ {
			if err := pub.Publish("flow", payload); err != nil {
				t.Fatal(err)
			}
		}
		if err := pub.FlushTimeout(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		t.Logf("published %d in %v", n, time.Since(start))
		waitAll(t, s, done, func() int64 { return got.Load() }, n, false)
		deadline := time.Now().Add(30 * time.Second)
		for slowReader.Load() < n && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if g := slowReader.Load(); g != n {
			t.Fatalf("subscriber reading slower than the publisher received %d of %d", g, n)
		}
		expectSlowConsumerCut(t, s, stalled)
		if sc := s.SlowConsumers(); sc != 1 {
			t.Fatalf("%d slow consumers, want 1 (the stalled one)", sc)
		}
	})
}

// TestQueueGroupStalledMember: a queue member that stops reading stops
// being chosen while another member is healthy, so the healthy one gets
// almost everything (all but what the stalled one took before it was
// found out) and the publisher is not held.
func TestQueueGroupStalledMember(t *testing.T) {
	eachFlowTransport(t, loop.Options{}, func(t *testing.T, s *loop.Server) {
		const n = 200000
		stalledSub(t, s, "work", "q")
		good := connect(t, s)
		var got atomic.Int64
		sb, _ := good.QueueSubscribe("work", "q", func(*nats.Msg) { got.Add(1) })
		_ = sb.SetPendingLimits(-1, -1)
		good.Flush()
		pub := connect(t, s)
		payload := make([]byte, 1024)
		for i := 0; i < n; i++ {
			if err := pub.Publish("work", payload); err != nil {
				t.Fatal(err)
			}
		}
		if err := pub.FlushTimeout(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		// The stalled member took at most its high-water mark and what
		// the kernel buffers before it stopped being chosen.
		const want = n * 3 / 4
		deadline := time.Now().Add(20 * time.Second)
		for got.Load() < want && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if g := got.Load(); g < want {
			t.Fatalf("healthy member received %d of %d, want >= %d", g, n, want)
		}
		t.Logf("healthy member received %d of %d", got.Load(), n)
	})
}

// TestStalledSubscriberWriteDeadline: a subscriber whose socket takes none
// of its pending output for write_deadline is cut as a slow consumer even
// below max_pending, on every transport.
func TestStalledSubscriberWriteDeadline(t *testing.T) {
	eachFlowTransport(t, loop.Options{WriteDeadline: time.Second}, func(t *testing.T, s *loop.Server) {
		stalled := stalledSub(t, s, "flow", "")
		pub := connect(t, s)
		payload := make([]byte, 1024)
		for i := 0; i < 20000; i++ { // ~20 MiB: far below max_pending
			if err := pub.Publish("flow", payload); err != nil {
				t.Fatal(err)
			}
		}
		if err := pub.FlushTimeout(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		expectSlowConsumerCut(t, s, stalled)
	})
}

// TestMeasureFlowMemory (EVNATS_MEASURE=1) reports the heap while a nats.go
// publisher streams 16 KiB messages into a subscriber that reads at about
// 200 MB/s: with flow control the publisher's input waits in the kernel and
// the subscriber's pending output stays near the high-water mark.
func TestMeasureFlowMemory(t *testing.T) {
	if os.Getenv("EVNATS_MEASURE") == "" {
		t.Skip("set EVNATS_MEASURE=1")
	}
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		s := startServer(t, o)
		const n, size = 20000, 16 << 10
		got := throttledSub(t, s, size)
		pub := connect(t, s)
		var peak atomic.Uint64
		stop := make(chan struct{})
		go func() {
			var ms runtime.MemStats
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
			}
		}()
		payload := make([]byte, size)
		start := time.Now()
		for i := 0; i < n; i++ {
			if err := pub.Publish("flow", payload); err != nil {
				t.Fatal(err)
			}
		}
		_ = pub.FlushTimeout(60 * time.Second)
		for got.Load() < n && s.SlowConsumers() == 0 && time.Since(start) < 60*time.Second {
			time.Sleep(10 * time.Millisecond)
		}
		close(stop)
		el := time.Since(start)
		t.Logf("%d x %d B: delivered %d in %v (%.0f MB/s), slow consumers %d, peak heap in use %d MiB",
			n, size, got.Load(), el.Round(time.Millisecond), float64(got.Load())*size/el.Seconds()/1e6, s.SlowConsumers(), peak.Load()>>20)
	})
}

// TestSlowConsumerCountedOnce: a stalled subscriber cut at max_pending
// whose socket then also misses write_deadline (the goroutine transport's
// writer is blocked in the write that never finishes) counts as one slow
// consumer, on every transport.
func TestSlowConsumerCountedOnce(t *testing.T) {
	eachFlowTransport(t, loop.Options{MaxPending: 1 << 20, WriteDeadline: 500 * time.Millisecond}, func(t *testing.T, s *loop.Server) {
		stalled := stalledSub(t, s, "flow", "")
		pub := connect(t, s)
		payload := make([]byte, 1024)
		for i := 0; i < 8192; i++ { // 8 MiB: far beyond max_pending and the socket buffers
			if err := pub.Publish("flow", payload); err != nil {
				t.Fatal(err)
			}
		}
		if err := pub.FlushTimeout(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return s.SlowConsumers() >= 1 })
		// Still not reading, past write_deadline: a second count would
		// show now (nothing signals that none comes).
		time.Sleep(time.Second)
		if sc := s.SlowConsumers(); sc != 1 {
			t.Fatalf("%d slow consumers, want 1", sc)
		}
		expectSlowConsumerCut(t, s, stalled)
	})
}

// TestFlowOptionsConfig: flow_high_water, flow_low_water and
// flow_stall_window are read from the configuration file (sizes and
// durations in nats-server's syntax), and New refuses marks and windows
// that cannot work, naming the key.
func TestFlowOptionsConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "evnats.conf")
	os.WriteFile(path, []byte("max_pending: 16MB\nflow_high_water: 2MB\nflow_low_water: 512KB\nflow_stall_window: \"250ms\"\n"), 0o644)
	var o loop.Options
	if err := loop.ApplyConfigFile(&o, path); err != nil {
		t.Fatal(err)
	}
	if o.MaxPending != 16<<20 || o.FlowHighWater != 2<<20 || o.FlowLowWater != 512<<10 || o.FlowStallWindow != 250*time.Millisecond {
		t.Fatalf("options %+v", o)
	}
	if _, err := loop.New(o); err != nil {
		t.Fatalf("valid flow options refused: %v", err)
	}
	os.WriteFile(path, []byte("flow_stall_window: true\n"), 0o644)
	if err := loop.ApplyConfigFile(&loop.Options{}, path); err == nil || !strings.Contains(err.Error(), "flow_stall_window") {
		t.Fatalf("bad duration: %v", err)
	}
	for _, c := range []struct {
		o    loop.Options
		want string
	}{
		{loop.Options{FlowHighWater: 1 << 20, FlowLowWater: 1 << 20}, "flow_low_water 1048576 must be below flow_high_water 1048576"},
		{loop.Options{FlowLowWater: 8 << 20 /* the default high mark */}, "flow_low_water 8388608 must be below flow_high_water 8388608"},
		{loop.Options{MaxPending: 1 << 20, FlowHighWater: 2 << 20}, "flow_high_water 2097152 is above max_pending 1048576"},
		{loop.Options{FlowHighWater: -1}, "flow_high_water must be positive"},
		{loop.Options{FlowLowWater: -5}, "flow_low_water must be positive"},
		{loop.Options{FlowStallWindow: -time.Second}, "flow_stall_window must be positive"},
	} {
		if _, err := loop.New(c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want %q", c.o, err, c.want)
		}
	}
}

// TestFlowOptionsEffect: the marks and the stall window set how long a
// publisher is held beside a subscriber that never reads. 6 MiB to it
// stays below the default 8 MiB mark, so the publisher is not held; with
// a 64 KiB mark (and at most 4 MiB in the kernel's socket buffers) it is
// held for the stall window, 1 s here, not the default 100 ms.
func TestFlowOptionsEffect(t *testing.T) {
	const window = time.Second
	publish := func(t *testing.T, s *loop.Server, n int) time.Duration {
		stalledSub(t, s, "flow", "")
		pub := connect(t, s)
		payload := make([]byte, 1024)
		start := time.Now()
		for i := 0; i < n; i++ {
			if err := pub.Publish("flow", payload); err != nil {
				t.Fatal(err)
			}
		}
		if err := pub.FlushTimeout(20 * time.Second); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	eachFlowTransport(t, loop.Options{FlowStallWindow: window}, func(t *testing.T, s *loop.Server) {
		if d := publish(t, s, 6144); d >= window {
			t.Fatalf("held %v below the default high-water mark", d)
		}
	})
	eachFlowTransport(t, loop.Options{FlowStallWindow: window, FlowHighWater: 64 << 10}, func(t *testing.T, s *loop.Server) {
		if d := publish(t, s, 6144); d < window {
			t.Fatalf("held %v with a 64 KiB high-water mark, want >= the %v stall window", d, window)
		}
	})
}

// TestHeldBatchesFollowOnWritable: with publisher and subscriber on
// different loops, batches for a subscriber whose socket is full are left
// in its loop's inbox without a wakeup (inbox.go: receive); they must reach
// it once it reads again, also the last ones, after which nothing else
// happens on that loop.
func TestHeldBatchesFollowOnWritable(t *testing.T) {
	const n, size = 400, 16 << 10 // 6.4 MB: past the kernel's buffers, below the high-water mark
	s := startServer(t, loop.Options{Loops: 2})
	// Loops take connections in turn: the subscriber lands on one loop,
	// the publisher on the other.
	rc := dialRaw(t, s)
	if tc, ok := rc.nc.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(64 << 10)
	}
	rc.send("CONNECT {\"verbose\":false}\r\nSUB held 1\r\nPING\r\n")
	rc.expect("PONG")
	publishN(t, connect(t, s), "held", n, size) // all processed: the subscriber has read nothing
	per := len(fmt.Sprintf("MSG held 1 %d\r\n", size)) + size + 2
	want := n * per
	_ = rc.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.CopyN(io.Discard, rc.r, int64(want))
	if err != nil {
		t.Fatalf("subscriber read %d of %d bytes (%d of %d messages): %v", got, want, got/int64(per), n, err)
	}
}
