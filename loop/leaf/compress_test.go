package leaf_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/evnats/evnats/loop"
)

// TestLeafCompression: s2 on the link, negotiated as nats-server does,
// for combinations of the hub's and the leaf's modes; messages (big and
// compressible, and small) cross both ways and the hub reports the mode.
func TestLeafCompression(t *testing.T) {
	for _, c := range []struct{ hub, leaf, want string }{
		// want is the hub side's mode: its own, unless it only accepts.
		{"s2_fast", "", "s2_fast"},
		{"s2_auto", "s2_best", "s2_uncompressed"}, // the hub's s2_auto on a local RTT
		{"s2_better", "accept", "s2_better"},
		{"accept", "s2_fast", "s2_fast"},
		{"accept", "accept", "off"},
		{"off", "s2_fast", "off"},
		{"s2_fast", "off", "off"},
	} {
		t.Run(fmt.Sprintf("hub=%s,leaf=%s", c.hub, c.leaf), func(t *testing.T) {
			ho := hubOpts()
			ho.LeafNode.Compression = natsserver.CompressionOpts{Mode: c.hub}
			if c.hub == "s2_auto" {
				// First RTT threshold 1 s (default 10 ms): a loaded test
				// machine's RTT still counts as local, and the hub does not
				// switch to s2_best (slow under -race) mid-test.
				ho.LeafNode.Compression.RTTThresholds = []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}
			}
			hub := startHub(t, ho)
			o := loop.Options{}
			o.LeafRemotes = []loop.LeafRemote{{URLs: []string{leafURL(ho, "")}, Compression: c.leaf}}
			o.LeafReconnect = 50e6
			leaf := startLeaf(t, o, leafURL(ho, ""))
			waitLinked(t, hub, 1, leaf)
			lz, err := hub.Leafz(nil)
			if err != nil || len(lz.Leafs) != 1 {
				t.Fatalf("leafz: %v", err)
			}
			if got := lz.Leafs[0].Compression; got != c.want && !(c.want == "off" && got == "") {
				t.Errorf("hub-side compression %q, want %q", got, c.want)
			}
			hnc := connect(t, hubURL(hub))
			lnc := connect(t, leaf.ClientURL())
			hsub, _ := hnc.SubscribeSync("up")
			lsub, _ := lnc.SubscribeSync("down")
			hnc.Flush()
			lnc.Flush()
			waitHubInterest(t, hub, "down", 1)
			waitLeafSubs(t, leaf, 2)
			big := bytes.Repeat([]byte("compressible "), 20000)
			for i := range 50 {
				p := big
				if i%2 == 1 {
					p = fmt.Appendf(nil, "small %d", i)
				}
				lnc.Publish("up", p)
				hnc.Publish("down", p)
			}
			for i := range 50 {
				want := big
				if i%2 == 1 {
					want = fmt.Appendf(nil, "small %d", i)
				}
				if m := next(t, hsub); !bytes.Equal(m.Data, want) {
					t.Fatalf("hub got %d bytes, want %d", len(m.Data), len(want))
				}
				if m := next(t, lsub); !bytes.Equal(m.Data, want) {
					t.Fatalf("leaf got %d bytes, want %d", len(m.Data), len(want))
				}
			}
		})
	}
}
