// Package looptest starts evnats servers for tests in other packages
// (loop's own external tests, jetstream, mqtt, bench): on 127.0.0.1, on
// random ports, stopped when the test ends. It is imported by tests only.
package looptest

// Concurrency: helpers for test goroutines; LogBuffer.mu guards the log
// the server's goroutines write into (a leaf).

import (
	"strings"
	"sync"
	"testing"

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
	for try := 1; ; try++ {
		s, err := loop.New(o)
		if err != nil {
			t.Fatal(err)
		}
		err = s.Start()
		if err == nil {
			t.Cleanup(s.Shutdown)
			return s
		}
		// gnet binds every listener by address, so a random MQTT or
		// WebSocket port is picked before binding, and on a shared box
		// another process may take it first: pick again.
		if try == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
	}
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
