package leaf_test

import (
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"

	"github.com/evnats/evnats/loop"
)

// userSeed is a valid user nkey seed for config tests.
var userSeed = func() string {
	kp, _ := nkeys.CreateUser()
	s, _ := kp.Seed()
	return string(s)
}()

// natsLeafOpts starts a nats-server leaf of the evnats hub s with the
// remote r (its URL set to s's leafnode port with userinfo).
func natsLeafOpts(t *testing.T, s *loop.Server, userinfo string, r natsserver.RemoteLeafOpts) *natsserver.Server {
	t.Helper()
	r.URLs = []*url.URL{hubLeafURL(t, s, userinfo)}
	o := &natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		LeafNode: natsserver.LeafNodeOpts{ReconnectInterval: 50 * time.Millisecond,
			Remotes: []*natsserver.RemoteLeafOpts{&r}}}
	return startHub(t, o)
}

// TestHubLeafUsers: leafnodes { authorization { users [...] } } takes
// several leaf logins (a bcrypt password among them), each bound to its
// own account, and refuses a wrong password.
func TestHubLeafUsers(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("pb"), 4)
	o := twoAccounts(loop.Options{LeafUsers: []loop.LeafUser{
		{Username: "la", Password: "pa", Account: "A"},
		{Username: "lb", Password: string(hash), Account: "B"},
	}})
	hub := startHubEvnats(t, o)
	la := natsLeaf(t, hub, "la:pa@")
	lb := natsLeaf(t, hub, "lb:pb@")
	bad := natsLeaf(t, hub, "la:pb@")
	waitFor(t, "both leaves linked", func() bool { return la.NumLeafNodes() == 1 && lb.NumLeafNodes() == 1 })
	accs := map[string]bool{}
	for _, l := range hub.Leafs(false, "") {
		accs[l.Account] = true
	}
	if len(accs) != 2 || !accs["A"] || !accs["B"] {
		t.Fatalf("leafz accounts %v", accs)
	}
	hA := connect(t, hub.ClientURL(), nats.UserInfo("a", "a"))
	hB := connect(t, hub.ClientURL(), nats.UserInfo("b", "b"))
	subA, _ := hA.SubscribeSync("x")
	subB, _ := hB.SubscribeSync("x")
	hA.Flush()
	hB.Flush()
	waitFor(t, "A's interest at leaf la", func() bool { return la.GlobalAccount().Interest("x") == 1 })
	waitFor(t, "B's interest at leaf lb", func() bool { return lb.GlobalAccount().Interest("x") == 1 })
	lanc := connect(t, la.ClientURL())
	lbnc := connect(t, lb.ClientURL())
	lanc.Publish("x", []byte("from la"))
	lbnc.Publish("x", []byte("from lb"))
	if m := next(t, subA); string(m.Data) != "from la" {
		t.Fatalf("A got %q", m.Data)
	}
	if m := next(t, subB); string(m.Data) != "from lb" {
		t.Fatalf("B got %q", m.Data)
	}
	none(t, subA, lanc, lbnc, hA)
	none(t, subB, hB)
	if bad.NumLeafNodes() != 0 {
		t.Fatal("a leaf with a wrong password linked")
	}
}

// TestHubLeafNkey: leafnodes { authorization { nkey, account } } takes a
// nats-server leaf and an evnats leaf that sign the nonce with the
// nkey's seed (remote { nkey }), binding them to the account, and
// refuses another key.
func TestHubLeafNkey(t *testing.T) {
	kp, _ := nkeys.CreateUser()
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	other, _ := nkeys.CreateUser()
	oseed, _ := other.Seed()
	hub := startHubEvnats(t, twoAccounts(loop.Options{LeafNkey: pub, LeafAccount: "B"}))
	ns := natsLeafOpts(t, hub, "", natsserver.RemoteLeafOpts{Nkey: string(seed)})
	bad := natsLeafOpts(t, hub, "", natsserver.RemoteLeafOpts{Nkey: string(oseed)})
	ev := startLeaf(t, loop.Options{LeafRemotes: []loop.LeafRemote{{URLs: []string{"nats-leaf://" + hub.LeafAddr().String()}, Nkey: string(seed)}}})
	waitFor(t, "both leaves linked", func() bool { return ns.NumLeafNodes() == 1 && len(ev.LeafLinks()) == 1 })
	for _, l := range hub.Leafs(false, "") {
		if l.Account != "B" {
			t.Fatalf("leaf %s bound to %q", l.Name, l.Account)
		}
	}
	hB := connect(t, hub.ClientURL(), nats.UserInfo("b", "b"))
	sub, _ := hB.SubscribeSync("x")
	hB.Flush()
	waitFor(t, "B's interest at both leaves", func() bool {
		return ns.GlobalAccount().Interest("x") == 1 && ev.NumSubscriptions() > 0
	})
	nnc := connect(t, ns.ClientURL())
	enc := connect(t, ev.ClientURL())
	waitFor(t, "B's interest at the evnats leaf", func() bool {
		_, err := enc.Request("x", nil, 50*time.Millisecond)
		return err == nats.ErrTimeout
	})
	next(t, sub)
	nnc.Publish("x", []byte("ns"))
	if m := next(t, sub); string(m.Data) != "ns" {
		t.Fatalf("B got %q", m.Data)
	}
	if bad.NumLeafNodes() != 0 {
		t.Fatal("a leaf with another nkey linked")
	}
}

// TestLeafRemoteNkey: an evnats leaf whose remote has nkey links to a
// nats-server hub whose leafnodes authorization names that nkey.
func TestLeafRemoteNkey(t *testing.T) {
	kp, _ := nkeys.CreateUser()
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	ho := hubOpts()
	ho.LeafNode.Nkey = pub
	hub := startHub(t, ho)
	leaf := startLeaf(t, loop.Options{LeafRemotes: []loop.LeafRemote{{URLs: []string{leafURL(ho, "")}, Nkey: string(seed)}}})
	waitLinked(t, hub, 1, leaf)
	hnc := connect(t, hubURL(hub))
	sub, _ := hnc.SubscribeSync("up")
	hnc.Flush()
	lnc := connect(t, leaf.ClientURL())
	waitFor(t, "hub interest at the leaf", func() bool {
		_, err := lnc.Request("up", nil, 50*time.Millisecond)
		return err == nats.ErrTimeout
	})
	next(t, sub)
}

// TestLeafAuthConfig: the users list and nkey as nats-server spells them,
// and nats-server's start-time errors for conflicting logins.
func TestLeafAuthConfig(t *testing.T) {
	kp, _ := nkeys.CreateUser()
	pub, _ := kp.PublicKey()
	o, err := applyConf(t, `
accounts { A {}, B {} }
leafnodes {
  port: 7422
  authorization { users = [ { user: la, password: pa, account: A }, { username: lb, pass: pb, account: B }, { user: lg, password: pg } ] }
  remotes = [ { url: "nats-leaf://hub:7422", nkey: "`+userSeed+`" } ]
}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.LeafUsers) != 3 || o.LeafUsers[0] != (loop.LeafUser{Username: "la", Password: "pa", Account: "A"}) ||
		o.LeafUsers[1] != (loop.LeafUser{Username: "lb", Password: "pb", Account: "B"}) || o.LeafUsers[2].Account != "" {
		t.Fatalf("users %+v", o.LeafUsers)
	}
	if o.LeafRemotes[0].Nkey != userSeed {
		t.Fatalf("remote %+v", o.LeafRemotes[0])
	}
	o, err = applyConf(t, `leafnodes { port: 7422, authorization { nkey: "`+pub+`", account: B } }`)
	if err != nil || o.LeafNkey != pub || o.LeafAccount != "B" {
		t.Fatalf("nkey: %v %+v", err, o)
	}
	for _, c := range []struct {
		o    loop.Options
		want string
	}{
		{loop.Options{LeafUsername: "x", LeafPassword: "y", LeafUsers: []loop.LeafUser{{Username: "u"}}}, "can not have a single user/pass and a users array"},
		{loop.Options{LeafNkey: pub, LeafUsers: []loop.LeafUser{{Username: "u"}}}, "can not have a single nkey and a users array"},
		{loop.Options{LeafUsers: []loop.LeafUser{{Username: "u"}, {Username: "u"}}}, `duplicate user "u" detected in leafnode authorization`},
		{loop.Options{LeafUsers: []loop.LeafUser{{Username: "u", Account: "NOPE"}}}, `cannot find local account "NOPE" specified in leafnode authorization`},
	} {
		c.o.Port, c.o.LeafPort, c.o.LogWriter = -1, -1, io.Discard
		s, err := loop.New(c.o)
		if err == nil {
			if err = s.Start(); err == nil {
				s.Shutdown()
			}
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %s", c.o, err, c.want)
		}
	}
}
