package loop

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestOutBufPeekConsume: bytes written in pieces of any size come out of
// peek/consume (writes taking any part of what is peeked, the socket-full
// case) and of take, mixed, once each and in order; size counts exactly
// what is pending; whole chunks go back to the pool.
func TestOutBufPeekConsume(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pool := &chunkPool{}
	o := &outBuf{pool: pool}
	var in, out []byte
	pat := make([]byte, 4*largeChunk) // a period that no chunk size divides
	for i := range pat {
		pat[i] = byte(i % 251)
	}
	for round := 0; round < 200; round++ {
		start := len(in) % 251
		p := pat[start : start+rng.IntN(3*largeChunk)]
		o.write(p)
		in = append(in, p...)
		if o.size != len(in)-len(out) {
			t.Fatalf("round %d: size %d, pending %d", round, o.size, len(in)-len(out))
		}
		if rng.IntN(10) == 0 { // a close: the rest through take
			iov := o.take(nil)
			for _, b := range iov {
				out = append(out, b...)
			}
		} else {
			out = writeSome(o, rng, out)
		}
		if o.size != len(in)-len(out) {
			t.Fatalf("round %d: size %d after a write, pending %d", round, o.size, len(in)-len(out))
		}
	}
	out = drainOut(o, out)
	if len(o.chunks) != 0 || o.head != 0 {
		t.Fatalf("drained, yet %d chunks (head %d) left", len(o.chunks), o.head)
	}
	if !bytes.Equal(in, out) {
		t.Fatalf("%d bytes in, %d out, or out of order", len(in), len(out))
	}
	if len(pool.large) == 0 {
		t.Fatal("consumed chunks never went back to the pool")
	}
}

// writeSome is a socket taking a random part of what o would write: the
// part is appended to out and consumed from o.
func writeSome(o *outBuf, rng *rand.Rand, out []byte) []byte {
	iov := o.peek(nil)
	avail := 0
	for _, b := range iov {
		avail += len(b)
	}
	n := rng.IntN(avail + 1)
	k := n
	for _, b := range iov {
		m := min(k, len(b))
		out = append(out, b[:m]...)
		k -= m
	}
	o.consume(n)
	return out
}

// drainOut writes everything left in o to out.
func drainOut(o *outBuf, out []byte) []byte {
	for o.size > 0 {
		b := bytes.Join(o.peek(nil), nil)
		out = append(out, b...)
		o.consume(len(b))
	}
	return out
}
