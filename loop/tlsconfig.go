package loop

// Concurrency: TLSOptions are filled once (config file, flags, tests) before
// New; newTLSServer turns them into a *tls.Config there. A tlsServer is
// shared by every connection: its fields are immutable but cfg, an atomic
// pointer that Server.ReloadTLS swaps (any goroutine) and handshakes load.

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// DefaultTLSTimeout bounds a TLS handshake, as nats-server's TLS_TIMEOUT.
const DefaultTLSTimeout = 2 * time.Second

// TLSOptions configure TLS for NATS clients: the config file's top-level
// tls block, or the --tls* flags. Keys and meanings as nats-server's.
type TLSOptions struct {
	CertFile, KeyFile string
	CAFile            string // CAs that sign client certificates (with Verify)
	// Verify requires every client to present a certificate signed by
	// CAFile (or the system roots when CAFile is empty).
	Verify bool
	// VerifyAndMap is Verify, and the certificate names the user (one of
	// Users) whose permissions the client gets; see tlsmap.go.
	VerifyAndMap bool
	// Timeout bounds the handshake (0: DefaultTLSTimeout); a client that
	// has not finished it by then is closed.
	Timeout time.Duration
	// HandshakeFirst: the client starts the handshake at once and INFO
	// comes over TLS after it (nats.go's TLSHandshakeFirst).
	HandshakeFirst bool
	// HandshakeFirstFallback, with HandshakeFirst: a client that sends
	// nothing for this long gets INFO in plaintext and the usual handshake
	// (nats-server's handshake_first: auto, 50 ms, or a duration).
	HandshakeFirstFallback time.Duration
	MinVersion             uint16        // 0: TLS 1.2
	CipherSuites           []uint16      // nil: Go's secure defaults
	CurvePreferences       []tls.CurveID // nil: Go's defaults
}

// tlsConfig builds the server's tls.Config, loading the certificate and
// CA files, as nats-server's GenTLSConfig does.
func (t *TLSOptions) tlsConfig() (*tls.Config, error) {
	if t.CertFile == "" || t.KeyFile == "" {
		return nil, errors.New("loop: tls: cert_file and key_file are both required")
	}
	cfg := &tls.Config{
		MinVersion:       tls.VersionTLS12,
		CipherSuites:     t.CipherSuites,
		CurvePreferences: t.CurvePreferences,
	}
	if t.MinVersion != 0 {
		if t.MinVersion < tls.VersionTLS12 {
			return nil, fmt.Errorf("loop: tls: unsupported minimum TLS version %s", tls.VersionName(t.MinVersion))
		}
		cfg.MinVersion = t.MinVersion
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("loop: tls: certificate/key pair: %w", err)
	}
	if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
		return nil, fmt.Errorf("loop: tls: certificate: %w", err)
	}
	cfg.Certificates = []tls.Certificate{cert}
	if t.Verify || t.VerifyAndMap {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("loop: tls: ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("loop: tls: ca_file %s: no certificate in it", t.CAFile)
		}
		cfg.ClientCAs = pool
	}
	return cfg, nil
}

// ServerConfig builds the tls.Config of a listener from t, as for the
// client port (plug-ins' listeners: the leafnode port).
func (t *TLSOptions) ServerConfig() (*tls.Config, error) { return t.tlsConfig() }

// parseTLS reads a tls block: cert_file, key_file, ca_file, verify,
// verify_and_map, timeout, handshake_first (first, immediate), min_version, cipher_suites,
// curve_preferences. Keys nats-server knows that evnats does not serve
// yet are an error, as every unknown key is.
func parseTLS(v any) (*TLSOptions, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("want a block")
	}
	t := &TLSOptions{}
	for k, v := range m {
		var err error
		switch strings.ToLower(k) {
		case "cert_file":
			t.CertFile, err = str(v)
		case "key_file":
			t.KeyFile, err = str(v)
		case "ca_file":
			t.CAFile, err = str(v)
		case "verify":
			t.Verify, err = boolean(v)
		case "verify_and_map":
			t.VerifyAndMap, err = boolean(v)
		case "timeout":
			t.Timeout, err = duration(v)
		case "handshake_first", "first", "immediate":
			t.HandshakeFirst, t.HandshakeFirstFallback, err = handshakeFirst(v)
		case "min_version":
			t.MinVersion, err = tlsVersion(v)
		case "cipher_suites":
			t.CipherSuites, err = cipherSuites(v)
		case "curve_preferences":
			t.CurvePreferences, err = curves(v)
		default:
			err = fmt.Errorf("unsupported key %q", k)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
	}
	return t, nil
}

// DefaultTLSFirstFallback is handshake_first: auto's wait for a client's
// ClientHello before INFO goes out in plaintext, as nats-server's.
const DefaultTLSFirstFallback = 50 * time.Millisecond

// handshakeFirst accepts a bool, true/on, false/off, auto (auto_fallback)
// or a duration (handshake first, with that fallback delay).
func handshakeFirst(v any) (bool, time.Duration, error) {
	switch t := v.(type) {
	case bool:
		return t, 0, nil
	case string:
		switch strings.ToLower(t) {
		case "true", "on":
			return true, 0, nil
		case "false", "off":
			return false, 0, nil
		case "auto", "auto_fallback":
			return true, DefaultTLSFirstFallback, nil
		}
		if d, err := time.ParseDuration(t); err == nil && d > 0 {
			return true, d, nil
		}
		return false, 0, fmt.Errorf("value %q is invalid", t)
	}
	return false, 0, fmt.Errorf("want a boolean or a string, got %T", v)
}

// tlsVersion reads "1.2" or "1.3"; older versions are refused, as by
// nats-server.
func tlsVersion(v any) (uint16, error) {
	s, err := str(v)
	if err != nil {
		return 0, err
	}
	switch s {
	case "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	case "1.0", "1.1":
		return 0, fmt.Errorf("unsupported TLS version: %s", s)
	}
	return 0, fmt.Errorf("unknown version: %s", s)
}

// cipherSuites reads a non-empty list of Go cipher suite names; insecure
// ones are refused (nats-server allows them only with
// allow_insecure_cipher_suites, which evnats does not take).
func cipherSuites(v any) ([]uint16, error) {
	names, err := strList(v)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, errors.New("cannot be empty")
	}
	ids := make([]uint16, 0, len(names))
next:
	for _, n := range names {
		for _, cs := range tls.CipherSuites() {
			if cs.Name == n {
				ids = append(ids, cs.ID)
				continue next
			}
		}
		return nil, fmt.Errorf("unrecognized cipher %s", n)
	}
	return ids, nil
}

// curveNames are the curve_preferences names nats-server accepts.
var curveNames = map[string]tls.CurveID{
	"X25519MLKEM768":     tls.X25519MLKEM768,
	"SecP256r1MLKEM768":  tls.SecP256r1MLKEM768,
	"SecP384r1MLKEM1024": tls.SecP384r1MLKEM1024,
	"X25519":             tls.X25519,
	"CurveP256":          tls.CurveP256,
	"CurveP384":          tls.CurveP384,
	"CurveP521":          tls.CurveP521,
}

func curves(v any) ([]tls.CurveID, error) {
	names, err := strList(v)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, errors.New("cannot be empty")
	}
	ids := make([]tls.CurveID, 0, len(names))
	for _, n := range names {
		id, ok := curveNames[n]
		if !ok {
			return nil, fmt.Errorf("unrecognized curve preference %s", n)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// tlsServer is what both transports need to serve TLS.
type tlsServer struct {
	opts    TLSOptions
	cfg     atomic.Pointer[tls.Config] // for new handshakes; swapped by reload
	timeout time.Duration
	first   bool          // handshake_first: INFO after the handshake
	wait    time.Duration // handshake_first fallback: INFO in plaintext after this much silence (0: never)
	slots   handshakeSlots
}

func newTLSServer(o *TLSOptions) (*tlsServer, error) {
	cfg, err := o.tlsConfig()
	if err != nil {
		return nil, err
	}
	s := &tlsServer{opts: *o, timeout: o.Timeout, first: o.HandshakeFirst, wait: o.HandshakeFirstFallback, slots: newHandshakeSlots()}
	s.cfg.Store(cfg)
	return s, nil
}

// ReloadTLS reads the certificate, key and CA files again and serves new
// handshakes with them; connected clients keep their sessions. On error
// the certificates in use stay. A server without TLS has nothing to reload.
func (s *Server) ReloadTLS() error {
	for _, ts := range []*tlsServer{s.tls, s.mqttTLS, s.wsTLS} {
		if ts == nil {
			continue
		}
		cfg, err := ts.opts.tlsConfig()
		if err != nil {
			return err
		}
		ts.cfg.Store(cfg)
		s.Noticef("TLS certificates reloaded from %s", ts.opts.CertFile)
	}
	return nil
}
