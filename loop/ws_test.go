package loop_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	"github.com/evnats/evnats/loop/tlstest"
	"github.com/nats-io/nats.go"
)

// wsOpts are server options with a ws:// listener on a random port.
func wsOpts() loop.Options {
	return loop.Options{Websocket: loop.WebsocketOptions{Port: -1, NoTLS: true}}
}

func wsURL(s *loop.Server) string { return "ws://" + s.WebsocketAddr().String() }

func connectWS(t testing.TB, s *loop.Server, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(wsURL(s), append([]nats.Option{nats.Timeout(10 * time.Second), nats.NoReconnect()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// TestWSPubSub: nats.go over ws:// subscribes, publishes (a message of
// 100 KiB spans frames and reads), requests and replies, with a plain TCP
// client on the other side and between two WebSocket clients.
func TestWSPubSub(t *testing.T) {
	looptest.Each(t, wsOpts(), func(t *testing.T, o loop.Options) {
		s := looptest.Start(t, o)
		a := connectWS(t, s)
		b := connectWS(t, s)
		checkPubSubRequest(t, a, b)
		p, err := nats.Connect("nats://"+s.Addr().String(), nats.NoReconnect())
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		checkPubSubRequest(t, a, p)
	})
}

// TestWSNeedsNoTLS: a websocket block without tls needs no_tls, as in
// nats-server.
func TestWSNeedsNoTLS(t *testing.T) {
	_, err := loop.New(loop.Options{Websocket: loop.WebsocketOptions{Port: -1}})
	if err == nil || !strings.Contains(err.Error(), "no_tls") {
		t.Fatalf("got %v, want an error naming no_tls", err)
	}
}

// wsDial opens a TCP connection to the WebSocket port.
func wsDial(t *testing.T, s *loop.Server) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", s.WebsocketAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

const wsGoodRequest = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

// TestWSBadUpgrade: bad upgrade requests get their HTTP status with the
// reason as the body, then the connection closes.
func TestWSBadUpgrade(t *testing.T) {
	cases := []struct {
		name, req string
		status    int
		reason    string
	}{
		{"post", strings.Replace(wsGoodRequest, "GET", "POST", 1), 405, "request method must be GET"},
		{"no-upgrade", strings.Replace(wsGoodRequest, "Upgrade: websocket\r\n", "", 1), 400, "invalid value for header 'Upgrade'"},
		{"no-connection", strings.Replace(wsGoodRequest, "Connection: Upgrade", "Connection: keep-alive", 1), 400, "invalid value for header 'Connection'"},
		{"no-key", strings.Replace(wsGoodRequest, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "", 1), 400, "key missing"},
		{"bad-key", strings.Replace(wsGoodRequest, "dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ=", 1), 400, "invalid websocket key"},
		{"version", strings.Replace(wsGoodRequest, "Version: 13", "Version: 8", 1), 400, "invalid version"},
		{"garbage", "\x16\x03\x01\x00\x05hello\r\n\r\n", 400, "invalid HTTP request"},
		{"mqtt-off", strings.Replace(wsGoodRequest, "GET /", "GET /mqtt", 1), 404, "mqtt websocket endpoint not enabled"},
	}
	looptest.Each(t, wsOpts(), func(t *testing.T, o loop.Options) {
		s := looptest.Start(t, o)
		for _, tc := range cases {
			c := wsDial(t, s)
			if _, err := io.WriteString(c, tc.req); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.reason) {
				t.Fatalf("%s: got %d %q, want %d %q", tc.name, resp.StatusCode, body, tc.status, tc.reason)
			}
			if n, err := c.Read(make([]byte, 1)); err == nil {
				t.Fatalf("%s: connection still open (read %d)", tc.name, n)
			}
		}
	})
}

// wsUpgrade does the upgrade on a raw connection and returns a reader
// past the 101 response.
func wsUpgrade(t *testing.T, c net.Conn) *bufio.Reader {
	t.Helper()
	if _, err := io.WriteString(c, wsGoodRequest); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Sec-Websocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("upgrade: %d %v", resp.StatusCode, resp.Header)
	}
	return br
}

// wsFrame is a client frame, masked unless key is nil.
func wsFrame(b0 byte, payload []byte, key []byte) []byte {
	var f []byte
	n := len(payload)
	mask := byte(0)
	if key != nil {
		mask = 0x80
	}
	switch {
	case n <= 125:
		f = append(f, b0, mask|byte(n))
	case n <= 0xFFFF:
		f = append(f, b0, mask|126, byte(n>>8), byte(n))
	default:
		f = append(f, b0, mask|127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	if key == nil {
		return append(f, payload...)
	}
	f = append(f, key...)
	for i, c := range payload {
		f = append(f, c^key[i&3])
	}
	return f
}

// readFrame reads one server frame.
func readFrame(t *testing.T, r *bufio.Reader) (byte, []byte) {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		t.Fatal(err)
	}
	if h[1]&0x80 != 0 {
		t.Fatal("server frame masked")
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		_, _ = io.ReadFull(r, b[:])
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		_, _ = io.ReadFull(r, b[:])
		n = binary.BigEndian.Uint64(b[:])
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		t.Fatal(err)
	}
	return h[0], p
}

// readUntilClose reads frames until a close frame and returns its status
// and reason.
func readUntilClose(t *testing.T, r *bufio.Reader) (int, string) {
	t.Helper()
	for {
		b0, p := readFrame(t, r)
		if b0&0x0F == 8 {
			if len(p) < 2 {
				return 0, ""
			}
			return int(binary.BigEndian.Uint16(p)), string(p[2:])
		}
	}
}

var wsKey = []byte{1, 2, 3, 4}

// TestWSRawFrames: INFO comes in a binary frame; CONNECT and PING split
// across frames of one message, and a frame split across writes, are
// parsed; a ping gets a pong with its payload; a close gets a close.
func TestWSRawFrames(t *testing.T) {
	looptest.Each(t, wsOpts(), func(t *testing.T, o loop.Options) {
		s := looptest.Start(t, o)
		c := wsDial(t, s)
		r := wsUpgrade(t, c)
		b0, p := readFrame(t, r)
		if b0 != 0x82 || !bytes.HasPrefix(p, []byte("INFO {")) {
			t.Fatalf("first frame %#x %q", b0, p)
		}
		msg := []byte("CONNECT {\"verbose\":false}\r\nPING\r\n")
		f := append(wsFrame(0x02, msg[:10], wsKey), wsFrame(0x80, msg[10:], []byte{9, 8, 7, 6})...)
		for i := range f { // a byte at a time
			if _, err := c.Write(f[i : i+1]); err != nil {
				t.Fatal(err)
			}
		}
		if _, p := readFrame(t, r); string(p) != "PONG\r\n" {
			t.Fatalf("got %q, want PONG", p)
		}
		if _, err := c.Write(wsFrame(0x89, []byte("hi"), wsKey)); err != nil {
			t.Fatal(err)
		}
		if b0, p := readFrame(t, r); b0 != 0x8A || string(p) != "hi" {
			t.Fatalf("got %#x %q, want a pong with hi", b0, p)
		}
		if _, err := c.Write(wsFrame(0x88, []byte{0x03, 0xE8}, wsKey)); err != nil {
			t.Fatal(err)
		}
		if st, _ := readUntilClose(t, r); st != 1000 {
			t.Fatalf("close status %d, want 1000", st)
		}
		if _, err := r.ReadByte(); err == nil {
			t.Fatal("connection still open after close")
		}
	})
}

// TestWSBadFrames: frames that break RFC 6455's rules close the
// connection with a close frame (1002) that says why.
func TestWSBadFrames(t *testing.T) {
	cases := []struct {
		name   string
		frame  []byte
		reason string
	}{
		{"unmasked", wsFrame(0x82, []byte("PING\r\n"), nil), "mask bit missing"},
		{"big-control", wsFrame(0x89, make([]byte, 126), wsKey), "control frame length"},
		{"fragmented-control", wsFrame(0x09, []byte("x"), wsKey), "final bit"},
		{"rsv2", wsFrame(0xA2, []byte("x"), wsKey), "RSV2 and RSV3"},
		{"compressed", wsFrame(0xC2, []byte("x"), wsKey), "permessage-deflate"},
		{"opcode", wsFrame(0x83, []byte("x"), wsKey), "unknown opcode"},
		{"continuation", wsFrame(0x80, []byte("x"), wsKey), "invalid continuation"},
		{"oversized", append([]byte{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0}, wsKey...), "invalid 64-bit payload length"},
		{"close-1-byte", wsFrame(0x88, []byte{3}, wsKey), "cannot be 1 byte"},
	}
	looptest.Each(t, wsOpts(), func(t *testing.T, o loop.Options) {
		s := looptest.Start(t, o)
		for _, tc := range cases {
			c := wsDial(t, s)
			r := wsUpgrade(t, c)
			readFrame(t, r) // INFO
			if _, err := c.Write(tc.frame); err != nil {
				t.Fatal(err)
			}
			st, reason := readUntilClose(t, r)
			if st != 1002 || !strings.Contains(reason, tc.reason) {
				t.Fatalf("%s: close %d %q, want 1002 %q", tc.name, st, reason, tc.reason)
			}
			if _, err := r.ReadByte(); err == nil {
				t.Fatalf("%s: connection still open", tc.name)
			}
		}
	})
}

// TestWSHandshakeTimeout: a client that never finishes its upgrade is
// closed after handshake_timeout, with a log line.
func TestWSHandshakeTimeout(t *testing.T) {
	o := wsOpts()
	o.Websocket.HandshakeTimeout = 200 * time.Millisecond
	looptest.Each(t, o, func(t *testing.T, o loop.Options) {
		var log looptest.LogBuffer
		o.LogWriter = &log
		s := looptest.Start(t, o)
		c := wsDial(t, s)
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\n"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if n, err := c.Read(make([]byte, 100)); err == nil {
			t.Fatalf("read %d bytes, want a close", n)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("closed after %v", d)
		}
		if !strings.Contains(log.String(), "websocket handshake timeout") {
			t.Fatalf("log: %s", log.String())
		}
	})
}

// TestWSFlowControl: a WebSocket publisher streaming 16 KiB messages to a
// WebSocket subscriber as fast as it can is paused, not cut: every
// message arrives.
func TestWSFlowControl(t *testing.T) {
	eachFlowTransport(t, wsOpts(), func(t *testing.T, s *loop.Server) {
		n := 20000 / flowScale
		c := countTo(t, connectWS(t, s), "flow", n)
		publishN(t, connectWS(t, s), "flow", n, 16<<10)
		waitAll(t, s, c.done, c.got.Load, n, true)
	})
}

// TestWSFrameSize: output is framed in frames of at most eight
// max_payloads, the most nats.go takes (it closes the connection with
// "websocket frame too large" otherwise): a burst larger than that, queued
// for a subscriber in one go, reaches a raw reader in small frames and a
// nats.go subscriber whole. A flush used to frame everything it took as
// one frame, so a subscriber fed a loop's whole inbox at once was dropped
// (issue 11).
func TestWSFrameSize(t *testing.T) {
	const maxPayload = 1 << 10
	o := wsOpts()
	o.MaxPayload = maxPayload
	looptest.Each(t, o, func(t *testing.T, o loop.Options) {
		s := looptest.Start(t, o)
		raw := wsDial(t, s)
		r := wsUpgrade(t, raw)
		readFrame(t, r) // INFO
		if _, err := raw.Write(wsFrame(0x82, []byte("CONNECT {\"verbose\":false}\r\nSUB burst 1\r\nPING\r\n"), wsKey)); err != nil {
			t.Fatal(err)
		}
		if _, p := readFrame(t, r); string(p) != "PONG\r\n" {
			t.Fatalf("got %q, want PONG", p)
		}
		sub := connectWS(t, s)
		var got atomic.Int64
		const n = 200 // 200 KiB, in one write of the publisher
		done := make(chan struct{})
		if _, err := sub.Subscribe("burst", func(*nats.Msg) {
			if got.Add(1) == n {
				close(done)
			}
		}); err != nil {
			t.Fatal(err)
		}
		if err := sub.Flush(); err != nil {
			t.Fatal(err)
		}

		payload := strings.Repeat("x", maxPayload)
		burst := strings.Repeat("PUB burst "+strconv.Itoa(maxPayload)+"\r\n"+payload+"\r\n", n)
		pub := dialRaw(t, s)
		pub.send("CONNECT {\"verbose\":false}\r\n%sPING\r\n", burst)
		pub.expect("PONG")

		want := n * len("MSG burst 1 "+strconv.Itoa(maxPayload)+"\r\n"+payload+"\r\n")
		_ = raw.SetReadDeadline(time.Now().Add(10 * time.Second))
		for read := 0; read < want; {
			_, p := readFrame(t, r)
			if len(p) > 8*maxPayload {
				t.Fatalf("frame of %d bytes, more than 8 max_payloads (%d)", len(p), 8*maxPayload)
			}
			read += len(p)
		}
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("nats.go subscriber got %d of %d (last error %v)", got.Load(), n, sub.LastError())
		}
		if !sub.IsConnected() {
			t.Fatalf("nats.go subscriber dropped: %v", sub.LastError())
		}
	})
}

// TestWSMaxPending: a WebSocket subscriber that stops reading is cut as a
// slow consumer once its pending output passes max_pending.
func TestWSMaxPending(t *testing.T) {
	o := wsOpts()
	o.MaxPending = 4 << 20
	eachFlowTransport(t, o, func(t *testing.T, s *loop.Server) {
		raw := wsDial(t, s)
		_ = raw.(*net.TCPConn).SetReadBuffer(64 << 10)
		r := wsUpgrade(t, raw)
		readFrame(t, r) // INFO
		if _, err := raw.Write(wsFrame(0x82, []byte("CONNECT {\"verbose\":false}\r\nSUB flow 1\r\nPING\r\n"), wsKey)); err != nil {
			t.Fatal(err)
		}
		if _, p := readFrame(t, r); string(p) != "PONG\r\n" {
			t.Fatalf("got %q, want PONG", p)
		} // and it reads no more
		// 32 MiB of 16 KiB messages: eight times max_pending.
		publishN(t, connectWS(t, s), "flow", 2000, 16<<10)
		waitFor(t, func() bool { return s.SlowConsumers() == 1 })
		closedWithin(t, raw, 10*time.Second)
	})
}

// TestWSConfig: the websocket block in nats-server's syntax, with its own
// authorization: a WebSocket client needs the block's token, a TCP client
// does not.
func TestWSConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "evnats.conf")
	_ = os.WriteFile(path, []byte(`
listen: "127.0.0.1:-1"
websocket {
  listen: "127.0.0.1:-1"
  no_tls: true
  same_origin: false
  allowed_origins: ["http://app.example.com"]
  handshake_timeout: "3s"
  compression: false
  authorization { token: "s3cret" }
}
`), 0o644)
	var o loop.Options
	if err := loop.ApplyConfigFile(&o, path); err != nil {
		t.Fatal(err)
	}
	w := o.Websocket
	if w.Port != -1 || !w.NoTLS || len(w.AllowedOrigins) != 1 || w.HandshakeTimeout != 3*time.Second || w.Token != "s3cret" {
		t.Fatalf("websocket options %+v", w)
	}
	s := startServer(t, o)
	if _, err := nats.Connect(wsURL(s), nats.NoReconnect()); err == nil {
		t.Fatal("WebSocket client without the token connected")
	}
	connectWS(t, s, nats.Token("s3cret"))
	connect(t, s)

	// An origin not in the list is refused with 403.
	c := wsDial(t, s)
	_, _ = io.WriteString(c, strings.Replace(wsGoodRequest, "\r\n\r\n", "\r\nOrigin: http://evil.example.com\r\n\r\n", 1))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 403 {
		t.Fatalf("foreign origin: %v %v", resp, err)
	}
	c = wsDial(t, s)
	_, _ = io.WriteString(c, strings.Replace(wsGoodRequest, "\r\n\r\n", "\r\nOrigin: http://app.example.com\r\n\r\n", 1))
	wsUpgrade101(t, c)

	_ = os.WriteFile(path, []byte("websocket { port: 1, bogus: 1 }\n"), 0o644)
	if err := loop.ApplyConfigFile(&loop.Options{}, path); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("unknown key: %v", err)
	}
}

// wsUpgrade101 reads a 101 response.
func wsUpgrade101(t *testing.T, c net.Conn) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("allowed origin: %v %v", resp, err)
	}
}

// TestWSS: nats.go over wss:// (the TLS codec below the WebSocket codec)
// subscribes, publishes 100 KiB messages and requests; a plaintext
// upgrade request on the wss port is closed without a response.
func TestWSS(t *testing.T) {
	f := tlstest.New(t)
	o := loop.Options{Websocket: loop.WebsocketOptions{Port: -1, TLS: &loop.TLSOptions{CertFile: f.Cert, KeyFile: f.Key}}}
	looptest.Each(t, o, func(t *testing.T, o loop.Options) {
		s := looptest.Start(t, o)
		dial := func() *nats.Conn {
			nc, err := nats.Connect("wss://"+s.WebsocketAddr().String(), nats.RootCAs(f.CA), nats.Timeout(10*time.Second), nats.NoReconnect())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			return nc
		}
		a, b := dial(), dial()
		checkPubSubRequest(t, a, b)
		checkPubSubRequest(t, b, connect(t, s))

		c := wsDial(t, s)
		_, _ = io.WriteString(c, wsGoodRequest)
		if got, err := io.ReadAll(c); err != nil || bytes.HasPrefix(got, []byte("HTTP")) {
			t.Fatalf("plaintext upgrade on wss: %q, %v", got, err)
		}
	})
}

// TestWSCompression: with compression on, nats.go negotiates
// permessage-deflate (no context takeover either way) and sends
// compressed frames, which the server inflates: small and 100 KiB
// messages and requests go through, to compressed and plain clients.
func TestWSCompression(t *testing.T) {
	o := wsOpts()
	o.Websocket.Compression = true
	looptest.Each(t, o, func(t *testing.T, o loop.Options) {
		s := looptest.Start(t, o)
		a := connectWS(t, s, nats.Compression(true))
		b := connectWS(t, s, nats.Compression(true))
		checkPubSubRequest(t, a, b)
		checkPubSubRequest(t, connectWS(t, s), b)

		// The 101 names the extension with both no-context-takeover
		// parameters.
		c := wsDial(t, s)
		_, _ = io.WriteString(c, strings.Replace(wsGoodRequest, "\r\n\r\n", "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n", 1))
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.Header.Get("Sec-Websocket-Extensions") != "permessage-deflate; server_no_context_takeover; client_no_context_takeover" {
			t.Fatalf("101: %v %v", resp, err)
		}
		// A compressed message that does not inflate closes with 1007.
		if _, err := c.Write(wsFrame(0xC2, []byte{0xff, 0xff, 0xff, 0xff}, wsKey)); err != nil {
			t.Fatal(err)
		}
		if st, reason := readUntilClose(t, br); st != 1007 {
			t.Fatalf("close %d %q, want 1007", st, reason)
		}
	})
}

// TestWSAuthTimeout: the websocket block's authorization timeout, not the
// server's, closes a WebSocket client that never sends CONNECT.
func TestWSAuthTimeout(t *testing.T) {
	o := wsOpts()
	o.AuthTimeout = time.Minute
	o.Websocket.Token, o.Websocket.AuthTimeout = "t", 500*time.Millisecond
	looptest.Each(t, o, func(t *testing.T, o loop.Options) {
		s := looptest.Start(t, o)
		c := wsDial(t, s)
		r := wsUpgrade(t, c)
		if _, p := readFrame(t, r); !bytes.Contains(p, []byte(`"auth_required":true`)) {
			t.Fatalf("INFO %q", p)
		}
		start := time.Now()
		_, p := readFrame(t, r)
		if string(p) != "-ERR 'Authentication Timeout'\r\n" {
			t.Fatalf("got %q", p)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("closed after %v", d)
		}
		readUntilClose(t, r)
	})
}
