package leaf_test

import (
	"fmt"
	"net/url"
	"os"
	"sync/atomic"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/evnats/evnats/loop"
)

// TestLeafMeasureThroughput (LEAF_MEASURE=1) measures messages/s from a
// publisher on a leaf to a subscriber on a nats-server hub and back, with
// an evnats leaf and with a nats-server leaf in the same place. A rough,
// one-box number, not a benchmark: the hub, both leaves and the clients
// share the CPUs.
func TestLeafMeasureThroughput(t *testing.T) {
	if os.Getenv("LEAF_MEASURE") == "" {
		t.Skip("set LEAF_MEASURE=1")
	}
	const n, size = 500_000, 128
	run := func(name, pubURL, subURL string) {
		hnc := connect(t, subURL)
		got := make(chan struct{})
		var count atomic.Int64
		sub, _ := hnc.Subscribe("measure", func(*nats.Msg) {
			if count.Add(1) == n {
				close(got)
			}
		})
		sub.SetPendingLimits(-1, -1)
		hnc.Flush()
		lnc := connect(t, pubURL)
		waitFor(t, "interest at "+name, func() bool {
			_, err := lnc.Request("measure", nil, 50*time.Millisecond)
			return err == nats.ErrTimeout
		})
		<-time.After(100 * time.Millisecond)
		count.Store(0) // the probes
		hnc.Flush()
		payload := make([]byte, size)
		start := time.Now()
		for range n {
			lnc.Publish("measure", payload)
		}
		select {
		case <-got:
		case <-time.After(60 * time.Second):
			t.Fatalf("%s: %d of %d", name, count.Load(), n)
		}
		d := time.Since(start)
		t.Logf("%-28s %d msgs of %d B in %v: %.0f msgs/s", name, n, size, d.Round(time.Millisecond), float64(n)/d.Seconds())
		sub.Unsubscribe()
	}
	for _, comp := range []string{"off", "s2_auto"} {
		ho := hubOpts()
		ho.LeafNode.Compression = natsserver.CompressionOpts{Mode: comp}
		hub := startHub(t, ho)
		ev := startLeaf(t, loop.Options{LeafRemotes: []loop.LeafRemote{{URLs: []string{leafURL(ho, "")}, Compression: comp}}})
		u, _ := url.Parse(leafURL(ho, ""))
		no := &natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
			LeafNode: natsserver.LeafNodeOpts{Remotes: []*natsserver.RemoteLeafOpts{{URLs: []*url.URL{u},
				Compression: natsserver.CompressionOpts{Mode: comp}}}}}
		ns := startHub(t, no)
		waitLinked(t, hub, 2)
		run(fmt.Sprintf("evnats leaf->hub %s", comp), ev.ClientURL(), hub.ClientURL())
		run(fmt.Sprintf("nats-server leaf->hub %s", comp), ns.ClientURL(), hub.ClientURL())
		run(fmt.Sprintf("hub->evnats leaf %s", comp), hub.ClientURL(), ev.ClientURL())
		run(fmt.Sprintf("hub->nats-server leaf %s", comp), hub.ClientURL(), ns.ClientURL())
	}
}
