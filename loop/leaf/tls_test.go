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

// tlsHub starts a hub whose leafnode port requires TLS (and, with verify,
// a client certificate from the same CA).
func tlsHub(t *testing.T, f tlstest.Files, verify bool, first ...bool) (*natsserver.Server, *natsserver.Options) {
	t.Helper()
	tc, err := natsserver.GenTLSConfig(&natsserver.TLSConfigOpts{CertFile: f.Cert, KeyFile: f.Key, CaFile: f.CA, Verify: verify})
	if err != nil {
		t.Fatal(err)
	}
	ho := hubOpts()
	ho.LeafNode.TLSConfig = tc
	ho.LeafNode.TLSTimeout = 2
	ho.LeafNode.TLSHandshakeFirst = len(first) > 0 && first[0]
	return startHub(t, ho), ho
}

// TestLeafTLS: the link over TLS, by tls:// URL or tls block, with the
// hub verified by the remote's CA and, where the hub asks, the leaf's
// certificate; a hub the leaf cannot verify is refused with a clear log
// line and the site keeps serving.
func TestLeafTLS(t *testing.T) {
	f := tlstest.New(t)
	for _, c := range []struct {
		name   string
		verify bool
		first  bool
		url    string
		tls    *loop.TLSOptions
	}{
		{"tls-url", false, false, "tls://127.0.0.1:%d", &loop.TLSOptions{CAFile: f.CA}},
		{"tls-block", false, false, "nats-leaf://127.0.0.1:%d", &loop.TLSOptions{CAFile: f.CA}},
		{"client-cert", true, false, "tls://127.0.0.1:%d", &loop.TLSOptions{CAFile: f.CA, CertFile: f.ClientCert, KeyFile: f.ClientKey}},
		{"handshake-first", false, true, "tls://127.0.0.1:%d", &loop.TLSOptions{CAFile: f.CA, HandshakeFirst: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			hub, ho := tlsHub(t, f, c.verify, c.first)
			o := loop.Options{LeafRemotes: []loop.LeafRemote{{URLs: []string{fmt.Sprintf(c.url, ho.LeafNode.Port)}, TLS: c.tls}}}
			leaf := startLeaf(t, o)
			waitLinked(t, hub, 1, leaf)
			lz, _ := hub.Leafz(nil)
			if len(lz.Leafs) != 1 {
				t.Fatal("no leaf in leafz")
			}
			hnc := connect(t, hubURL(hub))
			hsub, _ := hnc.SubscribeSync("secure")
			hnc.Flush()
			waitLeafSubs(t, leaf, 1)
			lnc := connect(t, leaf.ClientURL())
			lnc.Publish("secure", []byte("s"))
			if m := next(t, hsub); string(m.Data) != "s" {
				t.Fatalf("hub got %q", m.Data)
			}
		})
	}
	t.Run("unverified-hub", func(t *testing.T) {
		hub, ho := tlsHub(t, f, false)
		var log looptest.LogBuffer
		o := loop.Options{LogWriter: &log, LeafRemotes: []loop.LeafRemote{{URLs: []string{leafURL(ho, "")}}}}
		leaf := startLeaf(t, o)
		waitFor(t, "the TLS failure in the log", func() bool { return contains(log.String(), "TLS handshake with hub") })
		if hub.NumLeafNodes() != 0 {
			t.Fatal("linked to a hub it cannot verify")
		}
		localService(t, leaf)
	})
}

// TestHubTLS: an evnats hub whose leafnode port requires TLS takes a
// nats-server leaf and an evnats leaf that verify it (and, with verify,
// show their own certificates).
func TestHubTLS(t *testing.T) {
	f := tlstest.New(t)
	for _, verify := range []bool{false, true} {
		t.Run(fmt.Sprintf("verify=%v", verify), func(t *testing.T) {
			var log looptest.LogBuffer
			defer func() {
				if t.Failed() {
					t.Log(log.String())
				}
			}()
			hub := startHubEvnats(t, loop.Options{LogWriter: &log, LeafTLS: &loop.TLSOptions{CertFile: f.Cert, KeyFile: f.Key, CAFile: f.CA, Verify: verify}})
			tc, err := natsserver.GenTLSConfig(&natsserver.TLSConfigOpts{CertFile: f.ClientCert, KeyFile: f.ClientKey, CaFile: f.CA})
			if err != nil {
				t.Fatal(err)
			}
			tc.RootCAs = tc.ClientCAs // as nats-server's remote tls block does with ca_file
			lu, _ := url.Parse("tls://" + hub.LeafAddr().String())
			ns := startHub(t, &natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
				LeafNode: natsserver.LeafNodeOpts{ReconnectInterval: 50 * time.Millisecond,
					Remotes: []*natsserver.RemoteLeafOpts{{URLs: []*url.URL{lu}, TLS: true, TLSConfig: tc}}}})
			edge := startLeaf(t, loop.Options{LeafRemotes: []loop.LeafRemote{{URLs: []string{"tls://" + hub.LeafAddr().String()},
				TLS: &loop.TLSOptions{CAFile: f.CA, CertFile: f.ClientCert, KeyFile: f.ClientKey}}}})
			waitFor(t, "the nats-server leaf linked", func() bool { return ns.NumLeafNodes() == 1 })
			hnc := connect(t, hub.ClientURL())
			hsub, _ := hnc.SubscribeSync("up")
			hnc.Flush()
			for _, l := range []string{ns.ClientURL(), edge.ClientURL()} {
				lnc := connect(t, l)
				waitFor(t, "hub interest at the leaf", func() bool {
					_, err := lnc.Request("up", nil, 50*time.Millisecond)
					return err == nats.ErrTimeout
				})
				next(t, hsub)
				lnc.Publish("up", []byte("tls"))
				if m := next(t, hsub); string(m.Data) != "tls" {
					t.Fatalf("hub got %q", m.Data)
				}
			}
			if verify { // a leaf without a certificate is turned away
				startLeaf(t, loop.Options{LeafRemotes: []loop.LeafRemote{{URLs: []string{"tls://" + hub.LeafAddr().String()},
					TLS: &loop.TLSOptions{CAFile: f.CA}}}})
				waitFor(t, "the refusal in the hub's log", func() bool { return contains(log.String(), "TLS handshake: tls: client didn't provide a certificate") })
			}
		})
	}
}
