package leaf_test

import (
	"bufio"
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
)

// startHubEvnats starts evnats with a leafnode listener on 127.0.0.1.
func startHubEvnats(t *testing.T, o loop.Options) *loop.Server {
	t.Helper()
	o.LeafHost, o.LeafPort = "127.0.0.1", -1
	if o.LogWriter == nil {
		o.LogWriter = testLog{}
	}
	return looptest.Start(t, o)
}

type testLog struct{}

func (testLog) Write(p []byte) (int, error) { return len(p), nil }

// natsLeaf starts a nats-server leaf of the evnats hub s.
func natsLeaf(t *testing.T, s *loop.Server, userinfo string) *natsserver.Server {
	t.Helper()
	lu, err := url.Parse("nats-leaf://" + userinfo + s.LeafAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	o := &natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		LeafNode: natsserver.LeafNodeOpts{ReconnectInterval: 50 * time.Millisecond,
			Remotes: []*natsserver.RemoteLeafOpts{{URLs: []*url.URL{lu}}}}}
	if debugLeaf {
		o.NoLog, o.Debug, o.Trace = false, true, true
		ns := startHub(t, o)
		ns.ConfigureLogger()
		return ns
	}
	return startHub(t, o)
}

var debugLeaf = false

// TestHubNatsServerLeaf: evnats as the hub, nats-server as the leaf:
// pub/sub and request/reply both ways, headers, queue groups preferring
// the leaf's own members, interest withdrawal.
func TestHubNatsServerLeaf(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		hub := startHubEvnats(t, o)
		leaf := natsLeaf(t, hub, "")
		waitFor(t, "the nats-server leaf linked", func() bool { return leaf.NumLeafNodes() == 1 })
		hnc := connect(t, hub.ClientURL())
		lnc := connect(t, leaf.ClientURL())

		hsub, _ := hnc.SubscribeSync("to.hub")
		lsub, _ := lnc.SubscribeSync("to.leaf")
		hnc.Subscribe("svc.hub", func(m *nats.Msg) {
			r := nats.NewMsg(m.Reply)
			r.Header.Set("Echo", m.Header.Get("Ask"))
			r.Data = []byte("hub")
			m.RespondMsg(r)
		})
		hnc.Flush()
		lnc.Flush()
		waitFor(t, "hub interest at the leaf", func() bool { return leaf.GlobalAccount().Interest("to.hub") == 1 })
		waitFor(t, "leaf interest at the hub", func() bool {
			_, err := hnc.Request("to.leaf", nil, 50*time.Millisecond)
			return err == nats.ErrTimeout
		})
		next(t, lsub)
		for i := range 10 {
			lnc.Publish("to.hub", fmt.Appendf(nil, "%d", i))
			hnc.Publish("to.leaf", fmt.Appendf(nil, "%d", i))
		}
		for i := range 10 {
			if m := next(t, hsub); string(m.Data) != fmt.Sprint(i) {
				t.Fatalf("hub got %q", m.Data)
			}
			if m := next(t, lsub); string(m.Data) != fmt.Sprint(i) {
				t.Fatalf("leaf got %q", m.Data)
			}
		}
		m := nats.NewMsg("svc.hub")
		m.Header.Set("Ask", "x")
		r, err := lnc.RequestMsg(m, 5*time.Second)
		if err != nil || string(r.Data) != "hub" || r.Header.Get("Echo") != "x" {
			t.Fatalf("request from the leaf: %v %v", err, r)
		}

		// Queue group with members on both: the leaf's publishes stay on
		// the leaf; the hub's stay on the hub.
		hq, _ := hnc.QueueSubscribeSync("work", "q")
		lq, _ := lnc.QueueSubscribeSync("work", "q")
		hnc.Flush()
		lnc.Flush()
		waitFor(t, "queue interest", func() bool { return leaf.GlobalAccount().Interest("work") == 2 })
		for range 20 {
			lnc.Publish("work", []byte("l"))
			hnc.Publish("work", []byte("h"))
		}
		for range 20 {
			if m := next(t, lq); string(m.Data) != "l" {
				t.Fatalf("leaf member got %q", m.Data)
			}
			if m := next(t, hq); string(m.Data) != "h" {
				t.Fatalf("hub member got %q", m.Data)
			}
		}
		none(t, lq, lnc, hnc)
		none(t, hq)
		// With no member left on the leaf, its publishes cross to the
		// hub's member (LMSG naming the group), once each.
		lq.Unsubscribe()
		lnc.Flush()
		waitFor(t, "the leaf member gone", func() bool { return leaf.GlobalAccount().Interest("work") == 1 })
		for range 20 {
			lnc.Publish("work", []byte("x"))
		}
		for range 20 {
			if m := next(t, hq); string(m.Data) != "x" {
				t.Fatalf("hub member got %q", m.Data)
			}
		}
		none(t, hq, lnc, hnc)
		if links := hub.LeafLinks(); len(links) != 1 || links[0].Name != leaf.Name() || links[0].IsSpoke ||
			links[0].InMsgs < 10 || links[0].OutMsgs < 10 || links[0].ID == 0 {
			t.Fatalf("links %+v", links)
		}

		// Withdrawal: the leaf's subscriber goes, the hub answers
		// no-responders.
		lnc.Subscribe("svc.leaf", func(m *nats.Msg) { m.Respond([]byte("leaf")) })
		lnc.Flush()
		waitFor(t, "svc.leaf at the hub", func() bool {
			r, err := hnc.Request("svc.leaf", nil, 100*time.Millisecond)
			return err == nil && string(r.Data) == "leaf"
		})
		lnc.Close()
		waitFor(t, "no responders", func() bool {
			_, err := hnc.Request("svc.leaf", nil, 100*time.Millisecond)
			return err == nats.ErrNoResponders
		})
	})
}

// TestHubTwoLeaves: two nats-server leaves of one evnats hub reach each
// other through it.
func TestHubTwoLeaves(t *testing.T) {
	hub := startHubEvnats(t, loop.Options{})
	a := natsLeaf(t, hub, "")
	b := natsLeaf(t, hub, "")
	waitFor(t, "both linked", func() bool { return a.NumLeafNodes() == 1 && b.NumLeafNodes() == 1 })
	anc := connect(t, a.ClientURL())
	bnc := connect(t, b.ClientURL())
	bsub, _ := bnc.SubscribeSync("a.to.b")
	bnc.Flush()
	waitFor(t, "b's interest at a", func() bool { return a.GlobalAccount().Interest("a.to.b") == 1 })
	anc.Publish("a.to.b", []byte("hi"))
	if m := next(t, bsub); string(m.Data) != "hi" {
		t.Fatalf("b got %q", m.Data)
	}
	none(t, bsub, anc, bnc)
}

// TestHubLeafAuth: the hub's leafnode authorization takes the right user
// and refuses a wrong password with Authorization Violation.
func TestHubLeafAuth(t *testing.T) {
	var log looptest.LogBuffer
	hub := startHubEvnats(t, loop.Options{LeafUsername: "site", LeafPassword: "pw", LogWriter: &log})
	bad := natsLeaf(t, hub, "site:nope@")
	good := natsLeaf(t, hub, "site:pw@")
	waitFor(t, "the good leaf linked", func() bool { return good.NumLeafNodes() == 1 })
	waitFor(t, "the refusal logged", func() bool { return contains(log.String(), "authorization violation") })
	if bad.NumLeafNodes() != 0 {
		t.Fatal("a leaf with a wrong password linked")
	}
}

// TestHubEvnatsLeaf: evnats on both sides of the link.
func TestHubEvnatsLeaf(t *testing.T) {
	hub := startHubEvnats(t, loop.Options{LeafUsername: "site", LeafPassword: "pw"})
	leaf := startLeaf(t, loop.Options{}, "nats-leaf://site:pw@"+hub.LeafAddr().String())
	hnc := connect(t, hub.ClientURL())
	lnc := connect(t, leaf.ClientURL())
	hsub, _ := hnc.SubscribeSync("up")
	lsub, _ := lnc.SubscribeSync("down")
	hnc.Flush()
	lnc.Flush()
	waitFor(t, "interest both ways", func() bool {
		_, e1 := lnc.Request("up", nil, 50*time.Millisecond)
		_, e2 := hnc.Request("down", nil, 50*time.Millisecond)
		return e1 == nats.ErrTimeout && e2 == nats.ErrTimeout
	})
	hnc.Subscribe("svc", func(m *nats.Msg) { m.Respond(append([]byte("re:"), m.Data...)) })
	hnc.Flush()
	waitFor(t, "svc at the leaf", func() bool {
		r, err := lnc.Request("svc", []byte("x"), 100*time.Millisecond)
		return err == nil && string(r.Data) == "re:x"
	})
	for i := range 10 {
		lnc.Publish("up", fmt.Appendf(nil, "%d", i))
		hnc.Publish("down", fmt.Appendf(nil, "%d", i))
	}
	for i := range 10 {
		if m := nextData(t, hsub); string(m.Data) != fmt.Sprint(i) {
			t.Fatalf("hub got %q", m.Data)
		}
		if m := nextData(t, lsub); string(m.Data) != fmt.Sprint(i) {
			t.Fatalf("leaf got %q", m.Data)
		}
	}
	none(t, hsub, lnc, hnc)
	none(t, lsub)
}

// TestHubCompression: s2 negotiated with accepted leaves, nats-server's
// and evnats', as nats-server hubs do; big and small messages cross both
// ways whatever the pair of modes.
func TestHubCompression(t *testing.T) {
	for _, c := range []struct{ hub, leaf, want string }{
		// want is the nats-server leaf's side: its own mode, unless it
		// only accepts.
		{"", "s2_fast", "s2_fast"},
		{"s2_best", "s2_auto", "s2_uncompressed"}, // the leaf's s2_auto on a local RTT (below its first threshold)
		{"s2_better", "accept", "s2_better"},
		{"accept", "accept", "off"},
		{"off", "s2_fast", "off"},
	} {
		t.Run(fmt.Sprintf("hub=%s,leaf=%s", c.hub, c.leaf), func(t *testing.T) {
			hub := startHubEvnats(t, loop.Options{LeafCompression: c.hub})
			lu, _ := url.Parse("nats-leaf://" + hub.LeafAddr().String())
			// s2_auto's first RTT threshold is 1 s here (default 10 ms), so
			// a loaded test machine's RTT still counts as local.
			var rtts []time.Duration
			if c.leaf == "s2_auto" {
				rtts = []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}
			}
			leaf := startHub(t, &natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
				LeafNode: natsserver.LeafNodeOpts{ReconnectInterval: 50 * time.Millisecond,
					Remotes: []*natsserver.RemoteLeafOpts{{URLs: []*url.URL{lu},
						Compression: natsserver.CompressionOpts{Mode: c.leaf, RTTThresholds: rtts}}}}})
			edge := startLeaf(t, loop.Options{LeafRemotes: []loop.LeafRemote{{URLs: []string{"nats-leaf://" + hub.LeafAddr().String()}, Compression: c.leaf}}})
			waitFor(t, "the nats-server leaf linked", func() bool { return leaf.NumLeafNodes() == 1 })
			lz, _ := leaf.Leafz(nil)
			if got := lz.Leafs[0].Compression; got != c.want && !(c.want == "off" && got == "") {
				t.Errorf("leaf-side compression %q, want %q", got, c.want)
			}
			hnc := connect(t, hub.ClientURL())
			hsub, _ := hnc.SubscribeSync("up")
			hnc.Flush()
			big := make([]byte, 200_000)
			for i := range big {
				big[i] = byte('a' + i%7)
			}
			for _, l := range []string{leaf.ClientURL(), edge.ClientURL()} {
				lnc := connect(t, l)
				lsub, _ := lnc.SubscribeSync("down")
				lnc.Flush()
				waitFor(t, "interest both ways", func() bool {
					_, e1 := lnc.Request("up", nil, 50*time.Millisecond)
					_, e2 := hnc.Request("down", nil, 50*time.Millisecond)
					return e1 == nats.ErrTimeout && e2 == nats.ErrTimeout
				})
				// The probes above reached the subscribers as empty
				// messages, one per try; the payloads below are never empty.
				nextData := func(sub *nats.Subscription) *nats.Msg {
					for {
						if m := next(t, sub); len(m.Data) > 0 {
							return m
						}
					}
				}
				for range 5 {
					lnc.Publish("up", big)
					hnc.Publish("down", big)
					lnc.Publish("up", []byte("s"))
					hnc.Publish("down", []byte("s"))
				}
				for range 5 {
					for _, want := range [][]byte{big, []byte("s")} {
						if m := nextData(hsub); string(m.Data) != string(want) {
							t.Fatalf("hub got %d bytes, want %d", len(m.Data), len(want))
						}
						if m := nextData(lsub); string(m.Data) != string(want) {
							t.Fatalf("leaf got %d bytes, want %d", len(m.Data), len(want))
						}
					}
				}
				lsub.Unsubscribe()
				lnc.Close()
			}
		})
	}
}

// TestHubShutdownWithPendingLeaf: a leaf connection still in its
// handshake does not hold up shutdown, nor does a silent one.
func TestHubShutdownWithPendingLeaf(t *testing.T) {
	hub := startHubEvnats(t, loop.Options{LeafAuthTimeout: time.Minute})
	c, err := net.Dial("tcp", hub.LeafAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := bufio.NewReader(c).ReadString('\n'); err != nil { // the INFO: it is being served
		t.Fatal(err)
	}
	start := time.Now()
	hub.Shutdown()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
}
