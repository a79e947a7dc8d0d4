package leaf_test

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
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
	big := make([]byte, 200<<10) // several frames' worth, both ways
	for i := range 20 {
		lnc.Publish("ws.up", fmt.Appendf(nil, "%d", i))
		hnc.Publish("ws.down", fmt.Appendf(nil, "%d", i))
	}
	lnc.Publish("ws.up", big)
	hnc.Publish("ws.down", big)
	for i := range 20 {
		if m := nextData(t, hsub); string(m.Data) != fmt.Sprint(i) {
			t.Fatalf("hub got %q", m.Data)
		}
		if m := nextData(t, lsub); string(m.Data) != fmt.Sprint(i) {
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

// nextData is the next message with a payload: the empty probes that
// found interest come first, as many as got through.
func nextData(t *testing.T, sub *nats.Subscription) *nats.Msg {
	t.Helper()
	for {
		if m := next(t, sub); len(m.Data) > 0 {
			return m
		}
	}
}

// TestLeafWebSocket: an evnats leaf links to a nats-server hub's
// websocket listener with ws:// and wss:// remotes (and s2 inside the
// frames), messages crossing both ways.
func TestLeafWebSocket(t *testing.T) {
	f := tlstest.New(t)
	for _, c := range []struct {
		name, comp string
		tls, mask  bool
	}{{"ws", "off", false, false}, {"ws-s2", "s2_fast", false, false}, {"wss", "off", true, false}, {"ws-masked", "off", false, true}} {
		t.Run(c.name, func(t *testing.T) {
			var files *tlstest.Files
			scheme := "ws"
			var to *loop.TLSOptions
			if c.tls {
				files, scheme, to = &f, "wss", &loop.TLSOptions{CAFile: f.CA}
			}
			hub, ho := wsHub(t, files, c.comp)
			u := fmt.Sprintf("%s://127.0.0.1:%d", scheme, ho.Websocket.Port)
			leaf := startLeaf(t, loop.Options{LeafRemotes: []loop.LeafRemote{{URLs: []string{u}, TLS: to, Compression: c.comp, WSMasking: c.mask}}})
			waitLinked(t, hub, 1, leaf)
			wsRoundTrip(t, hubURL(hub), leaf.ClientURL(), nil)
			if ll := leaf.LeafLinks(); len(ll) != 1 || (c.comp == "s2_fast") != (ll[0].Compression == "s2_fast") {
				t.Fatalf("links %+v", ll)
			}
		})
	}
}

// TestLeafWebSocketConfig: ws:// and wss:// remotes are taken, with
// ws_no_masking; one remote may not mix them with other URLs
// (nats-server's start-time error).
func TestLeafWebSocketConfig(t *testing.T) {
	o, err := applyConf(t, `leafnodes { remotes = [ { urls: ["ws://hub1:8080", "wss://hub2"] } ] }`)
	if err != nil || len(o.LeafRemotes) != 1 || len(o.LeafRemotes[0].URLs) != 2 || o.LeafRemotes[0].WSMasking {
		t.Fatalf("%v %+v", err, o)
	}
	o, err = applyConf(t, `leafnodes { remotes = [ { url: "ws://hub1:8080", ws_no_masking: false } ] }`)
	if err != nil || !o.LeafRemotes[0].WSMasking {
		t.Fatalf("ws_no_masking false: %v %+v", err, o)
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

// wsEvnatsHub starts an evnats hub with a leafnode port and a websocket
// listener (wss with TLS files).
func wsEvnatsHub(t *testing.T, f *tlstest.Files, o loop.Options) *loop.Server {
	t.Helper()
	o.Websocket = loop.WebsocketOptions{Host: "127.0.0.1", Port: -1, NoTLS: f == nil}
	if f != nil {
		o.Websocket.TLS = &loop.TLSOptions{CertFile: f.Cert, KeyFile: f.Key}
	}
	return startHubEvnats(t, o)
}

// TestHubWebSocket: an evnats hub takes leaves on its websocket listener
// at /leafnode: nats-server leaves with ws:// and wss:// remotes (masked
// frames, as nats-server sends them) and an evnats leaf with a ws://
// remote; all on gnet and the goroutine transport.
func TestHubWebSocket(t *testing.T) {
	f := tlstest.New(t)
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		for _, c := range []struct {
			name string
			tls  bool
		}{{"ws", false}, {"wss", true}} {
			t.Run(c.name, func(t *testing.T) {
				var files *tlstest.Files
				scheme := "ws"
				if c.tls {
					files, scheme = &f, "wss"
				}
				hub := wsEvnatsHub(t, files, o)
				u, _ := url.Parse(fmt.Sprintf("%s://%s", scheme, hub.WebsocketAddr()))
				r := &natsserver.RemoteLeafOpts{URLs: []*url.URL{u}}
				if c.tls {
					tc, err := natsserver.GenTLSConfig(&natsserver.TLSConfigOpts{CertFile: f.ClientCert, KeyFile: f.ClientKey, CaFile: f.CA})
					if err != nil {
						t.Fatal(err)
					}
					tc.RootCAs = tc.ClientCAs // as nats-server's remote tls block does with ca_file
					r.TLS, r.TLSConfig = true, tc
				}
				no := &natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
					LeafNode: natsserver.LeafNodeOpts{ReconnectInterval: 50 * time.Millisecond, Remotes: []*natsserver.RemoteLeafOpts{r}}}
				leaf := startHub(t, no)
				waitFor(t, "the nats-server leaf linked", func() bool { return leaf.NumLeafNodes() == 1 && len(hub.LeafLinks()) == 1 })
				wsRoundTrip(t, hub.ClientURL(), leaf.ClientURL(), nil)
				if !c.tls {
					ev := startLeaf(t, loop.Options{}, "ws://"+hub.WebsocketAddr().String())
					waitFor(t, "the evnats leaf linked", func() bool { return len(ev.LeafLinks()) == 1 && len(hub.LeafLinks()) == 2 })
					wsRoundTrip(t, hub.ClientURL(), ev.ClientURL(), nil)
				}
			})
		}
	})
}

// TestHubWebSocketNoLeafPort: without leafnodes { port } a leaf on the
// websocket listener is refused, as nats-server refuses it.
func TestHubWebSocketNoLeafPort(t *testing.T) {
	var log looptest.LogBuffer
	o := loop.Options{LogWriter: &log, Websocket: loop.WebsocketOptions{Host: "127.0.0.1", Port: -1, NoTLS: true}}
	hub := looptest.Start(t, o)
	ev := startLeaf(t, loop.Options{}, "ws://"+hub.WebsocketAddr().String())
	waitFor(t, "the refusal logged", func() bool { return contains(log.String(), "Not configured to accept leaf node connections") })
	if len(ev.LeafLinks()) != 0 {
		t.Fatal("linked")
	}
}
