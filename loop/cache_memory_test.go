package loop_test

import (
	"bufio"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
)

// TestLongSubjectsDoNotPinMatchCache: a client publishing to many unique
// long subjects must not leave them in the loops' match caches after it is
// gone (a cache of 4096 subjects of up to max_control_line bytes, per loop,
// kept until the sublist changes).
func TestLongSubjectsDoNotPinMatchCache(t *testing.T) {
	const (
		n          = 2000
		subjectLen = 16 << 10
		maxHeld    = 12 << 20 // before the fix, on the loops: n x subjectLen = 32 MB
	)
	eachTransport(t, loop.Options{MaxControlLine: 32 << 10}, func(t *testing.T, s *loop.Server) {
		base := heapAfterGC()
		rc := dialRaw(t, s)
		w := bufio.NewWriterSize(rc.nc, 64<<10)
		prefix := strings.Repeat("x", subjectLen)
		fmt.Fprintf(w, "CONNECT {\"verbose\":false}\r\n")
		for i := range n {
			fmt.Fprintf(w, "PUB %s.%d 2\r\nhi\r\n", prefix, i)
		}
		fmt.Fprintf(w, "PING\r\n")
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		rc.expect("PONG")
		open := int64(heapAfterGC()) - int64(base)
		rc.nc.Close()
		waitNoClients(t, s)
		closed := int64(heapAfterGC()) - int64(base)
		t.Logf("%d publishes to unique %d-byte subjects: live heap +%d KB while connected, +%d KB after",
			n, subjectLen, open>>10, closed>>10)
		if open > maxHeld || closed > maxHeld {
			t.Fatalf("server keeps %d MB (open) / %d MB (closed) of subjects; want < %d MB", open>>20, closed>>20, maxHeld>>20)
		}
	})
}

// waitNoClients waits until the server has closed every connection.
func waitNoClients(t *testing.T, s *loop.Server) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.NumClients() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open", s.NumClients())
		}
		time.Sleep(time.Millisecond)
	}
}
