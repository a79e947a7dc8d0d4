package leaf

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/s2"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/router"
)

// Link tuning. A link is a goroutine pair rather than a gnet connection:
// see docs/ARCHITECTURE.md (Leaf nodes) for why.
const (
	defaultReconnect = time.Second
	maxBackoff       = 30 * time.Second
	dialTimeout      = 2 * time.Second
	firstInfoTimeout = time.Second     // nats-server's default wait for the hub's INFO
	tlsTimeout       = 2 * time.Second // nats-server's default TLS handshake bound
	writeDeadline    = 10 * time.Second
	pingInterval     = 30 * time.Second
	maxPingsOut      = 2
	readBuf          = 64 << 10
	maxURLs          = 64 // configured and discovered URLs of one remote
)

// maxPending bounds what waits to be written to the hub: a link that falls
// this far behind is cut as a slow consumer (and reconnects, resending its
// interest), so local delivery never waits for it. A variable for tests.
var maxPending = 64 << 20

// remote is one configured hub (leafnodes { remotes [ ... ] }) and the
// link to it. It is a loop.Link: publishers call Forward on their own
// goroutines.
//
// Ownership: cfg, urls, delay, acc and pub are set at creation (acc
// and pub by bind, before run; an accepted leaf's at its CONNECT); subs and
// pingsOut belong to the connection goroutines (subs: the reader, run,
// which changes it under smu so that monitoring may list it);
// the fields under mu are shared with publishers and the interest
// watcher.
type remote struct {
	m     *manager
	cfg   loop.LeafRemote
	urls  []*url.URL
	delay time.Duration
	pub   *loop.LinkPublisher
	// jsDeny are the subjects kept off the link both ways because this
	// server runs its own JetStream (nats-server's rule for a leaf whose
	// domain is not the hub's): the plain API and KV/object buckets, so a
	// request is answered by one JetStream only; jsOwn, this server's own
	// domain-prefixed API, is not sent out either (a peer with the same
	// domain would answer too). Set with acc.
	jsDeny []string
	jsOwn  string
	// acc is the account the link binds: a remote's, set at creation; an
	// accepted leaf's, set at its CONNECT before the link is up (so
	// before the manager's watcher can see it).
	acc  *loop.LinkAccount
	subs map[ikey]func() // the peer's interest, as link subscriptions
	smu  sync.Mutex      // a leaf: held by the reader writing subs, by Links reading it
	// accepted: a leaf that connected to this server (the hub side), not
	// a configured remote.
	accepted bool
	tls      *tls.Config // from the remote's tls block; nil: none

	ctx    context.Context // cancelled by close
	cancel context.CancelFunc
	exited chan struct{} // closed when run returns
	wake   chan struct{} // cap 1: the writer has something to write

	pingsOut atomic.Int32

	mu struct {
		sync.Mutex
		conn net.Conn // the current connection; nil when down
		up   bool     // handshake sent: messages and interest go to out
		out  []byte   // bytes waiting for the writer
		slow bool     // cut as a slow consumer
		// maxPayload is the hub's max_payload: a bigger message would
		// make the hub close the link, so it is not sent.
		maxPayload int
		// For monitoring (Links): the peer, the link's id and mode, and
		// what went out (counted by Forward, which holds mu anyway).
		peer, compression string
		cid               uint64
		outMsgs, outBytes int64
	}
	inMsgs, inBytes atomic.Int64 // counted by the reader
	nsubs           atomic.Int32 // len(subs), for monitoring
}

// newRemote validates a remote's settings where they enter.
func newRemote(m *manager, cfg loop.LeafRemote, delay time.Duration) (*remote, error) {
	if delay <= 0 {
		delay = defaultReconnect
	}
	if _, err := ParseCompression(cfg.Compression); err != nil {
		return nil, fmt.Errorf("remote: %w", err)
	}
	r := &remote{m: m, cfg: cfg, delay: delay, subs: map[ikey]func(){},
		exited: make(chan struct{}), wake: make(chan struct{}, 1)}
	for _, s := range cfg.URLs {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("remote url %q: not a host:port URL", s)
		}
		port := "7422" // nats-server's default leafnode port
		switch u.Scheme {
		case "nats-leaf", "nats", "leafnode", "tls":
		case "ws":
			port = "80"
		case "wss":
			port = "443"
		default:
			return nil, fmt.Errorf("remote url %q: scheme %q is not supported by evnats yet", s, u.Scheme)
		}
		if u.Port() == "" {
			u.Host = net.JoinHostPort(u.Hostname(), port)
		}
		if len(r.urls) > 0 && isWS(r.urls[0]) != isWS(u) {
			return nil, fmt.Errorf("remote leaf node configuration cannot have a mix of websocket and non-websocket urls: %q", cfg.URLs)
		}
		r.urls = append(r.urls, u)
	}
	if len(r.urls) == 0 {
		return nil, errors.New("remote without url")
	}
	if cfg.TLS != nil {
		tc, err := clientTLS(cfg.TLS)
		if err != nil {
			return nil, err
		}
		r.tls = tc
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r, nil
}

// bind ties a new remote to its account (before it runs): the account
// must be in the configuration in force.
func (r *remote) bind() error {
	acc, ok := r.m.s.LinkAccount(r.cfg.Account)
	if !ok {
		return fmt.Errorf("cannot find local account %q specified in leafnode remote", r.cfg.Account)
	}
	r.acc, r.pub = acc, acc.NewPublisher(r)
	r.jsDeny, r.jsOwn = jsDeny(r.m.s)
	return nil
}

// close stops the link and waits for its goroutine.
func (r *remote) close() {
	r.cancel()
	r.mu.Lock()
	if r.mu.conn != nil {
		r.mu.conn.Close()
	}
	r.mu.Unlock()
	<-r.exited
}

// run dials the hub's URLs in turn until close, serving each connection
// that comes up. After every failed pass over the URLs it waits, backing
// off exponentially from the reconnect delay with jitter.
func (r *remote) run() {
	defer close(r.exited)
	fails, lastErr := 0, ""
	for i := 0; ; i++ {
		u := r.urls[i%len(r.urls)]
		up, err := r.attempt(u)
		if r.ctx.Err() != nil {
			return
		}
		if up {
			fails, lastErr = 0, ""
		}
		if msg := err.Error(); msg != lastErr || fails%60 == 0 {
			r.m.s.Errorf("Leafnode link to %s: %v", redact(u), err)
			lastErr = msg
		}
		if !up && (i+1)%len(r.urls) != 0 {
			continue // fail over to the next URL at once
		}
		if !up {
			fails++
		}
		d := r.delay << min(fails, 5)
		if d > maxBackoff || d <= 0 {
			d = max(maxBackoff, r.delay)
		}
		d += rand.N(d/2 + 1) // jitter: sites do not come back in step
		select {
		case <-time.After(d):
		case <-r.ctx.Done():
			return
		}
	}
}

// attempt dials u and serves the link until it fails; up reports
// whether the hub accepted it (answered the first PING).
func (r *remote) attempt(u *url.URL) (up bool, err error) {
	d := net.Dialer{Timeout: dialTimeout}
	c, err := d.DialContext(r.ctx, "tcp", u.Host)
	if err != nil {
		return false, fmt.Errorf("error trying to connect: %w", err)
	}
	r.mu.Lock()
	if r.ctx.Err() != nil {
		r.mu.Unlock()
		c.Close()
		return false, r.ctx.Err()
	}
	r.mu.conn = c
	r.mu.Unlock()
	defer r.down(c)
	if isWS(u) {
		// TLS (wss) below the WebSocket, then the upgrade; the leaf
		// protocol runs inside the frames.
		_ = c.SetDeadline(time.Now().Add(r.infoWait()))
		var wc net.Conn = c
		if u.Scheme == "wss" || r.tls != nil {
			if wc, err = r.handshake(c, u); err != nil {
				return false, err
			}
		}
		if wc, err = wsUpgrade(wc, u, r.cfg.WSMasking); err != nil {
			return false, err
		}
		_ = c.SetDeadline(time.Time{})
		return r.serve(wc, u)
	}
	return r.serve(c, u)
}

// infoWait bounds the wait for the hub's first INFO (and a WebSocket
// upgrade).
func (r *remote) infoWait() time.Duration {
	if r.cfg.FirstInfoTimeout > 0 {
		return r.cfg.FirstInfoTimeout
	}
	return firstInfoTimeout
}

var (
	errWrongPort = errors.New("attempted to connect to wrong port (not a leafnode port)")
)

// serve runs the handshake and then reads the hub until the connection
// fails.
func (r *remote) serve(c net.Conn, u *url.URL) (up bool, err error) {
	start := time.Now()
	infoWait := r.infoWait()
	ws := isWS(u)
	first := r.cfg.TLS != nil && r.cfg.TLS.HandshakeFirst && !ws
	if first {
		if c, err = r.handshake(c, u); err != nil {
			return false, err
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(infoWait))
	br := bufio.NewReaderSize(c, readBuf)
	info, err := readInfo(br)
	if err != nil {
		return false, err
	}
	rtt := time.Since(start)
	if !first && !ws && (info.TLSRequired || r.tls != nil || u.Scheme == "tls") {
		// The hub's INFO came in plain text; all else goes over TLS.
		if br.Buffered() > 0 {
			return false, errors.New("hub sent data before the TLS handshake")
		}
		if c, err = r.handshake(c, u); err != nil {
			return false, err
		}
		br = bufio.NewReaderSize(c, readBuf)
		_ = c.SetReadDeadline(time.Now().Add(infoWait))
	}
	if info.CID == 0 || info.LeafNodeURLs == nil && !info.InfoOnConnect {
		return false, errWrongPort
	}
	var w io.Writer = c
	var cw *s2.Writer
	mode, err := r.negotiate(info.Compression)
	if err != nil {
		return false, err
	}
	if needsCompression(mode) {
		if mode == compAuto {
			mode = autoMode(rtt)
		}
		// Our INFO goes in plain text; everything after it, both ways,
		// is s2. The hub sends nothing until it has read it, so nothing
		// plain may be left in br.
		infoMode := mode
		if r.cfg.Compression == "" || r.cfg.Compression == compAuto {
			infoMode = compAuto
		}
		o := r.m.s.Options()
		li, _ := json.Marshal(leafInfo{ID: r.m.s.ID(), Name: o.ServerName, Headers: true, Compression: infoMode})
		_ = c.SetWriteDeadline(time.Now().Add(writeDeadline))
		if _, err := c.Write(append(append([]byte("INFO "), li...), "\r\n"...)); err != nil {
			return false, fmt.Errorf("sending INFO: %w", err)
		}
		if br.Buffered() > 0 {
			return false, errors.New("hub sent data before compression started")
		}
		cw = newCompressor(mode)
		if wc, ok := c.(*wsClient); ok {
			// nats-server compresses the WebSocket frames: s2 below them.
			if err := wc.compress(cw); err != nil {
				return false, err
			}
			cw = nil // wc flushes each frame itself
		} else {
			br = bufio.NewReaderSize(s2.NewReader(c), readBuf)
			cw.Reset(c)
			w = cw
		}
		if info, err = readInfo(br); err != nil {
			return false, fmt.Errorf("compressed INFO: %w", err)
		}
	}
	connect, err := r.connectProto(u, info.Nonce, mode)
	if err != nil {
		return false, err
	}
	_ = c.SetReadDeadline(time.Time{})

	// Up: CONNECT, then all local interest, then a PING whose PONG says
	// the hub took us, queued as one step with the interest watcher held
	// off, so that no change is lost or sent twice.
	peer := info.Name
	if peer == "" {
		peer = info.ID
	}
	r.up(connect, info.MaxPayload, false, peer, mode)
	done := make(chan struct{})
	defer close(done)
	go r.writeLoop(c, w, cw, done)
	r.signal()
	if ws {
		r.discover(info.WSConnectURLs, u)
	} else {
		r.discover(info.LeafNodeURLs, u)
	}
	return r.readLoop(c, br, info, u)
}

// discover adds the leafnode URLs a hub advertises (the other nodes of its
// cluster) to those this remote tries, with u's user, as nats-server's
// leaves do, so that the link fails over to another node. Run goroutine
// only (r.urls).
func (r *remote) discover(hostports []string, u *url.URL) {
	if u == nil {
		return // an accepted leaf: nothing to dial
	}
	for _, hp := range hostports {
		if _, _, err := net.SplitHostPort(hp); err != nil {
			continue
		}
		known := false
		for _, k := range r.urls {
			if k.Host == hp {
				known = true
				break
			}
		}
		if !known && len(r.urls) < maxURLs {
			scheme := "nats-leaf"
			if isWS(u) {
				scheme = u.Scheme
			}
			r.urls = append(r.urls, &url.URL{Scheme: scheme, Host: hp, User: u.User})
		}
	}
}

// up queues first (CONNECT, or nothing), all the interest the peer may
// see and a PING, and opens the link to messages and interest changes:
// one step under manager.mu, so that no change is lost or sent twice;
// join adds an accepted link to the manager's list in the same step.
func (r *remote) up(first []byte, maxPayload int, join bool, peer, compression string) {
	r.pingsOut.Store(0)
	r.m.mu.Lock()
	if join {
		r.m.links = append(r.m.links, r)
	}
	r.mu.Lock()
	r.mu.out = append(r.mu.out[:0], first...)
	r.mu.out = r.m.snapshotLocked(r.mu.out, r)
	r.mu.out = append(r.mu.out, "PING\r\n"...)
	r.mu.up, r.mu.slow = true, false
	r.mu.maxPayload = maxPayload
	r.mu.peer, r.mu.compression = peer, compression
	r.mu.Unlock()
	r.m.mu.Unlock()
}

// readLoop reads the hub's protocol until an error. It owns br, the
// link's subscriptions and pub.
func (r *remote) readLoop(c net.Conn, br *bufio.Reader, info *hubInfo, u *url.URL) (up bool, err error) {
	var (
		line    []byte // the control line, copied out of br
		args    = make([][]byte, 0, 16)
		payload []byte
	)
	for {
		l, err := br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return up, errors.New("hub sent a control line that is too long")
			}
			return up, fmt.Errorf("connection closed: %w", err)
		}
		line = append(line[:0], l...)
		switch {
		case hasOp(line, "LMSG "), hasOp(line, "HMSG "):
			m, err := parseMsgArgs(splitArgs(line[5:], args), line[0] == 'H' || line[0] == 'h')
			if err != nil {
				return up, fmt.Errorf("bad message from hub: %q", bytes.TrimSpace(line))
			}
			if cap(payload) < m.size+2 {
				payload = make([]byte, m.size+2)
			}
			p := payload[:m.size+2]
			if _, err := io.ReadFull(br, p); err != nil {
				return up, fmt.Errorf("connection closed: %w", err)
			}
			if p[m.size] != '\r' || p[m.size+1] != '\n' {
				return up, errors.New("hub message without CRLF after its payload")
			}
			if !router.ValidLiteralSubject(m.subject) || r.importDenied(m.subject) {
				continue
			}
			r.inMsgs.Add(1)
			r.inBytes.Add(int64(m.size))
			r.pub.Publish(m.subject, m.reply, m.hdr, p[:m.size], m.queues)
		case hasOp(line, "LS+ "):
			r.hubSub(splitArgs(line[4:], args), true)
		case hasOp(line, "LS- "):
			r.hubSub(splitArgs(line[4:], args), false)
		case hasOp(line, "PING"):
			r.queueProto(func(b []byte) []byte { return append(b, "PONG\r\n"...) })
		case hasOp(line, "PONG"):
			r.pingsOut.Store(0)
			if !up && r.accepted {
				up = true
			} else if !up {
				up = true
				name := info.Name
				if name == "" {
					name = info.ID
				}
				r.m.s.Noticef("Leafnode connection created to hub %q at %s", name, redact(&url.URL{Host: c.RemoteAddr().String()}))
			}
		case hasOp(line, "-ERR"):
			text := strings.Trim(strings.TrimSpace(string(line[4:])), "'")
			if strings.Contains(strings.ToLower(text), "authorization") && !r.accepted {
				return up, fmt.Errorf("hub refused the link: %s (check the user, password or credentials of this remote)", text)
			}
			r.m.s.Errorf("Leafnode link: peer error: %s", text)
		case hasOp(line, "INFO "):
			var update hubInfo
			if json.Unmarshal(bytes.TrimSpace(line[5:]), &update) == nil {
				r.discover(update.LeafNodeURLs, u)
			}
		case hasOp(line, "+OK"):
		default:
			return up, fmt.Errorf("unknown protocol from hub: %q", bytes.TrimSpace(line))
		}
	}
}

// hubSub applies LS+ (add) or LS- from the hub: validated, then one link
// subscription per subject and queue group, whatever its weight.
func (r *remote) hubSub(args [][]byte, add bool) {
	var k ikey
	switch {
	case len(args) == 1:
		k.subject = string(args[0])
	case add && len(args) == 3, !add && len(args) == 2:
		k.subject, k.queue = string(args[0]), string(args[1])
		if !router.ValidQueue(k.queue) {
			return
		}
	default:
		return
	}
	if !router.ValidSubject(k.subject) {
		return
	}
	if add {
		if _, ok := r.subs[k]; !ok {
			deny, all := r.exportDeny(k.subject)
			if all {
				return // nothing on it may go to the hub
			}
			remove := r.acc.Subscribe(r, k.subject, k.queue, deny)
			r.smu.Lock()
			r.subs[k] = remove
			r.smu.Unlock()
			r.nsubs.Store(int32(len(r.subs)))
		}
	} else if remove, ok := r.subs[k]; ok {
		remove()
		r.smu.Lock()
		delete(r.subs, k)
		r.smu.Unlock()
		r.nsubs.Store(int32(len(r.subs)))
	}
}

// imports reports whether local interest in subject is shown to the hub:
// no deny_imports entry covers it. Safe for concurrent use (cfg is fixed).
func (r *remote) imports(subject string) bool {
	for _, d := range r.cfg.DenyImports {
		if router.SubjectCovers(d, subject) {
			return false
		}
	}
	return true
}

// importDenied reports whether a message from the hub on the literal
// subject is refused (deny_imports, jsDeny).
func (r *remote) importDenied(subject []byte) bool {
	for _, d := range r.cfg.DenyImports {
		if router.SubjectMatches(d, subject) {
			return true
		}
	}
	for _, d := range r.jsDeny {
		if router.SubjectMatches(d, subject) {
			return true
		}
	}
	return false
}

// jsDeny is what a link of s keeps off both ways when s runs JetStream,
// and its own domain's API, kept from going out (remote.jsDeny, jsOwn).
func jsDeny(s *loop.Server) (both []string, own string) {
	o := s.Options()
	if !o.JetStream {
		return nil, ""
	}
	if o.JetStreamDomain != "" {
		own = "$JS." + o.JetStreamDomain + ".API.>"
	}
	return []string{"$JS.API.>", "$KV.>", "$OBJ.>"}, own
}

// exportDeny sorts the hub's interest in subject against deny_exports
// (and jsDeny, jsOwn):
// all when an entry covers it (none of it may go), else the entries
// inside it, filtered per message.
func (r *remote) exportDeny(subject string) (deny []string, all bool) {
	for _, d := range r.cfg.DenyExports {
		if router.SubjectCovers(d, subject) {
			return nil, true
		}
		if router.SubjectsCollide(d, subject) {
			deny = append(deny, d)
		}
	}
	for _, d := range r.jsDeny {
		if router.SubjectCovers(d, subject) {
			return nil, true
		}
		if router.SubjectsCollide(d, subject) {
			deny = append(deny, d)
		}
	}
	if d := r.jsOwn; d != "" {
		if router.SubjectCovers(d, subject) {
			return nil, true
		}
		if router.SubjectsCollide(d, subject) {
			deny = append(deny, d)
		}
	}
	return deny, false
}

// down ends connection c: nothing more is queued for it, and the hub's
// interest goes, so local publishes stop looking for it.
func (r *remote) down(c net.Conn) {
	r.mu.Lock()
	r.mu.up = false
	r.mu.out = r.mu.out[:0]
	r.mu.conn = nil
	r.mu.Unlock()
	c.Close()
	for k, remove := range r.subs {
		remove()
		r.smu.Lock()
		delete(r.subs, k)
		r.smu.Unlock()
	}
	r.nsubs.Store(0)
	if r.accepted {
		r.m.mu.Lock()
		for i, l := range r.m.links {
			if l == r {
				r.m.links = append(r.m.links[:i], r.m.links[i+1:]...)
				break
			}
		}
		r.m.mu.Unlock()
	}
}

// writeLoop writes what is queued to w (c, or cw over c), a batch per
// wakeup, and pings the hub; it ends when done closes or a write fails.
func (r *remote) writeLoop(c net.Conn, w io.Writer, cw *s2.Writer, done <-chan struct{}) {
	t := time.NewTicker(pingInterval)
	defer t.Stop()
	var buf []byte
	for {
		select {
		case <-done:
			return
		case <-t.C:
			if r.pingsOut.Add(1) > maxPingsOut {
				r.m.s.Errorf("Leafnode link: stale connection to hub, closing")
				c.Close()
				return
			}
			r.queueProto(func(b []byte) []byte { return append(b, "PING\r\n"...) })
			continue
		case <-r.wake:
		}
		r.mu.Lock()
		buf, r.mu.out = r.mu.out, buf[:0]
		r.mu.Unlock()
		if len(buf) == 0 {
			continue
		}
		_ = c.SetWriteDeadline(time.Now().Add(writeDeadline))
		_, err := w.Write(buf)
		if err == nil && cw != nil {
			err = cw.Flush()
		}
		if err != nil {
			c.Close()
			return
		}
		if cap(buf) > 4<<20 {
			buf = nil // let a burst's buffer go
		}
	}
}

// signal wakes the writer.
func (r *remote) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// queueProto appends a protocol line for the hub, if the link is up.
// Safe for concurrent use; called under manager.mu by the watcher.
func (r *remote) queueProto(add func([]byte) []byte) {
	r.mu.Lock()
	if r.mu.up {
		r.mu.out = add(r.mu.out)
	}
	r.mu.Unlock()
	r.signal()
}

// Forward implements loop.Link: it queues a local message for the hub, or
// cuts the link as a slow consumer when too much is waiting already.
func (r *remote) Forward(subject, reply []byte, hdrLen int, msg []byte, queues []string, later bool) bool {
	r.mu.Lock()
	if !r.mu.up || r.mu.maxPayload > 0 && len(msg) > r.mu.maxPayload {
		r.mu.Unlock()
		return false
	}
	if len(r.mu.out) > maxPending {
		r.mu.up, r.mu.slow = false, true
		r.mu.out = r.mu.out[:0]
		c := r.mu.conn
		r.mu.Unlock()
		r.m.s.Warnf("Slow Consumer Detected: leafnode link to hub is %d bytes behind, reconnecting", maxPending)
		if c != nil {
			c.Close()
		}
		return false
	}
	r.mu.out = appendMsg(r.mu.out, subject, reply, hdrLen, msg, queues)
	r.mu.outMsgs++
	r.mu.outBytes += int64(len(msg))
	r.mu.Unlock()
	if later {
		return true // the loop calls Wake once its read is parsed
	}
	r.signal()
	return false
}

// Wake wakes the writer for what Forward queued with later set.
func (r *remote) Wake() { r.signal() }

// hasOp reports whether line starts with op, in any case.
func hasOp(line []byte, op string) bool {
	return len(line) >= len(op) && strings.EqualFold(string(line[:len(op)]), op)
}

// redact shows u without its password.
func redact(u *url.URL) string {
	if u.User == nil {
		return u.Host
	}
	return u.User.Username() + "@" + u.Host
}
