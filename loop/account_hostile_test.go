package loop_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	"github.com/nats-io/nats.go"
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
