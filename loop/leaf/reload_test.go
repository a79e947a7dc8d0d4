package leaf_test

import (
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
)

// TestLeafReloadAccountRemote: a reload that adds an account and a
// remote bound to it links that account to the hub without a restart
// (the link already up stays up), and a reload that takes them away
// unlinks it: the hub sees the account's interest go.
func TestLeafReloadAccountRemote(t *testing.T) {
	ho := hubOpts()
	ha, hb := natsserver.NewAccount("HA"), natsserver.NewAccount("HB")
	ho.Accounts = []*natsserver.Account{ha, hb}
	ho.Users = []*natsserver.User{{Username: "ha", Password: "ha", Account: ha}, {Username: "hb", Password: "hb", Account: hb}}
	hub := startHub(t, ho)

	var log looptest.LogBuffer
	accA := &loop.Account{Name: "A", Users: []*loop.User{{Username: "a", Password: "a"}}}
	accB := &loop.Account{Name: "B", Users: []*loop.User{{Username: "b", Password: "b"}}}
	remA := loop.LeafRemote{URLs: []string{leafURL(ho, "ha:ha")}, Account: "A"}
	remB := loop.LeafRemote{URLs: []string{leafURL(ho, "hb:hb")}, Account: "B"}
	o := loop.Options{Host: "127.0.0.1", Port: -1, StoreDir: t.TempDir(), LogWriter: &log,
		LeafReconnect: 50 * time.Millisecond, Accounts: []*loop.Account{accA}, LeafRemotes: []loop.LeafRemote{remA}}
	leaf := looptest.Start(t, o)
	waitFor(t, "A linked", func() bool { return hub.NumLeafNodes() == 1 && len(leaf.LeafLinks()) == 1 })
	idA := leaf.LeafLinks()[0].ID

	o.Accounts = []*loop.Account{accA, accB}
	o.LeafRemotes = []loop.LeafRemote{remA, remB}
	if err := leaf.Reload(o); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B linked", func() bool { return hub.NumLeafNodes() == 2 && len(leaf.LeafLinks()) == 2 })
	for _, l := range leaf.LeafLinks() {
		if l.Account == "A" && l.ID != idA {
			t.Fatalf("A's link was restarted: %d, was %d", l.ID, idA)
		}
	}
	lB := connect(t, leaf.ClientURL(), nats.UserInfo("b", "b"))
	subB, _ := lB.SubscribeSync("to.b")
	lB.Flush()
	hbAcc, _ := hub.LookupAccount("HB")
	waitFor(t, "B's interest in HB", func() bool { return hbAcc.Interest("to.b") == 1 })
	hB := connect(t, hubURL(hub), nats.UserInfo("hb", "hb"))
	hB.Publish("to.b", []byte("hi"))
	if m := next(t, subB); string(m.Data) != "hi" {
		t.Fatalf("B got %q", m.Data)
	}
	if !contains(log.String(), "Reloaded: LeafNode Remote [hb@127.0.0.1") {
		t.Errorf("log: %s", log.String())
	}

	// A remote naming an account the reload does not have is refused,
	// and nothing changes.
	bad := o
	bad.LeafRemotes = []loop.LeafRemote{remA, remB, {URLs: remB.URLs, Account: "NOPE"}}
	if err := leaf.Reload(bad); err == nil || !contains(err.Error(), `cannot find local account "NOPE" specified in leafnode remote`) {
		t.Fatalf("reload with an unknown account: %v", err)
	}

	o.Accounts = []*loop.Account{accA}
	o.LeafRemotes = []loop.LeafRemote{remA}
	if err := leaf.Reload(o); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B unlinked", func() bool { return hub.NumLeafNodes() == 1 && hbAcc.Interest("to.b") == 0 })
	if ll := leaf.LeafLinks(); len(ll) != 1 || ll[0].ID != idA {
		t.Fatalf("links after removal %+v", ll)
	}
}

// TestLeafReloadNoLeaf: a server started without leaf nodes refuses a
// reload that adds remotes (a restart opens them).
func TestLeafReloadNoLeaf(t *testing.T) {
	o := loop.Options{Host: "127.0.0.1", Port: -1, StoreDir: t.TempDir(), LogWriter: testLog{}}
	s := looptest.Start(t, o)
	o.LeafRemotes = []loop.LeafRemote{{URLs: []string{"nats-leaf://127.0.0.1:1"}}}
	if err := s.Reload(o); err == nil || !contains(err.Error(), "leafnodes remotes") {
		t.Fatalf("reload: %v", err)
	}
}
