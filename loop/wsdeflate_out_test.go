package loop_test

import (
	"bufio"
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	"github.com/evnats/evnats/loop/tlstest"
	"github.com/nats-io/nats.go"
)

// wsMessage reads one data message, its frames gathered: whether it was
// compressed (then inflated, with the tail RFC 7692 drops put back, by
// the standard library, not the server's package) and its frames' sizes.
func wsMessage(t *testing.T, r *bufio.Reader) (data []byte, compressed bool, frames []int) {
	t.Helper()
	for {
		b0, p := readFrame(t, r)
		op := b0 & 0x0F
		switch {
		case op >= 8:
			t.Fatalf("control frame %#x %q inside a message", b0, p)
		case len(frames) == 0 && op != 2, len(frames) > 0 && op != 0:
			t.Fatalf("frame %d of a message has opcode %d", len(frames), op)
		case len(frames) > 0 && b0&0x40 != 0:
			t.Fatal("RSV1 on a continuation frame")
		}
		if len(frames) == 0 {
			compressed = b0&0x40 != 0
		}
		frames = append(frames, len(p))
		data = append(data, p...)
		if b0&0x80 != 0 {
			break
		}
	}
	if compressed {
		fr := flate.NewReader(io.MultiReader(bytes.NewReader(data), bytes.NewReader([]byte{0, 0, 0xff, 0xff})))
		out, err := io.ReadAll(fr)
		if err != nil && err != io.ErrUnexpectedEOF {
			t.Fatalf("inflating a message of %d bytes: %v", len(data), err)
		}
		data = out
	}
	return data, compressed, frames
}

// TestWSCompressedFrames: with compression negotiated the server's frames
// are compressed as RFC 7692 says and nats-server does: INFO and a MSG are
// one message each with RSV1 on its first frame that inflates to exactly
// the protocol bytes; a PONG (6 bytes, under the threshold) goes out raw;
// a burst of incompressible messages comes as compressed messages of
// several frames (RSV1 on the first only), none over 8 max_payloads, that
// inflate to the exact MSG stream. A client that does not offer the
// extension gets raw frames.
func TestWSCompressedFrames(t *testing.T) {
	const maxPayload = 4 << 10
	o := wsOpts()
	o.Websocket.Compression = true
	o.MaxPayload = maxPayload
	looptest.Each(t, o, func(t *testing.T, o loop.Options) {
		s := looptest.Start(t, o)
		c := wsDial(t, s)
		_, _ = io.WriteString(c, strings.Replace(wsGoodRequest, "\r\n\r\n", "\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n", 1))
		r := bufio.NewReader(c)
		if resp, err := http.ReadResponse(r, nil); err != nil || resp.StatusCode != 101 {
			t.Fatalf("upgrade: %v %v", resp, err)
		}
		if info, comp, _ := wsMessage(t, r); !comp || !bytes.HasPrefix(info, []byte("INFO {")) || !bytes.HasSuffix(info, []byte("}\r\n")) {
			t.Fatalf("INFO compressed %v: %q", comp, info)
		}
		if _, err := c.Write(wsFrame(0x82, []byte("CONNECT {\"verbose\":false}\r\nSUB cmp 1\r\nPING\r\n"), wsKey)); err != nil {
			t.Fatal(err)
		}
		if b0, p := readFrame(t, r); b0 != 0x82 || string(p) != "PONG\r\n" {
			t.Fatalf("got %#x %q, want PONG uncompressed", b0, p)
		}

		pub := dialRaw(t, s)
		pub.send("CONNECT {\"verbose\":false}\r\n")
		one := strings.Repeat("evnats ", 150)[:1000]
		pub.send("PUB cmp 1000\r\n%s\r\nPING\r\n", one)
		pub.expect("PONG")
		if msg, comp, frames := wsMessage(t, r); !comp || len(frames) != 1 || string(msg) != "MSG cmp 1 1000\r\n"+one+"\r\n" {
			t.Fatalf("MSG compressed %v in %d frames: %q", comp, len(frames), msg)
		}

		// 100 random 4 KiB payloads in one write of the publisher.
		rng := rand.NewChaCha8([32]byte{11})
		var burst, want strings.Builder
		for i := 0; i < 100; i++ {
			p := make([]byte, maxPayload)
			_, _ = rng.Read(p)
			fmt.Fprintf(&burst, "PUB cmp %d\r\n%s\r\n", len(p), p)
			fmt.Fprintf(&want, "MSG cmp 1 %d\r\n%s\r\n", len(p), p)
		}
		pub.send("%sPING\r\n", burst.String())
		pub.expect("PONG")
		var got []byte
		multi := false
		for len(got) < want.Len() {
			msg, comp, frames := wsMessage(t, r)
			if !comp {
				t.Fatalf("%d bytes sent uncompressed", len(msg))
			}
			for _, n := range frames {
				if n > 8*maxPayload {
					t.Fatalf("frame of %d bytes, more than 8 max_payloads", n)
				}
			}
			multi = multi || len(frames) > 1
			got = append(got, msg...)
		}
		if string(got) != want.String() || !multi {
			t.Fatalf("burst: %d bytes, want %d; equal %v; a message of several frames: %v", len(got), want.Len(), string(got) == want.String(), multi)
		}

		// Without the extension: raw frames.
		plain := wsDial(t, s)
		pr := wsUpgrade(t, plain)
		if b0, p := readFrame(t, pr); b0 != 0x82 || !bytes.HasPrefix(p, []byte("INFO {")) {
			t.Fatalf("INFO to a client without compression: %#x %q", b0, p)
		}
	})
}

// checkCompressedStream: every message from pub reaches sub intact and in
// order: small ones, 100 KiB, 1 MiB (more than one compressed message
// takes: max_payload less the header), and 2,000 of random sizes, half of them random bytes and half
// text; a plain TCP subscriber gets the same.
func checkCompressedStream(t *testing.T, s *loop.Server, pub, sub *nats.Conn) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 7))
	fill := rand.NewChaCha8([32]byte{7})
	var payloads [][]byte
	for _, n := range []int{0, 1, 10, 63, 64, 65, 200, 100 << 10, 1<<20 - 100} {
		payloads = append(payloads, bytes.Repeat([]byte("z"), n))
	}
	for i := 0; i < 2000; i++ {
		p := make([]byte, rng.IntN(8<<10))
		if i%2 == 0 {
			_, _ = fill.Read(p)
		} else {
			for j := range p {
				p[j] = "the quick brown fox "[(i+j)%20]
			}
		}
		payloads = append(payloads, p)
	}
	big := make([]byte, 1<<20-100) // max_payload counts the header
	_, _ = fill.Read(big)
	payloads = append(payloads, big)

	tcp := connect(t, s)
	var chans []chan *nats.Msg
	for _, nc := range []*nats.Conn{sub, tcp} {
		ch := make(chan *nats.Msg, len(payloads))
		sb, err := nc.ChanSubscribe("stream", ch)
		if err != nil {
			t.Fatal(err)
		}
		_ = sb.SetPendingLimits(-1, -1)
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		chans = append(chans, ch)
	}
	for i, p := range payloads {
		m := nats.NewMsg("stream")
		m.Header.Set("i", strconv.Itoa(i))
		m.Data = p
		if err := pub.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.FlushTimeout(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	for k, ch := range chans {
		for i, p := range payloads {
			select {
			case m := <-ch:
				if m.Header.Get("i") != strconv.Itoa(i) || !bytes.Equal(m.Data, p) {
					t.Fatalf("subscriber %d: message %d (header %q) of %d bytes, want %d bytes as published", k, i, m.Header.Get("i"), len(m.Data), len(p))
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("subscriber %d: message %d of %d did not come (last error %v)", k, i, len(payloads), sub.LastError())
			}
		}
	}
}

// TestWSCompressionStream: nats.go with compression over ws:// publishes
// and receives every message intact, on every transport.
func TestWSCompressionStream(t *testing.T) {
	o := wsOpts()
	o.Websocket.Compression = true
	looptest.Each(t, o, func(t *testing.T, o loop.Options) {
		s := looptest.Start(t, o)
		a := connectWS(t, s, nats.Compression(true))
		b := connectWS(t, s, nats.Compression(true))
		checkCompressedStream(t, s, a, b)
		checkPubSubRequest(t, a, b)
	})
}

// TestWSSCompressionStream: the same over wss://, where the compressed
// frames are sealed by the TLS codec below.
func TestWSSCompressionStream(t *testing.T) {
	f := tlstest.New(t)
	o := loop.Options{Websocket: loop.WebsocketOptions{Port: -1, Compression: true, TLS: &loop.TLSOptions{CertFile: f.Cert, KeyFile: f.Key}}}
	looptest.Each(t, o, func(t *testing.T, o loop.Options) {
		s := looptest.Start(t, o)
		dial := func() *nats.Conn {
			nc, err := nats.Connect("wss://"+s.WebsocketAddr().String(), nats.RootCAs(f.CA), nats.Compression(true), nats.Timeout(10*time.Second), nats.NoReconnect())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			return nc
		}
		checkCompressedStream(t, s, dial(), dial())
	})
}
