package loop_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	mcodec "github.com/evnats/evnats/mqtt/codec"
	"github.com/nats-io/nats.go"
)

// churnSeed is the seed of TestConnectionChurn: EVNATS_CHURN_SEED when set
// (to replay a failure: it fixes every connection's script, not how the
// connections interleave), else the clock. The test logs it when it fails.
// EVNATS_CHURN_CONNS sets the number of connections per transport.
func churnSeed(t *testing.T) uint64 {
	if v := os.Getenv("EVNATS_CHURN_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("EVNATS_CHURN_SEED: %v", err)
		}
		return n
	}
	return uint64(time.Now().UnixNano())
}

// TestConnectionChurn opens and closes thousands of connections, NATS and
// MQTT, each cut off at a random point (mid-line, mid-payload, mid-packet,
// by FIN or by RST, MQTT client ids taken over), while a nats.go publisher
// streams numbered messages to a nats.go subscriber on a subject no churner
// uses. The server must not crash, the subscriber must get every message in
// order, and afterwards the server must serve with no connection or
// subscription left over from the churn.
func TestConnectionChurn(t *testing.T) {
	seed := churnSeed(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("replay with EVNATS_CHURN_SEED=%d", seed)
		}
	})
	conns, msgs := 2000, 20000
	if testing.Short() {
		conns, msgs = 500, 5000
	}
	if v := os.Getenv("EVNATS_CHURN_CONNS"); v != "" { // a longer soak
		var err error
		if conns, err = strconv.Atoi(v); err != nil {
			t.Fatalf("EVNATS_CHURN_CONNS: %v", err)
		}
	}
	// A small MaxPending makes churners that publish to themselves and never
	// read slow consumers, closed by the server mid-parse; a small
	// MaxSubscriptions refuses some SUBs; JetStream persists MQTT sessions.
	o := loop.Options{MQTTPort: -1, JetStream: true, MaxPending: 1 << 20, MaxSubscriptions: 6}
	looptest.Each(t, o, func(t *testing.T, o loop.Options) {
		start := time.Now()
		s := looptest.Start(t, o)
		churn(t, s, seed, conns, msgs)
		t.Logf("%d connections, %d messages in %v", conns, msgs, time.Since(start).Round(time.Millisecond))
	})
}

func churn(t *testing.T, s *loop.Server, seed uint64, conns, msgs int) {
	const subject = "stream.seq"
	sub := connect(t, s)
	pub := connect(t, s)
	clientsBefore := s.NumClients()

	// The subscriber checks the order as it goes and signals when the last
	// message arrives. The publisher stays at most a window ahead of it: a
	// publisher that outruns its subscriber makes it a slow consumer (or is
	// paused by flow control), which is not what this test is about.
	const streamBatch = 256
	window := make(chan struct{}, 8)
	var next, bad atomic.Int64
	var badMsg atomic.Value
	done := make(chan struct{})
	sb, err := sub.Subscribe(subject, func(m *nats.Msg) {
		sp := bytes.IndexByte(m.Data, ' ')
		n, err := strconv.Atoi(string(m.Data[:max(sp, 0)]))
		if want := next.Load(); err != nil || int64(n) != want {
			if bad.Add(1) == 1 {
				badMsg.Store(fmt.Sprintf("got message %q, want number %d", m.Data, want))
			}
		}
		if next.Add(1)%streamBatch == 0 {
			<-window
		}
		if bytes.HasSuffix(m.Data, []byte(" end")) {
			close(done)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = sb.SetPendingLimits(-1, -1) // a slow callback must not drop messages client-side
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	subsBefore := s.NumSubscriptions()

	// The publisher streams for as long as the churn lasts and at least
	// msgs messages; the last one says "end".
	var wg sync.WaitGroup
	var churning atomic.Bool
	churning.Store(true)
	pubErr := make(chan error, 1)
	var total int64
	var peakSubs int // churners' subscriptions, sampled by the publisher
	go func() {
		buf := make([]byte, 0, 256)
		for i := 0; ; i++ {
			if i%streamBatch == 0 {
				window <- struct{}{}
				peakSubs = max(peakSubs, s.NumSubscriptions()-subsBefore)
			}
			last := i >= msgs && !churning.Load()
			buf = strconv.AppendInt(buf[:0], int64(i), 10)
			buf = append(buf, ' ')
			buf = append(buf, bytes.Repeat([]byte{'p'}, i%200)...)
			if last {
				buf = append(buf, " end"...)
			}
			if err := pub.Publish(subject, buf); err != nil {
				pubErr <- err
				return
			}
			if last {
				total = int64(i + 1)
				pubErr <- pub.Flush()
				return
			}
		}
	}()

	const workers = 48
	var failures atomic.Int64
	var jobs atomic.Int64
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(w)))
			for {
				i := jobs.Add(1)
				if i > int64(conns) {
					return
				}
				var err error
				switch r.IntN(20) {
				case 0, 1, 2, 3:
					err = churnMQTT(s, r, w, int(i))
				case 4:
					err = churnClient(s, r, w)
				default:
					err = churnNATS(s, r, w, int(i))
				}
				if err != nil {
					if failures.Add(1) <= 5 {
						t.Errorf("connection %d (worker %d): %v", i, w, err)
					}
				}
			}
		}()
	}
	wg.Wait()
	churning.Store(false)
	if err := <-pubErr; err != nil {
		t.Fatalf("publisher: %v", err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("subscriber got %d of %d messages", next.Load(), total)
	}
	if n := bad.Load(); n > 0 {
		t.Fatalf("%d messages out of order or lost: first %s", n, badMsg.Load())
	}
	if got := next.Load(); got != total {
		t.Fatalf("subscriber got %d messages, the publisher sent %d", got, total)
	}
	t.Logf("streamed %d messages during the churn; churners held up to %d subscriptions at once", total, peakSubs)

	// The persistent MQTT sessions keep their subscriptions by design: a
	// clean-session connect with each pooled id ends them.
	for k := 0; k < churnSharedIDs; k++ {
		if err := endMQTTSession(s, fmt.Sprintf("churn-shared-%d", k)); err != nil {
			t.Fatal(err)
		}
	}

	// The churners are gone: the server closes their connections as it sees
	// the FIN or RST, on its own loops, so wait for the counts to settle.
	deadline := time.Now().Add(10 * time.Second)
	for s.NumClients() != clientsBefore || s.NumSubscriptions() != subsBefore {
		if time.Now().After(deadline) {
			t.Fatalf("after the churn: %d clients (want %d), %d subscriptions (want %d)",
				s.NumClients(), clientsBefore, s.NumSubscriptions(), subsBefore)
		}
		time.Sleep(5 * time.Millisecond) // polling: no event marks the last close
	}

	// Still serving: both clients and a fresh one round-trip.
	for _, nc := range []*nats.Conn{sub, pub} {
		if err := nc.FlushTimeout(5 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	rc := dialRaw(t, s)
	rc.send("CONNECT {\"verbose\":false}\r\nPING\r\n")
	rc.expect("PONG")
}

// churnNATS runs one raw NATS connection: a random script of CONNECT, SUB,
// UNSUB, PUB and HPUB, either whole and ended by a PING whose PONG it waits
// for, or cut at a random byte; then it closes by FIN or RST. It returns an
// error only when a whole script does not get its PONG.
func churnNATS(s *loop.Server, r *rand.Rand, w, i int) error {
	var b bytes.Buffer
	if r.IntN(10) != 0 {
		fmt.Fprintf(&b, "CONNECT {\"verbose\":%v,\"pedantic\":%v,\"headers\":true}\r\n", r.IntN(4) == 0, r.IntN(4) == 0)
	}
	for n := r.IntN(12); n > 0; n-- {
		subj := fmt.Sprintf("churn.%d.%d", w, r.IntN(4))
		switch r.IntN(6) {
		case 0, 1:
			if r.IntN(3) == 0 {
				fmt.Fprintf(&b, "SUB churn.%d.* q%d %d\r\n", w, r.IntN(2), r.IntN(8))
			} else {
				fmt.Fprintf(&b, "SUB %s %d\r\n", subj, r.IntN(8))
			}
		case 2:
			if r.IntN(2) == 0 {
				fmt.Fprintf(&b, "UNSUB %d\r\n", r.IntN(8))
			} else {
				fmt.Fprintf(&b, "UNSUB %d %d\r\n", r.IntN(8), 1+r.IntN(3))
			}
		case 3, 4:
			size := r.IntN(300)
			if r.IntN(20) == 0 {
				size = 16<<10 + r.IntN(100<<10)
			}
			fmt.Fprintf(&b, "PUB %s %d\r\n%s\r\n", subj, size, bytes.Repeat([]byte{'x'}, size))
		case 5:
			hdr := "NATS/1.0\r\nK: v\r\n\r\n"
			size := r.IntN(100)
			fmt.Fprintf(&b, "HPUB %s %d %d\r\n%s%s\r\n", subj, len(hdr), len(hdr)+size, hdr, bytes.Repeat([]byte{'x'}, size))
		}
	}
	flood := r.IntN(40) == 0
	if flood {
		// A flood to itself that it never reads: a slow consumer, closed
		// by the server while it still parses what follows.
		fmt.Fprintf(&b, "SUB churn.%d.flood 99\r\n", w)
		for n := 0; n < 20; n++ {
			fmt.Fprintf(&b, "PUB churn.%d.flood %d\r\n%s\r\n", w, 64<<10, bytes.Repeat([]byte{'f'}, 64<<10))
		}
	}
	whole := r.IntN(3) == 0 && !flood
	script := b.Bytes()
	if whole {
		script = append(script, "PING\r\n"...)
	} else if len(script) > 0 {
		script = script[:r.IntN(len(script)+1)]
	}

	nc, err := net.DialTimeout("tcp", s.Addr().String(), 5*time.Second)
	if err != nil {
		return err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if !whole && r.IntN(3) == 0 {
		// Some close before even reading the INFO.
		churnClose(r, nc)
		return nil
	}
	writeInPieces(r, nc, script)
	if whole {
		if err := readUntil(nc, []byte("PONG\r\n")); err != nil {
			return fmt.Errorf("script %q: no PONG: %v", truncate(b.Bytes()), err)
		}
	} else if r.IntN(2) == 0 {
		_, _ = nc.Read(make([]byte, 512)) // read a little, maybe the INFO
	}
	churnClose(r, nc)
	return nil
}

// churnClient runs one nats.go connection: it subscribes, publishes to
// itself and ends by Close (subscriptions still live) or Drain.
func churnClient(s *loop.Server, r *rand.Rand, w int) error {
	nc, err := nats.Connect(s.ClientURL(), nats.Timeout(5*time.Second), nats.NoReconnect())
	if err != nil {
		return err
	}
	defer nc.Close()
	subj := fmt.Sprintf("churn.%d.client", w)
	if _, err := nc.Subscribe(subj, func(*nats.Msg) {}); err != nil {
		return err
	}
	for n := r.IntN(50); n > 0; n-- {
		if err := nc.Publish(subj, make([]byte, r.IntN(1000))); err != nil {
			return err
		}
	}
	if r.IntN(2) == 0 {
		return nc.Drain()
	}
	return nil
}

// churnSharedIDs is the size of the pool of MQTT client ids that churning
// connections take over from each other.
const churnSharedIDs = 8

// churnMQTT runs one raw MQTT connection: CONNECT with a client id from a
// small pool (so concurrent connections take each other's sessions over,
// persistent ones included) or its own, maybe with a will; SUBSCRIBE,
// UNSUBSCRIBE, PUBLISH QoS 0, 1 and 2, acks for ids it may not own,
// PINGREQ, maybe DISCONNECT; cut at a random byte or whole; then it closes
// by FIN or RST. Nothing is checked but the server's survival: a
// taken-over connection is closed by design.
func churnMQTT(s *loop.Server, r *rand.Rand, w, i int) error {
	id, flags := fmt.Sprintf("churn-%d", i), byte(0x02) // clean session
	if r.IntN(2) == 0 {
		id = fmt.Sprintf("churn-shared-%d", r.IntN(churnSharedIDs))
		if r.IntN(2) == 0 {
			flags = 0 // a session that outlives the connection
		}
	}
	will := r.IntN(4) == 0
	if will {
		flags |= 0x04 | byte(r.IntN(2))<<3 // will, QoS 0 or 1
	}
	str := func(b []byte, s string) []byte { return append(append(b, byte(len(s)>>8), byte(len(s))), s...) }
	body := str(append(str(nil, "MQTT"), 4, flags, 0, 60), id)
	if will {
		body = str(str(body, fmt.Sprintf("churn/m%d/will", w)), "gone")
	}
	script := mqttPacket(mcodec.CONNECT<<4, body)
	connectLen := len(script)
	pid := uint16(1)
	for n := r.IntN(8); n > 0; n-- {
		topic := fmt.Sprintf("churn/m%d/%d", w, r.IntN(3))
		switch r.IntN(6) {
		case 5:
			// An ack for a packet id this connection may never have been
			// sent, perhaps by the connection its session was taken from.
			kind := []byte{mcodec.PUBACK, mcodec.PUBREC, mcodec.PUBREL, mcodec.PUBCOMP}[r.IntN(4)]
			script = mcodec.AppendAck(script, kind, uint16(1+r.IntN(10)))
		case 0, 1:
			sb := binary.BigEndian.AppendUint16(nil, pid)
			sb = append(str(sb, topic), byte(r.IntN(3)))
			if r.IntN(3) == 0 {
				sb = append(str(sb, fmt.Sprintf("churn/m%d/#", w)), byte(r.IntN(3)))
			}
			script = append(script, mqttPacket(mcodec.SUBSCRIBE<<4|2, sb)...)
		case 2, 3:
			qos := byte(r.IntN(3))
			payload := bytes.Repeat([]byte{'m'}, r.IntN(500))
			script = mcodec.AppendPublish(script, []byte(topic), payload, qos, false, false, pid)
		case 4:
			ub := str(binary.BigEndian.AppendUint16(nil, pid), topic)
			script = append(script, mqttPacket(mcodec.UNSUBSCRIBE<<4|2, ub)...)
		}
		pid = pid%200 + 1
	}
	script = append(script, mcodec.PINGREQ<<4, 0)
	if r.IntN(4) == 0 {
		script = append(script, mcodec.DISCONNECT<<4, 0)
	}
	whole := r.IntN(3) == 0
	if !whole {
		script = script[:r.IntN(len(script)+1)]
	}
	// Without a whole CONNECT the server sends nothing until its CONNECT
	// timeout: only read where a CONNACK (or a close) will come.
	read := whole || (len(script) >= connectLen && r.IntN(2) == 0)

	nc, err := net.DialTimeout("tcp", s.MQTTAddr().String(), 5*time.Second)
	if err != nil {
		return err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	writeInPieces(r, nc, script)
	if read {
		_, _ = nc.Read(make([]byte, 1+r.IntN(64))) // some of the replies
	}
	churnClose(r, nc)
	return nil
}

// writeInPieces writes b in one to three writes, so the server also sees
// lines and packets split across reads. Errors are the server closing.
func writeInPieces(r *rand.Rand, nc net.Conn, b []byte) {
	for pieces := 1 + r.IntN(3); pieces > 1 && len(b) > 0; pieces-- {
		n := r.IntN(len(b) + 1)
		if _, err := nc.Write(b[:n]); err != nil {
			return
		}
		b = b[n:]
	}
	_, _ = nc.Write(b)
}

// churnClose closes by FIN, by RST (linger 0), or by a half close first.
func churnClose(r *rand.Rand, nc net.Conn) {
	switch r.IntN(3) {
	case 0:
		_ = nc.(*net.TCPConn).SetLinger(0)
	case 1:
		_ = nc.(*net.TCPConn).CloseWrite()
	}
	_ = nc.Close()
}

// readUntil reads until the stream holds end (messages for a subject of
// the same worker's previous connection may still follow it).
func readUntil(nc net.Conn, end []byte) error {
	var got []byte
	buf := make([]byte, 4096)
	for !bytes.Contains(got, end) {
		n, err := nc.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return fmt.Errorf("%w after %q", err, truncate(got))
		}
	}
	return nil
}

func truncate(b []byte) []byte {
	if len(b) > 300 {
		return append(b[:150:150], append([]byte(" ... "), b[len(b)-150:]...)...)
	}
	return b
}

// endMQTTSession connects with id and a clean session, which discards any
// session the id had, then disconnects.
func endMQTTSession(s *loop.Server, id string) error {
	nc, err := net.DialTimeout("tcp", s.MQTTAddr().String(), 5*time.Second)
	if err != nil {
		return err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	str := func(b []byte, s string) []byte { return append(append(b, byte(len(s)>>8), byte(len(s))), s...) }
	if _, err := nc.Write(mqttPacket(mcodec.CONNECT<<4, str(append(str(nil, "MQTT"), 4, 0x02, 0, 60), id))); err != nil {
		return err
	}
	ack := make([]byte, 4)
	if _, err := io.ReadFull(nc, ack); err != nil || ack[0] != mcodec.CONNACK<<4 || ack[3] != mcodec.Accepted {
		return fmt.Errorf("MQTT %s: CONNACK % x (%v)", id, ack, err)
	}
	_, err = nc.Write([]byte{mcodec.DISCONNECT << 4, 0})
	return err
}
