package loop

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
)

// TestWSTakeDeflated: with permessage-deflate negotiated, output over
// wsDeflateMin bytes is taken as compressed messages (RSV1 on the first
// frame only, continuation frames after it, each frame at most frameMax
// bytes) that inflate, with the tail RFC 7692 drops put back, to exactly
// the bytes queued, in order; smaller output goes out raw. Taken chunks go
// back to the pool and are written into again while more is queued and
// before the next write is checked. c.out.total stays the bytes queued as
// they go out: what the frames carried plus what is still queued.
func TestWSTakeDeflated(t *testing.T) {
	for _, frameMax := range []int{1, 100, smallChunk, 5000, largeChunk, wsMaxFrameData} {
		for _, maxChunks := range []int{2, maxIovecs} {
			t.Run(fmt.Sprintf("frame%d/chunks%d", frameMax, maxChunks), func(t *testing.T) {
				takeDeflated(t, frameMax, maxChunks)
			})
		}
	}
}

func takeDeflated(t *testing.T, frameMax, maxChunks int) {
	c := &client{}
	c.out.pool = &chunkPool{}
	w := &wsConn{c: c, state: wsOpen, frameMax: frameMax, z: new(wsDeflater)}
	rng := rand.New(rand.NewPCG(2, uint64(frameMax)))
	fill := rand.NewChaCha8([32]byte{byte(frameMax)})
	var expect [][]byte // queued and not yet seen in a frame
	var wire []byte
	var iov [][]byte
	var msg []byte // the compressed message being gathered
	inMsg, compressed, raw := false, 0, 0
	onWire := 0 // uncompressed bytes framed raw plus compressed bytes
	// take is one write, checked; it reports whether there was one.
	take := func() bool {
		small := c.out.size <= wsDeflateMin
		iov = w.take(iov[:0], maxChunks)
		if len(iov) == 0 {
			return false
		}
		if len(iov) > maxIovecs {
			t.Fatalf("%d buffers in one write", len(iov))
		}
		wire = wire[:0]
		for _, b := range iov {
			wire = append(wire, b...)
		}
		c.out.pool.put(iov) // reused from here on
		for r := bytes.NewReader(wire); r.Len() > 0; {
			op, p := serverFrame(t, r)
			if op&0x0F == wsClose {
				continue
			}
			if len(p) > frameMax {
				t.Fatalf("data frame of %d bytes (frameMax %d)", len(p), frameMax)
			}
			onWire += len(p)
			switch {
			case !inMsg && op&^wsFin == wsBinary:
				raw++
				if !small {
					t.Fatalf("%d bytes queued sent raw", len(p))
				}
				expect = consume(t, expect, p)
				continue
			case !inMsg && op&^wsFin == wsBinary|wsRsv1:
				if small {
					t.Fatal("output under the threshold compressed")
				}
				inMsg, msg = true, append(msg[:0], p...)
			case inMsg && op&^wsFin == wsContinuation:
				msg = append(msg, p...)
			default:
				t.Fatalf("frame %#x (in a compressed message: %v)", op, inMsg)
			}
			if op&wsFin != 0 {
				inMsg = false
				compressed++
				expect = consume(t, expect, inflateMsg(t, msg))
			}
		}
		if inMsg {
			t.Fatal("a compressed message spans writes")
		}
		if c.out.total != onWire+c.out.size {
			t.Fatalf("out.total %d, framed %d + queued %d", c.out.total, onWire, c.out.size)
		}
		return true
	}
	const rounds = 30
	for round := 0; round <= rounds; round++ {
		left := rng.IntN(2*frameMax + min(100<<10, 500*frameMax))
		if round%7 == 3 { // a few bytes alone: they go out raw
			for take() {
			}
			left = 1 + rng.IntN(wsDeflateMin)
		}
		for round < rounds && left > 0 {
			p := make([]byte, min(left, 1+rng.IntN(40<<10)))
			left -= len(p)
			if rng.IntN(2) == 0 {
				_, _ = fill.Read(p) // incompressible
			} else {
				for i := range p {
					p[i] = "MSG a.b 1 5\r\nhello\r\n"[i%20]
				}
			}
			c.out.write(p)
			expect = append(expect, p)
		}
		if round == rounds {
			c.closing = true
			for take() {
			}
		}
		for n := rng.IntN(3); n >= 0 && take(); n-- {
		}
	}
	if len(expect) > 0 || compressed == 0 || raw == 0 {
		t.Fatalf("%d bytes queued and not written; %d compressed, %d raw", sumLen(expect), compressed, raw)
	}
}

// inflateMsg decompresses a message's payload as a client does, with the
// standard library's inflater (not the compressor's package).
func inflateMsg(t *testing.T, p []byte) []byte {
	t.Helper()
	r := flate.NewReader(io.MultiReader(bytes.NewReader(p), bytes.NewReader([]byte{0x00, 0x00, 0xff, 0xff})))
	out, err := io.ReadAll(r)
	if err != nil && err != io.ErrUnexpectedEOF {
		t.Fatalf("inflate %d bytes: %v", len(p), err)
	}
	return out
}

// BenchmarkWSTake: framing one flush's output, raw and compressed: 128
// MSGs of 128 bytes of random hex on one subject (small messages, deflate
// halves them), and 16 MSGs of 16 KiB random bytes (what deflate cannot
// shrink). Bytes are the MSG bytes taken; wire/in is what goes out (frame
// headers included) per byte taken.
func BenchmarkWSTake(b *testing.B) {
	fill := rand.New(rand.NewPCG(3, 3))
	for _, tc := range []struct {
		name    string
		n, size int
		hex     bool
	}{{"128x128B-hex", 128, 128, true}, {"16x16KiB-random", 16, 16 << 10, false}} {
		var flush []byte
		for range tc.n {
			p := make([]byte, tc.size)
			for i := range p {
				if tc.hex {
					p[i] = "0123456789abcdef"[fill.IntN(16)]
				} else {
					p[i] = byte(fill.Uint32())
				}
			}
			flush = append(append(append(flush, "MSG updates.prices 1 "+fmt.Sprint(tc.size)+"\r\n"...), p...), "\r\n"...)
		}
		for _, deflate := range []bool{false, true} {
			name := tc.name + "/raw"
			if deflate {
				name = tc.name + "/deflate"
			}
			b.Run(name, func(b *testing.B) {
				c := &client{}
				c.out.pool = &chunkPool{}
				w := &wsConn{c: c, state: wsOpen, frameMax: wsFrameMax(DefaultMaxPayload)}
				if deflate {
					w.z = new(wsDeflater)
				}
				iov := make([][]byte, 0, maxIovecs)
				b.SetBytes(int64(len(flush)))
				b.ReportAllocs()
				out := 0
				for b.Loop() {
					c.out.write(flush)
					for c.out.size > 0 {
						iov = w.take(iov[:0], maxIovecs)
						for _, p := range iov {
							out += len(p)
						}
						c.out.pool.put(iov)
					}
				}
				b.ReportMetric(float64(out)/float64(b.N)/float64(len(flush)), "wire/in")
			})
		}
	}
}
