package jetstream_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// transformScenario drives one server through subject_transform configs
// and publishes, and returns the create errors, the stored subjects and
// the echoed configs, one line each.
func transformScenario(t *testing.T, url string) []string {
	t.Helper()
	nc, js := dial(t, url)
	c := ctx(t)
	var out []string
	for i, tc := range []jetstream.SubjectTransformConfig{
		{Source: "a..b", Destination: "x.>"},
		{Source: "a.*", Destination: "x.*"},
		{Source: "a.*", Destination: "x.{{nosuch(1)}}"},
		{Source: "a.*", Destination: "x..y"},
		{Source: "a.>", Destination: "x.>.y"},
		{Source: "a.*", Destination: "x.{{wildcard(2)}}"},
		{Source: "a.*", Destination: "x.$2"},
		{Source: "a.b", Destination: "x.{{wildcard(1)}}"},
		{Source: "a.>", Destination: "x.{{wildcard(1)}}.>"},
		{Source: "a.>", Destination: "x"},
		{Source: "a.b", Destination: "x.>"},
		{Source: "a.*", Destination: "x y"},
		{Source: "a.*", Destination: "x.{{partition(x)}}"},
		{Source: "a.*", Destination: "x.{{split(1)}}"},
		{Source: "a.*", Destination: "x.{{left(2,1)}}"},
	} {
		_, err := js.CreateStream(c, jetstream.StreamConfig{Name: fmt.Sprint("BAD", i), Subjects: []string{"a.>"}, SubjectTransform: &tc})
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) {
			t.Fatalf("%+v: want an API error, got %v", tc, err)
		}
		out = append(out, fmt.Sprintf("create %+v: %d %d %s", tc, apiErr.Code, apiErr.ErrorCode, apiErr.Description))
	}
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "T", Subjects: []string{"in.>", "other"},
		SubjectTransform: &jetstream.SubjectTransformConfig{Source: "in.*.*", Destination: "out.{{wildcard(2)}}.$1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "F", Subjects: []string{"f.>"},
		SubjectTransform: &jetstream.SubjectTransformConfig{Source: "f.*.*", Destination: "g.{{partition(5,1)}}.{{splitFromLeft(2,2)}}.{{SliceFromRight(1,2)}}"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "SRC", Subjects: []string{"s.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "AGG", Sources: []*jetstream.StreamSource{{Name: "SRC"}},
		SubjectTransform: &jetstream.SubjectTransformConfig{Source: "s.>", Destination: "agg.>"}}); err != nil {
		t.Fatal(err)
	}
	imp, err := js.CreateStream(c, jetstream.StreamConfig{Name: "IMP", Subjects: []string{"imp.>"},
		SubjectTransform: &jetstream.SubjectTransformConfig{Source: "imp.>", Destination: "imq.>"},
		RePublish:        &jetstream.RePublish{Source: ">", Destination: ">"}})
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, fmt.Sprintf("implicit republish %+v", *imp.CachedInfo().Config.RePublish))
	repub, err := nc.SubscribeSync("imq.>")
	if err != nil {
		t.Fatal(err)
	}
	for _, subj := range []string{"in.a.b", "in.x", "in.a.b.c", "other", "s.1", "s.2.3", "imp.k", "f.k1.abcd", "f.key2.xy"} {
		if _, err := js.Publish(c, subj, []byte(subj)); err != nil {
			t.Fatalf("publish %s: %v", subj, err)
		}
	}
	if m, err := repub.NextMsg(5 * time.Second); err != nil {
		t.Fatal(err)
	} else {
		out = append(out, "republished on "+m.Subject+" from "+m.Header.Get("Nats-Subject"))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		agg, err := js.Stream(c, "AGG")
		if err != nil {
			t.Fatal(err)
		}
		if agg.CachedInfo().State.Msgs == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, name := range []string{"T", "AGG", "IMP", "F"} {
		st, err := js.Stream(c, name)
		if err != nil {
			t.Fatal(err)
		}
		var subjects []string
		for seq := uint64(1); seq <= st.CachedInfo().State.LastSeq; seq++ {
			m, err := st.GetMsg(c, seq)
			if err != nil {
				t.Fatal(err)
			}
			subjects = append(subjects, m.Subject+"="+string(m.Data))
		}
		out = append(out, name+": "+strings.Join(subjects, " "))
	}
	return out
}

// TestSubjectTransformDifferential compares stored subjects and config
// errors with nats-server's.
func TestSubjectTransformDifferential(t *testing.T) {
	differential(t, transformScenario)
}

// TestSubjectTransformUpdate: an update that adds a transform applies it
// to what comes after (atomic batches too).
func TestSubjectTransformUpdate(t *testing.T) {
	s := startJS(t, loop.Options{})
	nc, js := connectJS(t, s)
	c := ctx(t)
	cfg := jetstream.StreamConfig{Name: "U", Subjects: []string{"u.>"}, AllowAtomicPublish: true}
	if _, err := js.CreateStream(c, cfg); err != nil {
		t.Fatal(err)
	}
	cfg.SubjectTransform = &jetstream.SubjectTransformConfig{Source: "u.>", Destination: "v.>"}
	if _, err := js.UpdateStream(c, cfg); err != nil {
		t.Fatal(err)
	}
	for i, commit := range []string{"", "1"} {
		m := nats.NewMsg(fmt.Sprint("u.", i))
		m.Header.Set("Nats-Batch-Id", "b")
		m.Header.Set("Nats-Batch-Sequence", fmt.Sprint(i+1))
		if commit != "" {
			m.Header.Set("Nats-Batch-Commit", commit)
		}
		if _, err := nc.RequestMsg(m, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := js.Stream(c, "U")
	for seq, want := range []string{"v.0", "v.1"} {
		m, err := st.GetMsg(c, uint64(seq+1))
		if err != nil || m.Subject != want {
			t.Fatalf("seq %d: %v %v, want %s", seq+1, m, err, want)
		}
	}
}
