package mqtt_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	packets5 "github.com/eclipse/paho.golang/packets"
	paho5 "github.com/eclipse/paho.golang/paho"
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/tlstest"
)

// pahoTLS sets paho up for ssl:// to s's MQTT port with the test CA.
func pahoTLS(t *testing.T, s *loop.Server, f tlstest.Files) func(*paho.ClientOptions) {
	pem, err := os.ReadFile(f.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return func(o *paho.ClientOptions) {
		o.Servers = nil
		o.AddBroker("ssl://" + s.MQTTAddr().String())
		o.SetTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	}
}

// TestMQTTOverTLS: paho over ssl:// publishes and subscribes at QoS 0 and
// 1 through the TLS codec, with a NATS client on the other side; a
// plaintext MQTT client on the TLS port is closed.
func TestMQTTOverTLS(t *testing.T) {
	f := tlstest.New(t)
	eachTransport(t, func(t *testing.T, o loop.Options) {
		o.MQTTTLS = &loop.TLSOptions{CertFile: f.Cert, KeyFile: f.Key}
		s := startMQTT(t, o)
		sub := connectMQTT(t, s, "tls-sub", pahoTLS(t, s, f))
		pub := connectMQTT(t, s, "tls-pub", pahoTLS(t, s, f))
		ch := subscribe(t, sub, "secure/#", 1)
		for q := byte(0); q <= 1; q++ {
			wait(t, pub.Publish("secure/q", q, false, "hello"))
			if m := expect(t, ch, "secure/q", "hello"); m.Qos() != q {
				t.Fatalf("published at %d, delivered at %d", q, m.Qos())
			}
		}
		big := strings.Repeat("s", 100<<10) // several records
		wait(t, pub.Publish("secure/big", 1, false, big))
		expect(t, ch, "secure/big", big)
		nc := connectNATS(t, s) // the NATS port stays plaintext
		_ = nc.Publish("secure.n", []byte("from nats"))
		expect(t, ch, "secure/n", "from nats")

		// A plaintext CONNECT fails the handshake and the connection closes.
		c, err := net.Dial("tcp", s.MQTTAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = c.Write([]byte{0x10, 0x0c, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 0})
		b, err := io.ReadAll(c) // a TLS alert at most, then EOF
		if err != nil || (len(b) > 0 && b[0] == 0x20) {
			t.Fatalf("plaintext client: read %x, %v; want a close without CONNACK", b, err)
		}
	})
}

// TestMQTTTLSConfig: mqtt { tls {...} } in the config file.
func TestMQTTTLSConfig(t *testing.T) {
	f := tlstest.New(t)
	path := filepath.Join(t.TempDir(), "evnats.conf")
	_ = os.WriteFile(path, []byte(`mqtt { listen: "127.0.0.1:-1", tls { cert_file: "`+f.Cert+`", key_file: "`+f.Key+`", timeout: 3 } }`), 0o644)
	var o loop.Options
	if err := loop.ApplyConfigFile(&o, path); err != nil {
		t.Fatal(err)
	}
	if o.MQTTTLS == nil || o.MQTTTLS.CertFile != f.Cert || o.MQTTTLS.Timeout != 3*time.Second {
		t.Fatalf("mqtt tls %+v", o.MQTTTLS)
	}
	s := startMQTT(t, o)
	connectMQTT(t, s, "cfg", pahoTLS(t, s, f))
}

// TestMQTTOverWSS: paho over wss://.../mqtt: TLS, then WebSocket, then
// MQTT, on every transport.
func TestMQTTOverWSS(t *testing.T) {
	f := tlstest.New(t)
	eachTransport(t, func(t *testing.T, o loop.Options) {
		o.Websocket = loop.WebsocketOptions{Port: -1, TLS: &loop.TLSOptions{CertFile: f.Cert, KeyFile: f.Key}}
		s := startMQTT(t, o)
		wss := func(id string) paho.Client {
			tlsOpt := pahoTLS(t, s, f)
			return connectMQTT(t, s, id, func(po *paho.ClientOptions) {
				tlsOpt(po)
				po.Servers = nil
				po.AddBroker("wss://" + s.WebsocketAddr().String() + "/mqtt")
			})
		}
		sub, pub := wss("wss-sub"), wss("wss-pub")
		ch := subscribe(t, sub, "w/#", 1)
		wait(t, pub.Publish("w/x", 1, false, "over wss"))
		expect(t, ch, "w/x", "over wss")
	})
}

// TestMQTT5OverTLS: paho.golang (MQTT 5) over TLS: properties and a
// subscription identifier through the TLS codec.
func TestMQTT5OverTLS(t *testing.T) {
	f := tlstest.New(t)
	pem, err := os.ReadFile(f.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	eachTransport(t, func(t *testing.T, o loop.Options) {
		o.MQTTTLS = &loop.TLSOptions{CertFile: f.Cert, KeyFile: f.Key}
		s := startMQTT(t, o)
		dial := func() *client5 {
			conn, err := tls.Dial("tcp", s.MQTTAddr().String(), &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
			if err != nil {
				t.Fatal(err)
			}
			return connect5Conn(t, packets5.NewThreadSafeConn(conn), nil)
		}
		sub, pub := dial(), dial()
		sid := 11
		sub.sub(t, &paho5.Subscribe{Properties: &paho5.SubscribeProperties{SubscriptionIdentifier: &sid},
			Subscriptions: []paho5.SubscribeOptions{{Topic: "secure5/#", QoS: 1}}})
		pub.pub(t, &paho5.Publish{Topic: "secure5/a", QoS: 1, Payload: []byte("over tls"),
			Properties: &paho5.PublishProperties{User: paho5.UserProperties{{Key: "k", Value: "v"}}}})
		m := sub.next(t)
		if string(m.Payload) != "over tls" || m.Properties.SubscriptionIdentifier == nil || *m.Properties.SubscriptionIdentifier != 11 ||
			len(m.Properties.User) != 1 {
			t.Fatalf("got %q %+v", m.Payload, m.Properties)
		}
	})
}
