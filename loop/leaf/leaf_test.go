package leaf_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
)

// TestLeafPubSubBothWays: a subscriber on each side gets what the other
// side publishes, once, and a local subscriber on the leaf still gets
// local publishes once.
func TestLeafPubSubBothWays(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		ho := hubOpts()
		hub := startHub(t, ho)
		leaf := startLeaf(t, o, leafURL(ho, ""))
		waitLinked(t, hub, 1, leaf)

		hnc := connect(t, hubURL(hub))
		lnc := connect(t, leaf.ClientURL())
		hsub, _ := hnc.SubscribeSync("to.hub.>")
		lsub, _ := lnc.SubscribeSync("to.leaf.>")
		llocal, _ := lnc.SubscribeSync("to.hub.>") // a leaf subscriber of the same subjects
		hnc.Flush()
		lnc.Flush()
		waitHubInterest(t, hub, "to.leaf.x", 1)
		waitHubInterest(t, hub, "to.hub.x", 2)
		waitLeafSubs(t, leaf, 3) // its two and the hub's to.hub.>

		for i := range 10 {
			if err := lnc.Publish("to.hub.x", fmt.Appendf(nil, "l%d", i)); err != nil {
				t.Fatal(err)
			}
			if err := hnc.Publish("to.leaf.y", fmt.Appendf(nil, "h%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 10 {
			if m := next(t, hsub); string(m.Data) != fmt.Sprintf("l%d", i) || m.Subject != "to.hub.x" {
				t.Fatalf("hub got %q on %s", m.Data, m.Subject)
			}
			if m := next(t, llocal); string(m.Data) != fmt.Sprintf("l%d", i) {
				t.Fatalf("leaf local got %q", m.Data)
			}
			if m := next(t, lsub); string(m.Data) != fmt.Sprintf("h%d", i) || m.Subject != "to.leaf.y" {
				t.Fatalf("leaf got %q on %s", m.Data, m.Subject)
			}
		}
		none(t, hsub, lnc, hnc)
		none(t, llocal)
		none(t, lsub)

		links := leaf.LeafLinks()
		if len(links) != 1 {
			t.Fatalf("links %+v", links)
		}
		l := links[0]
		if l.Name != hub.Name() || !l.IsSpoke || l.OutMsgs < 10 || l.InMsgs < 10 || l.NumSubs < hubBase || l.IP != "127.0.0.1" || l.Port != ho.LeafNode.Port {
			t.Fatalf("link %+v", l)
		}
	})
}

// TestLeafRequestReplyHeaders: requests cross the link both ways, with
// headers kept in both directions.
func TestLeafRequestReplyHeaders(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		ho := hubOpts()
		hub := startHub(t, ho)
		leaf := startLeaf(t, o, leafURL(ho, ""))
		waitLinked(t, hub, 1, leaf)
		hnc := connect(t, hubURL(hub))
		lnc := connect(t, leaf.ClientURL())

		respond := func(nc *nats.Conn, subject, who string) {
			_, err := nc.Subscribe(subject, func(m *nats.Msg) {
				r := nats.NewMsg(m.Reply)
				r.Header.Set("Who", who)
				r.Header.Set("Echo", m.Header.Get("Ask"))
				r.Data = append([]byte(who+":"), m.Data...)
				_ = m.RespondMsg(r)
			})
			if err != nil {
				t.Fatal(err)
			}
			nc.Flush()
		}
		respond(hnc, "svc.hub", "hub")
		respond(lnc, "svc.leaf", "leaf")
		waitHubInterest(t, hub, "svc.leaf", 1)
		waitFor(t, "hub service seen by the leaf", func() bool {
			_, err := lnc.Request("svc.hub", nil, 200*time.Millisecond)
			return err == nil
		})

		ask := func(nc *nats.Conn, subject, wantWho string) {
			t.Helper()
			m := nats.NewMsg(subject)
			m.Header.Set("Ask", "a-"+wantWho)
			m.Data = []byte("ping")
			r, err := nc.RequestMsg(m, 5*time.Second)
			if err != nil {
				t.Fatalf("request %s: %v", subject, err)
			}
			if string(r.Data) != wantWho+":ping" || r.Header.Get("Who") != wantWho || r.Header.Get("Echo") != "a-"+wantWho {
				t.Fatalf("reply %q headers %v", r.Data, r.Header)
			}
		}
		for range 5 {
			ask(lnc, "svc.hub", "hub")
			ask(hnc, "svc.leaf", "leaf")
			ask(lnc, "svc.leaf", "leaf")
		}
	})
}

// TestLeafQueuePrefersLocal: a queue group with members on both sides
// serves the leaf's publishes on the leaf while it has a member there,
// and across the link once it has none.
func TestLeafQueuePrefersLocal(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		ho := hubOpts()
		hub := startHub(t, ho)
		leaf := startLeaf(t, o, leafURL(ho, ""))
		waitLinked(t, hub, 1, leaf)
		hnc := connect(t, hubURL(hub))
		lnc := connect(t, leaf.ClientURL())
		hq, _ := hnc.QueueSubscribeSync("work", "q")
		lq, _ := lnc.QueueSubscribeSync("work", "q")
		hnc.Flush()
		lnc.Flush()
		waitHubInterest(t, hub, "work", 2)
		waitLeafSubs(t, leaf, 2)

		const n = 50
		for range n {
			lnc.Publish("work", []byte("x"))
		}
		for range n {
			next(t, lq)
		}
		none(t, hq, lnc, hnc)

		if err := lq.Unsubscribe(); err != nil {
			t.Fatal(err)
		}
		lnc.Flush()
		waitLeafSubs(t, leaf, 1)
		for range n {
			lnc.Publish("work", []byte("y"))
		}
		for range n {
			if m := next(t, hq); string(m.Data) != "y" {
				t.Fatalf("hub member got %q", m.Data)
			}
		}
		none(t, hq, lnc, hnc)

		// The other way: the hub's publishes reach the group's only
		// member, on the leaf (LMSG naming the group), once each.
		lq2, _ := lnc.QueueSubscribeSync("work", "q")
		lnc.Flush()
		hq.Unsubscribe()
		hnc.Flush()
		waitHubInterest(t, hub, "work", 1)
		waitLeafSubs(t, leaf, 1)
		for range n {
			hnc.Publish("work", []byte("z"))
		}
		for range n {
			if m := next(t, lq2); string(m.Data) != "z" {
				t.Fatalf("leaf member got %q", m.Data)
			}
		}
		none(t, lq2, hnc, lnc)
	})
}

// TestLeafHubPlainAndQueueNoDuplicates: the hub has a plain subscriber
// and a queue group on one subject and the site has no member: every
// leaf publish reaches each once, not once per interest (an earlier
// attempt sent the message twice).
func TestLeafHubPlainAndQueueNoDuplicates(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		ho := hubOpts()
		hub := startHub(t, ho)
		leaf := startLeaf(t, o, leafURL(ho, ""))
		waitLinked(t, hub, 1, leaf)
		hnc := connect(t, hubURL(hub))
		lnc := connect(t, leaf.ClientURL())
		plain, _ := hnc.SubscribeSync("dup.>")
		wild, _ := hnc.SubscribeSync("dup.*") // a second plain interest matching alike
		q1, _ := hnc.QueueSubscribeSync("dup.x", "q")
		q2, _ := hnc.QueueSubscribeSync("dup.x", "q")
		other, _ := hnc.QueueSubscribeSync("dup.*", "r")
		hnc.Flush()
		waitLeafSubs(t, leaf, 4) // dup.>, dup.*, dup.x q, dup.* r
		local, _ := lnc.SubscribeSync("dup.x")
		lnc.Flush()

		const n = 100
		for i := range n {
			lnc.Publish("dup.x", fmt.Appendf(nil, "%d", i))
		}
		for i := range n {
			for _, s := range []*nats.Subscription{plain, wild, local} {
				if m := next(t, s); string(m.Data) != fmt.Sprint(i) {
					t.Fatalf("%s got %q, want %d", s.Subject, m.Data, i)
				}
			}
		}
		got := 0
		for got < n {
			if _, err := q1.NextMsg(10 * time.Millisecond); err == nil {
				got++
			} else if _, err := q2.NextMsg(10 * time.Millisecond); err == nil {
				got++
			}
		}
		for range n {
			next(t, other)
		}
		none(t, q1, lnc, hnc)
		none(t, q2)
		none(t, plain)
		none(t, wild)
		none(t, other)
		none(t, local)
	})
}

// TestLeafInterestWithdrawal: once the leaf's only subscriber goes, the
// hub no longer sees interest and its requester gets no-responders.
func TestLeafInterestWithdrawal(t *testing.T) {
	ho := hubOpts()
	hub := startHub(t, ho)
	leaf := startLeaf(t, loop.Options{}, leafURL(ho, ""))
	waitLinked(t, hub, 1, leaf)
	hnc := connect(t, hubURL(hub))
	lnc := connect(t, leaf.ClientURL())
	sub, err := lnc.Subscribe("svc", func(m *nats.Msg) { m.Respond([]byte("ok")) })
	if err != nil {
		t.Fatal(err)
	}
	sub2, _ := lnc.Subscribe("svc", func(m *nats.Msg) {}) // two subscribers, one LS+
	lnc.Flush()
	waitHubInterest(t, hub, "svc", 1)
	if r, err := hnc.Request("svc", nil, 5*time.Second); err != nil || string(r.Data) != "ok" {
		t.Fatalf("request: %v", err)
	}
	sub.Unsubscribe()
	lnc.Flush()
	if hub.GlobalAccount().Interest("svc") != 1 {
		t.Fatal("interest withdrawn while a subscriber is left")
	}
	sub2.Unsubscribe()
	lnc.Flush()
	waitHubInterest(t, hub, "svc", 0)
	if _, err := hnc.Request("svc", nil, 5*time.Second); !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("request after withdrawal: %v, want no responders", err)
	}
}

// TestLeafHubQueueNotDuplicated: the hub keeps its publishes for its own
// queue member and sends the leaf the message for its plain subscriber
// only; the leaf's member of the same group must not get it too.
func TestLeafHubQueueNotDuplicated(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		ho := hubOpts()
		hub := startHub(t, ho)
		leaf := startLeaf(t, o, leafURL(ho, ""))
		waitLinked(t, hub, 1, leaf)
		hnc := connect(t, hubURL(hub))
		lnc := connect(t, leaf.ClientURL())
		hq, _ := hnc.QueueSubscribeSync("jobs", "q")
		lq, _ := lnc.QueueSubscribeSync("jobs", "q")
		lplain, _ := lnc.SubscribeSync("jobs")
		hnc.Flush()
		lnc.Flush()
		waitHubInterest(t, hub, "jobs", 3)
		waitLeafSubs(t, leaf, 3)
		const n = 50
		for range n {
			hnc.Publish("jobs", []byte("h"))
		}
		for range n {
			next(t, hq)
			next(t, lplain)
		}
		none(t, lq, hnc, lnc)
		none(t, hq)
		none(t, lplain)
	})
}
