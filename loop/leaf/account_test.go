package leaf_test

import (
	"net/url"
	"slices"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
)

// twoAccounts are evnats options with accounts A (user a) and B (user b).
func twoAccounts(o loop.Options) loop.Options {
	o.Accounts = []*loop.Account{
		{Name: "A", Users: []*loop.User{{Username: "a", Password: "a"}}},
		{Name: "B", Users: []*loop.User{{Username: "b", Password: "b"}}},
	}
	return o
}

// TestLeafAccountRemotes: an evnats leaf with accounts A and B links
// each to a different account of a nats-server hub (HA, HB); each
// account's interest and messages cross on its own link only.
func TestLeafAccountRemotes(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		ho := hubOpts()
		ha, hb := natsserver.NewAccount("HA"), natsserver.NewAccount("HB")
		ho.Accounts = []*natsserver.Account{ha, hb}
		ho.Users = []*natsserver.User{{Username: "ha", Password: "ha", Account: ha}, {Username: "hb", Password: "hb", Account: hb}}
		hub := startHub(t, ho)
		o = twoAccounts(o)
		o.HTTPPort = -1
		o.LeafRemotes = []loop.LeafRemote{
			{URLs: []string{leafURL(ho, "ha:ha")}, Account: "A"},
			{URLs: []string{leafURL(ho, "hb:hb")}, Account: "B"},
		}
		leaf := startLeaf(t, o)
		waitFor(t, "two links", func() bool { return hub.NumLeafNodes() == 2 && len(leaf.LeafLinks()) == 2 })

		hA := connect(t, hubURL(hub), nats.UserInfo("ha", "ha"))
		hB := connect(t, hubURL(hub), nats.UserInfo("hb", "hb"))
		lA := connect(t, leaf.ClientURL(), nats.UserInfo("a", "a"))
		lB := connect(t, leaf.ClientURL(), nats.UserInfo("b", "b"))

		// Hub to leaf: each hub account reaches its own leaf account.
		subA, _ := lA.SubscribeSync("down")
		subB, _ := lB.SubscribeSync("down")
		lA.Flush()
		lB.Flush()
		waitFor(t, "leaf interest in HA and HB", func() bool {
			accA, _ := hub.LookupAccount("HA")
			accB, _ := hub.LookupAccount("HB")
			return accA.Interest("down") == 1 && accB.Interest("down") == 1
		})
		hA.Publish("down", []byte("from HA"))
		hB.Publish("down", []byte("from HB"))
		if m := next(t, subA); string(m.Data) != "from HA" {
			t.Fatalf("A got %q", m.Data)
		}
		if m := next(t, subB); string(m.Data) != "from HB" {
			t.Fatalf("B got %q", m.Data)
		}
		none(t, subA, hA, hB, lA)
		none(t, subB, lB)

		// Leaf to hub: A's publishes reach HA only, B's HB only.
		upA, _ := hA.SubscribeSync("up")
		upB, _ := hB.SubscribeSync("up")
		hA.Flush()
		hB.Flush()
		waitFor(t, "hub interest on both links", func() bool {
			n := 0
			for _, l := range leaf.LeafLinks() {
				n += int(l.NumSubs)
			}
			return n >= 2*hubBase+2
		})
		// A subscription of the hub's HA must not make A's leaf
		// account's subscribers of B see anything, and vice versa.
		lA.Publish("up", []byte("from A"))
		lB.Publish("up", []byte("from B"))
		if m := next(t, upA); string(m.Data) != "from A" {
			t.Fatalf("HA got %q", m.Data)
		}
		if m := next(t, upB); string(m.Data) != "from B" {
			t.Fatalf("HB got %q", m.Data)
		}
		none(t, upA, lA, lB, hA)
		none(t, upB, hB)

		accs := map[string]bool{}
		for _, l := range leaf.Leafs(false, "") {
			accs[l.Account] = true
		}
		if !accs["A"] || !accs["B"] || len(leaf.Leafs(false, "A")) != 1 {
			t.Fatalf("leafz accounts %v", accs)
		}
	})
}

// TestLeafHubBindsUserAccount: evnats as the hub binds an accepted leaf
// to the account of the user it logged in as (a nats-server leaf with one
// remote per local account), so each leaf account meets its own hub
// account and nothing crosses between them.
func TestLeafHubBindsUserAccount(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		hub := startHubEvnats(t, twoAccounts(o))
		la, lb := natsserver.NewAccount("LA"), natsserver.NewAccount("LB")
		lo := &natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
			Accounts: []*natsserver.Account{la, lb},
			Users:    []*natsserver.User{{Username: "la", Password: "la", Account: la}, {Username: "lb", Password: "lb", Account: lb}},
			LeafNode: natsserver.LeafNodeOpts{ReconnectInterval: 50 * time.Millisecond, Remotes: []*natsserver.RemoteLeafOpts{
				{URLs: []*url.URL{hubLeafURL(t, hub, "a:a@")}, LocalAccount: "LA"},
				{URLs: []*url.URL{hubLeafURL(t, hub, "b:b@")}, LocalAccount: "LB"},
			}}}
		leaf := startHub(t, lo)
		waitFor(t, "two links", func() bool { return leaf.NumLeafNodes() == 2 && len(hub.LeafLinks()) == 2 })
		accs := map[string]bool{}
		for _, l := range hub.Leafs(false, "") {
			accs[l.Account] = !l.IsSpoke
		}
		if !accs["A"] || !accs["B"] {
			t.Fatalf("leafz accounts %v", accs)
		}

		hA := connect(t, hub.ClientURL(), nats.UserInfo("a", "a"))
		hB := connect(t, hub.ClientURL(), nats.UserInfo("b", "b"))
		lA := connect(t, leaf.ClientURL(), nats.UserInfo("la", "la"))
		lB := connect(t, leaf.ClientURL(), nats.UserInfo("lb", "lb"))
		upA, _ := hA.SubscribeSync("up")
		upB, _ := hB.SubscribeSync("up")
		downA, _ := lA.SubscribeSync("down")
		downB, _ := lB.SubscribeSync("down")
		for _, nc := range []*nats.Conn{hA, hB, lA, lB} {
			nc.Flush()
		}
		// nats-server registers copies of the configured accounts.
		la, _ = leaf.LookupAccount("LA")
		lb, _ = leaf.LookupAccount("LB")
		waitFor(t, "interest both ways", func() bool {
			return la.Interest("up") == 1 && lb.Interest("up") == 1 && hubHas(hub, "A", "down") && hubHas(hub, "B", "down")
		})
		lA.Publish("up", []byte("LA"))
		lB.Publish("up", []byte("LB"))
		hA.Publish("down", []byte("A"))
		hB.Publish("down", []byte("B"))
		for sub, want := range map[*nats.Subscription]string{upA: "LA", upB: "LB", downA: "A", downB: "B"} {
			if m := next(t, sub); string(m.Data) != want {
				t.Fatalf("%s got %q, want %q", sub.Subject, m.Data, want)
			}
		}
		for _, sub := range []*nats.Subscription{upA, upB, downA, downB} {
			none(t, sub, hA, hB, lA, lB)
		}
	})
}

// hubHas reports whether the evnats hub holds interest in subject from
// its leaf of account acc.
func hubHas(s *loop.Server, acc, subject string) bool {
	for _, l := range s.Leafs(true, acc) {
		if slices.Contains(l.Subs, subject) {
			return true
		}
	}
	return false
}

// TestLeafHubAuthorizationAccount: leafnodes { authorization { user,
// password, account } } binds the leaf that logs in with that user to the
// account named.
func TestLeafHubAuthorizationAccount(t *testing.T) {
	o := twoAccounts(loop.Options{LeafUsername: "leaf", LeafPassword: "s3cret", LeafAccount: "B"})
	hub := startHubEvnats(t, o)
	leaf := natsLeaf(t, hub, "leaf:s3cret@")
	waitFor(t, "linked", func() bool { return leaf.NumLeafNodes() == 1 })
	if ls := hub.Leafs(false, ""); len(ls) != 1 || ls[0].Account != "B" {
		t.Fatalf("leafz %+v", ls)
	}
	hA := connect(t, hub.ClientURL(), nats.UserInfo("a", "a"))
	hB := connect(t, hub.ClientURL(), nats.UserInfo("b", "b"))
	subA, _ := hA.SubscribeSync("x")
	subB, _ := hB.SubscribeSync("x")
	hA.Flush()
	hB.Flush()
	waitFor(t, "B's interest at the leaf", func() bool { return leaf.GlobalAccount().Interest("x") == 1 })
	lnc := connect(t, leaf.ClientURL())
	lnc.Publish("x", []byte("hi"))
	if m := next(t, subB); string(m.Data) != "hi" {
		t.Fatalf("B got %q", m.Data)
	}
	none(t, subA, lnc, hA)
}

// hubLeafURL is the evnats hub's leafnode URL with userinfo ("u:p@").
func hubLeafURL(t *testing.T, s *loop.Server, userinfo string) *url.URL {
	t.Helper()
	u, err := url.Parse("nats-leaf://" + userinfo + s.LeafAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestLeafHubAccountLeafLimit: an account's max_leafnodes bounds the
// leaves bound to it (nats-server's account limit): with a limit of 1,
// the second leaf logging in as a user of that account is refused with
// nats-server's error and keeps retrying; when the first goes, it gets
// in.
func TestLeafHubAccountLeafLimit(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		o = twoAccounts(o)
		lim := loop.NoAccountLimits
		lim.MaxLeafNodes = 1
		o.Accounts[0].Limits = &lim
		hub := startHubEvnats(t, o)
		leafOf := func() *natsserver.Server { return leafOfA(t, hub) }
		first := leafOf()
		waitFor(t, "first link", func() bool { return first.NumLeafNodes() == 1 && len(hub.LeafLinks()) == 1 })
		second := leafOf()
		deadline := time.Now().Add(500 * time.Millisecond) // ten of its retries
		for time.Now().Before(deadline) {
			if second.NumLeafNodes() != 0 || len(hub.LeafLinks()) != 1 {
				t.Fatalf("second leaf linked past the account's limit: %d links", len(hub.LeafLinks()))
			}
			time.Sleep(20 * time.Millisecond)
		}
		first.Shutdown()
		waitFor(t, "second link once the first is gone", func() bool { return second.NumLeafNodes() == 1 && len(hub.LeafLinks()) == 1 })
	})
}

// TestLeafHubAccountLeafLimitLowered: a reload that lowers an account's
// max_leafnodes closes its newest leaf links past the new limit, keeping
// the oldest, as nats-server; the one closed is refused while it tries
// to come back.
func TestLeafHubAccountLeafLimitLowered(t *testing.T) {
	lim := loop.NoAccountLimits
	lim.MaxLeafNodes = 2
	o := twoAccounts(loop.Options{Host: "127.0.0.1", Port: -1, StoreDir: t.TempDir(), LeafHost: "127.0.0.1", LeafPort: -1, LogWriter: testLog{}})
	o.Accounts[0].Limits = &lim
	hub := looptest.Start(t, o)
	leafOf := func() *natsserver.Server { return leafOfA(t, hub) }
	first := leafOf()
	waitFor(t, "first link", func() bool { return first.NumLeafNodes() == 1 && len(hub.LeafLinks()) == 1 })
	second := leafOf()
	waitFor(t, "second link", func() bool { return second.NumLeafNodes() == 1 && len(hub.LeafLinks()) == 2 })
	firstID := hub.LeafLinks()[0].ID
	for _, l := range hub.LeafLinks() {
		firstID = min(firstID, l.ID)
	}
	lower := lim
	lower.MaxLeafNodes = 1
	o2 := twoAccounts(o)
	o2.Accounts[0].Limits = &lower
	if err := hub.Reload(o2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the newer link closed", func() bool { return second.NumLeafNodes() == 0 && len(hub.LeafLinks()) == 1 })
	deadline := time.Now().Add(500 * time.Millisecond) // ten of its retries
	for time.Now().Before(deadline) {
		if links := hub.LeafLinks(); len(links) != 1 || links[0].ID != firstID || first.NumLeafNodes() != 1 {
			t.Fatalf("after lowering: %+v", links)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leafOfA starts a nats-server leaf whose one remote links to hub as user
// a (account A), retrying every 50 ms.
func leafOfA(t *testing.T, hub *loop.Server) *natsserver.Server {
	t.Helper()
	return startHub(t, &natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		LeafNode: natsserver.LeafNodeOpts{ReconnectInterval: 50 * time.Millisecond, Remotes: []*natsserver.RemoteLeafOpts{
			{URLs: []*url.URL{hubLeafURL(t, hub, "a:a@")}},
		}}})
}
