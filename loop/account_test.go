package loop_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// accountsConf: two tenants with the same subjects, A exporting a stream
// and a service that B imports, and no_auth_user in B.
const accountsConf = `
accounts {
  A {
    users = [ {user: a, password: a}, {user: a2, password: a2} ]
    exports = [
      {stream: "events.>"}
      {service: "svc.>"}
      {service: "feed.>", response_type: stream}
    ]
  }
  B {
    users = [
      {user: b, password: b}
      {user: nodeny, password: x, permissions: {subscribe: {allow: ">", deny: "x.events.secret"}}}
    ]
    imports = [
      {stream: {account: A, subject: "events.>"}, prefix: "x"}
      {service: {account: A, subject: "svc.echo"}, to: "local.echo"}
      {service: {account: A, subject: "feed.>"}}
      {service: {account: A, subject: "svc.*.up"}, to: "remote.*.up"}
    ]
  }
}
no_auth_user: b
`

func connUser(t *testing.T, s *loop.Server, user, pass string) *nats.Conn {
	t.Helper()
	return connect(t, s, nats.UserInfo(user, pass))
}

// noMsg fails if sub holds a message once nc's server has answered a
// PING (anything delivered to it before was queued ahead of the PONG).
func noMsg(t *testing.T, nc *nats.Conn, sub *nats.Subscription) {
	t.Helper()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if m, err := sub.NextMsg(50 * time.Millisecond); err == nil {
		t.Fatalf("got %q on %q, want nothing", m.Data, m.Subject)
	}
}

func nextMsg(t *testing.T, sub *nats.Subscription) *nats.Msg {
	t.Helper()
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("%s: %v", sub.Subject, err)
	}
	return m
}

// TestAccountsIsolation: accounts with the same subjects do not see each
// other's messages; users of one account do.
func TestAccountsIsolation(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		s := startFromFile(t, o, accountsConf).s
		a, a2, b := connUser(t, s, "a", "a"), connUser(t, s, "a2", "a2"), connUser(t, s, "b", "b")
		sa, _ := a.SubscribeSync("foo")
		sb, _ := b.SubscribeSync("foo")
		a.Flush()
		b.Flush()
		if err := b.Publish("foo", []byte("from B")); err != nil {
			t.Fatal(err)
		}
		if m := nextMsg(t, sb); string(m.Data) != "from B" {
			t.Fatalf("B got %q", m.Data)
		}
		noMsg(t, a, sa)
		a2.Publish("foo", []byte("from A"))
		if m := nextMsg(t, sa); string(m.Data) != "from A" {
			t.Fatalf("A got %q", m.Data)
		}
		noMsg(t, b, sb)
		if n := s.NumSubscriptions(); n != 0 {
			// $G's own: the accounts' subscriptions are their own.
			t.Logf("global subscriptions: %d", n)
		}
	})
}

// TestAccountsStreamImport: a message on an exported stream reaches the
// importing account under its prefix, filtered by its subscribers'
// permissions; nothing goes the other way.
func TestAccountsStreamImport(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		s := startFromFile(t, o, accountsConf).s
		a, b, nd := connUser(t, s, "a", "a"), connUser(t, s, "b", "b"), connUser(t, s, "nodeny", "x")
		sb, _ := b.SubscribeSync("x.events.>")
		plain, _ := b.SubscribeSync("events.>") // no prefix: not imported there
		snd, _ := nd.SubscribeSync("x.>")
		b.Flush()
		nd.Flush()
		a.Publish("events.secret", []byte("s"))
		a.Publish("events.one", []byte("1"))
		a.Publish("other", []byte("not exported"))
		for _, want := range []string{"x.events.secret", "x.events.one"} {
			if m := nextMsg(t, sb); m.Subject != want {
				t.Fatalf("B got %q, want %q", m.Subject, want)
			}
		}
		// nodeny's subscribe deny holds at delivery: only events.one.
		if m := nextMsg(t, snd); m.Subject != "x.events.one" {
			t.Fatalf("nodeny got %q", m.Subject)
		}
		noMsg(t, b, plain)
		// B publishing under the prefix reaches only B.
		sa, _ := a.SubscribeSync(">")
		a.Flush()
		b.Publish("x.events.back", nil)
		nextMsg(t, sb)
		noMsg(t, a, sa)
	})
}

// TestAccountsServiceImport: a request in B on the `to` subject reaches
// A's service on the exported subject with a reply subject of A's, and
// the response comes back to B's requester; a singleton export takes one
// response, a stream export many.
func TestAccountsServiceImport(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		s := startFromFile(t, o, accountsConf).s
		a, b := connUser(t, s, "a", "a"), connUser(t, s, "b", "b")
		var seenReply string
		a.Subscribe("svc.echo", func(m *nats.Msg) {
			seenReply = m.Reply
			m.Respond(append([]byte("echo:"), m.Data...))
			m.Respond([]byte("second")) // a singleton takes one
		})
		a.Subscribe("feed.>", func(m *nats.Msg) {
			for _, p := range []string{"1", "2", "3"} {
				a.Publish(m.Reply, []byte(p))
			}
		})
		a.Flush()
		r, err := b.Request("local.echo", []byte("hi"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Data) != "echo:hi" {
			t.Fatalf("reply %q", r.Data)
		}
		if !strings.HasPrefix(seenReply, "_R_.") {
			t.Fatalf("service saw reply %q, want a mapped _R_ subject", seenReply)
		}
		// A wildcard `to` maps token by token.
		a.Subscribe("svc.*.up", func(m *nats.Msg) { m.Respond([]byte(m.Subject)) })
		a.Flush()
		if r, err := b.Request("remote.node7.up", nil, 5*time.Second); err != nil || string(r.Data) != "svc.node7.up" {
			t.Fatalf("remote.node7.up: %v %v", r, err)
		}
		// The exporter's own subject is not B's.
		if _, err := b.Request("svc.echo", nil, 200*time.Millisecond); err == nil {
			t.Fatal("svc.echo answered in B")
		}
		// Second response of the singleton: dropped, not delivered.
		inbox := b.NewRespInbox()
		sub, _ := b.SubscribeSync(inbox)
		b.PublishRequest("local.echo", inbox, []byte("x"))
		if m := nextMsg(t, sub); string(m.Data) != "echo:x" {
			t.Fatalf("got %q", m.Data)
		}
		a.Flush()
		noMsg(t, b, sub)
		// A stream response type: every response arrives.
		feed, _ := b.SubscribeSync("feed.inbox")
		b.PublishRequest("feed.now", "feed.inbox", nil)
		for _, want := range []string{"1", "2", "3"} {
			if m := nextMsg(t, feed); string(m.Data) != want {
				t.Fatalf("feed got %q, want %q", m.Data, want)
			}
		}
	})
}

// TestAccountsNoAuthUser: a client without credentials is no_auth_user,
// in its account; wrong credentials still fail.
func TestAccountsNoAuthUser(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		s := startFromFile(t, o, accountsConf).s
		anon, b := connect(t, s), connUser(t, s, "b", "b")
		sb, _ := b.SubscribeSync("hello")
		b.Flush()
		anon.Publish("hello", []byte("anon"))
		if m := nextMsg(t, sb); string(m.Data) != "anon" {
			t.Fatalf("got %q", m.Data)
		}
		_, err := nats.Connect(s.ClientURL(), nats.UserInfo("b", "wrong"), nats.NoReconnect())
		if err == nil || !strings.Contains(err.Error(), "Authorization Violation") {
			t.Fatalf("wrong password: %v", err)
		}
	})
}

// TestAccountsNkeyLogin: an nkey user signs INFO's nonce and lands in its
// account; a signature by another key is an Authorization Violation.
func TestAccountsNkeyLogin(t *testing.T) {
	kp, _ := nkeys.CreateUser()
	pub, _ := kp.PublicKey()
	other, _ := nkeys.CreateUser()
	conf := `
accounts {
  A { users = [ {nkey: ` + pub + `}, {user: a, password: a} ] }
}
`
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		s := startFromFile(t, o, conf).s
		nc := connect(t, s, nats.Nkey(pub, func(nonce []byte) ([]byte, error) { return kp.Sign(nonce) }))
		a := connUser(t, s, "a", "a")
		sa, _ := a.SubscribeSync("n")
		a.Flush()
		nc.Publish("n", []byte("signed"))
		if m := nextMsg(t, sa); string(m.Data) != "signed" {
			t.Fatalf("got %q", m.Data)
		}
		_, err := nats.Connect(s.ClientURL(), nats.NoReconnect(),
			nats.Nkey(pub, func(nonce []byte) ([]byte, error) { return other.Sign(nonce) }))
		if err == nil || !strings.Contains(err.Error(), "Authorization Violation") {
			t.Fatalf("forged signature: %v", err)
		}
	})
}

// TestAccountsNonceInInfo: INFO carries a nonce only when nkey users
// exist, a fresh one per connection.
func TestAccountsNonceInInfo(t *testing.T) {
	kp, _ := nkeys.CreateUser()
	pub, _ := kp.PublicKey()
	for _, tc := range []struct {
		conf  string
		nonce bool
	}{
		{`accounts { A { users = [ {nkey: ` + pub + `} ] } }`, true},
		{`accounts { A { users = [ {user: a, password: a} ] } }`, false},
	} {
		s := startFromFile(t, loop.Options{}, tc.conf).s
		n1, n2 := infoNonce(t, s), infoNonce(t, s)
		if (n1 != "") != tc.nonce || tc.nonce && (n1 == n2 || len(n1) != 15) {
			t.Fatalf("%s: nonces %q %q", tc.conf, n1, n2)
		}
	}
}

func infoNonce(t *testing.T, s *loop.Server) string {
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
	var info struct {
		Nonce string `json:"nonce"`
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(strings.TrimSpace(line), "INFO ")), &info); err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	return info.Nonce
}

// TestAccountsImportRefused: importing what the exporter does not export,
// from an account that does not exist, or in a cycle is refused at start
// with nats-server's text, and the reload that would bring it is too.
func TestAccountsImportRefused(t *testing.T) {
	for _, tc := range []struct{ conf, want string }{
		{`accounts { A { exports = [ {stream: "a.>"} ] }, B { imports = [ {stream: {account: A, subject: "b.>"}} ] } }`,
			`Error adding stream import "b.>": stream import not authorized`},
		{`accounts { A { }, B { imports = [ {stream: {account: A, subject: "b.>"}} ] } }`,
			`stream import not authorized`},
		{`accounts { A { exports = [ {stream: "a.>"} ] }, B { imports = [ {service: {account: A, subject: "a.x"}} ] } }`,
			`Error adding service import "a.x": service import not authorized`},
		{`accounts { A { exports = [ {service: "s.>", accounts: [C]} ] }, B { imports = [ {service: {account: A, subject: "s.x"}} ] } }`,
			`service import not authorized`},
		{`accounts { B { imports = [ {stream: {account: Z, subject: "b.>"}} ] } }`,
			`"Z" account not defined for stream import`},
		{`accounts {
		   A { exports = [ {service: "q"} ], imports = [ {service: {account: B, subject: "q"}} ] }
		   B { exports = [ {service: "q"} ], imports = [ {service: {account: A, subject: "q"}} ] } }`,
			`import forms a cycle`},
		{`accounts {
		   A { exports = [ {stream: "e.>"} ], imports = [ {stream: {account: B, subject: "e.>"}} ] }
		   B { exports = [ {stream: "e.>"} ], imports = [ {stream: {account: A, subject: "e.>"}} ] } }`,
			`import forms a cycle`},
		{`accounts { A { users = [ {user: a, password: a} ] } }
		  no_auth_user: nobody`, `no_auth_user: "nobody" not present as user or nkey`},
		{`accounts { A { jetstream: enabled } }`, `needs jetstream enabled on the server`},
	} {
		o := loop.Options{}
		if err := loop.ApplyConfigFile(&o, writeConf(t, tc.conf)); err != nil {
			t.Fatalf("%s: %v", tc.conf, err)
		}
		_, err := loop.New(o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\n got %v\nwant %q", tc.conf, err, tc.want)
		}
	}
	// Imports that are fine: a prefix keeps them apart, no cycle.
	ok := `accounts {
	  A { exports = [ {stream: "e.>"} ], imports = [ {stream: {account: B, subject: "e.>"}, prefix: "fromb"} ] }
	  B { exports = [ {stream: "e.>"} ], imports = [ {stream: {account: A, subject: "e.>"}, prefix: "froma"} ] } }`
	o := loop.Options{}
	if err := loop.ApplyConfigFile(&o, writeConf(t, ok)); err != nil {
		t.Fatal(err)
	}
	if _, err := loop.New(o); err != nil {
		t.Fatal(err)
	}
}

// TestAccountsReload: a reload adds a user to an account, removes one
// (disconnected) and moves nobody else.
func TestAccountsReload(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		r := startFromFile(t, o, `accounts { A { users = [ {user: a, password: a}, {user: gone, password: g} ] } }`)
		a := connUser(t, r.s, "a", "a")
		closed := make(chan struct{})
		gone := connect(t, r.s, nats.UserInfo("gone", "g"), nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
		if _, err := nats.Connect(r.s.ClientURL(), nats.UserInfo("new", "n"), nats.NoReconnect()); err == nil {
			t.Fatal("new user admitted before the reload")
		}
		if err := r.rewrite(t, `accounts { A { users = [ {user: a, password: a}, {user: new, password: n} ] } }`); err != nil {
			t.Fatal(err)
		}
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			t.Fatal("removed user still connected")
		}
		_ = gone
		nw := connUser(t, r.s, "new", "n")
		sa, _ := a.SubscribeSync("r")
		a.Flush()
		nw.Publish("r", []byte("same account"))
		if m := nextMsg(t, sa); string(m.Data) != "same account" {
			t.Fatalf("got %q", m.Data)
		}
		// An unexported import in the reload is refused; what runs stays.
		err := r.rewrite(t, `accounts { A { users = [ {user: a, password: a} ] }, B { imports = [ {stream: {account: A, subject: "x"}} ] } }`)
		if err == nil || !strings.Contains(err.Error(), "stream import not authorized") {
			t.Fatalf("reload: %v", err)
		}
		if !a.IsConnected() || errors.Is(a.LastError(), nats.ErrAuthorization) {
			t.Fatal("a dropped by a refused reload")
		}
		// A reload that adds an account importing A's stream: it flows.
		if err := r.rewrite(t, `accounts {
		  A { users = [ {user: a, password: a} ], exports = [ {stream: "r"} ] }
		  B { users = [ {user: b, password: b} ], imports = [ {stream: {account: A, subject: "r"}, prefix: "a"} ] } }`); err != nil {
			t.Fatal(err)
		}
		b := connUser(t, r.s, "b", "b")
		sb, _ := b.SubscribeSync("a.r")
		b.Flush()
		a.Publish("r", []byte("imported"))
		if m := nextMsg(t, sb); string(m.Data) != "imported" {
			t.Fatalf("got %q", m.Data)
		}
		nextMsg(t, sa) // a still subscribed in A through every reload
	})
}

// TestAccountsJetStream: accounts with jetstream enabled each have their
// own streams (both may have ORDERS), kept apart on disk under
// jetstream/<account>/ and recovered after a restart; max_streams is
// enforced with error 10027; an account without JetStream has no API.
func TestAccountsJetStream(t *testing.T) {
	conf := `
jetstream: enabled
accounts {
  A { users = [ {user: a, password: a} ], jetstream: enabled }
  B { users = [ {user: b, password: b} ], jetstream: { max_streams: 1, max_mem: 1MB } }
  C { users = [ {user: c, password: c} ] }
}
`
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		r := startFromFile(t, o, conf)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, u := range []string{"a", "b"} {
			js, _ := jetstream.New(connUser(t, r.s, u, u))
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, Storage: jetstream.FileStorage}); err != nil {
				t.Fatalf("%s: %v", u, err)
			}
		}
		ja, _ := jetstream.New(connUser(t, r.s, "a", "a"))
		for i := 0; i < 3; i++ {
			if _, err := ja.Publish(ctx, "orders.x", []byte("a")); err != nil {
				t.Fatal(err)
			}
		}
		jb, _ := jetstream.New(connUser(t, r.s, "b", "b"))
		if _, err := jb.Publish(ctx, "orders.x", []byte("b")); err != nil {
			t.Fatal(err)
		}
		_, err := jb.CreateStream(ctx, jetstream.StreamConfig{Name: "MORE", Subjects: []string{"more"}})
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode != 10027 {
			t.Fatalf("second stream in B: %v, want 10027", err)
		}
		if ai, err := jb.AccountInfo(ctx); err != nil || ai.Limits.MaxStreams != 1 || ai.Streams != 1 {
			t.Fatalf("B account info %+v %v", ai, err)
		}
		jc, _ := jetstream.New(connUser(t, r.s, "c", "c"))
		short, cancelShort := context.WithTimeout(ctx, 500*time.Millisecond) // nats.go retries a 503 until it ends
		_, err = jc.AccountInfo(short)
		cancelShort()
		if err == nil {
			t.Fatal("account C without jetstream answered")
		}
		counts := func() (uint64, uint64) {
			sa, err := ja.Stream(ctx, "ORDERS")
			if err != nil {
				t.Fatal(err)
			}
			sb, err := jb.Stream(ctx, "ORDERS")
			if err != nil {
				t.Fatal(err)
			}
			ia, _ := sa.Info(ctx)
			ib, _ := sb.Info(ctx)
			return ia.State.Msgs, ib.State.Msgs
		}
		if na, nb := counts(); na != 3 || nb != 1 {
			t.Fatalf("ORDERS: A %d, B %d messages; want 3 and 1", na, nb)
		}
		for _, acc := range []string{"A", "B"} {
			if _, err := os.Stat(filepath.Join(r.base.StoreDir, "jetstream", acc, "streams", "ORDERS")); err != nil {
				t.Fatal(err)
			}
		}
		// Restart on the same store.
		r.s.Shutdown()
		r.s = looptest.Start(t, r.load(t))
		ja, _ = jetstream.New(connUser(t, r.s, "a", "a"))
		jb, _ = jetstream.New(connUser(t, r.s, "b", "b"))
		if na, nb := counts(); na != 3 || nb != 1 {
			t.Fatalf("after restart ORDERS: A %d, B %d messages; want 3 and 1", na, nb)
		}
	})
}
