package loop_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// hostileServiceConf: A exports a service that B and C import.
const hostileServiceConf = `
accounts {
  A { users = [ {user: a, password: a} ], exports = [ {service: "svc.>"} ] }
  B { users = [ {user: b, password: b} ], imports = [ {service: {account: A, subject: "svc.>"}} ] }
  C { users = [ {user: c, password: c} ], imports = [ {service: {account: A, subject: "svc.>"}} ] }
}
`

// TestAccountsServiceReplyNotGuessable: the reply subject a service sees
// for an imported request cannot be derived from another one it saw, so a
// responder cannot answer (inject into) a request it never received.
func TestAccountsServiceReplyNotGuessable(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		s := startFromFile(t, o, hostileServiceConf).s
		a, b, c := connUser(t, s, "a", "a"), connUser(t, s, "b", "b"), connUser(t, s, "c", "c")
		seen, _ := a.SubscribeSync("svc.seen")
		a.SubscribeSync("svc.other") // served, never answered by this user
		a.Flush()
		b.PublishRequest("svc.seen", "b.inbox", nil)
		m := nextMsg(t, seen)
		i := strings.LastIndexByte(m.Reply, '.')
		n, err := strconv.ParseUint(m.Reply[i+1:], 36, 64)
		if !strings.HasPrefix(m.Reply, "_R_.") {
			t.Fatalf("service saw reply %q", m.Reply)
		}
		inbox, _ := c.SubscribeSync("c.inbox")
		c.Flush()
		c.PublishRequest("svc.other", "c.inbox", nil)
		c.Flush()
		if err == nil {
			for d := uint64(1); d <= 4; d++ {
				a.Publish(m.Reply[:i+1]+strconv.FormatUint(n+d, 36), []byte("forged"))
			}
		}
		a.Flush()
		noMsg(t, c, inbox)
	})
}

// TestAccountsServiceRepliesPerImporter: requests that are never answered
// hold reply mappings until they expire, but one importing account's flood
// does not use up another's: C's request still gets its reply.
func TestAccountsServiceRepliesPerImporter(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		s := startFromFile(t, o, hostileServiceConf).s
		a, b, c := connUser(t, s, "a", "a"), connUser(t, s, "b", "b"), connUser(t, s, "c", "c")
		a.Subscribe("svc.x", func(m *nats.Msg) {
			if string(m.Data) == "ok" {
				m.Respond([]byte("done"))
			}
		})
		a.Flush()
		for i := 0; i < 100_001; i++ {
			b.PublishRequest("svc.x", "b.nowhere", nil)
		}
		b.Flush()
		if r, err := c.Request("svc.x", []byte("ok"), 5*time.Second); err != nil || string(r.Data) != "done" {
			t.Fatalf("C's request after B's flood: %v %v", r, err)
		}
	})
}

// TestAccountsHostileIsolation: a user of account C subscribed to
// everything (`>`, and the reply, $SYS and JetStream prefixes explicitly)
// receives nothing of what the other accounts do: A's JetStream API and
// deliveries, B's requests to A's service and their responses, the
// system account's connect events and server requests; and C cannot
// reach A's streams through the JetStream API or the $SYS requests.
func TestAccountsHostileIsolation(t *testing.T) {
	conf := `
jetstream: enabled
accounts {
  A { users = [ {user: a, password: a} ], jetstream: enabled, exports = [ {service: "svc.>"} ] }
  B { users = [ {user: b, password: b} ], imports = [ {service: {account: A, subject: "svc.>"}} ] }
  C { users = [ {user: c, password: c} ] }
  SYS { users = [ {user: sys, password: sys} ] }
}
system_account: SYS
`
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		s := startFromFile(t, o, conf).s
		c := connUser(t, s, "c", "c")
		var spies []*nats.Subscription
		for _, subj := range []string{">", "_INBOX.>", "_R_.>", "$SYS.>", "$JS.>", "$JS.API.>", "$KV.>"} {
			sub, err := c.SubscribeSync(subj)
			if err != nil {
				t.Fatal(err)
			}
			spies = append(spies, sub)
		}
		c.Flush()
		a, b, sys := connUser(t, s, "a", "a"), connUser(t, s, "b", "b"), connUser(t, s, "sys", "sys")
		a.Subscribe("svc.echo", func(m *nats.Msg) { m.Respond(m.Data) })
		a.Flush()
		if _, err := b.Request("svc.echo", []byte("secret"), 5*time.Second); err != nil {
			t.Fatal(err)
		}
		ja, _ := jetstream.New(a)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := ja.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ja.Publish(ctx, "orders.1", []byte("secret")); err != nil {
			t.Fatal(err)
		}
		cons, _ := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "D", AckPolicy: jetstream.AckExplicitPolicy})
		msgs, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range msgs.Messages() {
			m.Ack()
		}
		if _, err := sys.Request("$SYS.REQ.SERVER.PING", nil, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		connUser(t, s, "a", "a").Close()
		a.Flush()
		for _, sub := range spies {
			noMsg(t, c, sub)
		}
		// C's own requests reach nothing of A's or the server's (its own
		// wildcard subscriptions would answer as responders: gone first).
		for _, sub := range spies {
			sub.Unsubscribe()
		}
		if m, err := c.Request("$JS.API.STREAM.INFO.ORDERS", nil, time.Second); err == nil && strings.Contains(string(m.Data), `"ORDERS"`) && !strings.Contains(string(m.Data), `"error"`) {
			t.Fatalf("C reached A's stream: %s", m.Data)
		}
		if _, err := c.Request("$SYS.REQ.SERVER.PING.VARZ", nil, time.Second); !errors.Is(err, nats.ErrNoResponders) {
			t.Fatalf("C's $SYS request: %v, want no responders", err)
		}
		// PING.CONNZ is imported into every account, as in nats-server:
		// it answers, but with C's own connections only.
		m, err := c.Request("$SYS.REQ.SERVER.PING.CONNZ", nil, time.Second)
		if err != nil {
			t.Fatalf("C's PING.CONNZ: %v", err)
		}
		var cz struct {
			Data struct {
				Conns []struct {
					Account string `json:"account"`
				} `json:"connections"`
			} `json:"data"`
		}
		if err := json.Unmarshal(m.Data, &cz); err != nil || len(cz.Data.Conns) == 0 {
			t.Fatalf("C's PING.CONNZ: %v %s", err, m.Data)
		}
		for _, cn := range cz.Data.Conns {
			if cn.Account != "C" {
				t.Fatalf("C's PING.CONNZ lists a connection of %q: %s", cn.Account, m.Data)
			}
		}
		if _, err := c.Request("svc.echo", nil, time.Second); !errors.Is(err, nats.ErrNoResponders) {
			t.Fatalf("C's request to A's service: %v, want no responders", err)
		}
	})
}

// TestAccountsNonceReplay: a CONNECT carrying the signature of another
// connection's nonce (captured and replayed) is refused: each connection
// signs its own.
func TestAccountsNonceReplay(t *testing.T) {
	kp, _ := nkeys.CreateUser()
	pub, _ := kp.PublicKey()
	conf := `accounts { A { users = [ {nkey: ` + pub + `} ] } }`
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		s := startFromFile(t, o, conf).s
		dial := func() (net.Conn, *bufio.Reader, string) {
			nc, err := net.DialTimeout("tcp", s.Addr().String(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { nc.Close() })
			_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
			br := bufio.NewReader(nc)
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			var info struct {
				Nonce string `json:"nonce"`
			}
			_ = json.Unmarshal([]byte(strings.TrimPrefix(strings.TrimSpace(line), "INFO ")), &info)
			return nc, br, info.Nonce
		}
		connectLine := func(nonce string) string {
			sig, _ := kp.Sign([]byte(nonce))
			return `CONNECT {"verbose":false,"nkey":"` + pub + `","sig":"` + base64.RawURLEncoding.EncodeToString(sig) + `"}` + "\r\nPING\r\n"
		}
		_, _, first := dial()
		nc, br, second := dial()
		if first == second {
			t.Fatal("two connections got the same nonce")
		}
		nc.Write([]byte(connectLine(first)))
		if line, _ := br.ReadString('\n'); line != "-ERR 'Authorization Violation'\r\n" {
			t.Fatalf("replayed signature: %q", line)
		}
		nc, br, third := dial()
		nc.Write([]byte(connectLine(third)))
		if line, _ := br.ReadString('\n'); line != "PONG\r\n" {
			t.Fatalf("own signature: %q", line)
		}
	})
}

// TestAccountsJetStreamLimitsConcurrent: many clients of one account
// creating streams at once get exactly max_streams of them; the rest get
// 10027, and another account is not counted against it.
func TestAccountsJetStreamLimitsConcurrent(t *testing.T) {
	conf := `
jetstream: enabled
accounts {
  A { users = [ {user: a, password: a} ], jetstream: { max_streams: 2 } }
  B { users = [ {user: b, password: b} ], jetstream: enabled }
}
`
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		s := startFromFile(t, o, conf).s
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		const n = 12
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			js, _ := jetstream.New(connUser(t, s, "a", "a"))
			go func() {
				_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S" + strconv.Itoa(i), Subjects: []string{"s." + strconv.Itoa(i)}})
				errs <- err
			}()
		}
		ok := 0
		for i := 0; i < n; i++ {
			err := <-errs
			var apiErr *jetstream.APIError
			switch {
			case err == nil:
				ok++
			case !errors.As(err, &apiErr) || apiErr.ErrorCode != 10027:
				t.Fatalf("create: %v", err)
			}
		}
		if ok != 2 {
			t.Fatalf("%d streams created, max_streams 2", ok)
		}
		jb, _ := jetstream.New(connUser(t, s, "b", "b"))
		for i := 0; i < 3; i++ {
			if _, err := jb.CreateStream(ctx, jetstream.StreamConfig{Name: "S" + strconv.Itoa(i), Subjects: []string{"s." + strconv.Itoa(i)}}); err != nil {
				t.Fatalf("B: %v", err)
			}
		}
	})
}
