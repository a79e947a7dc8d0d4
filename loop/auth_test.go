package loop_test

import (
	"strings"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/bcrypt"
)

func TestTokenAuth(t *testing.T) {
	eachTransport(t, loop.Options{Token: "s3cret"}, func(t *testing.T, s *loop.Server) {
		connect(t, s, nats.Token("s3cret"))
		_, err := nats.Connect(s.ClientURL(), nats.Token("wrong"), nats.NoReconnect())
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
			t.Fatalf("wrong token: %v", err)
		}
		_, err = nats.Connect(s.ClientURL(), nats.NoReconnect())
		if err == nil {
			t.Fatal("connected without token")
		}
	})
}

func TestUserPassAuth(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	for name, pass := range map[string]string{"plain": "pw", "bcrypt": string(hash)} {
		t.Run(name, func(t *testing.T) {
			eachTransport(t, loop.Options{Username: "alice", Password: pass}, func(t *testing.T, s *loop.Server) {
				connect(t, s, nats.UserInfo("alice", "pw"))
				if _, err := nats.Connect(s.ClientURL(), nats.UserInfo("alice", "nope"), nats.NoReconnect()); err == nil {
					t.Fatal("bad password accepted")
				}
			})
		})
	}
}

func TestAuthRequiresConnectFirst(t *testing.T) {
	eachTransport(t, loop.Options{Token: "t"}, func(t *testing.T, s *loop.Server) {
		rc := dialRaw(t, s)
		rc.send("SUB foo 1\r\n")
		rc.expect("-ERR 'Authorization Violation'")
		rc.expectClosed()
	})
}

// TestAuthRefusesOpsBeforeConnect: with auth required, as nats-server,
// any operation but CONNECT is refused at its first byte, so an
// unauthenticated socket cannot make the server buffer a payload; PING too.
// Without auth, operations before CONNECT are served (the auth timeout
// bounds how long).
func TestAuthRefusesOpsBeforeConnect(t *testing.T) {
	eachTransport(t, loop.Options{Users: []*loop.User{{Username: "u", Password: "p"}}}, func(t *testing.T, s *loop.Server) {
		for _, in := range []string{"PUB x 1048576\r\n" + strings.Repeat("x", 4096), "P", "PING\r\n", "\r\n"} {
			rc := dialRaw(t, s)
			rc.send("%s", in) // the payload never completes: the reply cannot wait for it
			rc.expect("-ERR 'Authorization Violation'")
			rc.expectClosed()
		}
		rc := dialRaw(t, s)
		rc.send("CONNECT {\"user\":\"u\",\"pass\":\"p\",\"verbose\":false}\r\nPUB x 2\r\nhi\r\nPING\r\n")
		rc.expect("PONG")
	})
	eachTransport(t, loop.Options{}, func(t *testing.T, s *loop.Server) {
		rc := dialRaw(t, s)
		rc.send("PUB x 2\r\nhi\r\nPING\r\n")
		rc.expect("+OK")
		rc.expect("PONG")
	})
}

func TestAuthTimeout(t *testing.T) {
	eachTransport(t, loop.Options{Token: "t", AuthTimeout: 200 * time.Millisecond}, func(t *testing.T, s *loop.Server) {
		rc := dialRaw(t, s)
		rc.expect("-ERR 'Authentication Timeout'")
		rc.expectClosed()
	})
}

func TestPermissions(t *testing.T) {
	users := []*loop.User{
		{Username: "svc", Password: "p", Permissions: &loop.Permissions{
			Publish:   &loop.SubjectPermission{Allow: []string{"orders.>", "_INBOX.>"}, Deny: []string{"orders.secret"}},
			Subscribe: &loop.SubjectPermission{Allow: []string{"orders.*", "_INBOX.>"}},
		}},
		{Username: "admin", Password: "p"},
	}
	eachTransport(t, loop.Options{Users: users}, func(t *testing.T, s *loop.Server) {
		errs := make(chan error, 10)
		nc := connect(t, s, nats.UserInfo("svc", "p"), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
		admin := connect(t, s, nats.UserInfo("admin", "p"))
		ch := make(chan *nats.Msg, 10)
		admin.ChanSubscribe("orders.>", ch)
		admin.Flush()

		nc.Publish("orders.new", []byte("ok"))
		nc.Publish("orders.secret", []byte("denied"))
		nc.Publish("billing.x", []byte("denied"))
		nc.Flush()
		if m := recv(t, ch); string(m.Data) != "ok" {
			t.Fatalf("got %q", m.Data)
		}
		for _, want := range []string{`publish to "orders.secret"`, `publish to "billing.x"`} {
			select {
			case err := <-errs:
				if !strings.Contains(strings.ToLower(err.Error()), want) {
					t.Fatalf("got %v, want %s", err, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("no error for %s", want)
			}
		}
		nc.Subscribe("orders.>", func(*nats.Msg) {}) // wider than allowed
		nc.Flush()
		select {
		case err := <-errs:
			if !strings.Contains(err.Error(), `Permissions Violation for Subscription to "orders.>"`) {
				t.Fatalf("got %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no subscribe violation")
		}
		// Still connected and working after violations.
		if _, err := nc.Subscribe("orders.ok", func(*nats.Msg) {}); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil || nc.IsClosed() {
			t.Fatalf("connection lost: %v", err)
		}
	})
}
