package mqtt_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go"
)

// startMQTTWS starts a server with MQTT and a ws:// listener.
func startMQTTWS(t *testing.T, o loop.Options) *loop.Server {
	t.Helper()
	o.Websocket = loop.WebsocketOptions{Port: -1, NoTLS: true}
	return startMQTT(t, o)
}

// connectMQTTWS connects paho over ws://host:port/mqtt.
func connectMQTTWS(t *testing.T, s *loop.Server, id string) paho.Client {
	t.Helper()
	return connectMQTT(t, s, id, func(o *paho.ClientOptions) {
		o.Servers = nil
		o.AddBroker("ws://" + s.WebsocketAddr().String() + "/mqtt")
	})
}

// TestMQTTOverWebSocket: paho over ws:// publishes and subscribes at QoS 0
// and 1, with a paho client over TCP and a nats.go client on the other
// side.
func TestMQTTOverWebSocket(t *testing.T) {
	eachTransport(t, func(t *testing.T, o loop.Options) {
		s := startMQTTWS(t, o)
		sub := connectMQTTWS(t, s, "ws-sub")
		pub := connectMQTTWS(t, s, "ws-pub")
		tcp := connectMQTT(t, s, "tcp")
		ch := subscribe(t, sub, "ws/#", 1)
		chTCP := subscribe(t, tcp, "ws/#", 0)
		for q := byte(0); q <= 1; q++ {
			wait(t, pub.Publish("ws/q", q, false, "hello"))
			if m := expect(t, ch, "ws/q", "hello"); m.Qos() != q {
				t.Fatalf("published at %d, delivered at %d", q, m.Qos())
			}
			expect(t, chTCP, "ws/q", "hello")
		}
		big := strings.Repeat("b", 100<<10) // spans frames and reads
		wait(t, pub.Publish("ws/big", 1, false, big))
		expect(t, ch, "ws/big", big)

		nc := connectNATS(t, s)
		nsub, _ := nc.SubscribeSync("ws.>")
		_ = nc.Flush()
		wait(t, pub.Publish("ws/n", 1, false, "to nats"))
		if m, err := nsub.NextMsg(5 * time.Second); err != nil || string(m.Data) != "to nats" {
			t.Fatalf("NATS got %v %v", m, err)
		}
		expect(t, ch, "ws/n", "to nats")
		_ = nc.Publish("ws.from", []byte("from nats"))
		expect(t, ch, "ws/from", "from nats")

		// A NATS client over WebSocket beside them.
		wn, err := nats.Connect("ws://"+s.WebsocketAddr().String(), nats.NoReconnect())
		if err != nil {
			t.Fatal(err)
		}
		defer wn.Close()
		_ = wn.Publish("ws.wsnats", []byte("x"))
		expect(t, ch, "ws/wsnats", "x")
	})
}

// TestMQTTWebSocketNeedsProtocol: /mqtt without Sec-WebSocket-Protocol:
// mqtt is refused with 400.
func TestMQTTWebSocketNeedsProtocol(t *testing.T) {
	s := startMQTTWS(t, loop.Options{})
	c, err := net.Dial("tcp", s.WebsocketAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(c, "GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 400 {
		t.Fatalf("got %v %v, want 400", resp, err)
	}
}
