package leaf

// Concurrency: types, pure functions, and remote methods called while a
// link comes up, on its connection goroutine (clientTLS when a remote is
// made); nothing here is shared.

// The handshake between a leaf and a hub: the INFO and CONNECT they
// exchange (also read by the hub side, accept.go), the leaf's TLS, the
// compression it negotiates, and its signature of the hub's nonce
// (credentials file or nkey seed).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"

	"github.com/nats-io/nkeys"

	"github.com/evnats/evnats/loop"
)

// hubInfo is what the leaf reads of the hub's INFO.
type hubInfo struct {
	ID            string   `json:"server_id"`
	MaxPayload    int      `json:"max_payload"`
	Compression   string   `json:"compression"`
	Name          string   `json:"server_name"`
	CID           uint64   `json:"client_id"`
	Nonce         string   `json:"nonce"`
	Headers       bool     `json:"headers"`
	TLSRequired   bool     `json:"tls_required"`
	InfoOnConnect bool     `json:"info_on_connect"`
	LeafNodeURLs  []string `json:"leafnode_urls"`
	WSConnectURLs []string `json:"ws_connect_urls"`
}

// connectInfo is the leaf's CONNECT, with nats-server's field names. It
// has no "lang": that is how a hub tells a client on the wrong port.
type connectInfo struct {
	Version       string   `json:"version,omitempty"`
	ID            string   `json:"server_id,omitempty"`
	Name          string   `json:"name,omitempty"`
	User          string   `json:"user,omitempty"`
	Pass          string   `json:"pass,omitempty"`
	Token         string   `json:"auth_token,omitempty"`
	JWT           string   `json:"jwt,omitempty"`
	Sig           string   `json:"sig,omitempty"`
	Nkey          string   `json:"nkey,omitempty"`
	Headers       bool     `json:"headers"`
	RemoteAccount string   `json:"remote_account,omitempty"`
	Proto         int      `json:"protocol,omitempty"`
	Compression   string   `json:"compress_mode,omitempty"`
	DenyPub       []string `json:"deny_pub,omitempty"`
}

// leafInfo is the INFO a leaf sends to ask for compression.
type leafInfo struct {
	ID          string `json:"server_id"`
	Name        string `json:"server_name"`
	Headers     bool   `json:"headers"`
	Compression string `json:"compression"`
}

// handshake runs the TLS client handshake on c, verifying the hub as
// u's host (or by the remote's CA), within the read deadline set.
func (r *remote) handshake(c net.Conn, u *url.URL) (net.Conn, error) {
	cfg := r.tls
	if cfg == nil {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	cfg = cfg.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	wait := tlsTimeout
	if r.cfg.TLS != nil && r.cfg.TLS.Timeout > 0 {
		wait = r.cfg.TLS.Timeout
	}
	ctx, cancel := context.WithTimeout(r.ctx, wait)
	defer cancel()
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("TLS handshake with hub: %w", err)
	}
	r.mu.Lock()
	r.mu.conn = tc // close() closes the TLS connection (and c under it)
	r.mu.Unlock()
	return tc, nil
}

// clientTLS builds the leaf's tls.Config from a remote's tls block.
func clientTLS(o *loop.TLSOptions) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: o.CipherSuites, CurvePreferences: o.CurvePreferences}
	if o.MinVersion != 0 {
		cfg.MinVersion = o.MinVersion
	}
	if o.CertFile != "" || o.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("remote tls: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("remote tls: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("remote tls: no certificates in ca_file %s", o.CAFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// negotiate picks the link's compression from this remote's setting and
// the hub's.
func (r *remote) negotiate(hub string) (string, error) {
	ours := r.cfg.Compression
	if ours == "" {
		ours = compAuto
	}
	if !needsCompression(ours) {
		if hub == "" {
			return compNotSupported, nil
		}
		return compOff, nil
	}
	return selectMode(ours, hub)
}

// readInfo reads the hub's INFO line.
func readInfo(br *bufio.Reader) (*hubInfo, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return nil, fmt.Errorf("no INFO from hub: %w", err)
	}
	if !hasOp(line, "INFO ") {
		return nil, errWrongPort
	}
	var info hubInfo
	if err := json.Unmarshal(bytes.TrimSpace(line[5:]), &info); err != nil {
		return nil, fmt.Errorf("hub INFO: %w", err)
	}
	return &info, nil
}

// connectProto builds the CONNECT line: user and password from the URL,
// or a credentials file's JWT and the nonce signed with its seed.
func (r *remote) connectProto(u *url.URL, nonce, mode string) ([]byte, error) {
	o := r.m.s.Options()
	ci := connectInfo{Version: loop.Version, ID: r.m.s.ID(), Name: o.ServerName,
		Headers: true, RemoteAccount: r.acc.Name(), Proto: 1, Compression: mode, DenyPub: r.cfg.DenyImports}
	if ui := u.User; ui != nil {
		ci.User = ui.Username()
		if p, ok := ui.Password(); ok {
			ci.Pass = p
		} else {
			ci.Token = ci.User
		}
	}
	if r.cfg.Credentials != "" {
		jwt, sig, err := signNonce(r.cfg.Credentials, nonce)
		if err != nil {
			return nil, err
		}
		ci.JWT, ci.Sig = jwt, sig
	} else if r.cfg.Nkey != "" {
		pub, sig, err := signSeed(r.cfg.Nkey, nonce)
		if err != nil {
			return nil, err
		}
		ci.Nkey, ci.Sig = pub, sig
	}
	b, err := json.Marshal(ci)
	if err != nil {
		return nil, err
	}
	return append(append([]byte("CONNECT "), b...), "\r\n"...), nil
}

// signNonce reads a .creds file and signs nonce with its seed.
func signNonce(path, nonce string) (jwt, sig string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", "", fmt.Errorf("credentials: %w", err)
	}
	defer clear(data)
	jwt, err = nkeys.ParseDecoratedJWT(data)
	if err != nil {
		return "", "", fmt.Errorf("credentials %s: %w", path, err)
	}
	kp, err := nkeys.ParseDecoratedNKey(data)
	if err != nil {
		return "", "", fmt.Errorf("credentials %s: %w", path, err)
	}
	defer kp.Wipe()
	raw, err := kp.Sign([]byte(nonce))
	if err != nil {
		return "", "", fmt.Errorf("credentials %s: %w", path, err)
	}
	return jwt, base64.RawURLEncoding.EncodeToString(raw), nil
}

// signSeed signs the hub's nonce with a remote's nkey seed.
func signSeed(seed, nonce string) (pub, sig string, err error) {
	kp, err := nkeys.FromSeed([]byte(seed))
	if err != nil {
		return "", "", errors.New("remote nkey has malformed seed")
	}
	defer kp.Wipe()
	raw, err := kp.Sign([]byte(nonce))
	if err != nil {
		return "", "", err
	}
	pub, err = kp.PublicKey()
	return pub, base64.RawURLEncoding.EncodeToString(raw), err
}
