package mqtt_test

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	mcodec "github.com/evnats/evnats/mqtt/codec"
)

// liveHeap returns the live heap once collected: what the in-process
// server (and the test) still reference.
func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// TestLongTopicsDoNotPinMemory: a publisher sends QoS 0 messages to many
// unique long topics and a "#" subscriber receives them. Neither
// connection's topic caches nor the loops' match caches may keep those
// topics (the review measured 1 GB RSS for 4096 x 60 KB topics on one
// connection, 250 MB per idle "#" subscriber, 263 MB per loop after all
// closed).
func TestLongTopicsDoNotPinMemory(t *testing.T) {
	const (
		n        = 1000
		topicLen = 16 << 10
		// Before the fix: 76-93 MB open, 53-58 MB closed on gnet. The
		// slack is the process-wide free list of batches between loops
		// (bounded), which with 3 loops may keep up to ~20 MB more.
		maxHeld = 32 << 20
	)
	eachTransport(t, func(t *testing.T, o loop.Options) {
		s := startMQTT(t, o)
		sub := dialRaw(t, s)
		sub.connect("sub", true, 0)
		sub.subscribe(1, "#", 0)
		pub := dialRaw(t, s)
		pub.connect("pub", true, 0)
		send := func(topic func(i int) []byte, payload []byte) {
			go func() {
				var b []byte
				for i := range n {
					b = mcodec.AppendPublish(b[:0], topic(i), payload, 0, false, false, 0)
					if _, err := pub.conn.Write(b); err != nil {
						return
					}
				}
				_, _ = pub.conn.Write([]byte{mcodec.PINGREQ << 4, 0})
			}()
			for i := range n {
				if p := sub.readPublish(); !strings.HasSuffix(p.topic, fmt.Sprintf("/%d", i)) {
					t.Fatalf("message %d on topic ...%s", i, p.topic[max(0, len(p.topic)-8):])
				}
			}
			if typ, _, _ := pub.read(); typ != mcodec.PINGRESP {
				t.Fatalf("want PINGRESP, got type %d", typ)
			}
		}
		// The same bytes on short topics first: buffers that traffic
		// grows and recycles (between loops, a bounded free list) are
		// then part of the baseline.
		big := strings.Repeat("x", topicLen)
		send(func(i int) []byte { return fmt.Appendf(nil, "w/%d", i) }, []byte(big))
		base := liveHeap()

		send(func(i int) []byte { return fmt.Appendf(nil, "%s/%d", big, i) }, []byte("hi"))
		open := liveHeap() - base
		pub.conn.Close()
		sub.conn.Close()
		waitClients(t, s, 0)
		closed := liveHeap() - base
		t.Logf("%d publishes to unique %d-byte topics: live heap +%d KB with both connections open, +%d KB after they closed",
			n, topicLen, open>>10, closed>>10)
		if open > maxHeld || closed > maxHeld {
			t.Fatalf("server keeps %d MB (open) / %d MB (closed) for topics already delivered; want < %d MB",
				open>>20, closed>>20, maxHeld>>20)
		}
	})
}

// waitClients waits until the server counts n open connections.
func waitClients(t *testing.T, s *loop.Server, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.NumClients() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open, want %d", s.NumClients(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// lineCounter counts the log lines written to it.
type lineCounter struct{ n atomic.Int64 }

func (l *lineCounter) Write(p []byte) (int, error) {
	l.n.Add(int64(bytes.Count(p, []byte("\n"))))
	return len(p), nil
}

// TestLargeSubscribeReleasesMemory: connections that each sent one
// SUBSCRIBE of 60,000 filters (refused past max_subs) and one UNSUBSCRIBE
// of them and idle keep no
// per-filter lists, and the refusals are logged once a packet, not once a
// filter.
func TestLargeSubscribeReleasesMemory(t *testing.T) {
	const (
		conns   = 20
		filters = 60_000
		maxHeld = 12 << 20 // before the fix: about conns x filters x 34 bytes = 40 MB
	)
	const digits = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	body, unsub := []byte{0, 1}, []byte{0, 2}
	for i := range filters {
		f := string([]byte{digits[i%62], digits[i/62%62], digits[i/62/62%62]})
		body = append(str(body, f), 0)
		unsub = str(unsub, f)
	}
	subscribe := packet(mcodec.SUBSCRIBE<<4|2, body)
	unsubscribe := packet(mcodec.UNSUBSCRIBE<<4|2, unsub)
	eachTransport(t, func(t *testing.T, o loop.Options) {
		var log lineCounter
		o.LogWriter = &log
		o.MaxSubscriptions = 1
		s := startMQTT(t, o)
		base := liveHeap()
		for range conns {
			r := dialRaw(t, s)
			r.connect("", true, 0)
			r.send(subscribe)
			typ, _, b := r.read()
			if typ != mcodec.SUBACK || len(b) != 2+filters || b[2] != 0 || b[3] != mcodec.SubackFailure {
				t.Fatalf("SUBACK type %d, %d bytes", typ, len(b))
			}
			r.send(unsubscribe)
			r.expectAck(mcodec.UNSUBACK, 2)
		}
		held := liveHeap() - base
		t.Logf("%d idle connections after a SUBSCRIBE of %d filters each: live heap +%d KB, %d log lines",
			conns, filters, held>>10, log.n.Load())
		if held > maxHeld {
			t.Fatalf("server holds %d MB for %d idle connections; want < %d MB", held>>20, conns, maxHeld>>20)
		}
		if n := log.n.Load(); n > 10*conns {
			t.Fatalf("%d log lines for %d SUBSCRIBE packets", n, conns)
		}
	})
}
