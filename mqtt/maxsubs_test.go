package mqtt_test

import (
	"fmt"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/evnats/evnats/loop"
	mcodec "github.com/evnats/evnats/mqtt/codec"
)

// TestMQTTMaxSubscriptions: MQTT subscriptions count toward max_subs, as in
// nats-server: filters past the limit get 0x80 in SUBACK and receive
// nothing; "a/#" is two subscriptions; re-subscribing a held filter and
// subscribing after an unsubscribe are allowed.
func TestMQTTMaxSubscriptions(t *testing.T) {
	eachTransport(t, func(t *testing.T, o loop.Options) {
		o.MaxSubscriptions = 5
		s := startMQTT(t, o)
		r := dialRaw(t, s)
		r.connect("subs", true, 0)

		body := []byte{0, 1}
		for i := range 50 {
			body = append(str(body, fmt.Sprintf("t/%d", i)), 1)
		}
		r.send(packet(mcodec.SUBSCRIBE<<4|2, body))
		want := []byte{0, 1, 1, 1, 1, 1, 1}
		for range 45 {
			want = append(want, mcodec.SubackFailure)
		}
		if typ, _, got := r.read(); typ != mcodec.SUBACK || string(got) != string(want) {
			t.Fatalf("SUBACK type %d: % x\nwant % x", typ, got, want)
		}
		if n := s.NumSubscriptions(); n != 5 {
			t.Fatalf("%d subscriptions in the server, want 5", n)
		}

		// At the limit: a held filter may be granted again; a new one not.
		r.send(packet(mcodec.SUBSCRIBE<<4|2, append(str(append(str([]byte{0, 2}, "t/0"), 0), "t/5"), 0)))
		if typ, _, got := r.read(); typ != mcodec.SUBACK || string(got) != string([]byte{0, 2, 0, mcodec.SubackFailure}) {
			t.Fatalf("SUBACK type %d: % x", typ, got)
		}

		// "a/#" needs two: refused with one free, granted with two.
		r.send(packet(mcodec.UNSUBSCRIBE<<4|2, str([]byte{0, 3}, "t/4")))
		r.expectAck(mcodec.UNSUBACK, 3)
		r.send(packet(mcodec.SUBSCRIBE<<4|2, append(str([]byte{0, 4}, "a/#"), 0)))
		if typ, _, got := r.read(); typ != mcodec.SUBACK || string(got) != string([]byte{0, 4, mcodec.SubackFailure}) {
			t.Fatalf("SUBACK type %d: % x", typ, got)
		}
		r.send(packet(mcodec.UNSUBSCRIBE<<4|2, str([]byte{0, 5}, "t/3")))
		r.expectAck(mcodec.UNSUBACK, 5)
		r.subscribe(6, "a/#", 0)

		// A refused filter receives nothing; a granted one does.
		r.publish("t/9", "no", 0, 0, false)
		r.publish("t/0", "yes", 0, 0, false)
		if p := r.readPublish(); p.topic != "t/0" || p.payload != "yes" {
			t.Fatalf("got %q on %q, want yes on t/0", p.payload, p.topic)
		}
	})
}

// A persistent session restored after a restart with a lower
// max_subscriptions keeps only the filters that fit (in sorted order): the
// others neither queue while it is offline nor deliver once it resumes.
func TestMQTTRestoredSessionMaxSubscriptions(t *testing.T) {
	eachTransport(t, func(t *testing.T, o loop.Options) {
		o.JetStream, o.StoreDir = true, t.TempDir()
		s := startMQTT(t, o)
		a := connectMQTT(t, s, "dev", func(co *paho.ClientOptions) { co.SetCleanSession(false) })
		for _, f := range []string{"a", "b", "c"} {
			subscribe(t, a, f, 1)
		}
		a.Disconnect(0)
		s.Shutdown()

		o.MaxSubscriptions = 2
		s = startMQTT(t, o)
		pub := connectMQTT(t, s, "pub")
		wait(t, pub.Publish("c", 1, false, "queued c"))
		wait(t, pub.Publish("a", 1, false, "queued a"))
		ch := make(chan paho.Message, 10)
		connectMQTT(t, s, "dev", func(co *paho.ClientOptions) {
			co.SetCleanSession(false).SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { ch <- m })
		})
		expect(t, ch, "a", "queued a")
		wait(t, pub.Publish("c", 1, false, "live c"))
		wait(t, pub.Publish("b", 1, false, "live b"))
		expect(t, ch, "b", "live b")
	})
}
