package jetstream_test

import (
	"bufio"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// flowSetups are the servers push-consumer flow control is checked on: gnet
// with the subscriber on the loop the Manager's deliveries are injected
// into or not, and the goroutine transport, with a max_pending (8 MiB, so
// a high-water mark of 2 MiB) far below the backlog the consumer delivers.
var flowSetups = []struct {
	name  string
	io    string
	loops int
}{
	{"gnet-1loop", loop.IOGnet, 1},
	{"gnet-3loops", loop.IOGnet, 3},
	{"goroutine", loop.IOGoroutine, 0},
}

const flowMaxPending = 8 << 20

// fillStream creates stream FLOW (file storage) holding n messages of size
// bytes on flow.<i>, so that a consumer created afterwards has the whole
// backlog to deliver at once.
func fillStream(t *testing.T, js jetstream.JetStream, n, size int) {
	t.Helper()
	c := ctx(t)
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "FLOW", Subjects: []string{"flow.>"}}); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, size)
	for i := 0; i < n; i++ {
		if _, err := js.PublishAsync(fmt.Sprintf("flow.%d", i%8), payload); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("stream not filled")
	}
}

// TestPushConsumerFlowControl: a push consumer whose backlog (48 MiB) is
// six times max_pending delivers all of it to a nats.go subscriber that
// handles messages slower than the server sends them, with ack none and
// ack explicit: the consumer waits while the subscriber's gate is closed
// instead of overrunning it into a slow-consumer cut.
func TestPushConsumerFlowControl(t *testing.T) {
	const n, size = 3000, 16 << 10
	for _, su := range flowSetups {
		for _, ack := range []jetstream.AckPolicy{jetstream.AckNonePolicy, jetstream.AckExplicitPolicy} {
			t.Run(su.name+"/"+ack.String(), func(t *testing.T) {
				s := startJS(t, loop.Options{IO: su.io, Loops: su.loops, MaxPending: flowMaxPending})
				nc, js := connectJS(t, s)
				var asyncErr atomic.Value
				nc.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { asyncErr.Store(err.Error()) })
				fillStream(t, js, n, size)
				cons, err := js.CreateOrUpdatePushConsumer(ctx(t), "FLOW", jetstream.ConsumerConfig{
					Durable: "slow", DeliverSubject: "deliver.slow", AckPolicy: ack})
				if err != nil {
					t.Fatal(err)
				}
				var got atomic.Int64
				done := make(chan struct{})
				cc, err := cons.Consume(func(m jetstream.Msg) {
					if got.Load()%64 == 0 {
						time.Sleep(time.Millisecond) // about 3 s for the backlog: slower than the server sends
					}
					if ack != jetstream.AckNonePolicy {
						_ = m.Ack()
					}
					if got.Add(1) == n {
						close(done)
					}
				})
				if err != nil {
					t.Fatal(err)
				}
				defer cc.Stop()
				waitDelivered(t, s, done, &got, n, func() string {
					info, err := cons.Info(ctx(t))
					if err != nil {
						return err.Error()
					}
					return fmt.Sprintf("consumer delivered %d, pending %d; server out_msgs %d; client error %v",
						info.Delivered.Consumer, info.NumPending, s.Varz().OutMsgs, asyncErr.Load())
				})
			})
		}
	}
}

// waitDelivered waits until done, failing as soon as a slow consumer is cut.
func waitDelivered(t *testing.T, s *loop.Server, done <-chan struct{}, got *atomic.Int64, n int, state func() string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			if sc := s.SlowConsumers(); sc != 0 {
				t.Fatalf("%d slow consumers, want 0", sc)
			}
			return
		case <-tick.C:
			if sc := s.SlowConsumers(); sc != 0 {
				t.Fatalf("received %d of %d; %d slow consumers cut", got.Load(), n, sc)
			}
		case <-deadline:
			t.Fatalf("received %d of %d; %s", got.Load(), n, state())
		}
	}
}

// stalledRaw subscribes a raw connection to subject and never reads again.
func stalledRaw(t *testing.T, s *loop.Server, subject string) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(64 << 10)
	}
	r := bufio.NewReader(nc)
	if _, err := r.ReadString('\n'); err != nil { // INFO
		t.Fatal(err)
	}
	fmt.Fprintf(nc, "CONNECT {\"verbose\":false}\r\nSUB %s 1\r\nPING\r\n", subject)
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := r.ReadString('\n'); err != nil || line != "PONG\r\n" {
		t.Fatalf("got %q, %v; want PONG", line, err)
	}
	return nc
}

// TestPushConsumerStalledBesideHealthy: a push consumer whose subscriber
// never reads holds up neither a second push consumer on the same stream
// nor publishers: the healthy subscriber receives every message, published
// while the stalled one is full, and the stalled one is cut as a slow
// consumer.
func TestPushConsumerStalledBesideHealthy(t *testing.T) {
	const n, size = 3000, 16 << 10
	for _, su := range flowSetups {
		t.Run(su.name, func(t *testing.T) {
			s := startJS(t, loop.Options{IO: su.io, Loops: su.loops, MaxPending: flowMaxPending, WriteDeadline: 2 * time.Second})
			_, js := connectJS(t, s)
			c := ctx(t)
			fillStream(t, js, n/2, size) // a backlog of 3 x max_pending for each consumer
			stalledRaw(t, s, "deliver.stalled")
			if _, err := js.CreateOrUpdatePushConsumer(c, "FLOW", jetstream.ConsumerConfig{
				Durable: "stalled", DeliverSubject: "deliver.stalled", AckPolicy: jetstream.AckNonePolicy}); err != nil {
				t.Fatal(err)
			}
			var got atomic.Int64
			done := make(chan struct{})
			healthy := connect2(t, s)
			sub, err := healthy.Subscribe("deliver.healthy", func(*nats.Msg) {
				if got.Load()%64 == 0 {
					time.Sleep(time.Millisecond) // slower than the server sends
				}
				if got.Add(1) == n {
					close(done)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			_ = sub.SetPendingLimits(-1, -1)
			_ = healthy.Flush()
			if _, err := js.CreateOrUpdatePushConsumer(c, "FLOW", jetstream.ConsumerConfig{
				Durable: "healthy", DeliverSubject: "deliver.healthy", AckPolicy: jetstream.AckNonePolicy}); err != nil {
				t.Fatal(err)
			}
			payload := make([]byte, size)
			start := time.Now()
			for i := n / 2; i < n; i++ {
				if _, err := js.PublishAsync(fmt.Sprintf("flow.%d", i%8), payload); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(30 * time.Second):
				t.Fatal("publishes not acknowledged")
			}
			t.Logf("published %d x %d B in %v while delivering", n-n/2, size, time.Since(start))
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatalf("healthy subscriber received %d of %d", got.Load(), n)
			}
			deadline := time.Now().Add(20 * time.Second)
			for s.SlowConsumers() < 1 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if sc := s.SlowConsumers(); sc != 1 {
				t.Fatalf("%d slow consumers, want 1 (the stalled one)", sc)
			}
		})
	}
}

func connect2(t *testing.T, s *loop.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}
