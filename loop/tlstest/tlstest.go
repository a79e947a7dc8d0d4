// Package tlstest writes certificates for tests and benchmarks that serve
// or dial TLS: a CA, a server certificate and client certificates, as PEM
// files. It imports nothing of evnats, so loop's own internal tests can
// use it.
package tlstest

// Concurrency: safe for any goroutine; serial is an atomic.

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
	"sync/atomic"
	"testing"
	"time"
)

// Files are a CA, a server certificate for 127.0.0.1 and localhost and
// a client certificate, both signed by the CA, as PEM files.
type Files struct {
	CA, Cert, Key, ClientCert, ClientKey string
	// OtherClientCert/OtherClientKey are signed by another CA: a client
	// the server's CA does not vouch for.
	OtherClientCert, OtherClientKey string
}

// New writes fresh certificates into t's temp dir.
func New(t testing.TB) Files {
	t.Helper()
	f, err := Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// Write writes fresh ECDSA P-256 certificates into dir.
func Write(dir string) (Files, error) {
	f := Files{
		CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "server.pem"), Key: filepath.Join(dir, "server-key.pem"),
		ClientCert: filepath.Join(dir, "client.pem"), ClientKey: filepath.Join(dir, "client-key.pem"),
		OtherClientCert: filepath.Join(dir, "other.pem"), OtherClientKey: filepath.Join(dir, "other-key.pem"),
	}
	ca, caKey, err := newCert("evnats test CA", nil, nil, f.CA, "")
	if err != nil {
		return f, err
	}
	if _, _, err := newCert("127.0.0.1", ca, caKey, f.Cert, f.Key); err != nil {
		return f, err
	}
	if _, _, err := newCert("client", ca, caKey, f.ClientCert, f.ClientKey); err != nil {
		return f, err
	}
	other, otherKey, err := newCert("other CA", nil, nil, filepath.Join(dir, "other-ca.pem"), "")
	if err != nil {
		return f, err
	}
	_, _, err = newCert("other client", other, otherKey, f.OtherClientCert, f.OtherClientKey)
	return f, err
}

var serial atomic.Int64

// newCert makes a certificate for cn signed by parent (self-signed CA
// when parent is nil) and writes it (and its key, when keyFile is set).
func newCert(cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, certFile, keyFile string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
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
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	if err := writePEM(certFile, "CERTIFICATE", der); err != nil {
		return nil, nil, err
	}
	if keyFile != "" {
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return nil, nil, err
		}
		if err := writePEM(keyFile, "EC PRIVATE KEY", kder); err != nil {
			return nil, nil, err
		}
	}
	return cert, key, nil
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}
