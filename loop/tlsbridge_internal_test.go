package loop

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"testing"
	"time"

	"github.com/evnats/evnats/loop/tlstest"
)

// memClient is the client end of a tlsBridge in a test: its writes go to
// the server side through out, its reads come from in.
type memClient struct {
	in  chan []byte
	buf []byte
	out func([]byte)
}

func (m *memClient) Read(p []byte) (int, error) {
	if len(m.buf) == 0 {
		m.buf = <-m.in
	}
	n := copy(p, m.buf)
	m.buf = m.buf[n:]
	return n, nil
}

func (m *memClient) Write(p []byte) (int, error) {
	m.out(append([]byte(nil), p...))
	return len(p), nil
}

func (m *memClient) Close() error                     { return nil }
func (m *memClient) LocalAddr() net.Addr              { return nil }
func (m *memClient) RemoteAddr() net.Addr             { return nil }
func (m *memClient) SetDeadline(time.Time) error      { return nil }
func (m *memClient) SetReadDeadline(time.Time) error  { return nil }
func (m *memClient) SetWriteDeadline(time.Time) error { return nil }

// bridgePair handshakes a tls.Client with a tls.Server over a tlsBridge
// and returns both in record mode; the server's ciphertext goes to out,
// the client's to *wire.
func bridgePair(t testing.TB, out *outBuf, wire *[]byte) (client, server *tls.Conn, br *tlsBridge) {
	f := tlstest.New(t)
	cfg, err := (&TLSOptions{CertFile: f.Cert, KeyFile: f.Key}).tlsConfig()
	if err != nil {
		t.Fatal(err)
	}
	mc := &memClient{in: make(chan []byte, 16)}
	br = newTLSBridge(newHandshakeSlots(), func(p []byte) { mc.in <- p }, nil, nil)
	mc.out = func(p []byte) { br.feed(p) }
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(f.CA)
	pool.AppendCertsFromPEM(pem)
	client = tls.Client(mc, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	server = tls.Server(br, cfg)
	done := make(chan error, 1)
	go func() { err := server.Handshake(); br.handshakeDone(); done <- err }()
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	br.toRecords(out)
	mc.out = func(p []byte) { *wire = append(*wire, p...) }
	return client, server, br
}

// TestTLSRecordsNonBlocking: in record mode a tls.Conn over the bridge
// opens records fed to it in arbitrary pieces without blocking, keeping a
// partial record until the rest comes, and seals into the outBuf; after
// a would-block the connection is still usable (the error is not sticky).
func TestTLSRecordsNonBlocking(t *testing.T) {
	var out outBuf
	out.pool = &chunkPool{}
	var wire []byte
	client, server, br := bridgePair(t, &out, &wire)
	msgs := [][]byte{[]byte("PUB a 2\r\nhi\r\n"), bytes.Repeat([]byte("x"), 40000), []byte("PING\r\n")}
	var want []byte
	for _, m := range msgs {
		if _, err := client.Write(m); err != nil {
			t.Fatal(err)
		}
		want = append(want, m...)
	}
	var got []byte
	plain := make([]byte, maxTLSRecord)
	for i := 0; i < len(wire); i += 7 { // 7-byte pieces: headers and records split everywhere
		br.src = wire[i:min(i+7, len(wire))]
		for {
			n, err := server.Read(plain)
			got = append(got, plain[:n]...)
			if err == errWouldBlock {
				break
			}
			if err != nil {
				t.Fatalf("read: %v", err)
			}
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("opened %d bytes, want %d", len(got), len(want))
	}
	if _, err := server.Write([]byte("PONG\r\n")); err != nil {
		t.Fatal(err)
	}
	var sealed []byte
	for _, c := range out.chunks {
		sealed = append(sealed, c...)
	}
	mc := client.NetConn().(*memClient)
	mc.in <- sealed
	b := make([]byte, 16)
	n, err := client.Read(b)
	if err != nil || string(b[:n]) != "PONG\r\n" {
		t.Fatalf("client read %q, %v", b[:n], err)
	}
}

// TestTLSRecordAllocs: opening a record of a 128-byte PUB and sealing a
// 128-byte MSG allocate nothing per message in steady state.
func TestTLSRecordAllocs(t *testing.T) {
	var out outBuf
	out.pool = &chunkPool{}
	var wire []byte
	client, server, br := bridgePair(t, &out, &wire)
	pub := append(append([]byte("PUB a 128\r\n"), bytes.Repeat([]byte("x"), 128)...), "\r\n"...)
	if _, err := client.Write(pub); err != nil {
		t.Fatal(err)
	}
	plain := make([]byte, maxTLSRecord)
	msg := append(append([]byte("MSG a 1 128\r\n"), bytes.Repeat([]byte("y"), 128)...), "\r\n"...)
	round := func() {
		// The client's records carry sequence numbers: every round
		// opens a fresh one.
		wire = wire[:0]
		_, _ = client.Write(pub)
		br.src = wire
		for {
			if _, err := server.Read(plain); err != nil {
				break
			}
		}
		_, _ = server.Write(msg)
		out.reset()
	}
	round()
	// Only the server side counts, but the client's Write runs in the
	// round too: measure it alone and subtract.
	clientOnly := testing.AllocsPerRun(1000, func() { wire = wire[:0]; _, _ = client.Write(pub) })
	total := testing.AllocsPerRun(1000, round)
	t.Logf("allocations per round %v, of which the client %v", total, clientOnly)
	if n := total - clientOnly; n > 0 {
		t.Fatalf("%v allocations per record opened and sealed", n)
	}
}
