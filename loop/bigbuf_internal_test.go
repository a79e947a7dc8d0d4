package loop

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// sinkTransport stands for a plaintext gnet connection's socket: every
// flush copies all pending output out (as the kernel does into the socket
// buffer) through peek/consume, the way flushDirect writes.
type sinkTransport struct {
	fakeTransport
	got  []byte // what was written, when keep
	keep bool
	sink []byte
	iov  [][]byte
	refs int // flushes that found a borrowed chunk
}

func (t *sinkTransport) flushSoon() {
	o := &t.c.out
	if o.nrefs > 0 {
		t.refs++
	}
	t.iov = o.peek(t.iov[:0])
	n := 0
	for _, b := range t.iov {
		if t.keep {
			t.got = append(t.got, b...)
		} else {
			copy(t.sink, b)
		}
		n += len(b)
	}
	clear(t.iov)
	o.consume(n)
}

// hop is a publisher on loop 0 and subscribers on loop 1 of a gnet server
// that is not started: a PUB parsed on loop 0 is forwarded in a batch,
// which step hands to loop 1's inbox and drains there, as the loops do.
type hop struct {
	s        *Server
	lp0, lp1 *evLoop
	pub      *client
	subs     []*sinkTransport
}

func newHop(tb testing.TB, subs ...string) *hop {
	tb.Helper()
	s, err := New(Options{IO: IOGnet, Loops: 2, MaxPayload: 4 << 20})
	if err != nil {
		tb.Fatal(err)
	}
	tr := s.tr.(*gnetTransport)
	h := &hop{s: s, lp0: tr.loops[0], lp1: tr.loops[1]}
	h.pub = newClient(s, &fakeTransport{}, nil, h.lp0)
	h.pub.t.(*fakeTransport).c = h.pub
	h.pub.out.pool = &h.lp0.pool
	h.pub.cache = h.lp0.cache
	h.pub.onRead([]byte("CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true}\r\n"))
	for _, proto := range subs {
		st := &sinkTransport{sink: make([]byte, 1<<20)}
		c := newClient(s, st, nil, h.lp1)
		st.c = c
		c.out.pool = &h.lp1.pool
		c.cache = h.lp1.cache
		c.outRef = true
		c.onRead([]byte(proto))
		h.subs = append(h.subs, st)
	}
	return h
}

// step publishes p on loop 0 and delivers what it forwarded on loop 1.
func (h *hop) step(p []byte) {
	h.lp0.inTraffic = true
	h.pub.onRead(p)
	h.lp0.inTraffic, h.lp0.forwarded = false, false
	if b := h.lp0.out[1]; b != nil {
		h.lp0.out[1] = nil
		h.lp1.inbox.batches = append(h.lp1.inbox.batches, b)
		h.lp1.queued(b.size())
		h.lp1.drain()
	}
}

func pubLine(subject string, payload []byte) []byte {
	p := []byte("PUB " + subject + " " + strconv.Itoa(len(payload)) + "\r\n")
	p = append(p, payload...)
	return append(p, "\r\n"...)
}

// freeBigs counts the big buffers free in p.
func freeBigs(p *chunkPool) int {
	n := 0
	for _, l := range p.big.lists {
		n += len(l)
	}
	return n
}

// TestHopByReference: a large payload forwarded to another loop reaches
// one plaintext subscriber there by reference and the others by copy,
// byte for byte as a small one would; a subscriber without header support
// is copied; every buffer goes back to a pool.
func TestHopByReference(t *testing.T) {
	longSID := string(bytes.Repeat([]byte("s"), 128))
	connect := "CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true}\r\n"
	h := newHop(t,
		connect+"SUB foo 1\r\nSUB foo 2\r\n",
		connect+"SUB foo 3\r\n",
		"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":false}\r\nSUB foo 4\r\n",
		connect+"SUB foo "+longSID+"\r\n",
	)
	for _, st := range h.subs {
		st.keep = true
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var want [4][]byte
	for i, n := range []int{100, bigMin - 1, bigMin, 16 << 10, 100 << 10, 200 << 10, 16 << 10} {
		payload := make([]byte, n)
		for j := range payload {
			payload[j] = byte(rng.Uint32())
		}
		hdr := "NATS/1.0\r\nk: " + strconv.Itoa(i) + "\r\n\r\n"
		msg := append([]byte(hdr), payload...)
		in := []byte("HPUB foo r" + strconv.Itoa(i) + " " + strconv.Itoa(len(hdr)) + " " + strconv.Itoa(len(msg)) + "\r\n")
		in = append(append(in, msg...), "\r\n"...)
		h.step(in)
		for k, sids := range [][]string{{"1", "2"}, {"3"}, {"4"}, {longSID}} {
			for _, sid := range sids {
				if k == 2 { // no headers: the payload only
					want[k] = fmt.Appendf(want[k], "MSG foo %s r%d %d\r\n", sid, i, len(payload))
					want[k] = append(append(want[k], payload...), "\r\n"...)
					continue
				}
				want[k] = fmt.Appendf(want[k], "HMSG foo %s r%d %d %d\r\n", sid, i, len(hdr), len(msg))
				want[k] = append(append(want[k], msg...), "\r\n"...)
			}
		}
	}
	// Each of the six large messages lent to one subscriber.
	if n := h.subs[0].refs + h.subs[1].refs + h.subs[3].refs; n != 6 {
		t.Errorf("%d deliveries by reference, want 6", n)
	}
	if h.subs[2].refs != 0 {
		t.Error("a subscriber without headers borrowed a payload with them")
	}
	for k, st := range h.subs {
		if !bytes.Equal(st.got, want[k]) {
			t.Errorf("subscriber %d: got %d bytes, want %d (or different)", k, len(st.got), len(want[k]))
		}
		if o := &st.c.out; o.nrefs != 0 || len(o.refs) != 0 || o.size != 0 {
			t.Errorf("subscriber %d: %d borrowed chunks (refs %d), %d bytes left", k, o.nrefs, len(o.refs), o.size)
		}
	}
	// Six messages (headers and payload) of bigMin bytes and more: each
	// buffer came back to loop 1's pool.
	if n := freeBigs(&h.lp1.pool); n != 6 {
		t.Errorf("%d big buffers free on the destination loop, want 6", n)
	}
	for _, l := range h.lp1.pool.big.lists {
		for _, bb := range l {
			if bb.refs != 0 {
				t.Fatalf("a free buffer holds %d references", bb.refs)
			}
		}
	}
}

// TestHopLineTooLong: a MSG line longer than the room in front of the
// payload (a long sid) is copied instead.
func TestHopLineTooLong(t *testing.T) {
	sid := string(bytes.Repeat([]byte("x"), 1000))
	h := newHop(t, "CONNECT {\"verbose\":false,\"pedantic\":false}\r\nSUB foo "+sid+"\r\n")
	st := h.subs[0]
	st.keep = true
	size := bigSizes[bigClass(bigMin+400)]
	payload := bytes.Repeat([]byte("p"), size-2-300) // fills a buffer but for 300 bytes of room
	h.step(pubLine("foo", payload))
	want := append([]byte("MSG foo "+sid+" "+strconv.Itoa(len(payload))+"\r\n"), payload...)
	want = append(want, "\r\n"...)
	if !bytes.Equal(st.got, want) {
		t.Fatalf("got %q..., want %q...", st.got[:min(40, len(st.got))], want[:40])
	}
	if st.refs != 0 {
		t.Fatal("the output borrowed the payload, with no room for its line")
	}
	if freeBigs(&h.lp1.pool) != 1 {
		t.Fatal("the buffer did not come back")
	}
}

// TestHopAllocs: forwarding a large payload to a subscriber on another
// loop allocates nothing per message once the pools are warm.
func TestHopAllocs(t *testing.T) {
	h := newHop(t, "CONNECT {\"verbose\":false,\"pedantic\":false}\r\nSUB foo 1\r\n")
	p := pubLine("foo", make([]byte, 16<<10))
	for range 300 { // past what a loop keeps: buffers go through the depot too
		h.step(p)
	}
	if n := testing.AllocsPerRun(1000, func() { h.step(p) }); n != 0 {
		t.Fatalf("%v allocations per forwarded message", n)
	}
}

// TestOutBufBorrowed: pooled and borrowed chunks written in any mix come
// out of peek/consume (any part of what is peeked) and take once each and
// in order; every borrowed buffer is released exactly once.
func TestOutBufBorrowed(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	pool := &chunkPool{}
	o := &outBuf{pool: pool}
	var in, out []byte
	var live []*bigBuf
	pat := make([]byte, 4*largeChunk)
	for i := range pat {
		pat[i] = byte(i % 251)
	}
	for round := 0; round < 2000; round++ {
		start := len(in) % 251
		switch rng.IntN(3) {
		case 0:
			p := pat[start : start+rng.IntN(200)]
			o.write(p)
			in = append(in, p...)
		default:
			n := rng.IntN(3 * largeChunk)
			bb := pool.getBig(n + 2 + bigHeadRoom)
			if bb == nil {
				continue
			}
			bb.fill(pat[start : start+n])
			o.addRef(bb.b[bb.off:bb.end], bb)
			in = append(append(in, pat[start:start+n]...), "\r\n"...)
			bb.release(pool) // the batch's reference
			live = append(live, bb)
		}
		switch rng.IntN(20) {
		case 0: // a close: the rest through take
			iov := o.take(nil)
			for _, b := range iov {
				out = append(out, b...)
			}
			pool.put(iov)
		case 1:
			out = in // a slow consumer cut: everything dropped
			o.reset()
			in = append([]byte(nil), in...)
		default:
			out = writeSome(o, rng, out)
		}
		if o.size != len(in)-len(out) {
			t.Fatalf("round %d: size %d, pending %d", round, o.size, len(in)-len(out))
		}
	}
	out = drainOut(o, out)
	if !bytes.Equal(in, out) {
		t.Fatalf("%d bytes in, %d out, or out of order", len(in), len(out))
	}
	if o.nrefs != 0 || len(o.refs) != 0 {
		t.Fatalf("drained, yet %d borrowed chunks", o.nrefs)
	}
	for _, bb := range live {
		if bb.refs != 0 {
			t.Fatalf("a buffer still holds %d references", bb.refs)
		}
	}
}

// TestBigClasses: the class table is what bigClasses says, and each
// class is the smallest that fits.
func TestBigClasses(t *testing.T) {
	if len(bigSizes) != bigClasses {
		t.Fatalf("%d sizes, bigClasses %d", len(bigSizes), bigClasses)
	}
	for i, s := range bigSizes {
		if bigClass(s) != i || (i > 0 && bigClass(bigSizes[i-1]+1) != i) {
			t.Fatalf("class of %d", s)
		}
	}
	if bigClass(bigSizes[bigClasses-1]+1) != -1 {
		t.Fatal("past the largest class")
	}
}

// BenchmarkHop forwards one PUB of each size from loop 0 to a subscriber
// on loop 1 and writes its output to a sink, by reference (ref) or with
// the batch copy (copy): the server's CPU for one cross-loop message, the
// socket writes aside.
func BenchmarkHop(b *testing.B) {
	for _, size := range []int{1 << 10, 2 << 10, 4 << 10, 8 << 10, 16 << 10, 64 << 10} {
		for _, mode := range []string{"copy", "ref"} {
			b.Run(fmt.Sprintf("%dKiB/%s", size>>10, mode), func(b *testing.B) {
				saved := bigMin
				defer func() { bigMin = saved }()
				bigMin = 0
				if mode == "copy" {
					bigMin = math.MaxInt
				}
				h := newHop(b, "CONNECT {\"verbose\":false,\"pedantic\":false}\r\nSUB foo 1\r\n")
				p := pubLine("foo", make([]byte, size))
				h.step(p)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					h.step(p)
				}
			})
		}
	}
}
