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

// TestTLSRecordAllocs: sealing allocates nothing per message; opening
// allocates only crypto/tls's atLeastReader (24 bytes, readFromUntil) when
// it has to read from the bridge: twice per socket read (the first record,
// and the probe that finds no more), however many records and messages
// the read holds.
func TestTLSRecordAllocs(t *testing.T) {
	if raceDetector {
		t.Skip("allocations are counted without -race: its instrumentation allocates in crypto/tls")
	}
	var out outBuf
	out.pool = &chunkPool{}
	var wire []byte
	client, server, br := bridgePair(t, &out, &wire)
	pub := append(append([]byte("PUB a 128\r\n"), bytes.Repeat([]byte("x"), 128)...), "\r\n"...)
	// Records carry sequence numbers: the client seals them beforehand,
	// ten records of one PUB per socket read, so that only the server's
	// work is measured.
	const rounds, perRead = 1000, 10
	reads := make([][]byte, rounds+1)
	for i := range reads {
		wire = nil
		for range perRead {
			if _, err := client.Write(pub); err != nil {
				t.Fatal(err)
			}
		}
		reads[i] = wire
	}
	plain := make([]byte, maxTLSRecord)
	next := 0
	open := func() {
		br.src = reads[next]
		next++
		for {
			if _, err := server.Read(plain); err != nil {
				break
			}
		}
	}
	if n := testing.AllocsPerRun(rounds, open); n > 2 {
		t.Errorf("%v allocations per read of %d records, want at most 2", n, perRead)
	}
	msg := append(append([]byte("MSG a 1 128\r\n"), bytes.Repeat([]byte("y"), 128)...), "\r\n"...)
	seal := func() {
		for range perRead {
			_, _ = server.Write(msg)
		}
		out.reset()
	}
	if n := testing.AllocsPerRun(rounds, seal); n > 0 {
		t.Errorf("%v allocations per %d records sealed", n, perRead)
	}
}
