package loop_test

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	_ "github.com/evnats/evnats/mqtt" // serves the MQTT listener (loop.RegisterMQTT)
	"github.com/nats-io/nats.go"
)

// eachTransport runs f against a fresh server for every transport.
func eachTransport(t *testing.T, opts loop.Options, f func(t *testing.T, s *loop.Server)) {
	looptest.Each(t, opts, func(t *testing.T, o loop.Options) { f(t, startServer(t, o)) })
}

func startServer(t testing.TB, o loop.Options) *loop.Server { return looptest.Start(t, o) }

func connect(t testing.TB, s *loop.Server, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), append([]nats.Option{nats.Timeout(5 * time.Second), nats.NoReconnect()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// rawConn is a protocol-level client for exact-byte tests.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	r  *bufio.Reader
}

func dialRaw(t testing.TB, s *loop.Server) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", s.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	rc := &rawConn{t: t, nc: nc, r: bufio.NewReader(nc)}
	if line := rc.readLine(); !strings.HasPrefix(line, "INFO {") {
		t.Fatalf("first line %q, want INFO", line)
	}
	return rc
}

func (rc *rawConn) send(format string, args ...any) {
	rc.t.Helper()
	if _, err := fmt.Fprintf(rc.nc, format, args...); err != nil {
		rc.t.Fatal(err)
	}
}

// readLine returns the next line without CRLF; it fails the test after 5s.
func (rc *rawConn) readLine() string {
	rc.t.Helper()
	_ = rc.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := rc.r.ReadString('\n')
	if err != nil {
		rc.t.Fatalf("read: %v (got %q)", err, line)
	}
	return strings.TrimRight(line, "\r\n")
}

func (rc *rawConn) expect(want string) {
	rc.t.Helper()
	if got := rc.readLine(); got != want {
		rc.t.Fatalf("got %q, want %q", got, want)
	}
}

// expectClosed reads until EOF, failing if the server keeps the connection.
func (rc *rawConn) expectClosed() {
	rc.t.Helper()
	_ = rc.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	for {
		_, err := rc.r.Read(buf)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				rc.t.Fatal("server did not close the connection")
			}
			return
		}
	}
}

// dialRawKeep connects and returns the INFO line.
func dialRawKeep(t testing.TB, s *loop.Server) string {
	t.Helper()
	nc, err := net.DialTimeout("tcp", s.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(nc).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimRight(line, "\r\n")
}
