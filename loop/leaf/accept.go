package leaf

// The hub side: leaf connections taken in on leafnodes { port }, from
// nats-server (or evnats) leaves. The handshake is the mirror of a
// remote's: this server sends INFO (with its compression mode), switches
// to s2 if the leaf asks, reads the leaf's CONNECT, checks its user, then
// the link runs as a remote's does.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/klauspost/compress/s2"

	"github.com/evnats/evnats/loop"
)

// defaultLeafAuthTimeout bounds the wait for an accepted leaf's CONNECT.
const defaultLeafAuthTimeout = 2 * time.Second

// listen opens the leafnode listener and starts accepting.
func (m *manager) listen(o loop.Options) error {
	if o.LeafTLS != nil {
		cfg, err := o.LeafTLS.ServerConfig()
		if err != nil {
			return fmt.Errorf("leafnodes tls: %w", err)
		}
		m.tls = cfg
	}
	host := o.LeafHost
	if host == "" {
		host = "0.0.0.0"
	}
	port := max(o.LeafPort, 0)
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("leafnode listener: %w", err)
	}
	m.ln = ln
	m.s.Noticef("Listening for leafnode connections on %s", ln.Addr())
	m.wg.Add(1)
	go m.acceptLoop(o)
	return nil
}

// Addr is the leafnode listener's address, nil when there is none
// (loop.Server.LeafAddr).
func (m *manager) Addr() net.Addr {
	if m.ln == nil {
		return nil
	}
	return m.ln.Addr()
}

// acceptLoop takes leaf connections until the listener closes.
func (m *manager) acceptLoop(o loop.Options) {
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // out of descriptors, say: do not spin
			continue
		}
		r := newAccepted(m)
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			c.Close()
			return
		}
		m.accepted[r] = struct{}{}
		m.wg.Add(1)
		m.mu.Unlock()
		go func() {
			defer m.wg.Done()
			r.serveAccepted(c, &o, false)
			m.mu.Lock()
			delete(m.accepted, r)
			m.mu.Unlock()
		}()
	}
}

// newAccepted is the link of one accepted leaf connection.
func newAccepted(m *manager) *remote {
	r := &remote{m: m, accepted: true, subs: map[ikey]func(){},
		exited: make(chan struct{}), wake: make(chan struct{}, 1)}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.jsDeny, r.jsOwn = jsDeny(m.s)
	return r
}

// acceptInfo is the INFO a hub sends a leaf, with nats-server's names.
type acceptInfo struct {
	ID            string   `json:"server_id"`
	Name          string   `json:"server_name"`
	Version       string   `json:"version"`
	Proto         int      `json:"proto"`
	Headers       bool     `json:"headers"`
	AuthRequired  bool     `json:"auth_required,omitempty"`
	MaxPayload    int      `json:"max_payload"`
	CID           uint64   `json:"client_id"`
	Nonce         string   `json:"nonce"`
	Compression   string   `json:"compression"`
	InfoOnConnect bool     `json:"info_on_connect"`
	TLSRequired   bool     `json:"tls_required,omitempty"`
	LeafNodeURLs  []string `json:"leafnode_urls"`
	// In the INFO that answers CONNECT: the leaf finishes connecting
	// (sends its interest) only when it sees connect_info.
	ConnectInfo   bool   `json:"connect_info,omitempty"`
	RemoteAccount string `json:"remote_account,omitempty"`
}

// leafConnect is what a hub reads of a leaf's CONNECT.
type leafConnect struct {
	connectInfo
	Lang string `json:"lang"`
}

// serveAccepted runs an accepted leaf connection to its end; ws: it
// came in on the websocket listener (TLS, if any, is below the
// WebSocket).
func (r *remote) serveAccepted(c net.Conn, o *loop.Options, ws bool) {
	defer close(r.exited)
	r.mu.Lock()
	if r.ctx.Err() != nil { // closed before it started
		r.mu.Unlock()
		c.Close()
		return
	}
	r.mu.conn = c
	r.mu.Unlock()
	defer r.down(c)
	err := r.acceptHandshake(c, o, ws)
	if err != nil && r.ctx.Err() == nil {
		r.m.s.Errorf("Leafnode connection from %s: %v", c.RemoteAddr(), err)
	}
}

// acceptHandshake sends INFO, checks the leaf's CONNECT and serves the
// link until it ends.
func (r *remote) acceptHandshake(c net.Conn, o *loop.Options, ws bool) error {
	r.m.mu.Lock()
	r.m.nextCID++
	cid := r.m.nextCID
	r.m.mu.Unlock()
	var nb [12]byte
	_, _ = rand.Read(nb[:])
	info := acceptInfo{ID: r.m.s.ID(), Name: o.ServerName, Version: loop.Version, Proto: 1,
		Headers: true, AuthRequired: leafAuthRequired(o), MaxPayload: o.MaxPayload, CID: cid,
		Nonce:         base64.RawURLEncoding.EncodeToString(nb[:]),
		InfoOnConnect: true, LeafNodeURLs: []string{r.m.ln.Addr().String()}}
	if info.MaxPayload <= 0 {
		info.MaxPayload = 1 << 20
	}
	mode, err := ParseCompression(o.LeafCompression)
	if err != nil {
		return err
	}
	tlsOn := r.m.tls != nil && !ws
	if ws {
		mode = compOff
	}
	info.Compression = mode
	info.TLSRequired = tlsOn
	first := tlsOn && o.LeafTLS.HandshakeFirst
	if first {
		if c, err = r.serverHandshake(c, o); err != nil {
			return err
		}
	}
	ij, _ := json.Marshal(info)
	_ = c.SetWriteDeadline(time.Now().Add(writeDeadline))
	sent := time.Now()
	if _, err := c.Write(append(append([]byte("INFO "), ij...), "\r\n"...)); err != nil {
		return err
	}
	if tlsOn && !first {
		if c, err = r.serverHandshake(c, o); err != nil {
			return err
		}
	}
	var w io.Writer = c
	var cw *s2.Writer
	wait := o.LeafAuthTimeout
	if wait <= 0 {
		wait = defaultLeafAuthTimeout
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	br := bufio.NewReaderSize(c, readBuf)
	var line []byte
	for {
		l, err := br.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("no CONNECT: %w", err)
		}
		if hasOp(l, "INFO ") {
			// A leaf that wants compression says its mode in plain text;
			// from then on both directions are s2 streams, starting with
			// our INFO again.
			var li leafInfo
			if json.Unmarshal(bytes.TrimSpace(l[5:]), &li) != nil || !needsCompression(mode) {
				continue
			}
			cm, err := selectMode(mode, li.Compression)
			if err != nil {
				return err
			}
			if cm == compAuto {
				cm = autoMode(time.Since(sent))
			}
			if !needsCompression(cm) {
				continue
			}
			if br.Buffered() > 0 {
				return errors.New("leaf sent data before compression started")
			}
			br = bufio.NewReaderSize(s2.NewReader(c), readBuf)
			cw = newCompressor(cm)
			cw.Reset(c)
			w = cw
			if mode != compAuto {
				info.Compression = cm
			}
			ij, _ = json.Marshal(info)
			if _, err := cw.Write(append(append([]byte("INFO "), ij...), "\r\n"...)); err != nil {
				return err
			}
			if err := cw.Flush(); err != nil {
				return err
			}
			continue
		}
		line = l
		break
	}
	if !hasOp(line, "CONNECT ") {
		return fmt.Errorf("expected CONNECT, got %q", bytes.TrimSpace(line))
	}
	var ci leafConnect
	if err := json.Unmarshal(bytes.TrimSpace(line[8:]), &ci); err != nil {
		return fmt.Errorf("bad CONNECT: %w", err)
	}
	if ci.Lang != "" {
		r.writeErr(c, "attempted to connect to leaf node port")
		return errors.New("a client connected to the leafnode port")
	}
	accName, ok := r.leafAuthorized(o, &ci, info.Nonce)
	if !ok {
		r.writeErr(c, "Authorization Violation")
		return fmt.Errorf("authorization violation (user %q)", ci.User)
	}
	acc, ok := r.m.s.LinkAccount(accName)
	if !ok {
		r.writeErr(c, "Authorization Violation")
		return fmt.Errorf("leaf bound to unknown account %q", accName)
	}
	release, ok := acc.AdmitLeaf()
	if !ok {
		r.writeErr(c, "maximum account active connections exceeded")
		return fmt.Errorf("account %q: maximum leaf node connections exceeded", accName)
	}
	defer release()
	r.acc, r.pub = acc, acc.NewPublisher(r)
	r.m.watch(acc)
	_ = c.SetReadDeadline(time.Time{})
	info.ConnectInfo, info.RemoteAccount = true, acc.Name()
	ij, _ = json.Marshal(info)
	name := ci.Name
	if name == "" {
		name = ci.ID
	}
	comp := compOff
	if cw != nil {
		comp = info.Compression
	}
	r.mu.Lock()
	r.mu.cid = cid
	r.mu.Unlock()
	r.up(append(append([]byte("INFO "), ij...), "\r\n"...), 0, true, name, comp)
	done := make(chan struct{})
	defer close(done)
	go r.writeLoop(c, w, cw, done)
	r.signal()
	r.m.s.Noticef("Leafnode connection created from %q at %s", name, c.RemoteAddr())
	_, err = r.readLoop(c, br, &hubInfo{ID: ci.ID, Name: name}, nil)
	return err
}

// serverHandshake runs the TLS server handshake on an accepted leaf's
// connection, within the tls block's timeout (2s by default).
func (r *remote) serverHandshake(c net.Conn, o *loop.Options) (net.Conn, error) {
	wait := tlsTimeout
	if o.LeafTLS.Timeout > 0 {
		wait = o.LeafTLS.Timeout
	}
	ctx, cancel := context.WithTimeout(r.ctx, wait)
	defer cancel()
	tc := tls.Server(c, r.m.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	r.mu.Lock()
	r.mu.conn = tc
	r.mu.Unlock()
	return tc, nil
}

// leafAuthorized checks an accepted leaf's credentials and names the
// account it binds to, in nats-server's order: the leafnodes user and
// password, or its nkey (the nonce signed), binding to the block's
// account ($G if none); or one of its users, binding to that user's
// account; without any of these, the server's own users, the leaf
// binding to its user's account.
func (r *remote) leafAuthorized(o *loop.Options, ci *leafConnect, nonce string) (string, bool) {
	switch {
	case o.LeafUsername != "":
		return o.LeafAccount, ci.User == o.LeafUsername && loop.CheckLeafPassword(ci.Pass, o.LeafPassword)
	case o.LeafNkey != "":
		return o.LeafAccount, ci.Nkey == o.LeafNkey && loop.VerifyLeafNkey(ci.Nkey, ci.Sig, []byte(nonce))
	case len(o.LeafUsers) > 0:
		for _, u := range o.LeafUsers {
			if u.Username == ci.User {
				return u.Account, loop.CheckLeafPassword(ci.Pass, u.Password)
			}
		}
		return "", false
	}
	return r.m.s.AuthenticateLeaf(ci.User, ci.Pass, ci.Token, ci.Nkey, ci.Sig, ci.JWT, []byte(nonce))
}

// leafAuthRequired: the INFO tells a leaf to log in when the leafnodes
// block has a login of its own or the server has users.
func leafAuthRequired(o *loop.Options) bool {
	return o.LeafUsername != "" || o.LeafNkey != "" || len(o.LeafUsers) > 0 ||
		o.Username != "" || o.Token != "" || len(o.Users) > 0 || len(o.Accounts) > 0 || len(o.Operators) > 0
}

// checkLeafAuth validates the leafnodes authorization block as
// nats-server does at start: one kind of login, no user twice, and
// accounts that exist.
func checkLeafAuth(s *loop.Server, o *loop.Options) error {
	if len(o.LeafUsers) > 0 {
		if len(o.Operators) > 0 {
			return errors.New("operator mode does not allow specifying users in leafnode config")
		}
		if o.LeafUsername != "" {
			return errors.New("can not have a single user/pass and a users array")
		}
		if o.LeafNkey != "" {
			return errors.New("can not have a single nkey and a users array")
		}
	}
	seen := map[string]bool{}
	for _, u := range o.LeafUsers {
		if seen[u.Username] {
			return fmt.Errorf("duplicate user %q detected in leafnode authorization", u.Username)
		}
		seen[u.Username] = true
		if _, ok := s.LinkAccount(u.Account); !ok {
			return fmt.Errorf("cannot find local account %q specified in leafnode authorization", u.Account)
		}
	}
	if _, ok := s.LinkAccount(o.LeafAccount); !ok {
		return fmt.Errorf("cannot find local account %q specified in leafnode authorization", o.LeafAccount)
	}
	return nil
}

// writeErr sends -ERR before the connection closes.
func (r *remote) writeErr(c net.Conn, text string) {
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = fmt.Fprintf(c, "-ERR '%s'\r\n", text)
}
