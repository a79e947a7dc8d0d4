package leaf

// WebSocket leaf links, the leaf side: a remote with a ws:// or wss://
// URL dials the hub's websocket listener, asks to upgrade at /leafnode
// (the path that tells nats-server's listener the connection is a leaf,
// not a client), and then speaks the leaf protocol in binary frames: the
// link runs over wsClient, a net.Conn that frames what the writer writes
// and unframes what the reader reads, so the handshake, s2 and the rest
// of the link are the same as over TCP. TLS (wss) is below the
// WebSocket, never inside it.

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/s2"
)

const (
	wsPath          = "/leafnode" // nats-server's leafnode path on its websocket listener
	wsNoMaskHeader  = "Nats-No-Masking"
	wsGUID          = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
	wsOpContinue    = 0x0
	wsOpText        = 0x1
	wsOpBinary      = 0x2
	wsOpClose       = 0x8
	wsOpPing        = 0x9
	wsOpPong        = 0xA
	wsFinBit        = 0x80
	wsMaskBit       = 0x80
	wsMaxCtlPayload = 125
)

// isWS reports whether u is a WebSocket URL.
func isWS(u *url.URL) bool { return u.Scheme == "ws" || u.Scheme == "wss" }

// wsAcceptKey is the Sec-WebSocket-Accept answer to key (RFC 6455 4.2.2).
func wsAcceptKey(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// wsUpgrade asks the hub behind c (TLS already done for wss) to upgrade
// to a WebSocket at u's path joined with /leafnode, within the read
// deadline set on c. Unless mask, it asks for unmasked frames
// (nats-server's Nats-No-Masking header); a hub that does not agree gets
// masked ones.
func wsUpgrade(c net.Conn, u *url.URL, mask bool) (net.Conn, error) {
	var kb [16]byte
	_, _ = rand.Read(kb[:])
	key := base64.StdEncoding.EncodeToString(kb[:])
	p := path.Join("/", u.EscapedPath(), wsPath)
	req := "GET " + p + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n"
	if !mask {
		req += wsNoMaskHeader + ": true\r\n"
	}
	req += "\r\n"
	_ = c.SetWriteDeadline(time.Now().Add(writeDeadline))
	if _, err := io.WriteString(c, req); err != nil {
		return nil, fmt.Errorf("websocket upgrade: %w", err)
	}
	br := bufio.NewReaderSize(c, readBuf)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return nil, fmt.Errorf("websocket upgrade: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols ||
		!strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") ||
		!strings.EqualFold(resp.Header.Get("Connection"), "upgrade") ||
		resp.Header.Get("Sec-Websocket-Accept") != wsAcceptKey(key) {
		return nil, fmt.Errorf("invalid websocket connection (%s)", resp.Status)
	}
	return &wsClient{Conn: c, br: br, dst: c, mask: mask || resp.Header.Get(wsNoMaskHeader) != "true"}, nil
}

// compress puts s2 below the frames, as nats-server layers them when a
// WebSocket leaf link is compressed: frames are written into cw (flushed
// after each) and read from the s2 stream the hub sends.
func (w *wsClient) compress(cw *s2.Writer) error {
	if w.br.Buffered() > 0 {
		return errors.New("hub sent data before compression started")
	}
	w.br = bufio.NewReaderSize(s2.NewReader(w.Conn), readBuf)
	w.wmu.Lock()
	cw.Reset(w.Conn)
	w.dst, w.cw = cw, cw
	w.wmu.Unlock()
	return nil
}

// wsClient is the leaf's end of a WebSocket link. Read belongs to the
// link's reader, Write to its writer; wmu serialises the writer's frames
// with the reader's pongs and close reply.
type wsClient struct {
	net.Conn
	br   *bufio.Reader // reader: frames come from here (the socket, or s2 over it)
	mask bool          // frames we send are masked (the hub did not agree to no masking)

	rem    uint64 // reader: payload bytes left in the current data frame
	rmask  bool   // reader: the current frame is masked (a hub should not)
	rkey   [4]byte
	rkpos  int
	closed bool // reader: a close frame came

	wmu sync.Mutex
	wb  []byte     // under wmu: a masked frame being built
	dst io.Writer  // under wmu: where frames go (the socket, or cw)
	cw  *s2.Writer // under wmu: s2 below the frames, flushed after each; nil: none
}

// Read returns payload bytes of data frames, answering pings and a
// close on the way.
func (w *wsClient) Read(p []byte) (int, error) {
	for w.rem == 0 {
		if w.closed {
			return 0, io.EOF
		}
		if err := w.nextFrame(); err != nil {
			return 0, err
		}
	}
	if uint64(len(p)) > w.rem {
		p = p[:w.rem]
	}
	n, err := w.br.Read(p)
	if w.rmask {
		for i := range n {
			p[i] ^= w.rkey[w.rkpos&3]
			w.rkpos++
		}
	}
	w.rem -= uint64(n)
	return n, err
}

// nextFrame reads a frame header; a control frame is read and handled
// whole.
func (w *wsClient) nextFrame() error {
	var h [8]byte
	if _, err := io.ReadFull(w.br, h[:2]); err != nil {
		return err
	}
	op, masked, n := h[0]&0x0F, h[1]&wsMaskBit != 0, uint64(h[1]&0x7F)
	if h[0]&0x70 != 0 {
		return errors.New("websocket: compressed or reserved frame bits set (not negotiated)")
	}
	switch n {
	case 126:
		if _, err := io.ReadFull(w.br, h[:2]); err != nil {
			return err
		}
		n = uint64(binary.BigEndian.Uint16(h[:2]))
	case 127:
		if _, err := io.ReadFull(w.br, h[:8]); err != nil {
			return err
		}
		n = binary.BigEndian.Uint64(h[:8])
	}
	w.rmask, w.rkpos = masked, 0
	if masked {
		if _, err := io.ReadFull(w.br, w.rkey[:]); err != nil {
			return err
		}
	}
	switch op {
	case wsOpContinue, wsOpText, wsOpBinary:
		w.rem = n
		return nil
	case wsOpPing, wsOpPong, wsOpClose:
		if n > wsMaxCtlPayload {
			return errors.New("websocket: control frame too long")
		}
		var b [wsMaxCtlPayload]byte
		p := b[:n]
		if _, err := io.ReadFull(w.br, p); err != nil {
			return err
		}
		if masked {
			for i := range p {
				p[i] ^= w.rkey[i&3]
			}
		}
		switch op {
		case wsOpPing:
			_, err := w.frame(wsOpPong, p)
			return err
		case wsOpClose:
			w.closed = true
			if len(p) >= 2 {
				_, _ = w.frame(wsOpClose, p[:2])
			} else {
				_, _ = w.frame(wsOpClose, nil)
			}
		}
		return nil
	}
	return fmt.Errorf("websocket: unknown opcode %d", op)
}

// Write sends p as one binary frame.
func (w *wsClient) Write(p []byte) (int, error) { return w.frame(wsOpBinary, p) }

// frame writes one final frame of op with payload p.
func (w *wsClient) frame(op byte, p []byte) (int, error) {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	var hb [14]byte
	h := append(hb[:0], wsFinBit|op)
	mbit := byte(0)
	if w.mask {
		mbit = wsMaskBit
	}
	switch n := len(p); {
	case n <= 125:
		h = append(h, mbit|byte(n))
	case n <= 0xFFFF:
		h = append(h, mbit|126)
		h = binary.BigEndian.AppendUint16(h, uint16(n))
	default:
		h = append(h, mbit|127)
		h = binary.BigEndian.AppendUint64(h, uint64(n))
	}
	if !w.mask {
		if w.cw != nil {
			return w.flushed(h, p)
		}
		bufs := net.Buffers{h, p}
		_, err := bufs.WriteTo(w.Conn)
		if err != nil {
			return 0, err
		}
		return len(p), nil
	}
	var key [4]byte
	_, _ = rand.Read(key[:])
	w.wb = append(append(append(w.wb[:0], h...), key[:]...), p...)
	body := w.wb[len(h)+4:]
	for i := range body {
		body[i] ^= key[i&3]
	}
	if cap(w.wb) > 4<<20 {
		defer func() { w.wb = nil }()
	}
	if w.cw != nil {
		return w.flushed(w.wb, nil)
	}
	if _, err := w.Conn.Write(w.wb); err != nil {
		return 0, err
	}
	return len(p), nil
}

// flushed writes a frame (header h, payload p) into the s2 stream and
// flushes it. wmu is held.
func (w *wsClient) flushed(h, p []byte) (int, error) {
	if _, err := w.cw.Write(h); err != nil {
		return 0, err
	}
	if _, err := w.cw.Write(p); err != nil {
		return 0, err
	}
	if err := w.cw.Flush(); err != nil {
		return 0, err
	}
	return len(p), nil
}
