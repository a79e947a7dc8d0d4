package loop_test

import (
	"bytes"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
)

// TestSubWhileClosing resets connections while the server is still parsing
// the SUBs, UNSUBs and PUBs they sent: the connection's writer fails and
// closes it in the middle of the parse. Every operation that arrives after
// that must be dropped, never crash the server.
func TestSubWhileClosing(t *testing.T) {
	eachTransport(t, loop.Options{}, func(t *testing.T, s *loop.Server) {
		var burst bytes.Buffer
		burst.WriteString("CONNECT {\"verbose\":true}\r\n")
		for i := 0; i < 5000; i++ {
			fmt.Fprintf(&burst, "SUB s.%d %d\r\nPUB s.%d 2\r\nhi\r\nUNSUB %d\r\n", i, i, i, i)
		}
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 10; i++ {
					nc, err := net.DialTimeout("tcp", s.Addr().String(), 5*time.Second)
					if err != nil {
						t.Error(err)
						return
					}
					_, _ = nc.Write(burst.Bytes())
					_ = nc.(*net.TCPConn).SetLinger(0) // RST: the server's next write fails
					_ = nc.Close()
				}
			}()
		}
		wg.Wait()
		nc := connect(t, s)
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestSilentConnectionClosed: with auth off, a socket that reads the INFO
// and never sends CONNECT is closed after the auth timeout, on the NATS
// port and on the MQTT port, so idle sockets cannot pile up.
func TestSilentConnectionClosed(t *testing.T) {
	o := loop.Options{AuthTimeout: 200 * time.Millisecond, MQTTPort: -1}
	eachTransport(t, o, func(t *testing.T, s *loop.Server) {
		rc := dialRaw(t, s)
		mc, err := net.DialTimeout("tcp", s.MQTTAddr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer mc.Close()
		rc.expect("-ERR 'Authentication Timeout'")
		rc.expectClosed()

		_ = mc.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 16)
		n, err := mc.Read(buf)
		if n != 0 || err == nil {
			t.Fatalf("MQTT socket without CONNECT: read %d bytes, err %v; want EOF", n, err)
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("server did not close the silent MQTT socket")
		}
	})
}
