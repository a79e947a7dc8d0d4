package leaf_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/evnats/evnats/loop"
)

// monGet fetches path from s's monitor.
func monGet(t *testing.T, s *loop.Server, path string) []byte {
	t.Helper()
	resp, err := http.Get("http://" + s.MonitorAddr().String() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %v %s", path, resp.StatusCode, err, b)
	}
	return b
}

// TestLeafMonitor: an evnats leaf linked to a nats-server hub shows the
// link in /leafz (as nats-server's Leafz decodes it), its subscriptions
// with ?subs=1, the count in /varz and per-link figures in /metrics.
func TestLeafMonitor(t *testing.T) {
	ho := hubOpts()
	hub := startHub(t, ho)
	leaf := startLeaf(t, loop.Options{HTTPPort: -1}, leafURL(ho, ""))
	waitLinked(t, hub, 1, leaf)

	hnc := connect(t, hubURL(hub))
	lnc := connect(t, leaf.ClientURL())
	hsub, _ := hnc.SubscribeSync("mon.up")
	hnc.QueueSubscribeSync("mon.q", "workers")
	hnc.Flush()
	waitLeafSubs(t, leaf, 2)
	for range 3 {
		lnc.Publish("mon.up", []byte("hello"))
	}
	for range 3 {
		next(t, hsub)
	}

	var lz natsserver.Leafz
	if err := json.Unmarshal(monGet(t, leaf, "/leafz?subs=1"), &lz); err != nil {
		t.Fatal(err)
	}
	if lz.ID != leaf.ID() || lz.NumLeafs != 1 || len(lz.Leafs) != 1 {
		t.Fatalf("leafz %+v", lz)
	}
	l := lz.Leafs[0]
	if l.Name != hub.Name() || !l.IsSpoke || l.Account != "$G" || l.IP != "127.0.0.1" || l.Port != ho.LeafNode.Port ||
		l.OutMsgs != 3 || l.OutBytes != 15 || int(l.NumSubs) != len(l.Subs) || int(l.NumSubs) != hubBase+2 {
		t.Fatalf("leaf %+v", l)
	}
	if !slices.Contains(l.Subs, "mon.up") || !slices.Contains(l.Subs, "mon.q workers") {
		t.Fatalf("subs %q", l.Subs)
	}
	// Without subs=1 the list is left out; another account has none.
	lz = natsserver.Leafz{}
	json.Unmarshal(monGet(t, leaf, "/leafz"), &lz)
	if len(lz.Leafs) != 1 || lz.Leafs[0].Subs != nil {
		t.Fatalf("leafz %+v", lz.Leafs)
	}
	lz = natsserver.Leafz{}
	json.Unmarshal(monGet(t, leaf, "/leafz?acc=OTHER"), &lz)
	if lz.NumLeafs != 0 || len(lz.Leafs) != 0 {
		t.Fatalf("leafz acc=OTHER %+v", lz)
	}

	// The hub's own view of the same link agrees on what crossed it.
	hz, err := hub.Leafz(nil)
	if err != nil || len(hz.Leafs) != 1 || hz.Leafs[0].InMsgs != 3 || hz.Leafs[0].IsSpoke {
		t.Fatalf("hub leafz %+v %v", hz, err)
	}

	var v natsserver.Varz
	json.Unmarshal(monGet(t, leaf, "/varz"), &v)
	if v.Leafs != 1 {
		t.Fatalf("varz leafnodes %d", v.Leafs)
	}
	m := string(monGet(t, leaf, "/metrics"))
	want := fmt.Sprintf(`evnats_leafnode_out_msgs_total{account="$G",id="%d",is_spoke="true",name="%s"} 3`, l.ID, hub.Name())
	if !strings.Contains(m, "evnats_leafnodes 1") || !strings.Contains(m, want) {
		t.Fatalf("metrics lack %q:\n%s", want, grepLines(m, "leafnode"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
