package loop_test

import (
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	"github.com/nats-io/nats.go"
)

// reloadable is a server started from a configuration file, and how to
// read the file again with the same command-line settings (the test's
// address, port, store and transport), as cmd/evnats does on SIGHUP.
type reloadable struct {
	path string
	base loop.Options
	s    *loop.Server
}

func startFromFile(t *testing.T, o loop.Options, text string) *reloadable {
	t.Helper()
	r := &reloadable{path: writeConf(t, text), base: o}
	r.base.Host, r.base.Port, r.base.StoreDir = "127.0.0.1", -1, t.TempDir()
	r.s = looptest.Start(t, r.load(t))
	return r
}

func (r *reloadable) load(t *testing.T) loop.Options {
	t.Helper()
	o := r.base
	if err := loop.ApplyConfigFile(&o, r.path); err != nil {
		t.Fatal(err)
	}
	return o
}

// rewrite replaces the file and reloads it.
func (r *reloadable) rewrite(t *testing.T, text string) error {
	t.Helper()
	if err := os.WriteFile(r.path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return r.s.Reload(r.load(t))
}

// asyncErrs collects a client's asynchronous errors.
type asyncErrs struct {
	mu   sync.Mutex
	errs []string
	ch   chan struct{}
}

func newAsyncErrs() *asyncErrs { return &asyncErrs{ch: make(chan struct{}, 16)} }

func (a *asyncErrs) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	a.mu.Lock()
	a.errs = append(a.errs, strings.ToLower(err.Error()))
	a.mu.Unlock()
	select {
	case a.ch <- struct{}{}:
	default:
	}
}

// waitFor waits until an error containing want arrived.
func (a *asyncErrs) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		a.mu.Lock()
		for _, e := range a.errs {
			if strings.Contains(e, want) {
				a.mu.Unlock()
				return
			}
		}
		got := append([]string(nil), a.errs...)
		a.mu.Unlock()
		select {
		case <-a.ch:
		case <-deadline:
			t.Fatalf("no async error with %q; got %q", want, got)
		}
	}
}

const reloadUsersBefore = `
max_subscriptions: 10
authorization {
  users = [
    {user: a, password: pa, permissions: {publish: ["ok.>", "gone.>"], subscribe: ["ok.>", "gone.>"]}}
    {user: b, password: pb}
  ]
}
`

// a loses gone.>, b is removed, at most 3 subscriptions per connection.
const reloadUsersAfter = `
max_subscriptions: 3
authorization {
  users = [
    {user: a, password: pa, permissions: {publish: "ok.>", subscribe: "ok.>"}}
  ]
}
`

// TestReloadKeepsClients: a reload (what SIGHUP runs) applies new user
// permissions and limits to a connected client without dropping it: its
// subscription the new permissions forbid is removed with a permissions
// error, publishing there is refused, and the new max_subscriptions
// holds; a client whose user is gone is closed with "Authorization
// Violation", as nats-server does.
func TestReloadKeepsClients(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		r := startFromFile(t, o, reloadUsersBefore)
		errsA := newAsyncErrs()
		a := connect(t, r.s, nats.UserInfo("a", "pa"), nats.ErrorHandler(errsA.handler))
		bClosed, errsB := make(chan struct{}), newAsyncErrs()
		connect(t, r.s, nats.UserInfo("b", "pb"), nats.ErrorHandler(errsB.handler),
			nats.ClosedHandler(func(*nats.Conn) { close(bClosed) }))
		gone, err := a.SubscribeSync("gone.x")
		if err != nil {
			t.Fatal(err)
		}
		ok, err := a.SubscribeSync("ok.x")
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Publish("gone.x", []byte("before")); err != nil {
			t.Fatal(err)
		}
		if _, err := gone.NextMsg(5 * time.Second); err != nil {
			t.Fatalf("before the reload, gone.x: %v", err)
		}

		if err := r.rewrite(t, reloadUsersAfter); err != nil {
			t.Fatalf("reload: %v", err)
		}

		select {
		case <-bClosed:
		case <-time.After(5 * time.Second):
			t.Fatal("b, whose user was removed, is still connected")
		}
		errsB.waitFor(t, "authorization violation")
		errsA.waitFor(t, `permissions violation for subscription to "gone.x"`)
		if err := a.Publish("gone.x", []byte("after")); err != nil {
			t.Fatal(err)
		}
		errsA.waitFor(t, `permissions violation for publish to "gone.x"`)
		if err := a.Publish("ok.x", []byte("after")); err != nil {
			t.Fatal(err)
		}
		if m, err := ok.NextMsg(5 * time.Second); err != nil || string(m.Data) != "after" {
			t.Fatalf("ok.x after the reload: %v %v", m, err)
		}
		// ok.x is one; two more fit under max_subscriptions 3, the next does not.
		for _, subj := range []string{"ok.1", "ok.2", "ok.3"} {
			if _, err := a.SubscribeSync(subj); err != nil {
				t.Fatal(err)
			}
		}
		errsA.waitFor(t, "maximum subscriptions exceeded")
		if !a.IsConnected() || a.Stats().Reconnects != 0 {
			t.Fatalf("a: connected %v, reconnects %d", a.IsConnected(), a.Stats().Reconnects)
		}
		if err := a.Flush(); err != nil {
			t.Fatalf("a after the reload: %v", err)
		}
	})
}

// TestReloadRefusesFixedSettings: a reload that changes what needs a
// restart applies nothing and names every such setting.
func TestReloadRefusesFixedSettings(t *testing.T) {
	r := startFromFile(t, loop.Options{}, "max_subscriptions: 1\n")
	err := r.rewrite(t, "max_subscriptions: 5\nmax_pending: 1MB\nloops: 7\n")
	want := "config reload not supported for loops, max_pending: restart the server to change them"
	if err == nil || err.Error() != want {
		t.Fatalf("reload error %v, want %s", err, want)
	}
	errs := newAsyncErrs()
	nc := connect(t, r.s, nats.ErrorHandler(errs.handler))
	for _, subj := range []string{"x", "y"} {
		if _, err := nc.SubscribeSync(subj); err != nil {
			t.Fatal(err)
		}
	}
	errs.waitFor(t, "maximum subscriptions exceeded") // still 1: nothing applied
}

// TestReloadAuthTurnsOn: a server without auth that reloads into a token
// closes the clients that did not send it and keeps the one that did;
// new clients must send it.
func TestReloadAuthTurnsOn(t *testing.T) {
	r := startFromFile(t, loop.Options{}, "max_payload: 1MB\n")
	closed, errs := make(chan struct{}), newAsyncErrs()
	connect(t, r.s, nats.ErrorHandler(errs.handler), nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	withToken := connect(t, r.s, nats.Token("s3cret"))
	if err := r.rewrite(t, "max_payload: 1MB\nauthorization { token: s3cret }\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("a client without the token is still connected")
	}
	errs.waitFor(t, "authorization violation")
	if err := withToken.Flush(); err != nil {
		t.Fatalf("the client with the token: %v", err)
	}
	_, err := nats.Connect(r.s.ClientURL(), nats.NoReconnect(), nats.Timeout(5*time.Second))
	if !errors.Is(err, nats.ErrAuthorization) && (err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization")) {
		t.Fatalf("new client without the token: %v", err)
	}
}

// TestReloadLimits: max_connections, ping_interval and max_payload from a
// reload: a connection past the new maximum is turned away, a connected
// client is pinged at the new interval, a new connection's INFO carries
// the new max_payload.
func TestReloadLimits(t *testing.T) {
	r := startFromFile(t, loop.Options{}, "max_connections: 10\nmax_payload: 1MB\n")
	first := dialRaw(t, r.s)
	first.send("CONNECT {\"verbose\":false}\r\nPING\r\n")
	first.expect("PONG")
	if err := r.rewrite(t, "max_connections: 1\nmax_payload: 2KB\nping_interval: \"1s\"\n"); err != nil {
		t.Fatal(err)
	}
	second := dialRaw(t, r.s)
	second.expect("-ERR 'maximum connections exceeded'")
	second.expectClosed()
	first.expect("PING") // within the new interval (the housekeeping tick is 1s)

	if err := r.rewrite(t, "max_connections: 10\nmax_payload: 2KB\nping_interval: \"1s\"\n"); err != nil {
		t.Fatal(err)
	}
	third := dialRawKeep(t, r.s)
	if !strings.Contains(third, `"max_payload":2048`) {
		t.Fatalf("INFO after the reload: %s", third)
	}
}
