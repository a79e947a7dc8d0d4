package mqtt_test

import (
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	mcodec "github.com/evnats/evnats/mqtt/codec"
)

func TestMQTTRetained(t *testing.T) {
	eachTransport(t, func(t *testing.T, o loop.Options) {
		s := startMQTT(t, o)
		pub := connectMQTT(t, s, "pub")
		wait(t, pub.Publish("r/1", 1, true, "v1"))
		wait(t, pub.Publish("r/1", 1, true, "v2")) // replaces v1
		wait(t, pub.Publish("r/2", 1, true, "x"))  // QoS 1: processed before the subscriber arrives
		wait(t, pub.Publish("r/2", 1, true, ""))   // clears r/2

		sub := connectMQTT(t, s, "sub")
		ch := subscribe(t, sub, "r/#", 1)
		m := expect(t, ch, "r/1", "v2")
		if !m.Retained() || m.Qos() != 1 {
			t.Fatalf("retained delivery: retain=%v qos=%d", m.Retained(), m.Qos())
		}
		// Live messages do not carry the retain flag, even when retained.
		wait(t, pub.Publish("r/3", 1, true, "live"))
		if m := expect(t, ch, "r/3", "live"); m.Retained() {
			t.Fatal("live delivery with the retain flag")
		}
		expectNone(t, ch) // nothing for the cleared r/2

		// '+'-first filters do not see '$' topics, retained or live.
		wait(t, pub.Publish("$sys/x", 0, true, "hidden"))
		ch2 := subscribe(t, sub, "+/x", 0)
		wait(t, pub.Publish("a/x", 0, false, "seen"))
		expect(t, ch2, "a/x", "seen")
	})
}

func TestMQTTWill(t *testing.T) {
	eachTransport(t, func(t *testing.T, o loop.Options) {
		s := startMQTT(t, o)
		nc := connectNATS(t, s)
		wills, _ := nc.SubscribeSync("wills.>")
		nc.Flush()

		// An abrupt close sends the will.
		r := dialRaw(t, s)
		r.connect("w1", true, 60, "wills/w1", "gone")
		r.conn.Close()
		m, err := wills.NextMsg(5 * time.Second)
		if err != nil || m.Subject != "wills.w1" || string(m.Data) != "gone" || m.Header.Get("Nmqtt-Pub") != "1" {
			t.Fatalf("will: %v %v", m, err)
		}

		// DISCONNECT discards it.
		r = dialRaw(t, s)
		r.connect("w2", true, 60, "wills/w2", "never")
		r.send([]byte{mcodec.DISCONNECT << 4, 0})
		r.expectClosed()

		// A keep-alive timeout (1.5 x 1 s without a packet) sends it too.
		r = dialRaw(t, s)
		r.connect("w3", true, 1, "wills/w3", "timeout")
		start := time.Now()
		r.expectClosed()
		if d := time.Since(start); d < 1400*time.Millisecond {
			t.Fatalf("closed after %v, before 1.5 x keep-alive", d)
		}
		m, err = wills.NextMsg(5 * time.Second)
		if err != nil || m.Subject != "wills.w3" {
			t.Fatalf("after keep-alive timeout: %v %v (w2's will must not come)", m, err)
		}
	})
}

func TestMQTTTakeover(t *testing.T) {
	eachTransport(t, func(t *testing.T, o loop.Options) {
		s := startMQTT(t, o)
		lost := make(chan error, 1)
		first := connectMQTT(t, s, "same", func(o *paho.ClientOptions) {
			o.SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err })
		})
		_ = first
		second := connectMQTT(t, s, "same")
		select {
		case <-lost:
		case <-time.After(5 * time.Second):
			t.Fatal("the first connection was not closed")
		}
		ch := subscribe(t, second, "t/1", 1)
		wait(t, second.Publish("t/1", 1, false, "ok"))
		expect(t, ch, "t/1", "ok")
	})
}

// A persistent session keeps its subscriptions and queues QoS 1/2 messages
// while its client is away; QoS 0 messages are not kept.
func TestMQTTPersistentSession(t *testing.T) {
	eachTransport(t, func(t *testing.T, o loop.Options) {
		s := startMQTT(t, o)
		r := dialRaw(t, s)
		if r.connect("p", false, 60) {
			t.Fatal("session present on first connect")
		}
		r.subscribe(1, "q/#", 2)
		r.send([]byte{mcodec.PINGREQ << 4, 0})
		if typ, _, body := r.read(); typ != mcodec.PINGRESP || len(body) != 0 {
			t.Fatalf("PINGREQ answered with type %d % x", typ, body)
		}
		r.send([]byte{mcodec.DISCONNECT << 4, 0})
		r.expectClosed()

		pub := connectMQTT(t, s, "pub")
		wait(t, pub.Publish("q/a", 1, false, "one"))
		wait(t, pub.Publish("q/b", 0, false, "zero"))
		wait(t, pub.Publish("q/c", 2, false, "two"))

		r = dialRaw(t, s)
		if !r.connect("p", false, 60) {
			t.Fatal("session not present on reconnect")
		}
		p1 := r.readPublish()
		p2 := r.readPublish()
		if p1.topic != "q/a" || p1.qos != 1 || p2.topic != "q/c" || p2.qos != 2 {
			t.Fatalf("queued: %+v %+v", p1, p2)
		}
		r.ack(mcodec.PUBACK, p1.id)
		r.ack(mcodec.PUBREC, p2.id)
		r.expectAck(mcodec.PUBREL, p2.id)
		r.ack(mcodec.PUBCOMP, p2.id)
		// Subscriptions came back with the session: live messages flow.
		wait(t, pub.Publish("q/d", 1, false, "live"))
		if p := r.readPublish(); p.topic != "q/d" || p.dup {
			t.Fatalf("live: %+v", p)
		}

		// A clean session discards it.
		r.conn.Close()
		r = dialRaw(t, s)
		if r.connect("p", true, 60) {
			t.Fatal("clean session reported present")
		}
	})
}

// Unacknowledged QoS 1 messages and the QoS 2 handshake state survive a
// reconnect and a server restart.
func TestMQTTSessionSurvivesRestart(t *testing.T) {
	for _, io := range []string{loop.IOGnet, loop.IOGoroutine} {
		t.Run(io, func(t *testing.T) {
			dir := t.TempDir()
			o := loop.Options{IO: io, Loops: 2, JetStream: true, StoreDir: dir}
			s := startMQTT(t, o)
			r := dialRaw(t, s)
			r.connect("keep", false, 60)
			r.subscribe(1, "k/+", 2)
			pub := connectMQTT(t, s, "pub")
			wait(t, pub.Publish("k/1", 1, false, "unacked"))
			wait(t, pub.Publish("k/2", 2, false, "half"))
			wait(t, pub.Publish("k/3", 1, true, "retained"))
			p1, p2 := r.readPublish(), r.readPublish()
			p3 := r.readPublish() // k/3
			r.ack(mcodec.PUBACK, p3.id)
			r.ack(mcodec.PUBREC, p2.id)
			r.expectAck(mcodec.PUBREL, p2.id)
			// Incoming QoS 2: delivered once, PUBREL outstanding.
			r.publish("in/k", "once", 2, 77, false)
			r.expectAck(mcodec.PUBREC, 77)
			r.conn.Close()
			// Published as the client goes away: kept in its session either
			// way (inflight if it raced the close, queued if not).
			wait(t, pub.Publish("k/4", 1, false, "while away"))
			pub.Disconnect(0)

			s.Shutdown()
			s = startMQTT(t, o)

			nc := connectNATS(t, s)
			in, _ := nc.SubscribeSync("in.k")
			nc.Flush()

			r = dialRaw(t, s)
			if !r.connect("keep", false, 60) {
				t.Fatal("session lost in the restart")
			}
			again := r.readPublish()
			if again.topic != "k/1" || !again.dup || again.id != p1.id || again.payload != "unacked" {
				t.Fatalf("resent QoS 1: %+v", again)
			}
			r.expectAck(mcodec.PUBREL, p2.id) // QoS 2 resumes at PUBREL
			if away := r.readPublish(); away.topic != "k/4" || away.payload != "while away" {
				t.Fatalf("message published while away: %+v", away)
			} else {
				r.ack(mcodec.PUBACK, away.id)
			}
			r.ack(mcodec.PUBACK, p1.id)
			r.ack(mcodec.PUBCOMP, p2.id)
			// The client resends its QoS 2 PUBLISH: acknowledged, not delivered again.
			r.publish("in/k", "once", 2, 77, true)
			r.expectAck(mcodec.PUBREC, 77)
			r.ack(mcodec.PUBREL, 77)
			r.expectAck(mcodec.PUBCOMP, 77)
			nc.Publish("in.k", []byte("marker"))
			if m, err := in.NextMsg(5 * time.Second); err != nil || string(m.Data) != "marker" {
				t.Fatalf("QoS 2 delivered again after restart: %v %v", m, err)
			}
			// Retained messages survived too.
			sub := connectMQTT(t, s, "late")
			expect(t, subscribe(t, sub, "k/3", 0), "k/3", "retained")
		})
	}
}

// A QoS 2 PUBLISH resent after a reconnect (before PUBREL) reaches
// subscribers exactly once.
func TestMQTTQoS2ExactlyOnce(t *testing.T) {
	eachTransport(t, func(t *testing.T, o loop.Options) {
		s := startMQTT(t, o)
		sub := connectMQTT(t, s, "sub")
		ch := subscribe(t, sub, "e/#", 2)
		r := dialRaw(t, s)
		r.connect("q2", false, 60)
		r.publish("e/1", "exactly", 2, 9, false)
		r.expectAck(mcodec.PUBREC, 9)
		r.conn.Close() // PUBREL never sent
		r = dialRaw(t, s)
		r.connect("q2", false, 60)
		r.publish("e/1", "exactly", 2, 9, true)
		r.expectAck(mcodec.PUBREC, 9)
		r.ack(mcodec.PUBREL, 9)
		r.expectAck(mcodec.PUBCOMP, 9)
		r.publish("e/2", "marker", 1, 10, false)
		r.expectAck(mcodec.PUBACK, 10)
		expect(t, ch, "e/1", "exactly")
		expect(t, ch, "e/2", "marker")
	})
}

// Every malformed packet ends in a disconnect and a log line naming the
// problem; other clients carry on.
func TestMQTTMalformedPackets(t *testing.T) {
	eachTransport(t, func(t *testing.T, o loop.Options) {
		var log looptest.LogBuffer
		o.LogWriter = &log
		o.MaxPayload = 1024
		s := startMQTT(t, o)
		other := connectMQTT(t, s, "bystander")
		ch := subscribe(t, other, "ok", 0)
		cases := []struct {
			name    string
			connect bool
			bytes   []byte
			log     string
		}{
			{"first packet not CONNECT", false, []byte{mcodec.PINGREQ << 4, 0}, "first packet is not CONNECT"},
			{"garbage", false, []byte("GET / HTTP/1.1\r\n\r\n"), "mqtt:"},
			{"remaining length over 4 bytes", true, []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}, "malformed remaining length"},
			{"oversize", true, append([]byte{0x30}, mcodec.AppendRemainingLength(nil, 1<<20)...), "maximum size"},
			{"SUBSCRIBE with wrong flags", true, []byte{mcodec.SUBSCRIBE << 4, 6, 0, 1, 0, 1, 'a', 0}, "reserved flags"},
			{"PUBLISH QoS 3", true, []byte{0x36, 5, 0, 1, 'a', 0, 1}, "invalid QoS"},
			{"PUBLISH with a wildcard", true, []byte{0x30, 4, 0, 1, '#', 'x'}, "invalid topic"},
			{"second CONNECT", true, connectPacket("again", true, 0, "", ""), "second CONNECT"},
			{"truncated PUBACK", true, []byte{mcodec.PUBACK << 4, 1, 0}, "shorter than its fields"},
		}
		for _, tc := range cases {
			r := dialRaw(t, s)
			if tc.connect {
				r.connect("bad", true, 0)
			}
			r.send(tc.bytes)
			r.expectClosed()
			if !strings.Contains(log.String(), tc.log) {
				t.Fatalf("%s: log lacks %q:\n%s", tc.name, tc.log, log.String())
			}
		}
		wait(t, other.Publish("ok", 0, false, "still up"))
		expect(t, ch, "ok", "still up")
	})
}

// A client id over 1 KiB is refused with CONNACK 2 (identifier rejected):
// it keys every record the session stores. 1 KiB itself is accepted.
func TestMQTTLongClientIDRefused(t *testing.T) {
	eachTransport(t, func(t *testing.T, o loop.Options) {
		s := startMQTT(t, o)
		r := dialRaw(t, s)
		r.connect(strings.Repeat("i", 1024), true, 0)
		r = dialRaw(t, s)
		r.send(connectPacket(strings.Repeat("i", 1025), true, 0, "", ""))
		typ, _, body := r.read()
		if typ != mcodec.CONNACK || len(body) != 2 || body[1] != mcodec.RefusedIdentifier {
			t.Fatalf("CONNACK: type %d body % x", typ, body)
		}
		r.expectClosed()
	})
}

// Users and permissions from the core configuration apply to MQTT.
func TestMQTTPermissions(t *testing.T) {
	s := startMQTT(t, loop.Options{Users: []*loop.User{
		{Username: "dev", Password: "pw", Permissions: &loop.Permissions{
			Publish:   &loop.SubjectPermission{Allow: []string{"dev.>"}},
			Subscribe: &loop.SubjectPermission{Deny: []string{"secret.>"}},
		}},
		{Username: "admin", Password: "pw"},
	}})
	creds := func(u string) func(*paho.ClientOptions) {
		return func(o *paho.ClientOptions) { o.SetUsername(u).SetPassword("pw") }
	}
	admin := connectMQTT(t, s, "admin", creds("admin"))
	all := subscribe(t, admin, "#", 0)
	dev := connectMQTT(t, s, "dev", creds("dev"))
	tok := dev.Subscribe("secret/#", 1, nil)
	wait(t, tok)
	if codes := tok.(*paho.SubscribeToken).Result(); codes["secret/#"] != mcodec.SubackFailure {
		t.Fatalf("denied filter granted: %v", codes)
	}
	wait(t, dev.Publish("prod/x", 1, false, "denied")) // acknowledged, dropped
	wait(t, dev.Publish("dev/x", 1, false, "allowed"))
	expect(t, all, "dev/x", "allowed")
}

// Each SUBSCRIBE and UNSUBSCRIBE changes only its own filter's router
// entries, and a session's entries move whole when its client leaves and
// returns: the sublist never holds leftovers or duplicates.
func TestMQTTSubscriptionBookkeeping(t *testing.T) {
	s := startMQTT(t, loop.Options{})
	base := s.NumSubscriptions()
	want := func(n int, when string) {
		t.Helper()
		if got := s.NumSubscriptions() - base; got != n {
			t.Fatalf("%s: %d router subscriptions, want %d", when, got, n)
		}
	}
	r := dialRaw(t, s)
	r.connect("books", false, 0)
	r.subscribe(1, "a/#", 1) // "a" and "a.>"
	r.subscribe(2, "b/+", 0)
	r.subscribe(3, "c", 2)
	want(4, "after three filters")
	r.subscribe(4, "a/#", 2) // resubscribing replaces, never adds
	want(4, "after resubscribing a/#")
	r.send(packet(mcodec.UNSUBSCRIBE<<4|2, str([]byte{0, 5}, "c")))
	r.expectAck(mcodec.UNSUBACK, 5)
	want(3, "after unsubscribing c")
	r.send([]byte{mcodec.DISCONNECT << 4, 0})
	r.expectClosed()
	// Offline, only QoS 1/2 filters stand: a/# (two entries), not b/+.
	for deadline := time.Now().Add(5 * time.Second); s.NumSubscriptions()-base != 2; {
		if time.Now().After(deadline) {
			want(2, "while offline")
		}
		time.Sleep(10 * time.Millisecond) // the server notices the close on its own loop
	}
	r = dialRaw(t, s)
	r.connect("books", false, 0)
	want(3, "back online")
	r = dialRaw(t, s)
	r.connect("books", true, 0) // a clean session discards it
	want(0, "after a clean takeover")
}
