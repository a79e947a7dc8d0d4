package leaf_test

import (
	"fmt"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
)

// localService checks that the leaf serves its own clients: a publish
// reaches a local subscriber, a request a local responder.
func localService(t *testing.T, leaf *loop.Server) {
	t.Helper()
	nc := connect(t, leaf.ClientURL())
	defer nc.Close()
	sub, _ := nc.SubscribeSync("local.x")
	nc.Subscribe("local.svc", func(m *nats.Msg) { m.Respond([]byte("here")) })
	nc.Publish("local.x", []byte("1"))
	if m := next(t, sub); string(m.Data) != "1" {
		t.Fatalf("local got %q", m.Data)
	}
	if r, err := nc.Request("local.svc", nil, 5*time.Second); err != nil || string(r.Data) != "here" {
		t.Fatalf("local request: %v", err)
	}
}

// TestLeafHubRestart: the hub goes away and comes back on the same
// ports; the leaf serves locally meanwhile, reconnects by itself and
// resends its interest, and the hub's new interest reaches it.
func TestLeafHubRestart(t *testing.T) {
	ho := hubOpts()
	ho.Port, ho.LeafNode.Port = freePort(t), freePort(t)
	hub := startHub(t, ho)
	leaf := startLeaf(t, loop.Options{}, leafURL(ho, ""))
	waitLinked(t, hub, 1, leaf)
	lnc := connect(t, leaf.ClientURL())
	lsub, _ := lnc.SubscribeSync("site.>")
	lnc.Flush()
	waitHubInterest(t, hub, "site.a", 1)

	hub.Shutdown()
	hub.WaitForShutdown()
	waitFor(t, "the hub's interest gone from the leaf", func() bool { return leaf.NumSubscriptions() == 1 })
	localService(t, leaf)

	ho2 := hubOpts()
	ho2.Port, ho2.LeafNode.Port = ho.Port, ho.LeafNode.Port
	hub2 := startHub(t, ho2)
	waitLinked(t, hub2, 1, leaf)
	waitHubInterest(t, hub2, "site.a", 1) // resent, not re-subscribed
	hnc := connect(t, hubURL(hub2))
	hnc.Publish("site.a", []byte("back"))
	if m := next(t, lsub); string(m.Data) != "back" {
		t.Fatalf("leaf got %q", m.Data)
	}
	hsub, _ := hnc.SubscribeSync("central")
	hnc.Flush()
	waitLeafSubs(t, leaf, 2)
	lnc.Publish("central", []byte("up"))
	if m := next(t, hsub); string(m.Data) != "up" {
		t.Fatalf("hub got %q", m.Data)
	}
}

// TestLeafUserPassword: a hub that requires a user on its leafnode port
// takes the leaf with the right password; with a wrong one the leaf says
// so in its log and keeps serving locally.
func TestLeafUserPassword(t *testing.T) {
	ho := hubOpts()
	ho.LeafNode.Username, ho.LeafNode.Password = "edge", "s3cret"
	hub := startHub(t, ho)

	t.Run("right", func(t *testing.T) {
		leaf := startLeaf(t, loop.Options{}, leafURL(ho, "edge:s3cret"))
		waitLinked(t, hub, 1, leaf)
		hnc := connect(t, hubURL(hub))
		hsub, _ := hnc.SubscribeSync("auth.ok")
		hnc.Flush()
		waitLeafSubs(t, leaf, 1)
		lnc := connect(t, leaf.ClientURL())
		lnc.Publish("auth.ok", []byte("in"))
		if m := next(t, hsub); string(m.Data) != "in" {
			t.Fatalf("hub got %q", m.Data)
		}
		leaf.Shutdown()
		waitLinked(t, hub, 0)
	})
	t.Run("wrong", func(t *testing.T) {
		var log looptest.LogBuffer
		leaf := startLeaf(t, loop.Options{LogWriter: &log}, leafURL(ho, "edge:wrong"))
		want := "hub refused the link: Authorization Violation"
		waitFor(t, "the refusal in the leaf's log", func() bool { return contains(log.String(), want) })
		if contains(log.String(), "wrong") {
			t.Fatalf("the log shows the password:\n%s", log.String())
		}
		if hub.NumLeafNodes() != 0 {
			t.Fatal("the hub took a leaf with a wrong password")
		}
		localService(t, leaf)
	})
}

// TestLeafUnreachableHub: with no hub listening the leaf starts at once
// and serves locally, logging why the link is down.
func TestLeafUnreachableHub(t *testing.T) {
	var log looptest.LogBuffer
	start := time.Now()
	leaf := startLeaf(t, loop.Options{LogWriter: &log}, fmt.Sprintf("nats-leaf://127.0.0.1:%d", freePort(t)))
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("start took %v", d)
	}
	localService(t, leaf)
	waitFor(t, "the connect error in the log", func() bool { return contains(log.String(), "error trying to connect") })
}

// TestLeafFailoverURLs: the first URL has nothing listening; the leaf
// moves on to the second.
func TestLeafFailoverURLs(t *testing.T) {
	ho := hubOpts()
	hub := startHub(t, ho)
	leaf := startLeaf(t, loop.Options{}, fmt.Sprintf("nats-leaf://127.0.0.1:%d", freePort(t)), leafURL(ho, ""))
	waitLinked(t, hub, 1, leaf)
}

// TestLeafClusterHub: the hub is a 3-node nats-server cluster; the leaf
// links to one node and reaches subscribers on another, both ways.
func TestLeafClusterHub(t *testing.T) {
	var nodes []*natsserver.Server
	var opts []*natsserver.Options
	seed := freePort(t)
	for i := range 3 {
		o := hubOpts()
		o.ServerName = fmt.Sprintf("hub-%d", i)
		o.Cluster = natsserver.ClusterOpts{Name: "central", Host: "127.0.0.1", Port: -1}
		if i == 0 {
			o.Cluster.Port = seed
		}
		o.Routes = natsserver.RoutesFromStr(fmt.Sprintf("nats-route://127.0.0.1:%d", seed))
		nodes = append(nodes, startHub(t, o))
		opts = append(opts, o)
	}
	for _, n := range nodes {
		waitFor(t, "a full mesh", func() bool { return n.NumRoutes() >= 2 })
	}
	leaf := startLeaf(t, loop.Options{}, leafURL(opts[0], ""))
	waitLinked(t, nodes[0], 1, leaf)

	far := connect(t, hubURL(nodes[2]))
	fsub, _ := far.SubscribeSync("far.>")
	fq, _ := far.QueueSubscribeSync("far.work", "workers")
	far.Flush()
	lnc := connect(t, leaf.ClientURL())
	lsub, _ := lnc.SubscribeSync("edge.>")
	lnc.Flush()
	waitHubInterest(t, nodes[2], "edge.x", 1)
	waitFor(t, "far interest at the leaf", func() bool {
		_, err := lnc.Request("far.probe", nil, 100*time.Millisecond)
		return err == nats.ErrTimeout // a subscriber there, none answering
	})
	next(t, fsub)

	for i := range 20 {
		lnc.Publish("far.work", fmt.Appendf(nil, "%d", i))
		far.Publish("edge.x", fmt.Appendf(nil, "%d", i))
	}
	for i := range 20 {
		if m := next(t, fsub); string(m.Data) != fmt.Sprint(i) {
			t.Fatalf("far plain got %q", m.Data)
		}
		if m := next(t, fq); string(m.Data) != fmt.Sprint(i) {
			t.Fatalf("far queue got %q", m.Data)
		}
		if m := next(t, lsub); string(m.Data) != fmt.Sprint(i) {
			t.Fatalf("leaf got %q", m.Data)
		}
	}
	none(t, fsub, lnc, far)
	none(t, fq)
	none(t, lsub)

	// The node the leaf is linked to goes: the leaf fails over to a node
	// it learnt from the hub's INFO, and resends its interest there.
	nodes[0].Shutdown()
	waitFor(t, "the leaf on another node", func() bool { return nodes[1].NumLeafNodes()+nodes[2].NumLeafNodes() == 1 })
	waitHubInterest(t, nodes[2], "edge.x", 1)
	far.Publish("edge.x", []byte("after"))
	if m := next(t, lsub); string(m.Data) != "after" {
		t.Fatalf("leaf got %q after failover", m.Data)
	}
}

// TestLeafDenyImportsExports: deny_exports keeps subjects from going to
// the hub (a wildcard interest of the hub's filtered per message),
// deny_imports keeps the hub's messages on subjects out, and the leaf
// shows no interest in them.
func TestLeafDenyImportsExports(t *testing.T) {
	ho := hubOpts()
	hub := startHub(t, ho)
	o := loop.Options{LeafRemotes: []loop.LeafRemote{{URLs: []string{leafURL(ho, "")},
		DenyExports: []string{"exp.secret", "private.>"}, DenyImports: []string{"imp.secret"}}}}
	leaf := startLeaf(t, o)
	waitLinked(t, hub, 1, leaf)
	hnc := connect(t, hubURL(hub))
	lnc := connect(t, leaf.ClientURL())
	hexp, _ := hnc.SubscribeSync("exp.*")
	hpriv, _ := hnc.SubscribeSync("private.x")
	limp, _ := lnc.SubscribeSync("imp.*")
	lsecret, _ := lnc.SubscribeSync("imp.secret")
	hnc.Flush()
	lnc.Flush()
	waitHubInterest(t, hub, "imp.ok", 1)
	waitLeafSubs(t, leaf, 3) // exp.*, imp.*, imp.secret; private.x is not taken
	if n := hub.GlobalAccount().Interest("imp.secret"); n != 1 {
		t.Fatalf("hub sees %d interests in imp.secret, want 1 (the wildcard only)", n)
	}
	for _, s := range []string{"exp.secret", "private.x", "exp.ok"} {
		lnc.Publish(s, []byte(s))
	}
	for _, s := range []string{"imp.secret", "imp.ok"} {
		hnc.Publish(s, []byte(s))
	}
	if m := next(t, hexp); m.Subject != "exp.ok" {
		t.Fatalf("hub got %s", m.Subject)
	}
	if m := next(t, limp); m.Subject != "imp.ok" {
		t.Fatalf("leaf got %s", m.Subject)
	}
	none(t, hexp, lnc, hnc)
	none(t, hpriv)
	none(t, limp)
	none(t, lsecret)
}
