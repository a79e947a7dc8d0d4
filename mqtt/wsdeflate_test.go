package mqtt_test

import (
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/evnats/evnats/loop"
	"github.com/gorilla/websocket"
)

// countingConn counts the bytes read from the socket.
type countingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// wsStream is a gorilla WebSocket as the net.Conn paho reads and writes
// (a message per write; reads run across messages).
type wsStream struct {
	*websocket.Conn
	mu sync.Mutex // paho writes from more than one goroutine
	r  io.Reader
}

func (c *wsStream) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			_, r, err := c.NextReader()
			if err != nil {
				return 0, err
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if err == io.EOF {
			c.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func (c *wsStream) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *wsStream) SetDeadline(t time.Time) error {
	_ = c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

// TestMQTTOverWebSocketCompressed: paho's own WebSocket dialer never
// offers permessage-deflate, so paho dials through gorilla/websocket with
// compression on (the standard library's inflater on the client side):
// with compression on the server, QoS 0 and 1 messages, small and 100
// KiB, arrive intact, and the compressible 100 KiB ones cross the socket
// compressed (far fewer bytes read than delivered).
func TestMQTTOverWebSocketCompressed(t *testing.T) {
	eachTransport(t, func(t *testing.T, o loop.Options) {
		o.Websocket = loop.WebsocketOptions{Port: -1, NoTLS: true, Compression: true}
		s := startMQTT(t, o)
		var read atomic.Int64
		dial := func(*url.URL, paho.ClientOptions) (net.Conn, error) {
			d := websocket.Dialer{
				EnableCompression: true,
				Subprotocols:      []string{"mqtt"},
				HandshakeTimeout:  5 * time.Second,
				NetDial: func(network, addr string) (net.Conn, error) {
					c, err := net.Dial(network, addr)
					if err != nil {
						return nil, err
					}
					return countingConn{c, &read}, nil
				},
			}
			ws, resp, err := d.Dial("ws://"+s.WebsocketAddr().String()+"/mqtt", nil)
			if err != nil {
				return nil, err
			}
			if ext := resp.Header.Get("Sec-Websocket-Extensions"); !strings.HasPrefix(ext, "permessage-deflate") {
				ws.Close()
				t.Errorf("extension not negotiated: %q", ext)
			}
			return &wsStream{Conn: ws}, nil
		}
		viaGorilla := func(o *paho.ClientOptions) { o.SetCustomOpenConnectionFn(dial) }
		sub := connectMQTT(t, s, "ws-z-sub", viaGorilla)
		pub := connectMQTT(t, s, "ws-z-pub", viaGorilla)
		ch := subscribe(t, sub, "z/#", 1)
		for q := byte(0); q <= 1; q++ {
			wait(t, pub.Publish("z/small", q, false, "hello"))
			expect(t, ch, "z/small", "hello")
		}
		big := strings.Repeat("compressible ", 100<<10/13)
		before := read.Load()
		const n = 10
		for range n {
			wait(t, pub.Publish("z/big", 1, false, big))
		}
		for range n {
			expect(t, ch, "z/big", big)
		}
		if got := read.Load() - before; got > n*int64(len(big))/4 {
			t.Fatalf("read %d bytes for %d messages of %d bytes: not compressed", got, n, len(big))
		}
	})
}
