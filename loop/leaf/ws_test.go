package leaf_test

import (
	"fmt"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/tlstest"
)

// wsHub starts a nats-server hub with a websocket listener (wss with
// TLS files) beside its leafnode port, which nats-server needs to take
// leaves on the websocket; the websocket port is in o after.
func wsHub(t *testing.T, f *tlstest.Files, compression string) (*natsserver.Server, *natsserver.Options) {
	t.Helper()
	ho := hubOpts()
	ho.Websocket = natsserver.WebsocketOpts{Host: "127.0.0.1", Port: -1, NoTLS: f == nil}
	if f != nil {
		tc, err := natsserver.GenTLSConfig(&natsserver.TLSConfigOpts{CertFile: f.Cert, KeyFile: f.Key, CaFile: f.CA})
		if err != nil {
			t.Fatal(err)
		}
		ho.Websocket.TLSConfig = tc
	}
	ho.LeafNode.Compression = natsserver.CompressionOpts{Mode: compression}
	return startHub(t, ho), ho
}

// wsRoundTrip checks messages both ways between a leaf and its hub.
func wsRoundTrip(t *testing.T, hubURL, leafURL string, leafHasSubs func(int) bool) {
	t.Helper()
	hnc := connect(t, hubURL)
	lnc := connect(t, leafURL)
	hsub, _ := hnc.SubscribeSync("ws.up")
	lsub, _ := lnc.SubscribeSync("ws.down")
	hnc.Flush()
	lnc.Flush()
	waitFor(t, "interest both ways", func() bool {
		_, e1 := lnc.Request("ws.up", nil, 50*time.Millisecond)
		_, e2 := hnc.Request("ws.down", nil, 50*time.Millisecond)
		return e1 == nats.ErrTimeout && e2 == nats.ErrTimeout
	})
	next(t, hsub)
	next(t, lsub)
	big := make([]byte, 200<<10) // several frames' worth, both ways
	for i := range 20 {
		lnc.Publish("ws.up", fmt.Appendf(nil, "%d", i))
		hnc.Publish("ws.down", fmt.Appendf(nil, "%d", i))
	}
	lnc.Publish("ws.up", big)
	hnc.Publish("ws.down", big)
	for i := range 20 {
		if m := next(t, hsub); string(m.Data) != fmt.Sprint(i) {
			t.Fatalf("hub got %q", m.Data)
		}
		if m := next(t, lsub); string(m.Data) != fmt.Sprint(i) {
			t.Fatalf("leaf got %q", m.Data)
		}
	}
	if m := next(t, hsub); len(m.Data) != len(big) {
		t.Fatalf("hub got %d bytes", len(m.Data))
	}
	if m := next(t, lsub); len(m.Data) != len(big) {
		t.Fatalf("leaf got %d bytes", len(m.Data))
	}
}

// TestLeafWebSocket: an evnats leaf links to a nats-server hub's
// websocket listener with ws:// and wss:// remotes (and s2 inside the
// frames), messages crossing both ways.
func TestLeafWebSocket(t *testing.T) {
	f := tlstest.New(t)
	for _, c := range []struct {
		name, comp string
		tls        bool
	}{{"ws", "off", false}, {"ws-s2", "s2_fast", false}, {"wss", "off", true}} {
		t.Run(c.name, func(t *testing.T) {
			var files *tlstest.Files
			scheme := "ws"
			var to *loop.TLSOptions
			if c.tls {
				files, scheme, to = &f, "wss", &loop.TLSOptions{CAFile: f.CA}
			}
			hub, ho := wsHub(t, files, c.comp)
			u := fmt.Sprintf("%s://127.0.0.1:%d", scheme, ho.Websocket.Port)
			leaf := startLeaf(t, loop.Options{LeafRemotes: []loop.LeafRemote{{URLs: []string{u}, TLS: to, Compression: c.comp}}})
			waitLinked(t, hub, 1, leaf)
			wsRoundTrip(t, hubURL(hub), leaf.ClientURL(), nil)
			if ll := leaf.LeafLinks(); len(ll) != 1 || (c.comp == "s2_fast") != (ll[0].Compression == "s2_fast") {
				t.Fatalf("links %+v", ll)
			}
		})
	}
}

// TestLeafWebSocketConfig: ws:// and wss:// remotes are taken; one remote
// may not mix them with other URLs (nats-server's start-time error).
func TestLeafWebSocketConfig(t *testing.T) {
	o, err := applyConf(t, `leafnodes { remotes = [ { urls: ["ws://hub1:8080", "wss://hub2"] } ] }`)
	if err != nil || len(o.LeafRemotes) != 1 || len(o.LeafRemotes[0].URLs) != 2 {
		t.Fatalf("%v %+v", err, o)
	}
	bad := loop.Options{Port: -1, LogWriter: testLog{}, LeafRemotes: []loop.LeafRemote{{URLs: []string{"ws://127.0.0.1:1", "nats-leaf://127.0.0.1:2"}}}}
	s, err := loop.New(bad)
	if err == nil {
		if err = s.Start(); err == nil {
			s.Shutdown()
		}
	}
	if err == nil || !contains(err.Error(), "cannot have a mix of websocket and non-websocket urls") {
		t.Fatalf("mixed urls: %v", err)
	}
}
