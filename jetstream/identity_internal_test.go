package jetstream

import (
	"context"
	"strings"
	"testing"
	"time"

	server "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestIdentityMatchesNatsServer checks identityOf against what nats-server
// writes: its source header's sixth field for an origin is that origin's
// identity, computed here from the creation time its stream info reports.
func TestIdentityMatchesNatsServer(t *testing.T) {
	opts := &server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, JetStream: true, StoreDir: t.TempDir()}
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	defer ns.Shutdown()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	o, err := js.CreateStream(c, jetstream.StreamConfig{Name: "O", Subjects: []string{"o"}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.CreateStream(c, jetstream.StreamConfig{Name: "S", Sources: []*jetstream.StreamSource{{Name: "O"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(c, "o", nil); err != nil {
		t.Fatal(err)
	}
	var hdr string
	for deadline := time.Now().Add(10 * time.Second); hdr == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m, err := s.GetMsg(c, 1); err == nil {
			hdr = m.Header.Get(hdrStreamSource)
		}
	}
	f := strings.Split(hdr, " ")
	if len(f) != 6 {
		t.Fatalf("nats-server's source header %q has no identity", hdr)
	}
	if got := identityOf(o.CachedInfo().Created); got != f[5] {
		t.Fatalf("identity of %v: %q, nats-server wrote %q", o.CachedInfo().Created, got, f[5])
	}
}
