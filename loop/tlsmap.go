package loop

// Concurrency: certUser reads the immutable authConfig; it runs on the
// client's reader (its loop, or reader goroutine) at CONNECT.

import (
	"crypto/tls"
	"crypto/x509"
)

// peerCert is the client's verified certificate, or nil.
func peerCert(tc *tls.Conn) *x509.Certificate {
	if st := tc.ConnectionState(); len(st.PeerCertificates) > 0 {
		return st.PeerCertificates[0]
	}
	return nil
}

// certUser maps a client's verified certificate to an entry of the users
// list, as nats-server's verify_and_map does: the first of its e-mail
// addresses, DNS names and URIs that names a user, else its subject as Go
// writes an RDN sequence ("CN=alice,OU=ops,O=Acme"). nats-server also
// matches the subject as an LDAP distinguished name (any attribute order,
// domain components); evnats does not yet. The password in CONNECT is not
// checked: the certificate is the credential.
func (a *authConfig) certUser(cert *x509.Certificate) (string, *userEntry, bool) {
	if cert == nil {
		return "", nil, false
	}
	names := make([]string, 0, len(cert.EmailAddresses)+len(cert.DNSNames)+len(cert.URIs)+1)
	names = append(names, cert.EmailAddresses...)
	names = append(names, cert.DNSNames...)
	for _, u := range cert.URIs {
		names = append(names, u.String())
	}
	names = append(names, cert.Subject.ToRDNSequence().String())
	for _, n := range names {
		if u := a.users[n]; u != nil {
			return n, u, true
		}
	}
	return "", nil, false
}
