package loop

// Concurrency: a tlsBridge is the net.Conn under the tls.Conn of one TLS
// connection on a gnet loop. While the handshake runs, the loop feeds it
// (feed), the handshake goroutine reads and writes it, and the timeout
// timer and OnClose cut it (fail): mu guards in and err, cond wakes the
// reader; holding belongs to the handshake goroutine. The handshake's
// result reaches the loop through Execute, which orders everything that
// goroutine did before it; from then on (toRecords) only the loop touches
// the bridge, with no lock. handshakeSlots is a channel semaphore shared by
// every handshake goroutine.

import (
	"net"
	"runtime"
	"sync"
	"time"
)

// wouldBlock is what a bridge in record mode returns when it has no more
// input. crypto/tls makes a read error sticky (c.in.err) unless it is a
// net.Error whose Temporary() is true (conn.go: readRecordOrCCS, after
// readFromUntil); for those it returns the error and keeps what it had of
// the record in its rawInput, so the next Read, with more bytes, goes on
// where it stopped. That is what lets the loop decrypt without blocking.
type wouldBlock struct{}

func (wouldBlock) Error() string   { return "loop: tls: no more input for now" }
func (wouldBlock) Timeout() bool   { return false }
func (wouldBlock) Temporary() bool { return true }

var errWouldBlock error = wouldBlock{}

// tlsHandshakeInputMax bounds the bytes a connection may have waiting for
// its handshake goroutine; past it the loop stops reading the socket until
// the handshake ends (a client that pipelines its first publishes after
// its Finished, or a flood).
const tlsHandshakeInputMax = 64 << 10

// handshakeSlots bounds the handshakes doing crypto at once. A handshake
// goroutine holds a slot only while it computes: it gives it back before
// waiting for the client's next flight, so a thousand clients that stall
// their handshakes hold no slot, and a storm of handshakes gets at most
// half the CPUs, whatever the loops need.
type handshakeSlots chan struct{}

func newHandshakeSlots() handshakeSlots {
	return make(handshakeSlots, max(1, runtime.GOMAXPROCS(0)/2))
}

func (s handshakeSlots) acquire() { s <- struct{}{} }
func (s handshakeSlots) release() { <-s }

// tlsBridge adapts a gnet connection to the net.Conn crypto/tls reads and
// writes. Handshake mode: Read blocks until the loop feeds input (holding
// a handshake slot only while it has some), Write hands the bytes to send.
// Record mode: Read returns what the loop set in src, then errWouldBlock;
// Write appends ciphertext to out, the buffer this tick's writev sends.
type tlsBridge struct {
	mu   sync.Mutex
	cond sync.Cond
	in   []byte // mu (handshake); loop (records): input crypto/tls has not read
	err  error  // mu: the handshake's input was cut (closed, timed out)

	slots   handshakeSlots
	holding bool         // handshake goroutine: it holds a slot
	send    func([]byte) // handshake output, a copy the callee keeps

	records bool    // loop: set once the handshake goroutine is done
	src     []byte  // loop, records: the current read, valid during OnTraffic
	out     *outBuf // loop, records: where ciphertext goes

	local, remote net.Addr
}

func newTLSBridge(slots handshakeSlots, send func([]byte), local, remote net.Addr) *tlsBridge {
	b := &tlsBridge{slots: slots, send: send, local: local, remote: remote}
	b.cond.L = &b.mu
	return b
}

// feed adds input for the handshake and returns how much waits.
func (b *tlsBridge) feed(p []byte) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.in) == 0 {
		b.in = b.in[:0]
	}
	b.in = append(b.in, p...)
	b.cond.Signal()
	return len(b.in)
}

// fail cuts the handshake's input: its next Read returns err.
func (b *tlsBridge) fail(err error) {
	b.mu.Lock()
	if b.err == nil {
		b.err = err
	}
	b.cond.Signal()
	b.mu.Unlock()
}

// toRecords switches to record mode; run on the loop after the handshake
// goroutine returned. Input it had not read stays first in line.
func (b *tlsBridge) toRecords(out *outBuf) {
	b.records = true
	b.out = out
	b.send = nil
}

// handshakeDone gives back the handshake goroutine's slot.
func (b *tlsBridge) handshakeDone() {
	if b.holding {
		b.holding = false
		b.slots.release()
	}
}

func (b *tlsBridge) Read(p []byte) (int, error) {
	if b.records {
		return b.readRecords(p)
	}
	b.mu.Lock()
	for len(b.in) == 0 && b.err == nil {
		if b.holding { // waiting for the client costs no slot
			b.holding = false
			b.slots.release()
		}
		b.cond.Wait()
	}
	if b.err != nil {
		err := b.err
		b.mu.Unlock()
		return 0, err
	}
	n := copy(p, b.in)
	b.in = b.in[n:]
	b.mu.Unlock()
	if !b.holding {
		b.slots.acquire()
		b.holding = true
	}
	return n, nil
}

func (b *tlsBridge) readRecords(p []byte) (int, error) {
	if len(b.in) > 0 {
		n := copy(p, b.in)
		b.in = b.in[n:]
		if len(b.in) == 0 {
			b.in = nil // the handshake's buffer is not needed again
		}
		return n, nil
	}
	if len(b.src) > 0 {
		n := copy(p, b.src)
		b.src = b.src[n:]
		return n, nil
	}
	return 0, errWouldBlock
}

func (b *tlsBridge) Write(p []byte) (int, error) {
	if b.records {
		b.out.write(p)
		return len(p), nil
	}
	b.send(append([]byte(nil), p...))
	return len(p), nil
}

// Close cuts a handshake; crypto/tls calls it only if we do.
func (b *tlsBridge) Close() error {
	b.fail(net.ErrClosed)
	return nil
}

func (b *tlsBridge) LocalAddr() net.Addr              { return b.local }
func (b *tlsBridge) RemoteAddr() net.Addr             { return b.remote }
func (b *tlsBridge) SetDeadline(time.Time) error      { return nil }
func (b *tlsBridge) SetReadDeadline(time.Time) error  { return nil }
func (b *tlsBridge) SetWriteDeadline(time.Time) error { return nil }
