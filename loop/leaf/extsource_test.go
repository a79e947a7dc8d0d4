package leaf_test

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evnats/evnats/loop"
)

// TestHubSourcesLeafStream: an evnats hub with its own JetStream (domain
// "hub") sources and mirrors a stream of a leaf (domain "edge"; a
// nats-server leaf, then an evnats one) through the edge's API prefix:
// what the leaf had before and what it takes after arrive once each, in
// order, a mirror under the origin's sequences, a source with its
// transform and Nats-Stream-Source, through flow control (more messages
// than one flow-control window); when the origin loses the consumers
// (deleted there), the links notice the silence and go on from where they
// were, losing and repeating nothing.
func TestHubSourcesLeafStream(t *testing.T) {
	for _, kind := range []string{"nats-server", "evnats"} {
		t.Run(kind+" leaf", func(t *testing.T) {
			hub := startHubEvnats(t, loop.Options{JetStream: true, StoreDir: t.TempDir(), JetStreamDomain: "hub"})
			var leafURL string
			if kind == "nats-server" {
				lo := &natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
					JetStream: true, StoreDir: t.TempDir(), JetStreamDomain: "edge",
					LeafNode: natsserver.LeafNodeOpts{ReconnectInterval: 50 * time.Millisecond,
						Remotes: []*natsserver.RemoteLeafOpts{{URLs: []*url.URL{hubLeafURL(t, hub, "")}}}}}
				leafURL = startHub(t, lo).ClientURL()
			} else {
				o := loop.Options{JetStream: true, StoreDir: t.TempDir(), JetStreamDomain: "edge"}
				leafURL = startLeaf(t, o, hubLeafURL(t, hub, "").String()).ClientURL()
			}
			waitFor(t, "the leaf's domain API at the hub", func() bool { return hubHas(hub, "$G", "$JS.edge.API.>") || hubHas(hub, "$G", "$JS.edge.API.STREAM.>") })
			sourceLeafScenario(t, hub, leafURL)
		})
	}
}

func sourceLeafScenario(t *testing.T, hub *loop.Server, leafURL string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ljs, _ := jetstream.New(connect(t, leafURL))
	site, err := ljs.CreateStream(ctx, jetstream.StreamConfig{Name: "SITE", Subjects: []string{"site.>"}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	publish := func(k int) {
		for range k {
			if _, err := ljs.Publish(ctx, "site.temp", fmt.Appendf(nil, "m%d", n)); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	publish(3)
	hjs, _ := jetstream.New(connect(t, hub.ClientURL()))
	agg, err := hjs.CreateStream(ctx, jetstream.StreamConfig{Name: "AGG", Sources: []*jetstream.StreamSource{{Name: "SITE", Domain: "edge",
		SubjectTransforms: []jetstream.SubjectTransformConfig{{Source: "site.>", Destination: "agg.>"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	mir, err := hjs.CreateStream(ctx, jetstream.StreamConfig{Name: "MIR", Mirror: &jetstream.StreamSource{Name: "SITE", Domain: "edge"}})
	if err != nil {
		t.Fatal(err)
	}
	publish(600)
	check := func() {
		t.Helper()
		for _, st := range []jetstream.Stream{agg, mir} {
			name := st.CachedInfo().Config.Name
			waitFor(t, fmt.Sprintf("%d messages in %s", n, name), func() bool {
				info, err := st.Info(ctx)
				return err == nil && info.State.Msgs >= uint64(n)
			})
			info, _ := st.Info(ctx)
			if info.State.Msgs != uint64(n) || info.State.LastSeq != uint64(n) {
				t.Fatalf("%s: %+v", name, info.State)
			}
			for seq := uint64(1); seq <= uint64(n); seq++ {
				m, err := st.GetMsg(ctx, seq)
				if err != nil {
					t.Fatal(err)
				}
				want := "site.temp"
				if name == "AGG" {
					want = "agg.temp"
					if m.Header.Get("Nats-Stream-Source") == "" {
						t.Fatalf("AGG %d: no Nats-Stream-Source", seq)
					}
				}
				if string(m.Data) != fmt.Sprintf("m%d", seq-1) || m.Subject != want {
					t.Fatalf("%s %d: %q on %s", name, seq, m.Data, m.Subject)
				}
			}
			if name == "AGG" && (len(info.Sources) != 1 || info.Sources[0].Error != nil || info.Sources[0].External == nil) {
				t.Fatalf("AGG sources: %+v", info.Sources)
			}
		}
	}
	check()
	// An update of the sourcing stream keeps its source going on from
	// where it was.
	cfg := agg.CachedInfo().Config
	cfg.Description = "all sites"
	if agg, err = hjs.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	publish(20)
	check()
	// The origin loses the links' consumers: nothing is delivered until
	// the links see the silence and create them again.
	for name := range site.ConsumerNames(ctx).Name() {
		if err := site.DeleteConsumer(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	publish(50)
	check()
}

// TestLeafMessagesMapped: a hub's account mappings apply to what its
// leaves publish, as to its own clients' (nats-server maps a leaf's
// messages too), and their sources are interest the hub shows the leaf:
// a leaf publish on in.7 reaches a hub subscriber of out.7 with nobody
// subscribed to in.7 anywhere. Checked against a nats-server hub.
func TestLeafMessagesMapped(t *testing.T) {
	for _, kind := range []string{"nats-server", "evnats"} {
		t.Run(kind+" hub", func(t *testing.T) {
			var hubClient string
			var leafTo *url.URL
			if kind == "nats-server" {
				ho := hubOpts()
				ho.Accounts = []*natsserver.Account{natsserver.NewAccount("$G")}
				if err := ho.Accounts[0].AddMapping("in.*", "out.$1"); err != nil {
					t.Fatal(err)
				}
				hub := startHub(t, ho)
				hubClient, leafTo = hubURL(hub), mustURL(t, leafURL(ho, ""))
			} else {
				hub := startHubEvnats(t, loop.Options{Mappings: []*loop.Mapping{{Source: "in.*", Dests: []loop.MappingDest{{Subject: "out.$1"}}}}})
				hubClient, leafTo = hub.ClientURL(), hubLeafURL(t, hub, "")
			}
			hnc := connect(t, hubClient)
			sub, err := hnc.SubscribeSync("out.*")
			if err != nil {
				t.Fatal(err)
			}
			hnc.Flush()
			lo := &natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
				LeafNode: natsserver.LeafNodeOpts{ReconnectInterval: 50 * time.Millisecond,
					Remotes: []*natsserver.RemoteLeafOpts{{URLs: []*url.URL{leafTo}}}}}
			leaf := startHub(t, lo)
			lnc := connect(t, leaf.ClientURL())
			waitFor(t, "the mapping's source at the leaf", func() bool {
				return leaf.GlobalAccount().SubscriptionInterest("in.7")
			})
			if err := lnc.Publish("in.7", []byte("x")); err != nil {
				t.Fatal(err)
			}
			m, err := sub.NextMsg(5 * time.Second)
			if err != nil || m.Subject != "out.7" {
				t.Fatalf("got %v %v", m, err)
			}
		})
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
