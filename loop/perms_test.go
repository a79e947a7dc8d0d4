package loop_test

import (
	"strings"
	"testing"

	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go"
)

// TestSubscribeDenyFiltersWildcards: a wildcard subscription wider than a
// subscribe deny entry is allowed, as in nats-server, but never receives a
// message on a denied subject; a queue group hands such a message to a
// member allowed to receive it. A deny entry naming a queue filters only
// that queue group. The publisher's last messages are the signal that
// nothing denied is still on its way. Messages come from a client and from
// the server itself (as JetStream's deliveries do).
func TestSubscribeDenyFiltersWildcards(t *testing.T) {
	users := []*loop.User{
		{Username: "reader", Password: "p", Permissions: &loop.Permissions{
			Subscribe: &loop.SubjectPermission{Deny: []string{"secret.>", "audit.> q"}},
		}},
		{Username: "admin", Password: "p"},
	}
	eachTransport(t, loop.Options{Users: users}, func(t *testing.T, s *loop.Server) {
		t.Run("client", func(t *testing.T) {
			pub := connect(t, s, nats.UserInfo("admin", "p"))
			checkDenyFilters(t, s, func(subj string) { pub.Publish(subj, nil) }, pub.Flush)
		})
		t.Run("internal", func(t *testing.T) {
			// The client run's connections are gone from the server (their
			// queue members would otherwise still be picked, and lose what
			// they get).
			waitFor(t, func() bool { return s.NumClients() == 0 })
			checkDenyFilters(t, s, func(subj string) { s.PublishInternal(subj, "", nil, nil) }, func() error { return nil })
		})
	})
}

func checkDenyFilters(t *testing.T, s *loop.Server, publish func(subject string), flush func() error) {
	reader := connect(t, s, nats.UserInfo("reader", "p"))
	admin := connect(t, s, nats.UserInfo("admin", "p"))
	defer reader.Close()
	defer admin.Close()
	chans := map[string]chan *nats.Msg{}
	for _, subj := range []string{">", "*.x", "*.*"} {
		ch := make(chan *nats.Msg, 256)
		if _, err := reader.ChanSubscribe(subj, ch); err != nil {
			t.Fatal(err)
		}
		chans[subj] = ch
	}
	readerQ := make(chan *nats.Msg, 256)
	adminQ := make(chan *nats.Msg, 256)
	if _, err := reader.ChanQueueSubscribe(">", "q", readerQ); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.ChanQueueSubscribe(">", "q", adminQ); err != nil {
		t.Fatal(err)
	}
	if err := reader.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := admin.Flush(); err != nil {
		t.Fatal(err)
	}
	if reader.LastError() != nil {
		t.Fatalf("subscriptions refused: %v", reader.LastError())
	}

	const secrets, sentinels = 20, 64
	for range secrets {
		publish("secret.x")
	}
	publish("audit.x")
	publish("public.x")
	// Enough sentinels that each queue member gets one (all but
	// certainly); each subscriber's messages arrive in publish order.
	for range sentinels {
		publish("done.x")
	}
	if err := flush(); err != nil {
		t.Fatal(err)
	}

	untilDone := func(ch chan *nats.Msg) []string {
		t.Helper()
		var got []string
		for {
			m := recv(t, ch)
			if m.Subject == "done.x" {
				return got
			}
			got = append(got, m.Subject)
		}
	}
	for subj, ch := range chans {
		if got := strings.Join(untilDone(ch), " "); got != "audit.x public.x" {
			t.Errorf("reader %q got %q before the sentinel, want audit.x public.x", subj, got)
		}
	}
	for _, subj := range untilDone(readerQ) {
		if subj != "public.x" {
			t.Errorf("reader's queue member got %s", subj)
		}
	}
	n := map[string]int{}
	for _, subj := range untilDone(adminQ) {
		n[subj]++
	}
	if n["secret.x"] != secrets || n["audit.x"] != 1 {
		t.Errorf("admin's queue member got %v, want every secret.x (%d) and audit.x", n, secrets)
	}
}
