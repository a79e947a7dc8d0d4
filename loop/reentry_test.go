package loop_test

import (
	"testing"

	"github.com/evnats/evnats/loop"
)

// TestVerboseRepliesUnderOutLock sends the operations whose +OK is queued
// while the connection's output lock is held (a repeated SUB, UNSUB of a
// known and an unknown sid). On the goroutine transport that lock is a plain
// mutex: a nested sendProto once deadlocked the reader, then every publisher
// to it and the server's shutdown.
func TestVerboseRepliesUnderOutLock(t *testing.T) {
	eachTransport(t, loop.Options{}, func(t *testing.T, s *loop.Server) {
		rc := dialRaw(t, s)
		// Before CONNECT the connection is verbose, as with nats-server.
		rc.send("SUB foo 1\r\nSUB foo 1\r\n")
		rc.expect("+OK")
		rc.expect("+OK") // the repeated sid is ignored
		rc.send("CONNECT {\"verbose\":true}\r\nSUB foo 1\r\nSUB bar 2\r\nUNSUB 2\r\nUNSUB 9\r\n")
		for range 5 {
			rc.expect("+OK")
		}
		// A second connection's publish still reaches the first: nothing is
		// stuck on its lock.
		pub := dialRaw(t, s)
		pub.send("CONNECT {\"verbose\":false}\r\nPUB foo 2\r\nhi\r\nPING\r\n")
		pub.expect("PONG")
		rc.expect("MSG foo 1 2")
		rc.expect("hi")
		rc.send("PING\r\n")
		rc.expect("PONG")
	})
}
