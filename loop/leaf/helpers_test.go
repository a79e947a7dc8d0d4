package leaf_test

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/evnats/evnats/loop"
	_ "github.com/evnats/evnats/loop/leaf"
	"github.com/evnats/evnats/loop/looptest"
)

// hubOpts are a nats-server hub's options: client and leafnode listeners
// on 127.0.0.1, random ports unless set.
func hubOpts() *natsserver.Options {
	return &natsserver.Options{
		Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		LeafNode: natsserver.LeafNodeOpts{Host: "127.0.0.1", Port: -1},
	}
}

// startHub starts a nats-server from the pinned module; it shuts down
// when the test ends. After it, o holds the ports it bound.
func startHub(t *testing.T, o *natsserver.Options) *natsserver.Server {
	t.Helper()
	s, err := natsserver.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("hub not ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}

// leafURL is the URL of hub o's leafnode port, with user info if given.
func leafURL(o *natsserver.Options, userinfo string) string {
	if userinfo != "" {
		userinfo += "@"
	}
	return fmt.Sprintf("nats-leaf://%s127.0.0.1:%d", userinfo, o.LeafNode.Port)
}

// startLeaf starts an evnats leaf of the given hub URLs.
func startLeaf(t *testing.T, o loop.Options, urls ...string) *loop.Server {
	t.Helper()
	if len(o.LeafRemotes) == 0 {
		o.LeafRemotes = []loop.LeafRemote{{URLs: urls}}
	}
	if o.LogWriter == nil {
		o.LogWriter = io.Discard
	}
	if o.LeafReconnect == 0 {
		o.LeafReconnect = 50 * time.Millisecond
	}
	return looptest.Start(t, o)
}

func connect(t *testing.T, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func hubURL(s *natsserver.Server) string { return s.ClientURL() }

// waitFor polls cond (a state only observable from outside) until it
// holds, failing after a bound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (%v)", what, debugState())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitLinked waits until the hub has n leaf connections.
func waitLinked(t *testing.T, hub *natsserver.Server, n int, leaves ...*loop.Server) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d leaf connection(s) on the hub", n), func() bool { return hub.NumLeafNodes() == n })
	if n > 0 {
		// The hub's own interest (system requests, loop detection) comes
		// first; waiting for it keeps leaf counts exact.
		for _, s := range leaves {
			waitFor(t, "the hub's first interest", func() bool { return s.NumSubscriptions() >= hubBase })
		}
	}
}

// waitHubInterest waits until the hub's global account sees want
// subscribers for subject (leaf interest included).
func waitHubInterest(t *testing.T, hub *natsserver.Server, subject string, want int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("hub interest %d in %q", want, subject), func() bool {
		return hub.GlobalAccount().Interest(subject) == want
	})
}

// hubBase is how many subscriptions a pinned nats-server hub with no
// clients shows a leaf: four $SYS requests and its $LDS. subject.
const hubBase = 5

// waitLeafSubs waits until the leaf holds n subscriptions (its clients'
// and the hub's clients' interest together), beyond hubBase.
func waitLeafSubs(t *testing.T, s *loop.Server, n int) {
	t.Helper()
	debugState = func() any { return s.NumSubscriptions() }
	waitFor(t, fmt.Sprintf("%d subscriptions on the leaf", n), func() bool { return s.NumSubscriptions() == n+hubBase })
}

func next(t *testing.T, sub *nats.Subscription) *nats.Msg {
	t.Helper()
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("%s: %v", sub.Subject, err)
	}
	return m
}

// none checks that sub has nothing more after a round trip through both
// servers (the flushes bound what could still be in flight).
func none(t *testing.T, sub *nats.Subscription, flush ...*nats.Conn) {
	t.Helper()
	for _, nc := range flush {
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if m, err := sub.NextMsg(50 * time.Millisecond); err == nil {
		t.Fatalf("%s: unexpected %q", sub.Subject, m.Data)
	}
}

// freePort returns a port free on 127.0.0.1 a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

var debugState = func() any { return nil }
