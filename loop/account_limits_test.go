package loop_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"github.com/nats-io/jwt/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// limitsConf gives account A nats-server's account limits block.
const limitsConf = `
accounts {
  A {
    users = [ {user: a, password: a} ]
    limits { max_connections: 2, max_subscriptions: 3, max_payload: 100 }
  }
  B { users = [ {user: b, password: b} ] }
}
`

// startNatsServer runs an in-process nats-server on conf.
func startNatsServer(t *testing.T, conf string) *natsserver.Server {
	t.Helper()
	nopts, err := natsserver.ProcessConfigFile(writeConf(t, conf))
	if err != nil {
		t.Fatal(err)
	}
	nopts.Host, nopts.Port, nopts.NoLog, nopts.NoSigs = "127.0.0.1", -1, true, true
	ns, err := natsserver.NewServer(nopts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(ns.Shutdown)
	return ns
}

// TestAccountLimitsDifferential: an account's limits block (connections,
// subscriptions, payload) holds as in nats-server: what nats.go clients
// see is compared with an in-process nats-server on the same file.
func TestAccountLimitsDifferential(t *testing.T) {
	ns := startNatsServer(t, limitsConf)
	want := limitsScenario(t, ns.ClientURL())
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		s := startFromFile(t, o, limitsConf).s
		got := limitsScenario(t, s.ClientURL())
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("nats-server:\n  %s\nevnats:\n  %s", strings.Join(want, "\n  "), strings.Join(got, "\n  "))
		}
	})
}

func limitsScenario(t *testing.T, url string) []string {
	t.Helper()
	var out []string
	conn := func(user string, opts ...nats.Option) (*nats.Conn, error) {
		return nats.Connect(url, append([]nats.Option{nats.NoReconnect(), nats.Timeout(5 * time.Second), nats.UserInfo(user, user)}, opts...)...)
	}
	errs := make(chan string, 8)
	a1, err := conn("a", nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err.Error() }))
	if err != nil {
		t.Fatal(err)
	}
	defer a1.Close()
	a2, err := conn("a")
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn("a")
	out = append(out, fmt.Sprintf("third A connection: %v", err))
	b, err := conn("b")
	out = append(out, fmt.Sprintf("B beside it: %v", err))
	if b != nil {
		b.Close()
	}
	a2.Close()
	deadline := time.Now().Add(5 * time.Second)
	var a3 *nats.Conn
	for time.Now().Before(deadline) { // the server sees a2's close a moment later
		if a3, err = conn("a"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	out = append(out, fmt.Sprintf("A after one closed: %v", err))
	if a3 != nil {
		a3.Close()
	}
	for i := range 4 {
		if _, err := a1.SubscribeSync(fmt.Sprintf("s.%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a1.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-errs:
		out = append(out, "fourth subscription: "+e)
	case <-time.After(5 * time.Second):
		out = append(out, "fourth subscription: no error")
	}
	if err := a1.Publish("p", make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	out = append(out, fmt.Sprintf("100 bytes: %v", a1.Flush()))
	out = append(out, fmt.Sprintf("101 bytes: %v", a1.Publish("p", make([]byte, 101))))
	out = append(out, fmt.Sprintf("connect info max_payload: %d", a1.MaxPayload()))
	// Past the client's own check: the server refuses it too.
	raw := rawLimits(t, url)
	for strings.Contains(raw, "connections exceeded") && time.Now().Before(deadline.Add(5*time.Second)) {
		time.Sleep(20 * time.Millisecond) // a3's close not seen yet
		raw = rawLimits(t, url)
	}
	out = append(out, "raw 101 bytes: "+raw)
	return out
}

// rawLimits publishes 101 bytes as user a (whose account allows 100)
// over a raw socket and returns the server's answer.
func rawLimits(t *testing.T, url string) string {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "nats://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil { // INFO
		t.Fatal(err)
	}
	fmt.Fprintf(c, "CONNECT {\"user\":\"a\",\"pass\":\"a\",\"verbose\":false}\r\nPUB p 101\r\n%s\r\n", strings.Repeat("x", 101))
	line, err := r.ReadString('\n')
	if err != nil {
		return err.Error()
	}
	return strings.TrimSpace(line)
}

// TestAccountConnLimitRace: connections racing for an account's last
// places get exactly max_connections of them, and the places come back
// when they close (the count neither leaks nor goes below what is
// connected).
func TestAccountConnLimitRace(t *testing.T) {
	const conf = `accounts { A { users = [ {user: a, password: a} ], limits { max_connections: 5 } } }`
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		s := startFromFile(t, o, conf).s
		race := func() []*nats.Conn {
			var mu sync.Mutex
			var won []*nats.Conn
			var refused atomic.Int32
			var wg sync.WaitGroup
			for range 40 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					nc, err := nats.Connect(s.ClientURL(), nats.NoReconnect(), nats.UserInfo("a", "a"), nats.Timeout(10*time.Second))
					if err != nil {
						if !strings.Contains(err.Error(), "maximum account active connections exceeded") {
							t.Errorf("refused with %v", err)
						}
						refused.Add(1)
						return
					}
					mu.Lock()
					won = append(won, nc)
					mu.Unlock()
				}()
			}
			wg.Wait()
			if len(won) != 5 || refused.Load() != 35 {
				t.Fatalf("%d admitted, %d refused; want 5 and 35", len(won), refused.Load())
			}
			return won
		}
		won := race()
		closed := make(chan struct{}, len(won))
		for _, nc := range won {
			nc.SetClosedHandler(func(*nats.Conn) { closed <- struct{}{} })
			nc.Close()
		}
		// Wait until the server has let all five go: a sixth
		// connection is admitted only then.
		deadline := time.Now().Add(5 * time.Second)
		for s.NumClients() > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		for _, nc := range race() {
			nc.Close()
		}
	})
}

// TestOperatorAccountLimits: an account JWT's limits (conn, subs,
// payload) hold for its users, the connect INFO announces the payload
// limit, and a pushed update applies to connected clients as in
// nats-server: a lowered connection limit closes the newest, a lowered
// payload or subscription limit holds for (or closes) those connected.
func TestOperatorAccountLimits(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		op := newOpSetup(t)
		setLimits := func(conn, subs, pay int64) {
			op.aClaims.Limits.Conn, op.aClaims.Limits.Subs, op.aClaims.Limits.Payload = conn, subs, pay
			op.sign(t, op.aClaims)
		}
		setLimits(2, 2, 50)
		dir := t.TempDir()
		conf := strings.Replace(op.conf(), "resolver: MEMORY", "resolver: {type: full, dir: \""+dir+"\"}", 1)
		conf = strings.Replace(conf, "jetstream: enabled\n", "", 1)
		s := startFromFile(t, o, conf).s
		sysCreds, _ := creds(t, op.sys, nil)
		sys := connect(t, s, nats.UserCredentials(sysCreds))
		push := func() {
			t.Helper()
			m, err := sys.Request("$SYS.REQ.ACCOUNT."+op.aPub+".CLAIMS.UPDATE", []byte(op.jwts[op.aPub]), 5*time.Second)
			if err != nil || !strings.Contains(string(m.Data), "jwt updated") {
				t.Fatalf("push: %v %v", m, err)
			}
		}
		aCreds, _ := creds(t, op.a, nil)
		type user struct {
			nc     *nats.Conn
			errs   chan string
			closed chan struct{}
		}
		login := func() (*user, error) {
			u := &user{errs: make(chan string, 4), closed: make(chan struct{})}
			nc, err := nats.Connect(s.ClientURL(), nats.NoReconnect(), nats.UserCredentials(aCreds),
				nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { u.errs <- err.Error() }),
				nats.ClosedHandler(func(*nats.Conn) { close(u.closed) }))
			if err != nil {
				return nil, err
			}
			t.Cleanup(nc.Close)
			u.nc = nc
			return u, nil
		}
		mustLogin := func() *user {
			t.Helper()
			u, err := login()
			if err != nil {
				t.Fatal(err)
			}
			return u
		}
		wantClosed := func(u *user, what, want string) {
			t.Helper()
			select {
			case <-u.closed:
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: still connected", what)
			}
			if err := u.nc.LastError(); err == nil || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(want)) {
				t.Fatalf("%s: closed with %v, want %q", what, err, want)
			}
		}
		u1, u2 := mustLogin(), mustLogin()
		if _, err := login(); err == nil || !strings.Contains(err.Error(), "maximum account active connections exceeded") {
			t.Fatalf("third connection: %v", err)
		}
		if u1.nc.MaxPayload() != 50 {
			t.Fatalf("max_payload %d, want the account's 50", u1.nc.MaxPayload())
		}
		for _, subj := range []string{"x.1", "x.2", "x.3"} {
			if _, err := u1.nc.SubscribeSync(subj); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case e := <-u1.errs:
			if !strings.Contains(e, "maximum subscriptions exceeded") {
				t.Fatalf("third subscription: %s", e)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("third subscription accepted")
		}

		// One connection now: the newer goes, the older stays.
		setLimits(1, 2, 50)
		push()
		wantClosed(u2, "newer connection past a lowered limit", "maximum account active connections exceeded")
		if err := u1.nc.Flush(); err != nil {
			t.Fatalf("older connection: %v", err)
		}

		// A lowered payload limit holds for the connected client
		// (nats.go still allows 50 bytes, the server now 10).
		setLimits(1, 2, 10)
		push()
		if err := u1.nc.Publish("p", make([]byte, 20)); err != nil {
			t.Fatal(err)
		}
		wantClosed(u1, "payload past a lowered limit", "maximum payload violation")

		// A lowered subscription limit closes who holds more.
		setLimits(5, 2, -1)
		push()
		u4 := mustLogin()
		for _, subj := range []string{"y.1", "y.2"} {
			if _, err := u4.nc.SubscribeSync(subj); err != nil {
				t.Fatal(err)
			}
		}
		if err := u4.nc.Flush(); err != nil {
			t.Fatal(err)
		}
		setLimits(5, 1, -1)
		push()
		select { // nats.go reports this -ERR to the error handler, then sees the close
		case e := <-u4.errs:
			if !strings.Contains(e, "maximum subscriptions exceeded") {
				t.Fatalf("subscriptions past a lowered limit: %s", e)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("subscriptions past a lowered limit: no error")
		}
		select {
		case <-u4.closed:
		case <-time.After(5 * time.Second):
			t.Fatal("subscriptions past a lowered limit: still connected")
		}
	})
}

// TestAccountJetStreamMaxConsumers: an account's JetStream max_consumers
// (config block, or an account JWT's consumer limit) bounds each
// stream's consumers as nats-server does (10026), and account info
// reports it.
func TestAccountJetStreamMaxConsumers(t *testing.T) {
	const conf = `
jetstream: enabled
accounts { A { users = [ {user: a, password: a} ], jetstream: { max_consumers: 1 } } }
`
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		s := startFromFile(t, o, conf).s
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		js, _ := jetstream.New(connUser(t, s, "a", "a"))
		for _, name := range []string{"S1", "S2"} {
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{strings.ToLower(name)}}); err != nil {
				t.Fatal(err)
			}
			if _, err := js.CreateConsumer(ctx, name, jetstream.ConsumerConfig{Durable: "one"}); err != nil {
				t.Fatalf("%s: first consumer: %v", name, err)
			}
		}
		_, err := js.CreateConsumer(ctx, "S1", jetstream.ConsumerConfig{Durable: "two"})
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode != 10026 {
			t.Fatalf("second consumer of a stream: %v, want 10026", err)
		}
		info, err := js.AccountInfo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Limits.MaxConsumers != 1 {
			t.Fatalf("account info max_consumers %d, want 1", info.Limits.MaxConsumers)
		}
	})
}

// TestAccountLimitsReload: a reload that lowers an account's
// max_connections closes its newest connections past the limit and
// keeps the others; one that changes its mappings applies at once.
func TestAccountLimitsReload(t *testing.T) {
	conf := func(conns int, dest string) string {
		return fmt.Sprintf(`accounts { A { users = [ {user: a, password: a} ], limits { max_connections: %d }, mappings { "m": %q } } }`, conns, dest)
	}
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		r := startFromFile(t, o, conf(3, "one"))
		var conns []*nats.Conn
		var closed []chan struct{}
		for range 3 {
			ch := make(chan struct{})
			nc, err := nats.Connect(r.s.ClientURL(), nats.UserInfo("a", "a"), nats.NoReconnect(), nats.ClosedHandler(func(*nats.Conn) { close(ch) }))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			conns, closed = append(conns, nc), append(closed, ch)
		}
		sub, _ := conns[0].SubscribeSync(">")
		conns[0].Flush()
		if err := r.rewrite(t, conf(1, "two")); err != nil {
			t.Fatal(err)
		}
		for i := 1; i < 3; i++ {
			select {
			case <-closed[i]:
			case <-time.After(5 * time.Second):
				t.Fatalf("connection %d past the lowered limit still open", i)
			}
			if err := conns[i].LastError(); err == nil || !strings.Contains(err.Error(), "maximum account active connections exceeded") {
				t.Fatalf("connection %d closed with %v", i, err)
			}
		}
		conns[0].Publish("m", nil)
		if m := nextMsg(t, sub); m.Subject != "two" {
			t.Fatalf("after the reload m went to %s, want two", m.Subject)
		}
	})
}

// TestOperatorImportExportLimits: an account JWT with more imports or
// exports than its own limits allow, or wildcard exports it may not
// have, is refused as nats-server refuses it (the jwt package's
// validation): pushed, the update answers "jwt validation failed" and
// the JWT in force stays; preloaded, the account is not loaded.
func TestOperatorImportExportLimits(t *testing.T) {
	op := newOpSetup(t)
	dir := t.TempDir()
	conf := strings.Replace(op.conf(), "resolver: MEMORY", "resolver: {type: full, dir: \""+dir+"\"}", 1)
	conf = strings.Replace(conf, "jetstream: enabled\n", "", 1)
	s := startFromFile(t, loop.Options{}, conf).s
	sysCreds, _ := creds(t, op.sys, nil)
	sys := connect(t, s, nats.UserCredentials(sysCreds))
	for _, tc := range []struct {
		name string
		edit func(*jwt.AccountClaims)
		want string
	}{
		{"exports", func(c *jwt.AccountClaims) { c.Limits.Exports = 0 }, "more exports than allowed"},
		{"wildcard exports", func(c *jwt.AccountClaims) { c.Limits.Exports, c.Limits.WildcardExports = 5, false }, "wildcard exports that are not allowed"},
		{"imports", func(c *jwt.AccountClaims) {
			c.Imports.Add(&jwt.Import{Account: op.bPub, Subject: "x", Type: jwt.Stream})
			c.Limits.Imports = 0
		}, "more imports than allowed"},
	} {
		ac := jwt.NewAccountClaims(op.aPub)
		ac.Exports.Add(&jwt.Export{Subject: "events.>", Type: jwt.Stream})
		tc.edit(ac)
		tok, err := ac.Encode(op.op)
		if err != nil {
			t.Fatal(err)
		}
		m, err := sys.Request("$SYS.REQ.ACCOUNT."+op.aPub+".CLAIMS.UPDATE", []byte(tok), 5*time.Second)
		if err != nil || !strings.Contains(string(m.Data), "jwt validation failed") || !strings.Contains(string(m.Data), tc.want) {
			t.Fatalf("%s: %s %v", tc.name, m.Data, err)
		}
		// The account in force still exports events.>.
		if m, err := sys.Request("$SYS.REQ.ACCOUNT."+op.aPub+".CLAIMS.LOOKUP", nil, 5*time.Second); err != nil || string(m.Data) != op.jwts[op.aPub] {
			t.Fatalf("%s: the JWT in force changed: %v", tc.name, err)
		}
		// Preloaded, the account is not loaded (nats-server warns and
		// cannot fetch it): its users cannot log in.
		op2 := *op
		op2.jwts = map[string]string{op.aPub: tok, op.sysPub: op.jwts[op.sysPub]}
		s2 := startFromFile(t, loop.Options{}, strings.Replace(op2.conf(), "jetstream: enabled\n", "", 1)).s
		aCreds, _ := creds(t, op.a, nil)
		wantAuthViolation(t, s2, tc.name+" preloaded", nats.UserCredentials(aCreds))
	}
}
