package loop

// Concurrency: a wsConn is its client's: the reading context (its loop, or
// its reader goroutine) reads and unframes; the fields marked "out" are
// guarded as the client's "out" fields (outLock), since the writer (the
// loop's flush, or the writer goroutine) frames output with them. The
// fields marked "writer" are the writer's own. A wsServer is immutable
// after New. The handshake timer only queues work with client.t.run.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/klauspost/compress/flate"
)

// DefaultWSHandshakeTimeout bounds the HTTP upgrade when the config does
// not (nats-server has no bound of its own then; evnats always has one).
const DefaultWSHandshakeTimeout = 2 * time.Second

// WebsocketOptions configure the WebSocket listener: the config file's
// websocket block, with nats-server's keys.
type WebsocketOptions struct {
	Host string
	Port int // 0: off; -1: random
	// NoTLS must be set to serve ws:// (nats-server refuses a websocket
	// block without tls otherwise).
	NoTLS bool
	// TLS serves wss://: the TLS codec below the WebSocket codec; the
	// client starts the handshake at once.
	TLS              *TLSOptions
	SameOrigin       bool
	AllowedOrigins   []string
	HandshakeTimeout time.Duration // 0: DefaultWSHandshakeTimeout
	Compression      bool
	// Authorization for WebSocket clients only (user/password or token);
	// empty: the server's.
	Username, Password, Token string
	AuthTimeout               time.Duration
}

// wsServer is the listener's immutable setup.
type wsServer struct {
	sameOrigin  bool
	origins     map[string][]wsAllowed // host -> schemes and ports
	compress    bool
	mqtt        bool // MQTT is on: /mqtt paths are served
	timeout     time.Duration
	auth        *authConfig   // nil: the server's
	authTimeout time.Duration // 0: the server's
}

type wsAllowed struct{ scheme, port string }

func newWSServer(o *Options) (*wsServer, error) {
	wo := &o.Websocket
	if wo.TLS == nil && !wo.NoTLS {
		return nil, errors.New("loop: websocket requires TLS configuration (or no_tls: true)")
	}
	w := &wsServer{sameOrigin: wo.SameOrigin, compress: wo.Compression, mqtt: o.MQTTPort != 0, timeout: wo.HandshakeTimeout, authTimeout: wo.AuthTimeout}
	if w.timeout <= 0 {
		w.timeout = DefaultWSHandshakeTimeout
	}
	for _, ao := range wo.AllowedOrigins {
		scheme, host, port, err := wsOrigin(ao)
		if err != nil || (scheme != "http" && scheme != "https") || host == "" {
			return nil, fmt.Errorf("loop: websocket: allowed origin %q: must be an absolute http or https URL with a host", ao)
		}
		if w.origins == nil {
			w.origins = make(map[string][]wsAllowed)
		}
		w.origins[host] = append(w.origins[host], wsAllowed{scheme, port})
	}
	if wo.Username != "" || wo.Token != "" {
		if wo.Username != "" && wo.Token != "" {
			return nil, errors.New("loop: websocket authorization: configure only one of token or user/password")
		}
		a, err := newAuthConfig(&Options{Username: wo.Username, Password: wo.Password, Token: wo.Token}, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("loop: websocket authorization: %w", err)
		}
		w.auth = a
	}
	return w, nil
}

// checkOrigin applies same_origin and allowed_origins to a request; a
// request without Origin passes, as in nats-server (RFC 6455 1.6).
func (w *wsServer) checkOrigin(r *http.Request, tls bool) error {
	if !w.sameOrigin && len(w.origins) == 0 {
		return nil
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		origin = r.Header.Get("Sec-Websocket-Origin")
	}
	if origin == "" {
		return nil
	}
	scheme, host, port, err := wsOrigin(origin)
	if err != nil {
		return err
	}
	if w.sameOrigin {
		rh, rp, err := wsHostPort(tls, r.Host)
		if err != nil {
			return err
		}
		rs := "http"
		if tls {
			rs = "https"
		}
		if host != rh || port != rp || scheme != rs {
			return errors.New("not same origin")
		}
	}
	if len(w.origins) > 0 {
		for _, a := range w.origins[host] {
			if a.scheme == scheme && a.port == port {
				return nil
			}
		}
		return errors.New("not in the allowed list")
	}
	return nil
}

type wsState uint8

const (
	wsUpgrading wsState = iota // reading the HTTP request
	wsOpen                     // frames both ways
	wsDone                     // refused, or closing: input is ignored
)

// wsConn is the WebSocket codec of one connection, on either transport:
// input is unframed before the client parses it (client.onRead), output
// is framed as the writer takes it (take), in frames of at most frameMax.
type wsConn struct {
	c   *client
	srv *wsServer
	dec wsDecoder
	req []byte // the upgrade request so far
	tls bool   // wss: TLS below (origin checks use https)

	state     wsState // out: written by the reader only, under outLock
	raw       []byte  // out: HTTP response, written before anything else
	pong      []byte  // out: the pong for the latest ping (a slice of pongBuf)
	pongBuf   [2 + wsMaxControl]byte
	closeMsg  []byte // out: close frame to send last (nil: 1000 at close)
	closeBuf  [4 + wsMaxControl]byte
	closeSent bool // out

	frameMax int                                 // largest data frame payload (wsFrameMax)
	whdr     [wsFramesPerWrite][wsMaxHeader]byte // writer: headers of the frames being written
	wpong    [2 + wsMaxControl]byte
	wclose   [4 + wsMaxControl]byte

	// z compresses output when permessage-deflate was negotiated (nil:
	// never): the loop's on gnet, the connection's own on the goroutine
	// transport (wsdeflate.go). Set at the upgrade under outLock.
	z *wsDeflater

	timer *time.Timer
	stop  bool // the client is closing: stop unframing

	// permessage-deflate input (the reader's): a compressed message is
	// gathered whole, then inflated into inf and fed on.
	comp []byte
	cr   bytes.Reader
	fr   io.ReadCloser
	inf  []byte
}

// wsDeflateTail ends a compressed message for the inflater (RFC 7692
// 7.2.2), with an empty final block so that it reports EOF.
var wsDeflateTail = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// Output frames. nats.go closes the connection on a frame longer than
// eight max_payloads (the server's, from INFO), so a write's data goes out
// in frames of at most that, and at most 1 MiB: a 14-byte header per MiB
// costs nothing, and a reader never has to take one frame whole. One write
// carries at most wsFramesPerWrite frames; the writer loops for more.
const (
	wsMaxFrameData   = 1 << 20
	wsFramesPerWrite = 16
)

// wsFrameMax is the largest data frame payload written for max_payload.
func wsFrameMax(maxPayload int) int { return max(min(8*maxPayload, wsMaxFrameData), 1) }

// wsMaxCompressed bounds a compressed message as nats-server does: eight
// max_payloads, at most 64 MiB.
func wsMaxCompressed(maxPayload int) int { return min(8*maxPayload, 64<<20) }

// startWS puts the WebSocket codec on a new connection; it greets (or
// takes the MQTT protocol) once the upgrade is done.
func (c *client) startWS(srv *wsServer) {
	w := &wsConn{c: c, srv: srv, frameMax: wsFrameMax(c.srv.opts.MaxPayload)}
	c.ws = w
	c.parser.ConnectFirst = c.auth().required
	w.timer = time.AfterFunc(srv.timeout, func() {
		c.t.run(func() {
			if w.state == wsUpgrading {
				c.srv.Noticef("client %d (%s): websocket handshake timeout", c.id, c.ip)
				c.closing = true // state is the reader's: upgrade sees closing
				c.t.flushSoon()
			}
		})
	})
}

// read takes what the socket delivered (plaintext, after TLS when wss):
// the upgrade request, then frames. It returns false when the connection
// is to close.
func (w *wsConn) read(buf []byte) bool {
	if w.state == wsUpgrading {
		w.req = append(w.req, buf...)
		end := wsRequestEnd(w.req)
		if end == 0 {
			if len(w.req) > wsMaxRequest {
				w.refuse(&wsHTTPError{http.StatusBadRequest, "request header too large"})
				return false
			}
			return true
		}
		u, herr := wsParseUpgrade(w.req[:end], w.srv, w.tls)
		buf = w.req[end:]
		w.req = nil
		if herr != nil {
			w.refuse(herr)
			return false
		}
		if !w.upgrade(&u) {
			return false
		}
	}
	if w.state != wsOpen {
		return false
	}
	if err := w.dec.decode(buf, w); err != nil {
		w.fail(err)
		return false
	}
	return !w.stop
}

// refuse answers a bad upgrade with its status and reason, then closes.
func (w *wsConn) refuse(e *wsHTTPError) {
	c := w.c
	w.timer.Stop()
	c.srv.Noticef("client %d (%s): websocket handshake error: %d %s", c.id, c.ip, e.status, e.reason)
	c.t.outLock()
	w.state = wsDone
	w.raw = wsRefuse(e)
	c.t.outUnlock()
	c.t.closeConn()
}

// upgrade accepts the request: the 101 response, then INFO (NATS) or the
// MQTT plug-in's protocol.
func (w *wsConn) upgrade(u *wsUpgrade) bool {
	c := w.c
	w.timer.Stop()
	w.dec.compress = u.compress
	if u.clientIP != "" {
		c.ip = u.clientIP
	}
	c.t.outLock()
	if c.closing || c.closed { // the timeout won
		c.t.outUnlock()
		return false
	}
	w.state = wsOpen
	w.raw = wsAccept(u)
	if u.compress {
		if c.lp != nil {
			w.z = &c.lp.wsz
		} else {
			w.z = new(wsDeflater)
		}
	}
	c.t.flushSoon()
	c.t.outUnlock()
	if u.mqtt {
		c.setProto(c.srv.mqtt.NewConn((*Conn)(c)))
	}
	if u.leaf {
		// A leaf node on the websocket listener (nats-server's /leafnode
		// path): loop/leaf runs the link over this connection's frames.
		la, _ := c.srv.leafWS.Load().(leafWSAcceptor)
		if la == nil {
			c.srv.Errorf("Not configured to accept leaf node connections")
			c.t.closeConn()
			return false
		}
		c.setProto(la.NewWSConn((*Conn)(c)))
		return true
	}
	c.greet()
	return true
}

// fail closes the connection for a framing error, with a close frame
// that says why.
func (w *wsConn) fail(err error) {
	c := w.c
	st, reason := wsCloseProto, err.Error()
	var we *wsError
	if errors.As(err, &we) {
		st = we.status
	}
	c.srv.Noticef("client %d (%s): websocket protocol error: %s", c.id, c.ip, reason)
	w.setClose(st, reason)
	c.t.closeConn()
}

// setClose sets the close frame (status 0: none) unless one is set.
func (w *wsConn) setClose(status int, reason string) {
	c := w.c
	c.t.outLock()
	w.state = wsDone
	if w.closeMsg == nil {
		if status == 0 {
			w.closeMsg = wsAppendHeader(w.closeBuf[:0], wsClose, true, false, 0)
		} else {
			w.closeMsg = wsAppendClose(w.closeBuf[:0], status, reason)
		}
	}
	c.t.outUnlock()
}

// wsData hands a message's payload to the client's parser.
func (w *wsConn) wsData(b []byte, compressed, final bool) bool {
	if compressed {
		if len(w.comp)+len(b) > wsMaxCompressed(w.c.srv.opts.MaxPayload) {
			w.fail(&wsError{wsCloseTooBig, "compressed message too big"})
			w.stop = true
			return false
		}
		w.comp = append(w.comp, b...)
		if final {
			return w.inflate()
		}
		return true
	}
	if len(b) > 0 && !w.c.feed(b) {
		w.stop = true
		return false
	}
	return true
}

// inflate feeds the client a gathered compressed message, decompressed
// (no context takeover: each message stands alone).
func (w *wsConn) inflate() bool {
	w.comp = append(w.comp, wsDeflateTail...)
	w.cr.Reset(w.comp)
	if w.fr == nil {
		w.fr = flate.NewReader(&w.cr)
		w.inf = make([]byte, 16<<10)
	} else {
		_ = w.fr.(flate.Resetter).Reset(&w.cr, nil)
	}
	defer func() { w.comp = w.comp[:0] }()
	for {
		n, err := w.fr.Read(w.inf)
		if n > 0 && !w.c.feed(w.inf[:n]) {
			w.stop = true
			return false
		}
		if err == io.EOF {
			return true
		}
		if err != nil {
			w.fail(&wsError{wsCloseInvalid, "invalid compressed message: " + err.Error()})
			w.stop = true
			return false
		}
	}
}

// wsControl answers a ping with a pong and a close with a close.
func (w *wsConn) wsControl(op byte, p []byte) bool {
	c := w.c
	switch op {
	case wsPing:
		c.t.outLock()
		w.pong = append(wsAppendHeader(w.pongBuf[:0], wsPong, true, false, len(p)), p...)
		c.t.flushSoon()
		c.t.outUnlock()
	case wsClose:
		st, reason, err := wsCloseStatus(p)
		if err != nil {
			w.fail(err)
		} else {
			w.setClose(st, reason)
			c.t.closeConn()
		}
		w.stop = true
		return false
	}
	return true
}

// take moves what one write carries out of c.out into iov (empty on
// entry), framed, under outLock: the HTTP response, a pong, then the data
// of at most maxChunks chunks in at most wsFramesPerWrite frames of at
// most frameMax bytes each (a longer chunk is split), or, with
// permessage-deflate and more than wsDeflateMin bytes pending, one
// compressed message (takeDeflated), and the close frame
// once c is closing and nothing is left (the connection closes after this
// write). The result fits one writev (maxIovecs). Before the upgrade is
// done, data is dropped (a timeout's -ERR).
func (w *wsConn) take(iov [][]byte, maxChunks int) [][]byte {
	c := w.c
	o := &c.out
	if w.raw != nil {
		iov = append(iov, w.raw)
		w.raw = nil
	}
	if w.state != wsOpen && !w.closeSent && w.closeMsg == nil {
		o.reset() // no frames yet (or refused): drop the data
		return iov
	}
	if w.pong != nil {
		iov = append(iov, w.wpong[:copy(w.wpong[:], w.pong)])
		w.pong = nil
	}
	maxChunks = min(maxChunks, maxIovecs-len(iov)-wsFramesPerWrite-1)
	if w.z != nil && o.size > wsDeflateMin {
		// One compressed message of at most 16 frameMax bytes (and 1 MiB)
		// before compression: under a hundred buffers in all.
		iov = w.takeDeflated(iov, maxChunks)
	} else {
		for f := 0; f < wsFramesPerWrite && len(o.chunks) > 0 && maxChunks > 0; f++ {
			h := len(iov)
			iov = append(iov, nil) // the header, once the size is known
			var size int
			iov, size = o.takeBytes(iov, w.frameMax, maxChunks)
			maxChunks -= len(iov) - h - 1
			iov[h] = wsAppendHeader(w.whdr[f][:0], wsBinary, true, false, size)
		}
	}
	if c.closing && len(o.chunks) == 0 && !w.closeSent {
		w.closeSent = true
		m := w.closeMsg
		if m == nil {
			m = wsAppendClose(w.closeBuf[:0], wsCloseNormal, "")
		}
		iov = append(iov, w.wclose[:copy(w.wclose[:], m)])
	}
	return iov
}
