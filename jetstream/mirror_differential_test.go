package jetstream_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go/jetstream"
)

// mirrorScenario creates an origin, a filtered mirror, a transforming
// source and a mirror of a stream that does not exist, and returns their
// raw stream infos once the copies are done.
func mirrorScenario(t *testing.T, url string) map[string]map[string]any {
	t.Helper()
	nc, js := dial(t, url)
	c := ctx(t)
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "ORIGIN", Subjects: []string{"orders.*"}}); err != nil {
		t.Fatal(err)
	}
	publishN(t, js, func(i int) string { return fmt.Sprintf("orders.%d", i%3) }, 1, 9)
	cfgs := []jetstream.StreamConfig{
		{Name: "M", Mirror: &jetstream.StreamSource{Name: "ORIGIN", FilterSubject: "orders.1", OptStartSeq: 2}},
		{Name: "S", Subjects: []string{"own"}, Sources: []*jetstream.StreamSource{{Name: "ORIGIN",
			SubjectTransforms: []jetstream.SubjectTransformConfig{{Source: "orders.*", Destination: "copy.{{wildcard(1)}}"}}}}},
		{Name: "LOST", Mirror: &jetstream.StreamSource{Name: "NOWHERE"}},
	}
	for _, cfg := range cfgs {
		if _, err := js.CreateStream(c, cfg); err != nil {
			t.Fatal(err)
		}
	}
	until(t, "copies", func() bool {
		return streamInfo(t, js, "M").State.Msgs == 2 && streamInfo(t, js, "S").State.Msgs == 9
	})
	out := map[string]map[string]any{}
	for _, name := range []string{"M", "S", "LOST"} {
		var v map[string]any
		for deadline := time.Now().Add(5 * time.Second); ; {
			msg, err := nc.Request("$JS.API.STREAM.INFO."+name, nil, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			v = nil
			if err := json.Unmarshal(msg.Data, &v); err != nil {
				t.Fatal(err)
			}
			mr, _ := v["mirror"].(map[string]any)
			if _, ok := mr["error"]; ok || name != "LOST" || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond) // the missing origin's error appears after a first try
		}
		out[name] = v
	}
	return out
}

// TestMirrorInfoDifferential compares the stream info of mirrors and
// sources with nats-server's after the same steps.
func TestMirrorInfoDifferential(t *testing.T) {
	want := mirrorScenario(t, startReferenceJS(t))
	got := mirrorScenario(t, startJS(t, loop.Options{}).ClientURL())
	skip := []string{".created", ".ts", ".first_ts", ".last_ts", ".config.metadata", ".state.bytes", ".cluster.leader",
		".config.allow_msg_ttl", ".active",
		// An empty stream that never held a message: nats-server says
		// first_seq 0, evnats' stores 1, for every stream, not only mirrors.
		"LOST.state.first_seq"}
	var diffs []string
	for _, name := range []string{"M", "S", "LOST"} {
		for _, v := range []map[string]any{want[name], got[name]} {
			if list, ok := v["sources"].([]any); ok { // compared entry by entry, so .active is skipped
				byIndex := map[string]any{}
				for i, e := range list {
					byIndex[fmt.Sprint(i)] = e
				}
				v["sources"] = byIndex
			}
		}
		jsonDiff(name, want[name], got[name], skip, &diffs)
	}
	for _, d := range diffs {
		t.Error(d)
	}
	if t.Failed() {
		b, _ := json.MarshalIndent(want, "", " ")
		t.Logf("nats-server: %s", b)
		b, _ = json.MarshalIndent(got, "", " ")
		t.Logf("evnats: %s", b)
	}
}
