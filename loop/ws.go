package loop

// Concurrency: pure functions and a frame decoder owned by the goroutine
// that reads its connection (the loop, or the reader goroutine); nothing
// here is shared.

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// WebSocket opcodes and bits (RFC 6455 section 5.2).
const (
	wsContinuation = 0
	wsText         = 1
	wsBinary       = 2
	wsClose        = 8
	wsPing         = 9
	wsPong         = 10

	wsFin  = 0x80
	wsRsv1 = 0x40 // permessage-deflate (RFC 7692)
	wsRsv2 = 0x20
	wsRsv3 = 0x10
	wsMask = 0x80

	wsMaxControl   = 125 // largest control frame payload
	wsMaxHeader    = 14  // largest frame header
	wsMaxRequest   = 16 << 10
	wsCloseNormal  = 1000
	wsCloseProto   = 1002
	wsCloseNoCode  = 1005
	wsCloseTooBig  = 1009
	wsCloseGoAway  = 1001
	wsClosePolicy  = 1008
	wsCloseInvalid = 1007
)

var wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// wsAcceptKey is Sec-WebSocket-Accept for a client's key.
func wsAcceptKey(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// wsUpgrade is what a valid upgrade request asked for.
type wsUpgrade struct {
	key      string
	mqtt     bool // the path ends in /mqtt and the client speaks MQTT
	leaf     bool // the path ends in /leafnode: a leaf node (loop/leaf takes it)
	compress bool // the client offers permessage-deflate
	clientIP string
}

// wsHTTPError is a refused upgrade: the status line and the reason, which
// the response body and the server log carry.
type wsHTTPError struct {
	status int
	reason string
}

func (e *wsHTTPError) Error() string { return e.reason }

// wsRequestEnd returns the length of the HTTP request at the start of b,
// or 0 when its header is not complete yet.
func wsRequestEnd(b []byte) int {
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		return i + 4
	}
	return 0
}

// wsParseUpgrade checks an HTTP upgrade request (RFC 6455 section 4.2.1)
// as nats-server does.
func wsParseUpgrade(raw []byte, cfg *wsServer, tls bool) (wsUpgrade, *wsHTTPError) {
	var u wsUpgrade
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return u, &wsHTTPError{http.StatusBadRequest, "invalid HTTP request: " + err.Error()}
	}
	if r.URL != nil && strings.HasSuffix(r.URL.EscapedPath(), "/mqtt") {
		u.mqtt = true
		if !cfg.mqtt {
			return u, &wsHTTPError{http.StatusNotFound, "mqtt websocket endpoint not enabled"}
		}
	}
	if r.URL != nil && strings.HasSuffix(r.URL.EscapedPath(), "/leafnode") {
		u.leaf = true
	}
	if r.Method != http.MethodGet {
		return u, &wsHTTPError{http.StatusMethodNotAllowed, "request method must be GET"}
	}
	if r.Host == "" {
		return u, &wsHTTPError{http.StatusBadRequest, "'Host' missing in request"}
	}
	if !wsHeaderHas(r.Header, "Upgrade", "websocket") {
		return u, &wsHTTPError{http.StatusBadRequest, "invalid value for header 'Upgrade'"}
	}
	if !wsHeaderHas(r.Header, "Connection", "Upgrade") {
		return u, &wsHTTPError{http.StatusBadRequest, "invalid value for header 'Connection'"}
	}
	u.key = r.Header.Get("Sec-Websocket-Key")
	if u.key == "" {
		return u, &wsHTTPError{http.StatusBadRequest, "key missing"}
	}
	if k, err := base64.StdEncoding.DecodeString(u.key); err != nil || len(k) != 16 {
		return u, &wsHTTPError{http.StatusBadRequest, "invalid websocket key"}
	}
	if !wsHeaderHas(r.Header, "Sec-Websocket-Version", "13") {
		return u, &wsHTTPError{http.StatusBadRequest, "invalid version"}
	}
	if err := cfg.checkOrigin(r, tls); err != nil {
		return u, &wsHTTPError{http.StatusForbidden, "origin not allowed: " + err.Error()}
	}
	if u.mqtt && !wsHeaderHas(r.Header, "Sec-Websocket-Protocol", "mqtt") {
		return u, &wsHTTPError{http.StatusBadRequest, "mqtt websocket needs Sec-WebSocket-Protocol: mqtt"}
	}
	u.compress = cfg.compress && wsOffersDeflate(r.Header)
	if ips := r.Header.Values("X-Forwarded-For"); len(ips) > 0 && net.ParseIP(ips[0]) != nil {
		u.clientIP = ips[0]
	}
	return u, nil
}

// wsHeaderHas reports whether a comma-separated header holds a token.
func wsHeaderHas(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// wsOffersDeflate reports whether the client offers permessage-deflate.
func wsOffersDeflate(h http.Header) bool {
	for _, v := range h.Values("Sec-Websocket-Extensions") {
		for _, ext := range strings.Split(v, ",") {
			name, _, _ := strings.Cut(ext, ";")
			if strings.EqualFold(strings.TrimSpace(name), "permessage-deflate") {
				return true
			}
		}
	}
	return false
}

// wsAccept is the 101 response to an upgrade.
func wsAccept(u *wsUpgrade) []byte {
	b := []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ")
	b = append(b, wsAcceptKey(u.key)...)
	b = append(b, "\r\n"...)
	if u.compress {
		b = append(b, "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n"...)
	}
	if u.mqtt {
		b = append(b, "Sec-WebSocket-Protocol: mqtt\r\n"...)
	}
	return append(b, "\r\n"...)
}

// wsRefuse is the response to a refused upgrade: the status, and the
// reason as the body.
func wsRefuse(e *wsHTTPError) []byte {
	body := e.reason + "\n"
	return []byte("HTTP/1.1 " + itoa(e.status) + " " + http.StatusText(e.status) +
		"\r\nSec-WebSocket-Version: 13\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: " +
		itoa(len(body)) + "\r\n\r\n" + body)
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// wsOrigin parses an Origin into scheme, lower-case host and port.
func wsOrigin(origin string) (scheme, host, port string, err error) {
	u, err := url.ParseRequestURI(origin)
	if err != nil {
		return "", "", "", err
	}
	host, port, err = wsHostPort(u.Scheme == "https", u.Host)
	return strings.ToLower(u.Scheme), host, port, err
}

// wsHostPort splits host[:port], with the scheme's port when none is given.
func wsHostPort(tls bool, hp string) (string, string, error) {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) && strings.Contains(ae.Err, "missing port") {
			host, port, err = hp, "80", nil
			if tls {
				port = "443"
			}
		}
	}
	return strings.ToLower(host), port, err
}

// wsAppendHeader appends a server frame header (never masked).
func wsAppendHeader(dst []byte, op byte, fin, compressed bool, n int) []byte {
	b0 := op
	if fin {
		b0 |= wsFin
	}
	if compressed {
		b0 |= wsRsv1
	}
	switch {
	case n <= 125:
		return append(dst, b0, byte(n))
	case n <= 0xFFFF:
		return append(dst, b0, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, b0, 127)
		return binary.BigEndian.AppendUint64(dst, uint64(n))
	}
}

// wsAppendClose appends a close frame with a status and a reason cut to
// fit a control frame.
func wsAppendClose(dst []byte, status int, reason string) []byte {
	if len(reason) > wsMaxControl-2 {
		reason = reason[:wsMaxControl-5] + "..."
	}
	dst = wsAppendHeader(dst, wsClose, true, false, 2+len(reason))
	dst = binary.BigEndian.AppendUint16(dst, uint16(status))
	return append(dst, reason...)
}

// wsError is a violation of the framing rules: the connection is closed
// with a close frame carrying status and reason.
type wsError struct {
	status int
	reason string
}

func (e *wsError) Error() string { return e.reason }

// wsSink takes what a wsDecoder finds.
type wsSink interface {
	// wsData gets a message's unmasked payload, in pieces as they come;
	// final marks its last piece. It returns false to stop decoding.
	wsData(b []byte, compressed, final bool) bool
	// wsControl gets a ping, pong or close frame's unmasked payload.
	wsControl(op byte, payload []byte) bool
}

// wsDecoder reads client frames as they arrive, in pieces of any size:
// data payloads are unmasked in place and handed on without a copy; only
// a header split across reads and control payloads are kept.
type wsDecoder struct {
	compress bool // permessage-deflate was negotiated

	hdr  [wsMaxHeader]byte
	hn   int    // header bytes held
	rem  uint64 // payload bytes left in the current frame
	key  [4]byte
	kpos int
	op   byte // the current frame's opcode
	fin  bool // the current frame is its message's last
	body bool // in a frame's payload (its header is done)

	inMsg bool // a data message whose last frame has not come
	comp  bool // the current data message is compressed

	ctl  [wsMaxControl]byte
	ctln int
}

// wsHeaderLen is the full header length given its first two bytes.
func wsHeaderLen(b1 byte) int {
	n := 2 + 4 // clients always mask
	switch b1 & 0x7F {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	return n
}

// decode consumes buf (which it unmasks in place). It stops early, with
// a nil error, when the sink says so.
func (d *wsDecoder) decode(buf []byte, s wsSink) error {
	for len(buf) > 0 || (d.body && d.rem == 0) {
		if !d.body {
			if d.hn < 2 {
				k := copy(d.hdr[d.hn:2], buf)
				d.hn += k
				buf = buf[k:]
				if d.hn < 2 {
					return nil
				}
				if err := d.checkStart(); err != nil {
					return err
				}
			}
			need := wsHeaderLen(d.hdr[1])
			k := copy(d.hdr[d.hn:need], buf)
			d.hn += k
			buf = buf[k:]
			if d.hn < need {
				return nil
			}
			if err := d.startFrame(need); err != nil {
				return err
			}
		}
		if d.op >= wsClose {
			k := copy(d.ctl[d.ctln:d.ctln+int(d.rem)], buf)
			d.ctln += k
			d.rem -= uint64(k)
			buf = buf[k:]
			if d.rem > 0 {
				return nil
			}
			p := d.ctl[:d.ctln]
			d.unmask(p)
			d.body, d.hn, d.ctln = false, 0, 0
			if !s.wsControl(d.op, p) {
				return nil
			}
			continue
		}
		n := uint64(len(buf))
		if n > d.rem {
			n = d.rem
		}
		p := buf[:n]
		buf = buf[n:]
		d.rem -= n
		d.unmask(p)
		last := d.rem == 0
		if last {
			d.body, d.hn = false, 0
		}
		if len(p) > 0 || last {
			if !s.wsData(p, d.comp, last && d.fin) {
				return nil
			}
		}
	}
	return nil
}

// checkStart validates the first two header bytes.
func (d *wsDecoder) checkStart() error {
	b0, b1 := d.hdr[0], d.hdr[1]
	op := b0 & 0x0F
	fin := b0&wsFin != 0
	rsv1 := b0&wsRsv1 != 0
	if b0&(wsRsv2|wsRsv3) != 0 {
		return &wsError{wsCloseProto, "RSV2 and RSV3 must be clear"}
	}
	if rsv1 && !d.compress {
		return &wsError{wsCloseProto, "compressed frame received without negotiated permessage-deflate"}
	}
	if b1&wsMask == 0 {
		return &wsError{wsCloseProto, "mask bit missing"}
	}
	switch op {
	case wsClose, wsPing, wsPong:
		if b1&0x7F > wsMaxControl {
			return &wsError{wsCloseProto, "control frame length bigger than maximum allowed of 125 bytes"}
		}
		if !fin {
			return &wsError{wsCloseProto, "control frame does not have final bit set"}
		}
		if rsv1 {
			return &wsError{wsCloseProto, "control frame must not be compressed"}
		}
	case wsText, wsBinary:
		if d.inMsg {
			return &wsError{wsCloseProto, "new message started before final frame for previous message was received"}
		}
		d.comp = rsv1
	case wsContinuation:
		if !d.inMsg || rsv1 {
			return &wsError{wsCloseProto, "invalid continuation frame"}
		}
	default:
		return &wsError{wsCloseProto, "unknown opcode " + itoa(int(op))}
	}
	return nil
}

// startFrame takes a complete header of n bytes.
func (d *wsDecoder) startFrame(n int) error {
	h := d.hdr[:n]
	d.op = h[0] & 0x0F
	d.fin = h[0]&wsFin != 0
	switch h[1] & 0x7F {
	case 126:
		d.rem = uint64(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		d.rem = binary.BigEndian.Uint64(h[2:10])
		if d.rem>>63 != 0 {
			return &wsError{wsCloseProto, "invalid 64-bit payload length"}
		}
	default:
		d.rem = uint64(h[1] & 0x7F)
	}
	copy(d.key[:], h[n-4:n])
	d.kpos = 0
	d.body = true
	if d.op < wsClose {
		d.inMsg = !d.fin
	}
	return nil
}

// unmask XORs p with the frame's key, from where the last piece stopped.
func (d *wsDecoder) unmask(p []byte) {
	k := d.kpos
	i := 0
	if len(p) >= 16 {
		var kb [8]byte
		for j := range kb {
			kb[j] = d.key[(k+j)&3]
		}
		key := binary.LittleEndian.Uint64(kb[:])
		for ; i+32 <= len(p); i += 32 { // four words per round: less loop overhead
			q := p[i : i+32 : i+32]
			binary.LittleEndian.PutUint64(q[0:], binary.LittleEndian.Uint64(q[0:])^key)
			binary.LittleEndian.PutUint64(q[8:], binary.LittleEndian.Uint64(q[8:])^key)
			binary.LittleEndian.PutUint64(q[16:], binary.LittleEndian.Uint64(q[16:])^key)
			binary.LittleEndian.PutUint64(q[24:], binary.LittleEndian.Uint64(q[24:])^key)
		}
		for ; i+8 <= len(p); i += 8 {
			v := binary.LittleEndian.Uint64(p[i:])
			binary.LittleEndian.PutUint64(p[i:], v^key)
		}
	}
	for ; i < len(p); i++ {
		p[i] ^= d.key[(k+i)&3]
	}
	d.kpos = (k + len(p)) & 3
}

// wsCloseStatus reads a client's close payload: the status to echo (0:
// none) or a protocol error.
func wsCloseStatus(p []byte) (int, string, error) {
	switch {
	case len(p) == 0:
		return 0, "", nil
	case len(p) == 1:
		return 0, "", &wsError{wsCloseProto, "close frame payload cannot be 1 byte"}
	}
	st := int(binary.BigEndian.Uint16(p))
	if !wsValidCloseStatus(st) {
		return 0, "", &wsError{wsCloseProto, "invalid close status code " + itoa(st)}
	}
	body := string(p[2:])
	if !utf8.ValidString(body) {
		return wsCloseInvalid, "invalid utf8 body in close frame", nil
	}
	return st, body, nil
}

func wsValidCloseStatus(st int) bool {
	switch {
	case st == 1004 || st == 1005 || st == 1006 || st == 1015:
		return false
	case st < 1000 || st >= 5000:
		return false
	case st >= 1016 && st <= 2999:
		return false
	}
	return true
}
