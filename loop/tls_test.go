package loop_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	"github.com/evnats/evnats/loop/tlstest"
	"github.com/nats-io/nats.go"
)

// tlsOpts are server options with TLS from f.
func tlsOpts(f tlstest.Files) loop.Options {
	return loop.Options{TLS: &loop.TLSOptions{CertFile: f.Cert, KeyFile: f.Key}}
}

// tlsURL is the server's client URL with the tls scheme.
func tlsURL(s *loop.Server) string { return "tls://" + s.Addr().String() }

func connectTLS(t testing.TB, s *loop.Server, f tlstest.Files, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(tlsURL(s), append([]nats.Option{nats.RootCAs(f.CA), nats.Timeout(10 * time.Second), nats.NoReconnect()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// checkPubSubRequest: a subscription, a queue group and a request/reply
// go through the server between two clients.
func checkPubSubRequest(t *testing.T, a, b *nats.Conn) {
	t.Helper()
	ch := make(chan *nats.Msg, 10)
	if _, err := a.ChanSubscribe("tls.>", ch); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Subscribe("svc", func(m *nats.Msg) { _ = m.Respond(append([]byte("re: "), m.Data...)) }); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("x"), 100<<10) // several records
	if err := b.Publish("tls.small", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish("tls.big", big); err != nil {
		t.Fatal(err)
	}
	for _, want := range [][]byte{[]byte("hello"), big} {
		select {
		case m := <-ch:
			if !bytes.Equal(m.Data, want) {
				t.Fatalf("%s: got %d bytes, want %d", m.Subject, len(m.Data), len(want))
			}
		case <-time.After(5 * time.Second):
			t.Fatal("message did not arrive")
		}
	}
	m, err := b.Request("svc", []byte("ping"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != "re: ping" {
		t.Fatalf("reply %q", m.Data)
	}
}

// TestTLSPubSub: nats.go over tls:// with the test CA as root: pub/sub,
// a payload over several records, request/reply, on every transport.
func TestTLSPubSub(t *testing.T) {
	f := tlstest.New(t)
	eachTransport(t, tlsOpts(f), func(t *testing.T, s *loop.Server) {
		a := connectTLS(t, s, f)
		b := connectTLS(t, s, f)
		if !a.TLSRequired() {
			t.Fatal("INFO without tls_required")
		}
		if st, err := a.TLSConnectionState(); err != nil || !st.HandshakeComplete {
			t.Fatalf("not a TLS connection: %v", err)
		}
		checkPubSubRequest(t, a, b)
	})
}

// TestTLSHandshakeFirst: with handshake_first the server sends nothing
// before the ClientHello; nats.go's TLSHandshakeFirst connects, a client
// waiting for a plaintext INFO gets none.
func TestTLSHandshakeFirst(t *testing.T) {
	f := tlstest.New(t)
	o := tlsOpts(f)
	o.TLS.HandshakeFirst = true
	eachTransport(t, o, func(t *testing.T, s *loop.Server) {
		a := connectTLS(t, s, f, nats.TLSHandshakeFirst())
		b := connectTLS(t, s, f, nats.TLSHandshakeFirst())
		checkPubSubRequest(t, a, b)

		nc, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if n, err := nc.Read(make([]byte, 10)); n > 0 || !isTimeout(err) {
			t.Fatalf("handshake_first server sent %d bytes (%v) before the ClientHello", n, err)
		}
	})
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestTLSVerify: verify requires a client certificate signed by ca_file;
// INFO says tls_verify. No certificate, or one from another CA, is refused.
func TestTLSVerify(t *testing.T) {
	f := tlstest.New(t)
	o := tlsOpts(f)
	o.TLS.Verify, o.TLS.CAFile = true, f.CA
	eachTransport(t, o, func(t *testing.T, s *loop.Server) {
		a := connectTLS(t, s, f, nats.ClientCert(f.ClientCert, f.ClientKey))
		b := connectTLS(t, s, f, nats.ClientCert(f.ClientCert, f.ClientKey))
		checkPubSubRequest(t, a, b)
		if info := readInfo(t, s); !info.TLSVerify || !info.TLSRequired {
			t.Fatalf("INFO %+v, want tls_required and tls_verify", info)
		}
		if v := s.Varz(); !v.TLSRequired || !v.TLSVerify || v.TLSTimeout != 2 {
			t.Fatalf("varz tls_required %v tls_verify %v tls_timeout %v", v.TLSRequired, v.TLSVerify, v.TLSTimeout)
		}
		for name, opt := range map[string]nats.Option{
			"no certificate": func(*nats.Options) error { return nil },
			"other CA":       nats.ClientCert(f.OtherClientCert, f.OtherClientKey),
		} {
			nc, err := nats.Connect(tlsURL(s), nats.RootCAs(f.CA), opt, nats.Timeout(5*time.Second), nats.NoReconnect())
			if err == nil {
				// TLS 1.3: the client finishes before the server
				// checks its certificate; the refusal follows.
				err = nc.Flush()
				nc.Close()
			}
			if err == nil {
				t.Fatalf("%s: connected", name)
			}
		}
	})
}

type tlsInfo struct {
	TLSRequired bool `json:"tls_required"`
	TLSVerify   bool `json:"tls_verify"`
}

// readInfo reads the plaintext INFO a TLS server sends first.
func readInfo(t *testing.T, s *loop.Server) tlsInfo {
	t.Helper()
	rc := dialRawInfo(t, s)
	var info tlsInfo
	if err := json.Unmarshal([]byte(strings.TrimPrefix(rc.info, "INFO ")), &info); err != nil {
		t.Fatal(err)
	}
	return info
}

type rawTLSConn struct {
	nc   net.Conn
	info string
}

// dialRawInfo connects over TCP and reads the INFO line.
func dialRawInfo(t *testing.T, s *loop.Server) *rawTLSConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", s.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var line []byte
	b := make([]byte, 1)
	for !bytes.HasSuffix(line, []byte("\r\n")) {
		if _, err := nc.Read(b); err != nil {
			t.Fatalf("reading INFO: %v (got %q)", err, line)
		}
		line = append(line, b[0])
	}
	if !bytes.HasPrefix(line, []byte("INFO {")) {
		t.Fatalf("first line %q", line)
	}
	return &rawTLSConn{nc: nc, info: strings.TrimSpace(string(line))}
}

// closedWithin waits until the server closes nc, reading and dropping
// what it sends, and returns how long that took.
func closedWithin(t *testing.T, nc net.Conn, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	_ = nc.SetReadDeadline(start.Add(limit))
	_, err := io.Copy(io.Discard, nc)
	if isTimeout(err) {
		t.Fatalf("not closed within %v", limit)
	}
	return time.Since(start)
}

// TestTLSPlaintextClient: a client that speaks plaintext after INFO is
// closed at once, with a log line.
func TestTLSPlaintextClient(t *testing.T) {
	f := tlstest.New(t)
	for _, tr := range looptest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			var log looptest.LogBuffer
			o := tlsOpts(f)
			o.IO, o.Loops, o.LogWriter = tr.IO, tr.Loops, &log
			s := startServer(t, o)
			rc := dialRawInfo(t, s)
			if _, err := rc.nc.Write([]byte("CONNECT {}\r\nPING\r\n")); err != nil {
				t.Fatal(err)
			}
			closedWithin(t, rc.nc, time.Second)
			waitFor(t, func() bool { return strings.Contains(log.String(), "TLS handshake error") })
		})
	}
}

// TestTLSBadInput: garbage, half a ClientHello and a client that never
// starts its handshake: the first is closed at once, the others after the
// TLS timeout, each with a log line, while a TLS client keeps working.
func TestTLSBadInput(t *testing.T) {
	f := tlstest.New(t)
	const timeout = 1500 * time.Millisecond
	halfHello := []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}
	for _, tr := range looptest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			var log looptest.LogBuffer
			o := tlsOpts(f)
			o.IO, o.Loops, o.LogWriter = tr.IO, tr.Loops, &log
			o.TLS.Timeout = timeout
			s := startServer(t, o)
			a := connectTLS(t, s, f)
			b := connectTLS(t, s, f)

			garbage := dialRawInfo(t, s)
			_, _ = garbage.nc.Write(bytes.Repeat([]byte{0xff, 0x00, 0x42}, 100))
			half := dialRawInfo(t, s)
			_, _ = half.nc.Write(halfHello)
			silent := dialRawInfo(t, s)

			if d := closedWithin(t, garbage.nc, 2*timeout); d > timeout/2 {
				t.Errorf("garbage closed after %v, want at once", d)
			}
			checkPubSubRequest(t, a, b) // while two handshakes stall
			for name, rc := range map[string]*rawTLSConn{"half ClientHello": half, "silent": silent} {
				if d := closedWithin(t, rc.nc, timeout+2*time.Second); d > timeout+time.Second {
					t.Errorf("%s: closed after %v, want about %v", name, d, timeout)
				}
			}
			waitFor(t, func() bool { return strings.Count(log.String(), "TLS handshake timeout") == 2 })
			if !strings.Contains(log.String(), "TLS handshake error") {
				t.Errorf("no log line for the garbage:\n%s", log.String())
			}
			if err := a.Publish("tls.after", []byte("x")); err != nil || a.Flush() != nil {
				t.Fatal("TLS client hurt by the stalled handshakes")
			}
		})
	}
}

// TestTLSFlowControl: flow control holds through TLS: a TLS publisher
// that outruns its TLS subscriber is slowed, nothing is lost, nobody cut.
func TestTLSFlowControl(t *testing.T) {
	f := tlstest.New(t)
	eachFlowTransport(t, tlsOpts(f), func(t *testing.T, s *loop.Server) {
		streamOneToOne(t, s, 20000/flowScale, 16<<10, nats.RootCAs(f.CA), nats.Secure(&tls.Config{MinVersion: tls.VersionTLS12}))
	})
}

// TestTLSHandshakeStorm: 300 TLS clients connect at once while a TLS
// publisher streams 100,000 messages to a TLS subscriber: every message
// arrives and every handshake completes.
func TestTLSHandshakeStorm(t *testing.T) {
	f := tlstest.New(t)
	for _, tr := range looptest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			o := tlsOpts(f)
			o.IO, o.Loops = tr.IO, tr.Loops
			o.TLS.Timeout = 30 * time.Second // the storm itself must not time out on a slow box
			s := startServer(t, o)
			n := 100000 / stormScale
			c := countTo(t, connectTLS(t, s, f), "stream", n)
			pub := connectTLS(t, s, f)

			clients := 300 / stormScale
			var wg sync.WaitGroup
			errs := make(chan error, clients)
			start := make(chan struct{})
			for i := 0; i < clients; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					nc, err := nats.Connect(tlsURL(s), nats.RootCAs(f.CA), nats.Timeout(60*time.Second), nats.NoReconnect())
					if err == nil {
						err = nc.Flush()
						nc.Close()
					}
					if err != nil {
						errs <- err
					}
				}()
			}
			close(start)
			publishN(t, pub, "stream", n, 128)
			waitAll(t, s, c.done, c.got.Load, n, true)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("handshake: %v", err)
			}
		})
	}
}

// holdConn sends its first write (the ClientHello) at once and holds every
// later one until release, which sends them in one write.
type holdConn struct {
	net.Conn
	writes int
	held   []byte
}

func (h *holdConn) Write(p []byte) (int, error) {
	h.writes++
	if h.writes == 1 {
		return h.Conn.Write(p)
	}
	h.held = append(h.held, p...)
	return len(p), nil
}

func (h *holdConn) release() error {
	_, err := h.Conn.Write(h.held)
	h.held = nil
	return err
}

// TestTLSInputAfterFinished: the client's Finished and its first records
// (CONNECT, PING) reach the server in one segment: the loop opens the
// records that came with the end of the handshake.
func TestTLSInputAfterFinished(t *testing.T) {
	f := tlstest.New(t)
	for _, first := range []bool{false, true} {
		o := tlsOpts(f)
		o.TLS.HandshakeFirst = first
		eachTransport(t, o, func(t *testing.T, s *loop.Server) {
			var rc *rawTLSConn
			if first {
				nc, err := net.Dial("tcp", s.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { nc.Close() })
				rc = &rawTLSConn{nc: nc}
			} else {
				rc = dialRawInfo(t, s)
			}
			hc := &holdConn{Conn: rc.nc}
			pool := x509.NewCertPool()
			pem, _ := os.ReadFile(f.CA)
			pool.AppendCertsFromPEM(pem)
			tc := tls.Client(hc, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13})
			_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
			if err := tc.Handshake(); err != nil {
				t.Fatal(err)
			}
			if _, err := tc.Write([]byte("CONNECT {\"verbose\":false}\r\nPING\r\n")); err != nil {
				t.Fatal(err)
			}
			if err := hc.release(); err != nil {
				t.Fatal(err)
			}
			r := bufio.NewReader(tc)
			if first {
				if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "INFO {") {
					t.Fatalf("first line over TLS %q, %v; want INFO", line, err)
				}
			}
			if line, err := r.ReadString('\n'); err != nil || line != "PONG\r\n" {
				t.Fatalf("got %q, %v; want PONG", line, err)
			}
		})
	}
}

// TestTLS12: a client limited to TLS 1.2 connects (min_version's default).
func TestTLS12(t *testing.T) {
	f := tlstest.New(t)
	eachTransport(t, tlsOpts(f), func(t *testing.T, s *loop.Server) {
		a := connectTLS(t, s, f)
		b, err := nats.Connect(tlsURL(s), nats.Secure(&tls.Config{MaxVersion: tls.VersionTLS12}), nats.RootCAs(f.CA), nats.NoReconnect())
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if st, _ := b.TLSConnectionState(); st.Version != tls.VersionTLS12 {
			t.Fatalf("version %x", st.Version)
		}
		checkPubSubRequest(t, a, b)
	})
}

// TestTLSConfigFile: the tls block as nats-server reads it, a server
// started from it, and the values it refuses.
func TestTLSConfigFile(t *testing.T) {
	f := tlstest.New(t)
	path := filepath.Join(t.TempDir(), "evnats.conf")
	write := func(body string) {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf(`
listen: "127.0.0.1:-1"
tls {
  cert_file: %q
  key_file: %q
  ca_file: %q
  verify: true
  timeout: 3
  handshake_first: true
  min_version: "1.3"
  cipher_suites: ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"]
  curve_preferences: ["X25519", "CurveP256"]
}
`, f.Cert, f.Key, f.CA))
	var o loop.Options
	if err := loop.ApplyConfigFile(&o, path); err != nil {
		t.Fatal(err)
	}
	want := loop.TLSOptions{CertFile: f.Cert, KeyFile: f.Key, CAFile: f.CA, Verify: true, Timeout: 3 * time.Second,
		HandshakeFirst: true, MinVersion: tls.VersionTLS13,
		CipherSuites:     []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305},
		CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256}}
	if o.TLS == nil || !reflect.DeepEqual(*o.TLS, want) {
		t.Fatalf("tls options %+v, want %+v", o.TLS, want)
	}
	s := startServer(t, o)
	nc := connectTLS(t, s, f, nats.TLSHandshakeFirst(), nats.ClientCert(f.ClientCert, f.ClientKey))
	if st, _ := nc.TLSConnectionState(); st.Version != tls.VersionTLS13 {
		t.Fatalf("version %x, want TLS 1.3", st.Version)
	}

	for _, bad := range []string{
		`tls { cert_file: "a", key_file: "b", min_version: "1.1" }`,
		`tls { cert_file: "a", key_file: "b", cipher_suites: ["TLS_RSA_WITH_RC4_128_SHA"] }`,
		`tls { cert_file: "a", key_file: "b", curve_preferences: ["P-999"] }`,
		`tls { cert_file: "a", key_file: "b", handshake_first: "sometimes" }`,
		`tls { cert_file: "a", key_file: "b", verify: "yes" }`,
		`tls { cert_file: "a", key_file: "b", pinned_certs: [] }`,
		`tls: true`,
	} {
		write(bad)
		if err := loop.ApplyConfigFile(&loop.Options{}, path); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
	for body, want := range map[string]time.Duration{`"auto"`: loop.DefaultTLSFirstFallback, `"300ms"`: 300 * time.Millisecond, `true`: 0} {
		write(`tls { cert_file: "a", key_file: "b", handshake_first: ` + body + ` }`)
		var fb loop.Options
		if err := loop.ApplyConfigFile(&fb, path); err != nil || !fb.TLS.HandshakeFirst || fb.TLS.HandshakeFirstFallback != want {
			t.Errorf("handshake_first: %s: %v, %+v", body, err, fb.TLS)
		}
	}
	write(`tls { cert_file: "a", key_file: "b", verify_and_map: true }`)
	var mapped loop.Options
	if err := loop.ApplyConfigFile(&mapped, path); err != nil || !mapped.TLS.VerifyAndMap {
		t.Fatalf("verify_and_map: %v, %+v", err, mapped.TLS)
	}
	write(`tls { cert_file: "/nonexistent.pem", key_file: "/nonexistent-key.pem" }`)
	var bad loop.Options
	if err := loop.ApplyConfigFile(&bad, path); err != nil {
		t.Fatal(err)
	}
	if _, err := loop.New(bad); err == nil {
		t.Error("missing certificate files: server created")
	}
}

// TestTLSReload: ReloadTLS (SIGHUP) serves new handshakes with the
// certificate now in the files; a client connected before keeps working,
// and a reload that fails keeps the certificate in use.
func TestTLSReload(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, tr loop.Options) {
		dir := t.TempDir()
		old, err := tlstest.Write(dir)
		if err != nil {
			t.Fatal(err)
		}
		oldCA, _ := os.ReadFile(old.CA)
		o := tlsOpts(old)
		o.IO, o.Loops = tr.IO, tr.Loops
		s := startServer(t, o)
		before := connectTLS(t, s, old)

		renewed, err := tlstest.Write(dir) // a new CA and certificate, same paths
		if err != nil {
			t.Fatal(err)
		}
		oldCAFile := filepath.Join(t.TempDir(), "old-ca.pem")
		_ = os.WriteFile(oldCAFile, oldCA, 0o600)
		if _, err := nats.Connect(tlsURL(s), nats.RootCAs(renewed.CA), nats.NoReconnect()); err == nil {
			t.Fatal("new certificate served before the reload")
		}
		if err := s.ReloadTLS(); err != nil {
			t.Fatal(err)
		}
		after := connectTLS(t, s, renewed)
		if _, err := nats.Connect(tlsURL(s), nats.RootCAs(oldCAFile), nats.NoReconnect()); err == nil {
			t.Fatal("old certificate still served after the reload")
		}
		checkPubSubRequest(t, before, after)

		_ = os.WriteFile(renewed.Key, []byte("not a key"), 0o600)
		if err := s.ReloadTLS(); err == nil {
			t.Fatal("reload of a broken key succeeded")
		}
		connectTLS(t, s, renewed)
	})
}

// TestTLSVerifyAndMap: verify_and_map takes the user from the client
// certificate (here its subject, CN=client) and gives the client that
// user's permissions, whatever CONNECT says; a certificate that names no
// user is refused.
func TestTLSVerifyAndMap(t *testing.T) {
	f := tlstest.New(t)
	o := tlsOpts(f)
	o.TLS.VerifyAndMap, o.TLS.CAFile = true, f.CA
	o.Users = []*loop.User{
		{Username: "CN=client", Permissions: &loop.Permissions{Publish: &loop.SubjectPermission{Allow: []string{"tls.>", "svc", "_INBOX.>"}}}},
		{Username: "admin", Password: "secret"},
	}
	eachTransport(t, o, func(t *testing.T, s *loop.Server) {
		errs := make(chan error, 10)
		a := connectTLS(t, s, f, nats.ClientCert(f.ClientCert, f.ClientKey), nats.UserInfo("admin", "wrong"))
		b := connectTLS(t, s, f, nats.ClientCert(f.ClientCert, f.ClientKey),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
		checkPubSubRequest(t, a, b)
		if err := b.Publish("other", []byte("x")); err != nil {
			t.Fatal(err)
		}
		_ = b.Flush()
		select {
		case err := <-errs:
			if !strings.Contains(err.Error(), "Permissions Violation") {
				t.Fatalf("error %v, want a permissions violation", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("publish outside the mapped user's permissions was not refused")
		}
	})
	o.Users = []*loop.User{{Username: "CN=someone else"}}
	eachTransport(t, o, func(t *testing.T, s *loop.Server) {
		nc, err := nats.Connect(tlsURL(s), nats.RootCAs(f.CA), nats.ClientCert(f.ClientCert, f.ClientKey), nats.NoReconnect())
		if err == nil {
			nc.Close()
			t.Fatal("certificate that maps to no user connected")
		}
	})
	o.Users = nil
	if _, err := loop.New(o); err == nil {
		t.Fatal("verify_and_map without users accepted")
	}
}

// TestTLSMaxPending: a TLS subscriber that stops reading does not hold a
// TLS publisher past the stall window and is cut as a slow consumer once
// its pending output passes max_pending. (A healthy subscriber beside it
// is TestHealthySubscriberBesideStalled's; TLS changes nothing there.)
func TestTLSMaxPending(t *testing.T) {
	f := tlstest.New(t)
	o := tlsOpts(f)
	o.MaxPending = 4 << 20
	eachFlowTransport(t, o, func(t *testing.T, s *loop.Server) {
		raw, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		_ = raw.(*net.TCPConn).SetReadBuffer(64 << 10)
		pool := x509.NewCertPool()
		pem, _ := os.ReadFile(f.CA)
		pool.AppendCertsFromPEM(pem)
		r := bufio.NewReader(raw)
		if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "INFO ") {
			t.Fatalf("INFO: %q %v", line, err)
		}
		stalled := tls.Client(raw, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		_ = stalled.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := stalled.Write([]byte("CONNECT {\"verbose\":false}\r\nSUB flow 1\r\nPING\r\n")); err != nil {
			t.Fatal(err)
		}
		if line, err := bufio.NewReader(stalled).ReadString('\n'); err != nil || line != "PONG\r\n" {
			t.Fatalf("got %q, %v; want PONG", line, err)
		} // and it reads no more

		// 32 MiB of 16 KiB messages: eight times max_pending.
		publishN(t, connectTLS(t, s, f), "flow", 2000, 16<<10)
		waitFor(t, func() bool { return s.SlowConsumers() == 1 })
		closedWithin(t, raw, 10*time.Second)
	})
}

// TestTLSHandshakeFirstFallback: handshake_first: auto serves both kinds
// of client: one that starts TLS at once, and one that waits for INFO,
// which it gets in plaintext after the fallback delay.
func TestTLSHandshakeFirstFallback(t *testing.T) {
	f := tlstest.New(t)
	o := tlsOpts(f)
	o.TLS.HandshakeFirst, o.TLS.HandshakeFirstFallback = true, loop.DefaultTLSFirstFallback
	eachTransport(t, o, func(t *testing.T, s *loop.Server) {
		first := connectTLS(t, s, f, nats.TLSHandshakeFirst())
		start := time.Now()
		rc := dialRawInfo(t, s) // the INFO comes after the delay
		if d := time.Since(start); d < loop.DefaultTLSFirstFallback/2 {
			t.Errorf("INFO after %v, want the fallback delay", d)
		}
		rc.nc.Close()
		classic := connectTLS(t, s, f)
		checkPubSubRequest(t, first, classic)
	})
}
