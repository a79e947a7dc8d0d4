package mqtt_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	mcodec "github.com/evnats/evnats/mqtt/codec"
)

// publishMany publishes n QoS 1 messages to topic, payloads "<i>" padded
// to size bytes, pipelined, and waits for every PUBACK.
func publishMany(t *testing.T, s *loop.Server, topic string, from, n, size int) {
	t.Helper()
	p := dialRaw(t, s)
	p.connect("", true, 0)
	const window = 500
	acks := make(chan struct{}, window)
	done := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			typ, _, _, err := p.tryRead()
			if err == nil && typ != mcodec.PUBACK {
				err = fmt.Errorf("want PUBACK, got type %d", typ)
			}
			if err != nil {
				done <- err
				return
			}
			<-acks
		}
		done <- nil
	}()
	var buf []byte
	for i := from; i < from+n; i++ {
		acks <- struct{}{}
		payload := []byte(strconv.Itoa(i))
		payload = append(payload, bytes.Repeat([]byte{' '}, max(0, size-len(payload)))...)
		buf = mcodec.AppendPublish(buf[:0], []byte(topic), payload, 1, false, false, uint16((i+60000)%60000+1))
		p.send(buf)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	p.conn.Close()
}

// receive reads n PUBLISH packets, acknowledging each, and returns their
// numbers (see publishMany).
func (r *rawMQTT) receive(n int) []int {
	r.t.Helper()
	var got []int
	for len(got) < n {
		p := r.readPublish()
		r.ack(mcodec.PUBACK, p.id)
		i, err := strconv.Atoi(strings.TrimSpace(p.payload))
		if err != nil {
			r.t.Fatalf("payload %q", p.payload)
		}
		got = append(got, i)
	}
	return got
}

// expectMarker publishes a marker and checks it is the next message: what
// came before it was all there was.
func (r *rawMQTT) expectMarker(s *loop.Server, topic string) {
	r.t.Helper()
	// The PUBACKs receive sent free the session's space: a PINGREQ answered
	// means the server has handled them before the marker arrives.
	r.pingPong()
	publishMany(r.t, s, topic, -1, 1, 0)
	if got := r.receive(1); got[0] != -1 {
		r.t.Fatalf("message %d before the marker", got[0])
	}
	r.pingPong() // and the marker's own PUBACK, before the caller closes
}

// pingPong returns once the server has answered a PINGREQ, so it has
// handled every packet sent before it.
func (r *rawMQTT) pingPong() {
	r.t.Helper()
	r.send([]byte{mcodec.PINGREQ << 4, 0})
	if typ, _, _ := r.read(); typ != mcodec.PINGRESP {
		r.t.Fatalf("want PINGRESP, got packet type %d", typ)
	}
}

func seq(from, n int) string {
	var b strings.Builder
	for i := from; i < from+n; i++ {
		fmt.Fprint(&b, i, " ")
	}
	return b.String()
}

func ints(v []int) string {
	var b strings.Builder
	for _, i := range v {
		fmt.Fprint(&b, i, " ")
	}
	return b.String()
}

// away creates a persistent session subscribed to filter at QoS 1 and
// leaves.
func away(t *testing.T, s *loop.Server, id, filter string) {
	t.Helper()
	r := dialRaw(t, s)
	r.connect(id, false, 0)
	r.subscribe(1, filter, 1)
	r.send([]byte{mcodec.DISCONNECT << 4, 0})
	r.expectClosed()
}

// A session holds at most max_session_queue_bytes for its client: past
// it, new messages are discarded (the oldest stay), publishers still get
// their PUBACK, and a log line says so.
func TestMQTTQueueByteLimit(t *testing.T) {
	eachTransport(t, func(t *testing.T, o loop.Options) {
		var log looptest.LogBuffer
		o.LogWriter = &log
		o.MQTTMaxSessionQueueBytes = 10 * (1000 + 3) // ten messages of 1000 bytes on "l/x"
		s := startMQTT(t, o)
		away(t, s, "lim", "l/#")
		publishMany(t, s, "l/x", 0, 20, 1000)
		r := dialRaw(t, s)
		r.connect("lim", false, 0)
		if got := ints(r.receive(10)); got != seq(0, 10) {
			t.Fatalf("kept %s", got)
		}
		r.expectMarker(s, "l/x")
		if !strings.Contains(log.String(), `MQTT session "lim" is full`) {
			t.Fatalf("no log line for the discarded messages:\n%s", log.String())
		}
	})
}

// max_session_queue_msgs from a configuration file bounds the messages a
// session holds.
func TestMQTTQueueMsgLimitConfigured(t *testing.T) {
	path := filepath.Join(t.TempDir(), "evnats.conf")
	os.WriteFile(path, []byte("mqtt {\n  port: -1\n  max_session_queue_msgs: 5\n}\n"), 0o644)
	var o loop.Options
	if err := loop.ApplyConfigFile(&o, path); err != nil {
		t.Fatal(err)
	}
	s := startMQTT(t, o)
	away(t, s, "five", "f/#")
	publishMany(t, s, "f/x", 0, 8, 0)
	r := dialRaw(t, s)
	r.connect("five", false, 0)
	if got := ints(r.receive(5)); got != seq(0, 5) {
		t.Fatalf("kept %s", got)
	}
	r.expectMarker(s, "f/x")
}

// The limits parse from the mqtt block, sizes with units; negative values
// are refused when the configuration loads, and by New.
func TestConfigMQTTQueueLimits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "evnats.conf")
	os.WriteFile(path, []byte("mqtt {\n  max_session_queue_msgs: 1000\n  max_session_queue_bytes: 8MB\n}\n"), 0o644)
	var o loop.Options
	if err := loop.ApplyConfigFile(&o, path); err != nil {
		t.Fatal(err)
	}
	if o.MQTTMaxSessionQueueMsgs != 1000 || o.MQTTMaxSessionQueueBytes != 8<<20 {
		t.Fatalf("limits %d %d", o.MQTTMaxSessionQueueMsgs, o.MQTTMaxSessionQueueBytes)
	}
	for _, key := range []string{"max_session_queue_msgs", "max_session_queue_bytes"} {
		os.WriteFile(path, []byte("mqtt {\n  "+key+": -1\n}\n"), 0o644)
		if err := loop.ApplyConfigFile(&loop.Options{}, path); err == nil || !strings.Contains(err.Error(), "negative") {
			t.Fatalf("%s: -1: %v", key, err)
		}
	}
	if _, err := loop.New(loop.Options{Host: "127.0.0.1", Port: -1, MQTTPort: -1, MQTTMaxSessionQueueBytes: -1}); err == nil {
		t.Fatal("New accepted a negative limit")
	}
}

// A connected client that does not acknowledge is bounded too: what it
// holds inflight and queued counts against the same limits.
func TestMQTTQueueLimitOnline(t *testing.T) {
	eachTransport(t, func(t *testing.T, o loop.Options) {
		o.MQTTMaxSessionQueueMsgs = 50
		s := startMQTT(t, o)
		r := dialRaw(t, s)
		r.connect("slow", false, 0)
		r.subscribe(1, "o/#", 1)
		publishMany(t, s, "o/x", 0, 100, 0)
		var ids []uint16
		for i := 0; i < 50; i++ {
			p := r.readPublish()
			if p.payload != strconv.Itoa(i) {
				t.Fatalf("message %d: %q", i, p.payload)
			}
			ids = append(ids, p.id)
		}
		for _, id := range ids {
			r.ack(mcodec.PUBACK, id)
		}
		r.expectMarker(s, "o/x")
	})
}

// Messages queued for absent clients come back after restarts exactly:
// none lost, none repeated, none that was acknowledged, however the
// records of several sessions interleave in the store's blocks.
func TestQueueSurvivesRestartExactly(t *testing.T) {
	for _, io := range []string{loop.IOGnet, loop.IOGoroutine} {
		t.Run(io, func(t *testing.T) {
			dir := t.TempDir()
			o := loop.Options{IO: io, Loops: 2, JetStream: true, StoreDir: dir}
			s := startMQTT(t, o)
			away(t, s, "a", "a/#")
			away(t, s, "b", "b/#")
			publishMany(t, s, "a/x", 0, 1, 0) // stays queued for a throughout
			publishMany(t, s, "b/x", 0, 20_000, 1024)
			r := dialRaw(t, s)
			r.connect("b", false, 0)
			if got := ints(r.receive(20_000)); got != seq(0, 20_000) {
				t.Fatal("first batch out of order")
			}
			r.send([]byte{mcodec.DISCONNECT << 4, 0})
			r.expectClosed()
			publishMany(t, s, "b/x", 20_000, 10_000, 1024)
			r = dialRaw(t, s)
			r.connect("b", false, 0)
			if got := ints(r.receive(5_000)); got != seq(20_000, 5_000) {
				t.Fatal("second batch out of order")
			}
			r.send([]byte{mcodec.DISCONNECT << 4, 0})
			r.expectClosed()

			for restart := 1; restart <= 2; restart++ {
				s.Shutdown()
				s = startMQTT(t, o)
				r = dialRaw(t, s)
				if !r.connect("b", false, 0) {
					t.Fatal("session b lost")
				}
				if restart == 1 {
					if got := r.receive(5_000); ints(got) != seq(25_000, 5_000) {
						for i, v := range got {
							if v != 25_000+i {
								t.Fatalf("after a restart, b's message %d is %d (%v...)", i, v, got[i:min(len(got), i+5)])
							}
						}
					}
				}
				r.expectMarker(s, "b/x")
				r.conn.Close()
			}
			r = dialRaw(t, s)
			r.connect("a", false, 0)
			if got := ints(r.receive(1)); got != seq(0, 1) {
				t.Fatalf("a got %s", got)
			}
			r.expectMarker(s, "a/x")
		})
	}
}
