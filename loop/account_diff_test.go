package loop_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// diffAccountsConf is accountsConf with a service import nobody serves.
const diffAccountsConf = `
accounts {
  A {
    users = [ {user: a, password: a}, {user: a2, password: a2} ]
    exports = [ {stream: "events.>"}, {service: "svc.>"} ]
  }
  B {
    users = [
      {user: b, password: b}
      {user: nodeny, password: x, permissions: {subscribe: {allow: ">", deny: "x.events.secret"}}}
    ]
    imports = [
      {stream: {account: A, subject: "events.>"}, prefix: "x"}
      {service: {account: A, subject: "svc.echo"}, to: "local.echo"}
      {service: {account: A, subject: "svc.none"}, to: "none"}
    ]
  }
}
no_auth_user: b
`

// TestAccountsDifferential runs one scenario against an in-process
// nats-server and evnats loaded from the same file, and compares what
// every client saw: isolation, a stream import with prefix and a deny
// permission, a service import with `to`, a service import nobody
// serves, no_auth_user, and config errors.
func TestAccountsDifferential(t *testing.T) {
	path := writeConf(t, diffAccountsConf)
	nopts, err := natsserver.ProcessConfigFile(path)
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
	want := accountsScenario(t, ns.ClientURL())
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		s := startFromFile(t, o, diffAccountsConf).s
		got := accountsScenario(t, s.ClientURL())
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("nats-server:\n  %s\nevnats:\n  %s", strings.Join(want, "\n  "), strings.Join(got, "\n  "))
		}
	})
}

func accountsScenario(t *testing.T, url string) []string {
	t.Helper()
	conn := func(opts ...nats.Option) *nats.Conn {
		nc, err := nats.Connect(url, append([]nats.Option{nats.NoReconnect(), nats.Timeout(5 * time.Second)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	a, a2 := conn(nats.UserInfo("a", "a")), conn(nats.UserInfo("a2", "a2"))
	b, nd, anon := conn(nats.UserInfo("b", "b")), conn(nats.UserInfo("nodeny", "x")), conn()
	var log []string
	subs := map[string]*nats.Subscription{}
	sub := func(who string, nc *nats.Conn, subject string) {
		s, err := nc.SubscribeSync(subject)
		if err != nil {
			t.Fatal(err)
		}
		subs[who+" "+subject] = s
		nc.Flush()
	}
	sub("a", a, "foo")
	sub("b", b, "foo")
	sub("b", b, "x.events.>")
	sub("b", b, "events.>")
	sub("nodeny", nd, "x.>")
	a.Subscribe("svc.echo", func(m *nats.Msg) { m.Respond(append([]byte("echo:"), m.Data...)) })
	a.Flush()

	// One at a time: a publisher's flush returns once its message is
	// delivered, so the order is the same on both servers.
	for _, p := range []struct {
		nc            *nats.Conn
		subject, data string
	}{
		{b, "foo", "b"}, {a2, "foo", "a2"}, {anon, "foo", "anon"},
		{a, "events.secret", "s"}, {a, "events.one", "1"}, {a, "svc.echo", "not a request"},
	} {
		p.nc.Publish(p.subject, []byte(p.data))
		p.nc.Flush()
	}
	r, err := b.Request("local.echo", []byte("hi"), 5*time.Second)
	log = append(log, fmt.Sprintf("request local.echo: %s %v", msgData(r), err))
	_, err = b.Request("none", nil, 2*time.Second)
	log = append(log, fmt.Sprintf("request none: no responders %v, timeout %v", errors.Is(err, nats.ErrNoResponders), errors.Is(err, nats.ErrTimeout)))
	_, err = b.Request("svc.echo", nil, 300*time.Millisecond)
	log = append(log, fmt.Sprintf("request svc.echo in B: no responders %v", errors.Is(err, nats.ErrNoResponders)))
	// Every subscription's messages, in a fixed order of subscriptions.
	for _, k := range []string{"a foo", "b foo", "b x.events.>", "b events.>", "nodeny x.>"} {
		var got []string
		for {
			m, err := subs[k].NextMsg(100 * time.Millisecond)
			if err != nil {
				break
			}
			got = append(got, m.Subject+"="+string(m.Data))
		}
		log = append(log, k+": "+strings.Join(got, " "))
	}
	return log
}

func msgData(m *nats.Msg) string {
	if m == nil {
		return "<nil>"
	}
	return string(m.Data)
}
