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

// TestWSUnmaskMatchesBytewise checks the word-at-a-time unmask against a
// byte loop for every length and starting key offset up to 100 bytes.
func TestWSUnmaskMatchesBytewise(t *testing.T) {
	key := [4]byte{0x12, 0x9a, 0x5c, 0xe7}
	for n := 0; n <= 100; n++ {
		for k := 0; k < 4; k++ {
			p := make([]byte, n)
			want := make([]byte, n)
			for i := range p {
				p[i] = byte(i*7 + n)
				want[i] = p[i] ^ key[(k+i)&3]
			}
			d := wsDecoder{key: key, kpos: k}
			d.unmask(p)
			if string(p) != string(want) || d.kpos != (k+n)&3 {
				t.Fatalf("n=%d k=%d: got %x kpos %d, want %x kpos %d", n, k, p, d.kpos, want, (k+n)&3)
			}
		}
	}
}

// BenchmarkWSUnmask unmasks one 128-byte payload (a WebSocket PUB frame's).
func BenchmarkWSUnmask(b *testing.B) {
	p := make([]byte, 160)
	d := wsDecoder{key: [4]byte{1, 2, 3, 4}}
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		d.unmask(p)
	}
}
