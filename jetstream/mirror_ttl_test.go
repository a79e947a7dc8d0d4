package jetstream_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// mirrorTTLScenario copies messages with and without Nats-TTL into
// mirrors and sources with and without allow_msg_ttl, waits for the TTL to
// pass, and reports what each holds, then turns TTLs on where they were
// off.
func mirrorTTLScenario(t *testing.T, url string) []string {
	_, js := dial(t, url)
	var out []string
	if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "O", Subjects: []string{"o"}, AllowMsgTTL: true}); err != nil {
		t.Fatal(err)
	}
	cfgs := []jetstream.StreamConfig{
		{Name: "M1", Mirror: &jetstream.StreamSource{Name: "O"}, AllowMsgTTL: true},
		{Name: "M2", Mirror: &jetstream.StreamSource{Name: "O"}},
		{Name: "S1", Sources: []*jetstream.StreamSource{{Name: "O"}}, AllowMsgTTL: true},
		{Name: "S2", Sources: []*jetstream.StreamSource{{Name: "O"}}},
	}
	for _, cfg := range cfgs {
		if _, err := js.CreateStream(ctx(t), cfg); err != nil {
			t.Fatal(err)
		}
	}
	_, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "MD", Mirror: &jetstream.StreamSource{Name: "O"}, SubjectDeleteMarkerTTL: time.Second})
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		out = append(out, fmt.Sprintf("mirror with markers: %d %s", apiErr.ErrorCode, apiErr.Description))
	} else {
		out = append(out, fmt.Sprintf("mirror with markers: %v", err))
	}
	msg := nats.NewMsg("o")
	msg.Header.Set("Nats-TTL", "1s")
	msg.Data = []byte("expires")
	if _, err := js.PublishMsg(ctx(t), msg); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx(t), "o", []byte("stays")); err != nil {
		t.Fatal(err)
	}
	for _, cfg := range cfgs {
		until(t, cfg.Name+" copies", func() bool { return streamInfo(t, js, cfg.Name).State.Msgs == 2 })
	}
	for _, name := range []string{"M1", "S1"} {
		m := getMsg(t, js, name, 1)
		out = append(out, fmt.Sprintf("%s first: %s ttl %q", name, m.Data, m.Header.Get("Nats-TTL")))
	}
	for _, name := range []string{"O", "M1", "S1"} {
		until(t, name+" expiry", func() bool { return streamInfo(t, js, name).State.Msgs == 1 })
	}
	for _, name := range []string{"O", "M1", "M2", "S1", "S2"} {
		s := streamInfo(t, js, name).State
		out = append(out, fmt.Sprintf("%s after the TTL: %d msgs, first %d", name, s.Msgs, s.FirstSeq))
	}
	for _, cfg := range cfgs[1:4:4] {
		if cfg.Name == "S1" {
			continue
		}
		// A copy's TTL runs from its stored time (a source's: when it
		// was copied, which differs between servers): wait it out.
		time.Sleep(time.Until(getMsg(t, js, cfg.Name, 1).Time.Add(1100 * time.Millisecond)))
		cfg.AllowMsgTTL = true
		st, err := js.UpdateStream(ctx(t), cfg)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s with TTLs turned on: %d msgs", cfg.Name, st.CachedInfo().State.Msgs))
	}
	return out
}

// TestMirrorTTLDifferential: a mirror or source with allow_msg_ttl expires
// copies per their Nats-TTL (a mirror's from the origin's time), one
// without keeps them until TTLs are turned on, and a mirror can not have
// delete markers, as in nats-server.
func TestMirrorTTLDifferential(t *testing.T) {
	differential(t, mirrorTTLScenario)
}

// publishBodies publishes prefix1..prefixN to subject.
func publishBodies(t *testing.T, js jetstream.JetStream, subject, prefix string, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		if _, err := js.Publish(ctx(t), subject, []byte(fmt.Sprintf("%s%d", prefix, i))); err != nil {
			t.Fatalf("publish %s%d: %v", prefix, i, err)
		}
	}
}

// TestSourceResumesAfterOriginRecreated: when the origin is deleted and
// created again (its sequences start over) a source starts over from its
// configured start, as nats-server 2.15 does (its
// TestJetStreamSourceStreamRecreated and ...RespectsStartSeq), while a
// mirror, which keeps the origin's sequences, goes on after its last one.
// Across a restart the origin's identity in Nats-Stream-Source tells an
// unchanged origin (nothing copied again) from a recreated one.
func TestSourceResumesAfterOriginRecreated(t *testing.T) {
	dir := t.TempDir()
	s := startJS(t, loop.Options{StoreDir: dir})
	nc, js := connectJS(t, s)
	origin := jetstream.StreamConfig{Name: "O", Subjects: []string{"o"}}
	recreate := func(js jetstream.JetStream) {
		t.Helper()
		if err := js.DeleteStream(ctx(t), "O"); err != nil {
			t.Fatal(err)
		}
		if _, err := js.CreateStream(ctx(t), origin); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.CreateStream(ctx(t), origin); err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []jetstream.StreamConfig{
		{Name: "S", Sources: []*jetstream.StreamSource{{Name: "O"}}},
		{Name: "S6", Sources: []*jetstream.StreamSource{{Name: "O", OptStartSeq: 6}}},
		{Name: "M", Mirror: &jetstream.StreamSource{Name: "O"}},
	} {
		if _, err := js.CreateStream(ctx(t), cfg); err != nil {
			t.Fatal(err)
		}
	}
	body := func(js jetstream.JetStream, stream string, seq uint64) string {
		return string(getMsg(t, js, stream, seq).Data)
	}
	msgs := func(js jetstream.JetStream, stream string, n uint64) func() bool {
		return func() bool { return streamInfo(t, js, stream).State.Msgs == n }
	}
	publishBodies(t, js, "o", "a", 1, 10)
	until(t, "first copies", func() bool { return msgs(js, "S", 10)() && msgs(js, "S6", 5)() && msgs(js, "M", 10)() })

	recreate(js)
	publishBodies(t, js, "o", "b", 1, 10)
	until(t, "copies of the new origin", func() bool { return msgs(js, "S", 20)() && msgs(js, "S6", 10)() })
	if b := body(js, "S", 11); b != "b1" {
		t.Errorf("source after the recreated origin: %q, want b1", b)
	}
	if b := body(js, "S6", 6); b != "b6" {
		t.Errorf("source with start 6 after the recreated origin: %q, want b6", b)
	}
	if n := streamInfo(t, js, "M").State.Msgs; n != 10 {
		t.Errorf("mirror copied the recreated origin's sequences below its own: %d msgs", n)
	}
	publishBodies(t, js, "o", "b", 11, 11)
	until(t, "the mirror past its last sequence", msgs(js, "M", 11))
	if b := body(js, "M", 11); b != "b11" {
		t.Errorf("mirror seq 11: %q", b)
	}
	until(t, "b11 sourced", func() bool { return msgs(js, "S", 21)() && msgs(js, "S6", 11)() })

	nc.Close()
	s.Shutdown()
	s2 := startJS(t, loop.Options{StoreDir: dir})
	_, js2 := connectJS(t, s2)
	publishBodies(t, js2, "o", "b", 12, 12)
	until(t, "b12 sourced after the restart", func() bool { return msgs(js2, "S", 22)() && msgs(js2, "S6", 12)() })
	if b := body(js2, "S", 22); b != "b12" {
		t.Errorf("after the restart the source copied %q, want b12 only", b)
	}
	recreate(js2)
	publishBodies(t, js2, "o", "c", 1, 3)
	until(t, "copies of the origin recreated after the restart", msgs(js2, "S", 25))
	if b := body(js2, "S", 23); b != "c1" {
		t.Errorf("source after the origin was recreated again: %q, want c1", b)
	}
}
