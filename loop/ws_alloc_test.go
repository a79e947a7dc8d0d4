package loop

import (
	"bytes"
	"testing"
)

// nopSink takes frames and keeps nothing.
type nopSink struct{ n int }

func (s *nopSink) wsData(b []byte, _, _ bool) bool { s.n += len(b); return true }
func (s *nopSink) wsControl(byte, []byte) bool     { return true }

// TestWSFrameAllocs: unframing a client's 128-byte PUB (header split
// across reads) and framing a write's output allocate nothing, nor does
// compressing it once the compressor exists.
func TestWSFrameAllocs(t *testing.T) {
	pub := append(append([]byte("PUB a 128\r\n"), bytes.Repeat([]byte("x"), 128)...), "\r\n"...)
	frame := maskedFrame(0x82, pub)
	buf := make([]byte, len(frame))
	var d wsDecoder
	var s nopSink
	decode := func() {
		copy(buf, frame)
		_ = d.decode(buf[:1], &s)
		_ = d.decode(buf[1:], &s)
	}
	if n := testing.AllocsPerRun(1000, decode); n > 0 {
		t.Fatalf("%v allocations per frame decoded", n)
	}
	c := &client{}
	c.out.pool = &chunkPool{}
	w := &wsConn{c: c, state: wsOpen, frameMax: wsFrameMax(DefaultMaxPayload)}
	msg := make([]byte, 6000)
	iov := make([][]byte, 0, 8)
	take := func() {
		c.out.write(msg) // a small chunk and part of a large one
		iov = w.take(iov[:0], maxIovecs)
		c.out.pool.put(iov)
	}
	if n := testing.AllocsPerRun(1000, take); n > 0 {
		t.Fatalf("%v allocations per write framed", n)
	}
	if len(iov) != 3 || len(iov[0]) != 4 {
		t.Fatalf("framed %d buffers, header %d bytes", len(iov), len(iov[0]))
	}

	w.z = new(wsDeflater)
	for i := range msg {
		msg[i] = "MSG a.b 1 128\r\n"[i%15]
	}
	take() // makes the compressor
	if n := testing.AllocsPerRun(1000, take); n > 0 {
		t.Fatalf("%v allocations per write compressed", n)
	}
	if len(iov) != 2 || iov[0][0] != wsFin|wsBinary|wsRsv1 {
		t.Fatalf("compressed into %d buffers, first byte %#x", len(iov), iov[0][0])
	}
}
