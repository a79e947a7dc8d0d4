package jetstream_test

import (
	"testing"

	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// differential runs scenario against evnats and against an in-process
// nats-server and reports each line where their outcomes differ.
func differential(t *testing.T, scenario func(t *testing.T, url string) []string) {
	t.Helper()
	s := startJS(t, loop.Options{})
	got := scenario(t, s.ClientURL())
	want := scenario(t, startReferenceJS(t))
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("line %d:\n evnats      %s\n nats-server %s", i, g, w)
		}
	}
}

// dial connects a scenario to the server at url; closed when the test ends.
func dial(t *testing.T, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}
