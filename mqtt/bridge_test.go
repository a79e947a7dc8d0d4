package mqtt_test

import (
	"fmt"
	"net"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	"github.com/nats-io/nats.go"
)

// eachTransport runs a test on the gnet loops (1 and 3) and on the
// goroutine transport.
func eachTransport(t *testing.T, f func(t *testing.T, o loop.Options)) {
	looptest.Each(t, loop.Options{}, f)
}

// startMQTT starts a server with MQTT on a random port; with JetStream on,
// sessions persist under StoreDir.
func startMQTT(t *testing.T, o loop.Options) *loop.Server {
	t.Helper()
	if o.MQTTPort == 0 {
		o.MQTTPort = -1
	}
	return looptest.Start(t, o)
}

func mqttURL(s *loop.Server) string {
	return "tcp://" + s.MQTTAddr().String()
}

// connectMQTT connects a paho client; opts may adjust the options.
func connectMQTT(t *testing.T, s *loop.Server, id string, opts ...func(*paho.ClientOptions)) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(mqttURL(s)).SetClientID(id).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(5 * time.Second)
	for _, f := range opts {
		f(o)
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %q: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

// connectNATS connects a nats.go client, closed when the test ends.
func connectNATS(t *testing.T, s *loop.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func wait(t *testing.T, tok paho.Token) {
	t.Helper()
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("token: %v", tok.Error())
	}
}

// received is a subscriber's channel of messages.
func subscribe(t *testing.T, c paho.Client, filter string, qos byte) chan paho.Message {
	t.Helper()
	ch := make(chan paho.Message, 1000)
	wait(t, c.Subscribe(filter, qos, func(_ paho.Client, m paho.Message) { ch <- m }))
	return ch
}

func expect(t *testing.T, ch chan paho.Message, topic, payload string) paho.Message {
	t.Helper()
	select {
	case m := <-ch:
		if m.Topic() != topic || string(m.Payload()) != payload {
			t.Fatalf("got %s %q, want %s %q", m.Topic(), m.Payload(), topic, payload)
		}
		return m
	case <-time.After(5 * time.Second):
		t.Fatalf("no message for %s %q", topic, payload)
	}
	return nil
}

// expectNone checks nothing arrives; a later message that must arrive is the
// signal, so this only drains what is already there.
func expectNone(t *testing.T, ch chan paho.Message) {
	t.Helper()
	select {
	case m := <-ch:
		t.Fatalf("unexpected %s %q", m.Topic(), m.Payload())
	default:
	}
}

func TestMQTTPubSubQoS(t *testing.T) {
	eachTransport(t, func(t *testing.T, o loop.Options) {
		s := startMQTT(t, o)
		sub := connectMQTT(t, s, "sub")
		pub := connectMQTT(t, s, "pub")
		ch0 := subscribe(t, sub, "a/+/c", 0)
		ch2 := subscribe(t, sub, "x/#", 2)
		for q := byte(0); q <= 2; q++ {
			wait(t, pub.Publish("a/b/c", q, false, fmt.Sprintf("q%d", q)))
			m := expect(t, ch0, "a/b/c", fmt.Sprintf("q%d", q))
			if m.Qos() != 0 {
				t.Fatalf("granted 0, delivered at %d", m.Qos())
			}
		}
		for q := byte(0); q <= 2; q++ {
			wait(t, pub.Publish("x/y", q, false, fmt.Sprintf("q%d", q)))
			m := expect(t, ch2, "x/y", fmt.Sprintf("q%d", q))
			if m.Qos() != q {
				t.Fatalf("published at %d, delivered at %d", q, m.Qos())
			}
		}
		// x/# matches x itself.
		wait(t, pub.Publish("x", 1, false, "parent"))
		expect(t, ch2, "x", "parent")
		wait(t, sub.Unsubscribe("x/#"))
		wait(t, pub.Publish("x/y", 1, false, "after"))
		wait(t, pub.Publish("a/b/c", 1, false, "marker"))
		expect(t, ch0, "a/b/c", "marker")
		expectNone(t, ch2)
	})
}

func TestMQTTCrossProtocol(t *testing.T) {
	eachTransport(t, func(t *testing.T, o loop.Options) {
		s := startMQTT(t, o)
		nc := connectNATS(t, s)
		mc := connectMQTT(t, s, "bridge")
		ch := subscribe(t, mc, "sensors/+/temp", 1)
		nsub, _ := nc.SubscribeSync("sensors.>")
		nc.Flush()

		// NATS -> MQTT, delivered at QoS 0.
		nc.Publish("sensors.k1.temp", []byte("21.5"))
		if m := expect(t, ch, "sensors/k1/temp", "21.5"); m.Qos() != 0 {
			t.Fatalf("NATS message at QoS %d", m.Qos())
		}
		nm, err := nsub.NextMsg(5 * time.Second)
		if err != nil || string(nm.Data) != "21.5" {
			t.Fatalf("NATS own message: %v", err)
		}

		// MQTT -> NATS with the Nmqtt-Pub header; '.' in a level maps to "//".
		wait(t, mc.Publish("sensors/k2.b/temp", 1, false, "19"))
		nm, err = nsub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if nm.Subject != "sensors.k2//b.temp" || string(nm.Data) != "19" || nm.Header.Get("Nmqtt-Pub") != "1" {
			t.Fatalf("NATS got %s %q %v", nm.Subject, nm.Data, nm.Header)
		}
		expect(t, ch, "sensors/k2.b/temp", "19")
	})
}

func TestMQTTConnectRefusals(t *testing.T) {
	s := startMQTT(t, loop.Options{Users: []*loop.User{{Username: "u", Password: "p"}}})
	try := func(id, user, pass string, clean bool) error {
		o := paho.NewClientOptions().AddBroker(mqttURL(s)).SetClientID(id).SetUsername(user).SetPassword(pass).
			SetCleanSession(clean).SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
		c := paho.NewClient(o)
		tok := c.Connect()
		tok.WaitTimeout(5 * time.Second)
		if tok.Error() == nil {
			c.Disconnect(0)
		}
		return tok.Error()
	}
	if err := try("ok", "u", "p", true); err != nil {
		t.Fatalf("good credentials: %v", err)
	}
	if err := try("bad", "u", "x", true); err == nil || err.Error() != packets.ErrorRefusedNotAuthorised.Error() {
		t.Fatalf("bad password: %v", err)
	}
	if err := try("", "u", "p", false); err == nil || err.Error() != packets.ErrorRefusedIDRejected.Error() {
		t.Fatalf("empty id without clean session: %v", err)
	}
	if err := try("", "u", "p", true); err != nil {
		t.Fatalf("empty id with clean session: %v", err)
	}
	// Protocol level 3 (MQIsdp) is refused with code 1.
	conn, err := net.Dial("tcp", s.MQTTAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte{0x10, 14, 0, 6, 'M', 'Q', 'I', 's', 'd', 'p', 3, 2, 0, 60, 0, 0})
	buf := make([]byte, 4)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(buf); err != nil || buf[3] != 1 {
		t.Fatalf("level 3: % x %v", buf, err)
	}
}
