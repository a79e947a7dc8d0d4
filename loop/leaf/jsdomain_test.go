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
	"github.com/evnats/evnats/loop/looptest"
)

// TestLeafJetStreamDomain: an evnats leaf with jetstream { domain: edge }
// is reached from a nats-server hub with the $JS.edge.API prefix: a hub
// client creates a stream on the edge, publishes to it across the link,
// and consumes with acks that cross back.
func TestLeafJetStreamDomain(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		ho := hubOpts()
		hub := startHub(t, ho)
		o.JetStream, o.StoreDir, o.JetStreamDomain = true, t.TempDir(), "edge"
		leaf := startLeaf(t, o, leafURL(ho, ""))
		waitFor(t, "linked", func() bool { return hub.NumLeafNodes() == 1 })
		waitHubInterest(t, hub, "$JS.edge.API.STREAM.INFO.X", 1)

		hnc := connect(t, hubURL(hub))
		js, err := jetstream.NewWithDomain(hnc, "edge")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SITE", Subjects: []string{"site.>"}})
		if err != nil {
			t.Fatal(err)
		}
		waitHubInterest(t, hub, "site.temp", 1)
		for i := range 3 {
			ack, err := js.Publish(ctx, "site.temp", fmt.Appendf(nil, "t%d", i))
			if err != nil || ack.Stream != "SITE" || ack.Sequence != uint64(i+1) || ack.Domain != "edge" {
				t.Fatalf("publish %d: %+v %v", i, ack, err)
			}
		}
		// The stream is the leaf's: a leaf client sees it without prefix.
		ljs, _ := jetstream.New(connect(t, leaf.ClientURL()))
		if ls, err := ljs.Stream(ctx, "SITE"); err != nil || ls.CachedInfo().State.Msgs != 3 {
			t.Fatalf("leaf's view: %v", err)
		}

		c, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "hq", AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			t.Fatal(err)
		}
		batch, err := c.Fetch(3, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			// Shown under the stream's subject, though routed on the
			// fetch's inbox across the link.
			if string(m.Data()) != fmt.Sprintf("t%d", n) || m.Subject() != "site.temp" {
				t.Fatalf("got %q on %s", m.Data(), m.Subject())
			}
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatalf("ack %d: %v", n, err)
			}
			n++
		}
		if n != 3 || batch.Error() != nil {
			t.Fatalf("fetched %d: %v", n, batch.Error())
		}
		ci, err := c.Info(ctx)
		if err != nil || ci.NumAckPending != 0 || ci.AckFloor.Stream != 3 {
			t.Fatalf("consumer %+v %v", ci, err)
		}
		// Account info through the domain prefix (the INFO mapping).
		if ai, err := js.AccountInfo(ctx); err != nil || ai.Domain != "edge" {
			t.Fatalf("account info: %+v %v", ai, err)
		}
	})
}

// TestLeafJetStreamDomainHubJS: with JetStream on both sides (hub domain
// "hub", leaf domain "edge"), each side's plain API is answered by its own
// JetStream only, the hub reaches the leaf's by domain, and a hub stream
// sources the leaf's stream through the edge domain.
func TestLeafJetStreamDomainHubJS(t *testing.T) {
	ho := hubOpts()
	ho.JetStream, ho.StoreDir, ho.JetStreamDomain = true, t.TempDir(), "hub"
	hub := startHub(t, ho)
	o := loop.Options{JetStream: true, StoreDir: t.TempDir(), JetStreamDomain: "edge"}
	leaf := startLeaf(t, o, leafURL(ho, ""))
	waitFor(t, "linked", func() bool { return hub.NumLeafNodes() == 1 })
	waitHubInterest(t, hub, "$JS.edge.API.STREAM.INFO.X", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()

	hnc := connect(t, hubURL(hub))
	lnc := connect(t, leaf.ClientURL())
	hjs, _ := jetstream.New(hnc)
	ljs, _ := jetstream.New(lnc)
	if _, err := ljs.CreateStream(ctx, jetstream.StreamConfig{Name: "SITE", Subjects: []string{"site.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := hjs.CreateStream(ctx, jetstream.StreamConfig{Name: "CENTRAL", Subjects: []string{"central.>"}}); err != nil {
		t.Fatal(err)
	}
	// Each plain API lists its own streams only.
	for name, js := range map[string]jetstream.JetStream{"SITE": ljs, "CENTRAL": hjs} {
		var got []string
		for n := range js.StreamNames(ctx).Name() {
			got = append(got, n)
		}
		if len(got) != 1 || got[0] != name {
			t.Fatalf("streams %v, want [%s]", got, name)
		}
	}
	for i := range 3 {
		if _, err := ljs.Publish(ctx, "site.temp", fmt.Appendf(nil, "t%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	ejs, _ := jetstream.NewWithDomain(hnc, "edge")
	if s, err := ejs.Stream(ctx, "SITE"); err != nil || s.CachedInfo().State.Msgs != 3 {
		t.Fatalf("SITE by domain: %v", err)
	}

	// A hub stream sourcing the leaf's, through the edge domain.
	agg, err := hjs.CreateStream(ctx, jetstream.StreamConfig{Name: "AGG",
		Sources: []*jetstream.StreamSource{{Name: "SITE", Domain: "edge"}}})
	if err != nil {
		t.Fatal(err)
	}
	debugState = func() any {
		si, err := agg.Info(ctx)
		if err != nil {
			return err
		}
		return si.Sources[0].Error
	}
	waitFor(t, "AGG sourcing 3 messages", func() bool {
		si, err := agg.Info(ctx)
		return err == nil && si.State.Msgs == 3
	})
	m, err := agg.GetMsg(ctx, 3)
	if err != nil || string(m.Data) != "t2" || m.Subject != "site.temp" {
		t.Fatalf("AGG msg 3: %+v %v", m, err)
	}
}

// TestHubJetStreamDomainOfNatsLeaf: evnats as the hub, a nats-server leaf
// with JetStream in domain "edge": an evnats client reaches the leaf's
// JetStream by domain, and pulled messages (sent by nats-server routed on
// the fetch inbox, the stream's subject after '@' in the ack reply) show
// the stream's subject, with acks crossing back.
func TestHubJetStreamDomainOfNatsLeaf(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		hub := startHubEvnats(t, o)
		lo := &natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
			JetStream: true, StoreDir: t.TempDir(), JetStreamDomain: "edge",
			LeafNode: natsserver.LeafNodeOpts{ReconnectInterval: 50 * time.Millisecond,
				Remotes: []*natsserver.RemoteLeafOpts{{URLs: []*url.URL{hubLeafURL(t, hub, "")}}}}}
		startHub(t, lo)
		waitFor(t, "the leaf's domain API at the hub", func() bool { return hubHas(hub, "$G", "$JS.edge.API.STREAM.>") })

		hnc := connect(t, hub.ClientURL())
		js, _ := jetstream.NewWithDomain(hnc, "edge")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SITE", Subjects: []string{"site.>"}})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the stream's subjects at the hub", func() bool { return hubHas(hub, "$G", "site.>") })
		for i := range 2 {
			if _, err := js.Publish(ctx, "site.temp", fmt.Appendf(nil, "t%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		c, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "hq", AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			t.Fatal(err)
		}
		batch, err := c.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			if string(m.Data()) != fmt.Sprintf("t%d", n) || m.Subject() != "site.temp" {
				t.Fatalf("got %q on %s", m.Data(), m.Subject())
			}
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != 2 {
			t.Fatalf("fetched %d: %v", n, batch.Error())
		}
	})
}
