package loop

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestWSTakeFrames: what a writer takes is framed in frames of at most
// frameMax bytes, at most wsFramesPerWrite per write and maxIovecs buffers
// in all, and the frames carry exactly the bytes queued, in order, while
// taken chunks go back to the pool and are written into again (a split
// chunk must not share memory with what is still queued). The close frame
// comes last, once.
func TestWSTakeFrames(t *testing.T) {
	for _, frameMax := range []int{1, 100, smallChunk, 5000, 8 << 10, largeChunk, wsMaxFrameData} {
		for _, maxChunks := range []int{2, maxIovecs} {
			t.Run(fmt.Sprintf("frame%d/chunks%d", frameMax, maxChunks), func(t *testing.T) {
				takeFrames(t, frameMax, maxChunks)
			})
		}
	}
}

func takeFrames(t *testing.T, frameMax, maxChunks int) {
	c := &client{}
	c.out.pool = &chunkPool{}
	w := &wsConn{c: c, state: wsOpen, frameMax: frameMax}
	rng := rand.New(rand.NewPCG(1, uint64(frameMax)))
	fill := rand.NewChaCha8([32]byte{byte(frameMax)})
	var expect [][]byte // queued and not yet seen in a frame
	var wire []byte     // one write's bytes
	var iov [][]byte
	closed := false
	const rounds = 30
	for round := 0; round <= rounds; round++ {
		left := rng.IntN(2*frameMax + 20<<10)
		if round == rounds/2 {
			left = (wsFramesPerWrite + 4) * frameMax // more than one write carries
		}
		for round < rounds && left > 0 {
			p := make([]byte, min(left, 1+rng.IntN(40<<10)))
			left -= len(p)
			_, _ = fill.Read(p) // not periodic: a reused chunk shows
			c.out.write(p)
			expect = append(expect, p)
		}
		// A few writes, leaving some queued while what they took is
		// reused; the last round drains and closes.
		takes := 1 + rng.IntN(3)
		if round == rounds {
			c.closing, takes = true, 1<<30
		}
		for ; takes > 0; takes-- {
			iov = w.take(iov[:0], maxChunks)
			if len(iov) == 0 {
				break
			}
			if len(iov) > maxIovecs {
				t.Fatalf("%d buffers in one write", len(iov))
			}
			wire = wire[:0]
			for _, b := range iov {
				wire = append(wire, b...)
			}
			c.out.pool.put(iov) // the writer is done with them: they are reused
			frames := 0
			for r := bytes.NewReader(wire); r.Len() > 0; frames++ {
				op, p := serverFrame(t, r)
				switch {
				case closed:
					t.Fatal("frame after the close frame")
				case op == wsFin|wsClose:
					closed = true
				case op != wsFin|wsBinary:
					t.Fatalf("frame opcode %#x", op)
				case len(p) > frameMax || len(p) == 0:
					t.Fatalf("data frame of %d bytes (frameMax %d)", len(p), frameMax)
				default:
					expect = consume(t, expect, p)
				}
			}
			if frames > wsFramesPerWrite+1 {
				t.Fatalf("%d frames in one write", frames)
			}
			if c.out.size != sumLen(c.out.chunks) {
				t.Fatalf("out.size %d, chunks hold %d", c.out.size, sumLen(c.out.chunks))
			}
		}
	}
	if !closed || len(expect) > 0 {
		t.Fatalf("closed %v with %d bytes queued and not written", closed, sumLen(expect))
	}
}

// consume checks that p is what expect starts with and returns the rest.
func consume(t *testing.T, expect [][]byte, p []byte) [][]byte {
	t.Helper()
	for len(p) > 0 {
		if len(expect) == 0 {
			t.Fatal("a frame carries more than was queued")
		}
		n := min(len(p), len(expect[0]))
		if !bytes.Equal(p[:n], expect[0][:n]) {
			t.Fatal("a frame carries other bytes than queued")
		}
		p, expect[0] = p[n:], expect[0][n:]
		if len(expect[0]) == 0 {
			expect = expect[1:]
		}
	}
	return expect
}

func sumLen(bs [][]byte) int {
	n := 0
	for _, b := range bs {
		n += len(b)
	}
	return n
}

// serverFrame reads one unmasked frame.
func serverFrame(t *testing.T, r *bytes.Reader) (byte, []byte) {
	t.Helper()
	var h [2]byte
	if _, err := r.Read(h[:]); err != nil || h[1]&wsMask != 0 {
		t.Fatalf("bad frame header %x: %v", h, err)
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		_, _ = r.Read(b[:])
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		_, _ = r.Read(b[:])
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > uint64(r.Len()) {
		t.Fatalf("frame of %d bytes, %d left", n, r.Len())
	}
	p := make([]byte, n)
	_, _ = r.Read(p)
	return h[0], p
}
