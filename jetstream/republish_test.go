package jetstream_test

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// republishScenario drives one server through republish configs and
// publishes, and returns what a core subscriber on the destinations saw
// (subject, headers except the time stamp's value, body) and the create
// errors, one line each.
func republishScenario(t *testing.T, url string) []string {
	t.Helper()
	nc, js := dial(t, url)
	c := ctx(t)
	var out []string
	for _, cfg := range []jetstream.StreamConfig{
		{Name: "CYCLE", Subjects: []string{"cy.>"}, RePublish: &jetstream.RePublish{Source: ">", Destination: "cy.x.>"}},
		{Name: "CYCLE2", Subjects: []string{"cz.*"}, RePublish: &jetstream.RePublish{Destination: "cz.again"}},
		{Name: "STAR", Subjects: []string{"st.>"}, RePublish: &jetstream.RePublish{Source: "st.*", Destination: "rs.*"}},
		{Name: "FWC", Subjects: []string{"fw.>"}, RePublish: &jetstream.RePublish{Source: "fw.>", Destination: "rf.x"}},
		{Name: "BADSRC", Subjects: []string{"bs.>"}, RePublish: &jetstream.RePublish{Source: "bs..x", Destination: "rb.x"}},
		{Name: "BADIDX", Subjects: []string{"bi.*"}, RePublish: &jetstream.RePublish{Source: "bi.*", Destination: "rb.{{wildcard(2)}}"}},
	} {
		_, err := js.CreateStream(c, cfg)
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) {
			t.Fatalf("%s: want an API error, got %v", cfg.Name, err)
		}
		out = append(out, fmt.Sprintf("create %s: %d %d %s", cfg.Name, apiErr.Code, apiErr.ErrorCode, apiErr.Description))
	}
	st, err := js.CreateStream(c, jetstream.StreamConfig{Name: "ORD", Subjects: []string{"ord.>"},
		RePublish: &jetstream.RePublish{Source: "ord.*", Destination: "rp.{{wildcard(1)}}.x"}})
	if err != nil {
		t.Fatal(err)
	}
	rp := st.CachedInfo().Config.RePublish
	out = append(out, fmt.Sprintf("config %+v", *rp))
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "HO", Subjects: []string{"ho.>"},
		RePublish: &jetstream.RePublish{Destination: "rh.>", HeadersOnly: true}}); err != nil {
		t.Fatal(err)
	}
	msgs := make(chan *nats.Msg, 64)
	for _, subj := range []string{"rp.>", "rh.>"} {
		if _, err := nc.ChanSubscribe(subj, msgs); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	publish := func(subject, data string, hdr ...string) {
		m := nats.NewMsg(subject)
		m.Data = []byte(data)
		for i := 0; i+1 < len(hdr); i += 2 {
			m.Header.Add(hdr[i], hdr[i+1])
		}
		if _, err := js.PublishMsg(c, m); err != nil {
			t.Fatalf("publish %s: %v", subject, err)
		}
	}
	publish("ord.a", "one")
	publish("ord.b", "two", "Custom", "v1")
	publish("ord.a", "three")
	publish("ord.a.deep", "not republished: ord.* does not match")
	publish("ho.k", "twelve bytes")
	publish("ho.k", "", "Custom", "v2")
	for range 5 {
		var m *nats.Msg
		select {
		case m = <-msgs:
		case <-time.After(5 * time.Second):
			t.Fatalf("no republish; so far:\n%s", strings.Join(out, "\n"))
		}
		var keys []string
		for k, vs := range m.Header {
			v := strings.Join(vs, ",")
			if k == "Nats-Time-Stamp" {
				ts, err := time.Parse(time.RFC3339Nano, v)
				if err != nil || time.Since(ts) > time.Minute || ts.Location() != time.UTC {
					t.Errorf("Nats-Time-Stamp %q", v)
				}
				v = "<ts>"
			}
			keys = append(keys, k+"="+v)
		}
		sort.Strings(keys)
		out = append(out, fmt.Sprintf("%s %q %s", m.Subject, m.Data, strings.Join(keys, " ")))
	}
	if err := nc.Flush(); err != nil { // what was republished has arrived
		t.Fatal(err)
	}
	if len(msgs) > 0 {
		t.Errorf("unexpected republish on %s", (<-msgs).Subject)
	}
	return out
}

// TestRePublishDifferential compares the republished messages and config
// errors of evnats with nats-server's.
func TestRePublishDifferential(t *testing.T) {
	differential(t, republishScenario)
}

// TestRePublishAllPaths checks republish from each store path: a plain
// publish on each setup, an atomic batch (whose later message names the
// earlier one as the last on its subject), a mirror, and after an update
// that adds republish to a stream.
func TestRePublishAllPaths(t *testing.T) {
	eachSetup(t, func(t *testing.T, js jetstream.JetStream, storage jetstream.StorageType) {
		c := ctx(t)
		nc := js.Conn()
		sub, err := nc.SubscribeSync("rp.>")
		if err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		next := func(wantSubj, wantSeq, wantLast string) {
			t.Helper()
			m, err := sub.NextMsg(5 * time.Second)
			if err != nil {
				t.Fatalf("waiting for %s: %v", wantSubj, err)
			}
			if m.Subject != wantSubj || m.Header.Get("Nats-Sequence") != wantSeq || m.Header.Get("Nats-Last-Sequence") != wantLast {
				t.Fatalf("got %s seq %s last %s, want %s %s %s", m.Subject, m.Header.Get("Nats-Sequence"),
					m.Header.Get("Nats-Last-Sequence"), wantSubj, wantSeq, wantLast)
			}
		}
		cfg := jetstream.StreamConfig{Name: "P", Subjects: []string{"p.>"}, Storage: storage, AllowAtomicPublish: true}
		if _, err := js.CreateStream(c, cfg); err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(c, "p.before", nil); err != nil {
			t.Fatal(err)
		}
		cfg.RePublish = &jetstream.RePublish{Source: "p.>", Destination: "rp.p.>"}
		if _, err := js.UpdateStream(c, cfg); err != nil {
			t.Fatal(err)
		}
		if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "M", Storage: storage,
			Mirror: &jetstream.StreamSource{Name: "P"}, RePublish: &jetstream.RePublish{Destination: "rp.m.>"}}); err != nil {
			t.Fatal(err)
		}
		next("rp.m.p.before", "1", "0") // the mirror copies what P holds
		if _, err := js.Publish(c, "p.before", nil); err != nil {
			t.Fatal(err)
		}
		// The origin's and the mirror's republish may come in either order.
		seen := map[string]string{}
		for range 2 {
			m, err := sub.NextMsg(5 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			seen[m.Subject] = m.Header.Get("Nats-Sequence") + "/" + m.Header.Get("Nats-Last-Sequence")
		}
		if seen["rp.p.before"] != "2/1" || seen["rp.m.p.before"] != "2/1" {
			t.Fatalf("after update: %v", seen)
		}
		for i, commit := range []string{"", "1"} {
			m := nats.NewMsg("p.batch")
			m.Header.Set("Nats-Batch-Id", "b1")
			m.Header.Set("Nats-Batch-Sequence", fmt.Sprint(i+1))
			if commit != "" {
				m.Header.Set("Nats-Batch-Commit", commit)
			}
			if _, err := nc.RequestMsg(m, 5*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		seen = map[string]string{}
		for range 4 {
			m, err := sub.NextMsg(5 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			seen[m.Subject+" "+m.Header.Get("Nats-Sequence")] = m.Header.Get("Nats-Last-Sequence")
		}
		want := map[string]string{"rp.p.batch 3": "0", "rp.p.batch 4": "3", "rp.m.p.batch 3": "0", "rp.m.p.batch 4": "3"}
		if fmt.Sprint(seen) != fmt.Sprint(want) {
			t.Fatalf("batch: got %v, want %v", seen, want)
		}
	})
}
