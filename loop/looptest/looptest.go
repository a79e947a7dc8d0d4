// Package looptest starts evnats servers for tests in other packages
// (loop's own external tests, jetstream, mqtt, bench): on 127.0.0.1, on
// random ports, stopped when the test ends. It is imported by tests only.
package looptest

// Concurrency: helpers for test goroutines; LogBuffer.mu guards the log
// the server's goroutines write into (a leaf).

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
)

// Transport is one server set-up every behaviour is checked on.
type Transport struct {
	Name  string
	IO    string
	Loops int
}

// Transports are the gnet loops (one, and three so that clients land on
// different loops) and the goroutine-per-connection transport.
var Transports = []Transport{
	{"gnet-1loop", loop.IOGnet, 1},
	{"gnet-3loops", loop.IOGnet, 3},
	{"goroutine", loop.IOGoroutine, 0},
}

// Each runs f as a subtest per transport, with opts set to it.
func Each(t *testing.T, opts loop.Options, f func(t *testing.T, o loop.Options)) {
	for _, tr := range Transports {
		t.Run(tr.Name, func(t *testing.T) {
			o := opts
			o.IO, o.Loops = tr.IO, tr.Loops
			f(t, o)
		})
	}
}

// Start starts a server on 127.0.0.1: a random client port unless o sets
// one, a temporary store directory unless o sets one. It shuts down when
// the test ends.
func Start(t testing.TB, o loop.Options) *loop.Server {
	t.Helper()
	o.Host = "127.0.0.1"
	if o.Port == 0 {
		o.Port = -1
	}
	if o.StoreDir == "" {
		o.StoreDir = t.TempDir()
	}
	s, err := loop.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// LogBuffer collects a server's log (Options.LogWriter) for assertions;
// safe for the server's goroutines.
type LogBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TLSFiles are a CA, a server certificate for 127.0.0.1 and localhost and
// a client certificate, both signed by the CA, as PEM files in a temporary
// directory.
type TLSFiles struct {
	CA, Cert, Key, ClientCert, ClientKey string
	// OtherCA signs OtherClientCert/OtherClientKey: a client the server's
	// CA does not vouch for.
	OtherClientCert, OtherClientKey string
}

// NewTLSFiles writes fresh ECDSA P-256 certificates into t's temp dir.
func NewTLSFiles(t testing.TB) TLSFiles {
	t.Helper()
	dir := t.TempDir()
	f := TLSFiles{
		CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "server.pem"), Key: filepath.Join(dir, "server-key.pem"),
		ClientCert: filepath.Join(dir, "client.pem"), ClientKey: filepath.Join(dir, "client-key.pem"),
		OtherClientCert: filepath.Join(dir, "other.pem"), OtherClientKey: filepath.Join(dir, "other-key.pem"),
	}
	ca, caKey := newCert(t, "evnats test CA", nil, nil, f.CA, "")
	newCert(t, "127.0.0.1", ca, caKey, f.Cert, f.Key)
	newCert(t, "client", ca, caKey, f.ClientCert, f.ClientKey)
	other, otherKey := newCert(t, "other CA", nil, nil, filepath.Join(dir, "other-ca.pem"), "")
	newCert(t, "other client", other, otherKey, f.OtherClientCert, f.OtherClientKey)
	return f
}

var serial atomic.Int64

// newCert makes a certificate for cn signed by parent (self-signed CA
// when parent is nil) and writes it (and its key, when keyFile is set).
func newCert(t testing.TB, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, certFile, keyFile string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	if parent == nil {
		tmpl.IsCA = true
		tmpl.BasicConstraintsValid = true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
		parent, parentKey = tmpl, key
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	writePEM(t, certFile, "CERTIFICATE", der)
	if keyFile != "" {
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		writePEM(t, keyFile, "EC PRIVATE KEY", kder)
	}
	return cert, key
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
