package jetstream_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// publishTTL publishes data on subject with a raw Nats-TTL header value
// and returns the API error code of the refusal (0: stored).
func publishTTL(t *testing.T, c context.Context, js jetstream.JetStream, subject, ttl string) int {
	t.Helper()
	msg := nats.NewMsg(subject)
	msg.Data = []byte("x")
	if ttl != "" {
		msg.Header.Set("Nats-TTL", ttl)
	}
	_, err := js.PublishMsg(c, msg)
	if err == nil {
		return 0
	}
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("publish with Nats-TTL %q: %v", ttl, err)
	}
	return int(apiErr.ErrorCode)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMsgTTLHeaderDifferential publishes the same Nats-TTL values to
// evnats and to nats-server, on streams with and without allow_msg_ttl,
// and expects the same verdicts (10165 invalid, 10166 disabled) and the
// same stored header (raised to the marker TTL where markers are on).
func TestMsgTTLHeaderDifferential(t *testing.T) {
	values := []string{"1s", "5", "never", "NEVER", "1.5s", "2m", "0", "500ms", "-1", "-5s", "abc", "1 s", "18446744073709551616"}
	run := func(url string) (codes []int, stored []string) {
		nc, err := nats.Connect(url, nats.NoReconnect())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		c := ctx(t)
		for _, cfg := range []jetstream.StreamConfig{
			{Name: "OFF", Subjects: []string{"off"}},
			{Name: "ON", Subjects: []string{"on"}, AllowMsgTTL: true},
			{Name: "SDM", Subjects: []string{"sdm.>"}, SubjectDeleteMarkerTTL: 3 * time.Second},
		} {
			if _, err := js.CreateStream(c, cfg); err != nil {
				t.Fatal(err)
			}
		}
		for _, v := range values {
			codes = append(codes, publishTTL(t, c, js, "off", v), publishTTL(t, c, js, "on", v))
		}
		for _, v := range []string{"1", "2s", "3", "10s", "never"} {
			if code := publishTTL(t, c, js, "sdm."+v, v); code != 0 {
				t.Fatalf("sdm %q: %d", v, code)
			}
			st, _ := js.Stream(c, "SDM")
			m, err := st.GetLastMsgForSubject(c, "sdm."+v)
			if err != nil {
				t.Fatal(err)
			}
			stored = append(stored, m.Header.Get("Nats-TTL"))
		}
		info, _ := js.Stream(c, "SDM")
		cfg := info.CachedInfo().Config
		stored = append(stored, "allow_msg_ttl="+boolStr(cfg.AllowMsgTTL), "allow_rollup="+boolStr(cfg.AllowRollup))
		return codes, stored
	}
	s := startJS(t, loop.Options{})
	gotCodes, gotStored := run(s.ClientURL())
	wantCodes, wantStored := run(startReferenceJS(t))
	for i, v := range values {
		if gotCodes[2*i] != wantCodes[2*i] || gotCodes[2*i+1] != wantCodes[2*i+1] {
			t.Errorf("Nats-TTL %q: evnats off/on %d/%d, nats-server %d/%d", v, gotCodes[2*i], gotCodes[2*i+1], wantCodes[2*i], wantCodes[2*i+1])
		}
	}
	for i := range wantStored {
		if gotStored[i] != wantStored[i] {
			t.Errorf("stored %d: evnats %q, nats-server %q", i, gotStored[i], wantStored[i])
		}
	}
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// TestMsgTTLConfigRules: marker TTLs below a second or negative are
// refused, markers switch TTLs and rollups on, and TTLs can not be turned
// off again, as nats-server.
func TestMsgTTLConfigRules(t *testing.T) {
	s := startJS(t, loop.Options{})
	_, js := connectJS(t, s)
	c := ctx(t)
	for _, d := range []time.Duration{500 * time.Millisecond, -time.Second} {
		_, err := js.CreateStream(c, jetstream.StreamConfig{Name: "BAD", SubjectDeleteMarkerTTL: d})
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode != 10052 {
			t.Fatalf("marker TTL %v: %v", d, err)
		}
	}
	st, err := js.CreateStream(c, jetstream.StreamConfig{Name: "M", SubjectDeleteMarkerTTL: time.Second, DenyPurge: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	if !cfg.AllowMsgTTL || !cfg.AllowRollup || cfg.DenyPurge {
		t.Fatalf("markers did not enable TTLs and rollups: %+v", cfg)
	}
	cfg.AllowMsgTTL, cfg.SubjectDeleteMarkerTTL = false, 0
	_, err = js.UpdateStream(c, cfg)
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != 10052 {
		t.Fatalf("turning TTLs off: %v", err)
	}
}

// TestMsgTTLExpiry: a message with a TTL goes when it passes, others stay,
// and one whose TTL is never outlives max_age.
func TestMsgTTLExpiry(t *testing.T) {
	eachSetup(t, func(t *testing.T, js jetstream.JetStream, storage jetstream.StorageType) {
		c := ctx(t)
		st, err := js.CreateStream(c, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Storage: storage, AllowMsgTTL: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(c, "t.short", []byte("a"), jetstream.WithMsgTTL(time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(c, "t.long", []byte("b"), jetstream.WithMsgTTL(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(c, "t.plain", []byte("c")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "the 1s message expires", func() bool {
			_, err := st.GetMsg(c, 1)
			return errors.Is(err, jetstream.ErrMsgNotFound)
		})
		info, _ := st.Info(c)
		if info.State.Msgs != 2 || info.State.FirstSeq != 2 {
			t.Fatalf("after expiry: %+v", info.State)
		}

		aged, err := js.CreateStream(c, jetstream.StreamConfig{Name: "A", Subjects: []string{"a.>"}, Storage: storage,
			AllowMsgTTL: true, MaxAge: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if code := publishTTL(t, c, js, "a.kept", "never"); code != 0 {
			t.Fatal(code)
		}
		if _, err := js.Publish(c, "a.aged", []byte("y")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "max_age removes the plain message", func() bool {
			_, err := aged.GetMsg(c, 2)
			return errors.Is(err, jetstream.ErrMsgNotFound)
		})
		if _, err := aged.GetMsg(c, 1); err != nil {
			t.Fatalf("the never-expiring message went with max_age: %v", err)
		}
	})
}

// TestMsgTTLSurvivesRestart: expiry is derived from what is stored, so a
// message whose TTL passes while (or after) the server is down goes after
// the restart, and one with a long TTL stays.
func TestMsgTTLSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := startJS(t, loop.Options{StoreDir: dir})
	_, js := connectJS(t, s)
	c := ctx(t)
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "R", AllowMsgTTL: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(c, "R", []byte("short"), jetstream.WithMsgTTL(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(c, "R", []byte("long"), jetstream.WithMsgTTL(time.Hour)); err != nil {
		t.Fatal(err)
	}
	s.Shutdown()

	s2 := startJS(t, loop.Options{StoreDir: dir})
	_, js2 := connectJS(t, s2)
	st, err := js2.Stream(c, "R")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the 1s message expires after the restart", func() bool {
		_, err := st.GetMsg(c, 1)
		return errors.Is(err, jetstream.ErrMsgNotFound)
	})
	if m, err := st.GetMsg(c, 2); err != nil || string(m.Data) != "long" {
		t.Fatalf("the 1h message: %v", err)
	}
}

// nextMsg fetches one message from a pull consumer.
func nextMsg(t *testing.T, cons jetstream.Consumer, within time.Duration) jetstream.Msg {
	t.Helper()
	m, err := cons.Next(jetstream.FetchMaxWait(within))
	if err != nil {
		t.Fatalf("next: %v", err)
	}
	return m
}

// TestSubjectDeleteMarkers: max_age or a TTL that removes the last message
// on a subject leaves a marker there (Nats-Marker-Reason: MaxAge, the
// marker TTL, a subject rollup) that consumers see and that expires in
// turn; a subject that keeps messages gets none.
func TestSubjectDeleteMarkers(t *testing.T) {
	eachSetup(t, func(t *testing.T, js jetstream.JetStream, storage jetstream.StorageType) {
		c := ctx(t)
		st, err := js.CreateStream(c, jetstream.StreamConfig{Name: "S", Subjects: []string{"k.>"}, Storage: storage,
			MaxAge: 500 * time.Millisecond, SubjectDeleteMarkerTTL: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		cons, err := st.CreateConsumer(c, jetstream.ConsumerConfig{AckPolicy: jetstream.AckNonePolicy})
		if err != nil {
			t.Fatal(err)
		}
		for _, subj := range []string{"k.a", "k.a", "k.b"} {
			if _, err := js.Publish(c, subj, []byte("v")); err != nil {
				t.Fatal(err)
			}
		}
		for range 3 {
			nextMsg(t, cons, 2*time.Second)
		}
		markers := map[string]bool{}
		for range 2 {
			m := nextMsg(t, cons, 3*time.Second)
			h := m.Headers()
			if h.Get("Nats-Marker-Reason") != "MaxAge" || h.Get("Nats-TTL") != "1s" || h.Get("Nats-Rollup") != "sub" || len(m.Data()) != 0 {
				t.Fatalf("marker on %s: %v %q", m.Subject(), h, m.Data())
			}
			markers[m.Subject()] = true
		}
		if !markers["k.a"] || !markers["k.b"] {
			t.Fatalf("markers on %v, want k.a and k.b", markers)
		}
		waitFor(t, 5*time.Second, "the markers expire, leaving no others", func() bool {
			info, err := st.Info(c)
			return err == nil && info.State.Msgs == 0
		})
		if info, _ := st.Info(c); info.State.LastSeq != 5 {
			t.Fatalf("expiring markers stored more: last seq %d", info.State.LastSeq)
		}

		// A TTL that removes the last message on a subject leaves one too.
		if _, err := js.Publish(c, "k.ttl", []byte("v"), jetstream.WithMsgTTL(time.Second)); err != nil {
			t.Fatal(err)
		}
		if m := nextMsg(t, cons, 2*time.Second); m.Subject() != "k.ttl" || m.Headers().Get("Nats-Marker-Reason") != "" {
			t.Fatalf("want the message first: %s %v", m.Subject(), m.Headers())
		}
		if m := nextMsg(t, cons, 3*time.Second); m.Subject() != "k.ttl" || m.Headers().Get("Nats-Marker-Reason") != "MaxAge" {
			t.Fatalf("want its marker: %s %v", m.Subject(), m.Headers())
		}
	})
}

// TestKeyValueLimitMarkers creates a KV bucket with LimitMarkerTTL through
// nats.go, which asks for API level 1 first, and checks a key created with
// KeyTTL goes away as a purge a watcher sees.
func TestKeyValueLimitMarkers(t *testing.T) {
	eachSetup(t, func(t *testing.T, js jetstream.JetStream, storage jetstream.StorageType) {
		c := ctx(t)
		kv, err := js.CreateKeyValue(c, jetstream.KeyValueConfig{Bucket: "lm", LimitMarkerTTL: time.Second, Storage: storage})
		if err != nil {
			t.Fatalf("LimitMarkerTTL at API level 1: %v", err)
		}
		if st, _ := kv.Status(c); st.LimitMarkerTTL() != time.Second {
			t.Fatalf("limit marker TTL %v", st.LimitMarkerTTL())
		}
		w, err := kv.Watch(c, "session", jetstream.UpdatesOnly())
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		if _, err := kv.Create(c, "session", []byte("s1"), jetstream.KeyTTL(time.Second)); err != nil {
			t.Fatal(err)
		}
		next := func() jetstream.KeyValueEntry {
			select {
			case e := <-w.Updates():
				return e
			case <-time.After(5 * time.Second):
				t.Fatal("no update")
			}
			return nil
		}
		if e := next(); e == nil || e.Operation() != jetstream.KeyValuePut {
			t.Fatalf("create: %+v", e)
		}
		if e := next(); e == nil || e.Operation() != jetstream.KeyValuePurge || e.Key() != "session" {
			t.Fatalf("expiry: %+v", e)
		}
		if _, err := kv.Get(c, "session"); !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Fatalf("get after expiry: %v", err)
		}
		if _, err := kv.Create(c, "session", []byte("s2")); err != nil {
			t.Fatalf("create over the marker: %v", err)
		}
	})
}

// TestMsgTTLIndexChurn: after many long-TTL messages evicted by max_msgs
// (whose index entries are pruned, ttl.go: pruneTTLs) a short TTL still
// expires on time and the survivors stay.
func TestMsgTTLIndexChurn(t *testing.T) {
	s := startJS(t, loop.Options{})
	_, js := connectJS(t, s)
	c := ctx(t)
	st, err := js.CreateStream(c, jetstream.StreamConfig{Name: "C", Storage: jetstream.MemoryStorage, AllowMsgTTL: true, MaxMsgs: 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3000; i++ {
		if _, err := js.PublishAsync("C", []byte("x"), jetstream.WithMsgTTL(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-c.Done():
		t.Fatal("publishes not acknowledged")
	}
	ack, err := js.Publish(c, "C", []byte("short"), jetstream.WithMsgTTL(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the short message expires", func() bool {
		_, err := st.GetMsg(c, ack.Sequence)
		return errors.Is(err, jetstream.ErrMsgNotFound)
	})
	if info, _ := st.Info(c); info.State.Msgs != 9 {
		t.Fatalf("messages %d, want 9", info.State.Msgs)
	}
}

// TestSubjectDeleteMarkersDifferential runs the same max_age and TTL
// expiry against nats-server and evnats and compares what a consumer
// receives (sequence, subject, headers) and the final state.
func TestSubjectDeleteMarkersDifferential(t *testing.T) {
	run := func(url string) []string {
		nc, err := nats.Connect(url, nats.NoReconnect())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		c := ctx(t)
		st, err := js.CreateStream(c, jetstream.StreamConfig{Name: "S", Subjects: []string{"k.>"},
			MaxAge: 500 * time.Millisecond, SubjectDeleteMarkerTTL: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		cons, err := st.CreateConsumer(c, jetstream.ConsumerConfig{AckPolicy: jetstream.AckNonePolicy})
		if err != nil {
			t.Fatal(err)
		}
		for _, subj := range []string{"k.a", "k.a"} {
			if _, err := js.Publish(c, subj, nil); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := js.Publish(c, "k.b", nil, jetstream.WithMsgTTL(time.Second)); err != nil {
			t.Fatal(err)
		}
		var got []string
		for range 5 {
			m := nextMsg(t, cons, 3*time.Second)
			md, _ := m.Metadata()
			got = append(got, fmt.Sprintf("%d %s %v", md.Sequence.Stream, m.Subject(), m.Headers()))
		}
		waitFor(t, 5*time.Second, "the markers expire", func() bool {
			info, err := st.Info(c)
			return err == nil && info.State.Msgs == 0
		})
		info, _ := st.Info(c)
		return append(got, fmt.Sprintf("first %d last %d", info.State.FirstSeq, info.State.LastSeq))
	}
	s := startJS(t, loop.Options{})
	want := run(startReferenceJS(t))
	got := run(s.ClientURL())
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%d: evnats %q, nats-server %q", i, got[i], want[i])
		}
	}
}
