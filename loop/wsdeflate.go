package loop

// Concurrency: a wsDeflater serves one writer at a time and keeps nothing
// between two takes. On gnet each loop has one (evLoop.wsz), used by that
// loop's flushes of its WebSocket connections; on the goroutine transport
// each connection that negotiated compression has its own, used by its
// writer under outLock.

import "github.com/klauspost/compress/flate"

// Outgoing permessage-deflate, as nats-server does it: output of at most
// wsDeflateMin bytes pending goes out raw (a PONG, a +OK: deflate's block
// header and Huffman tables would not pay for themselves), larger output
// is compressed at speed level 1, and a control frame never is.
// wsDeflateMsgMax bounds the input of one compressed message, so a take
// compresses at most 1 MiB on the loop; the writer takes again for more.
const (
	wsDeflateMin    = 64
	wsDeflateMsgMax = 1 << 20
)

// wsDeflater compresses one message at a time into pool chunks: with
// server_no_context_takeover every message stands alone, so one
// compressor, reset per message, serves every connection of a loop.
type wsDeflater struct {
	fw  *flate.Writer // made at the first message
	out outBuf        // the compressed message; its chunks go to the writer
	in  [][]byte      // the chunks of c.out being compressed
	hdr []byte        // headers of the message's frames
}

// takeDeflated moves the next message's worth of c.out (at most
// wsDeflateMsgMax bytes, maxChunks chunks) into iov as one compressed
// message: RSV1 on its first frame, continuation frames after, each of at
// most frameMax bytes. The compressed bytes are in chunks of c.out's pool,
// which the writer gives back after the write like any chunk; the chunks
// taken from c.out go back at once, once compressed. c.out.total is moved
// by the difference, so that flow control's count of what the socket took
// (total - pending) is not moved by the compression itself.
func (w *wsConn) takeDeflated(iov [][]byte, maxChunks int) [][]byte {
	z, o := w.z, &w.c.out
	var usz int
	z.in, usz = o.takeBytes(z.in[:0], min(wsDeflateMsgMax, wsFramesPerWrite*w.frameMax), maxChunks)
	z.out.pool = o.pool
	if z.fw == nil {
		z.fw, _ = flate.NewWriter(&z.out, flate.BestSpeed)
	} else {
		z.fw.Reset(&z.out)
	}
	for _, b := range z.in {
		_, _ = z.fw.Write(b) // an outBuf never fails a write
	}
	_ = z.fw.Flush()
	o.pool.put(z.in)
	clear(z.in)
	// Flush ended the message with an empty stored block, whose last four
	// bytes (0x00 0x00 0xff 0xff) RFC 7692 section 7.2.1 drops: the client
	// adds them back.
	z.out.unwrite(4)
	csz := z.out.size
	o.total += csz - usz

	// Every frame takes at least one whole chunk or frameMax bytes: room for
	// all the headers now, so the slices into hdr stay valid.
	if need := (len(z.out.chunks) + csz/w.frameMax + 1) * wsMaxHeader; cap(z.hdr) < need {
		z.hdr = make([]byte, 0, need)
	}
	z.hdr = z.hdr[:0]
	op, first := byte(wsBinary), true
	for len(z.out.chunks) > 0 {
		h := len(iov)
		iov = append(iov, nil) // the header, once the size is known
		var size int
		iov, size = z.out.takeBytes(iov, w.frameMax, len(z.out.chunks))
		start := len(z.hdr)
		z.hdr = wsAppendHeader(z.hdr, op, len(z.out.chunks) == 0, first, size)
		iov[h] = z.hdr[start:len(z.hdr):len(z.hdr)] // capped: never taken for a pool chunk
		op, first = wsContinuation, false
	}
	return iov
}
