package jetstream_test

import (
	"encoding/json"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Attacks found by a hostile review of external sources and subject
// transforms. Each origin here is this server itself, reached through its
// own domain's API prefix ($JS.hub.API), which is an ordinary external
// origin as far as the link is concerned.

func waitUntil(t *testing.T, what string, d time.Duration, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	st, err := js.Stream(ctx(t), name)
	if err != nil {
		t.Fatal(err)
	}
	return st.CachedInfo().State.Msgs
}

// TestReviewExternalSourceSurvivesUpdate: a stream update that keeps an
// external source hands the running link to the new link struct, but the
// delivery subscription and health timer still point at the old one, so
// every later delivery is dropped and the source never copies again.
func TestReviewExternalSourceSurvivesUpdate(t *testing.T) {
	s := startJS(t, loop.Options{JetStreamDomain: "hub", StoreDir: t.TempDir()})
	_, js := connectJS(t, s)
	if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "ORIGIN", Subjects: []string{"o.>"}}); err != nil {
		t.Fatal(err)
	}
	cfg := jetstream.StreamConfig{Name: "AGG", Sources: []*jetstream.StreamSource{{Name: "ORIGIN",
		External: &jetstream.ExternalStream{APIPrefix: "$JS.hub.API"}}}}
	if _, err := js.CreateStream(ctx(t), cfg); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := js.Publish(ctx(t), "o.x", fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "3 sourced messages", 10*time.Second, func() bool { return streamMsgs(t, js, "AGG") == 3 })
	cfg.Description = "updated"
	if _, err := js.UpdateStream(ctx(t), cfg); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := js.Publish(ctx(t), "o.x", fmt.Appendf(nil, "%d", 3+i)); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "6 sourced messages after the update", 10*time.Second, func() bool { return streamMsgs(t, js, "AGG") == 6 })
}

// TestReviewExternalSourceStoreFailureBacksOff: a message the sourcing
// stream cannot store (over its max_msg_size) makes the link recreate its
// origin consumer at once, which redelivers the same message at once: a
// tight create/fail loop against the origin, without end. nats-server
// retries a failed source with a backoff.
func TestReviewExternalSourceStoreFailureBacksOff(t *testing.T) {
	s := startJS(t, loop.Options{JetStreamDomain: "hub", StoreDir: t.TempDir()})
	nc, js := connectJS(t, s)
	if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "ORIGIN", Subjects: []string{"o.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx(t), "o.x", []byte(strings.Repeat("x", 200))); err != nil {
		t.Fatal(err)
	}
	var creates atomic.Int64
	if _, err := nc.Subscribe("$JS.hub.API.CONSUMER.CREATE.>", func(*nats.Msg) { creates.Add(1) }); err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "AGG", MaxMsgSize: 16, Sources: []*jetstream.StreamSource{{Name: "ORIGIN",
		External: &jetstream.ExternalStream{APIPrefix: "$JS.hub.API"}}}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // counting what happens in a while: no signal to wait on
	if n := creates.Load(); n > 10 {
		t.Fatalf("%d consumer creates at the origin in 3 s for one message that cannot be stored", n)
	}
}

// TestReviewTransformOutputBounded: a stream subject_transform whose
// destination repeats "$1" many times (any user with JetStream access can
// send one) turns one publish into a subject of tokens x token bytes: tens
// of MB allocated for one message, a GB with a 1 MB request. The result
// can never be stored (subjects are at most 64 KB), so building it must
// stop early.
func TestReviewTransformOutputBounded(t *testing.T) {
	s := startJS(t, loop.Options{StoreDir: t.TempDir()})
	nc, js := connectJS(t, s)
	dest := "d." + strings.TrimSuffix(strings.Repeat("$1.", 20000), ".")
	if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "T", Subjects: []string{"t.*"}, Storage: jetstream.MemoryStorage,
		SubjectTransform: &jetstream.SubjectTransformConfig{Source: "t.*", Destination: dest}}); err != nil {
		t.Skipf("refused (fine): %v", err)
	}
	subj := "t." + strings.Repeat("x", 3000)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _ = nc.Request(subj, nil, 5*time.Second)
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 16<<20 {
		t.Fatalf("one publish allocated %d MB in the server", d>>20)
	}
}

// TestReviewExternalOriginStalledHeader: an origin (here a user allowed
// only to answer the origin API and publish to the link's deliveries)
// sends a heartbeat whose Nats-Consumer-Stalled header names
// $JS.API.STREAM.DELETE.VICTIM; the link publishes to it with the
// server's own rights, and a stream the origin could never touch is
// deleted. Flow-control replies and stalled subjects should be the
// origin's $JS.FC. subjects only.
func TestReviewExternalOriginStalledHeader(t *testing.T) {
	s := startJS(t, loop.Options{StoreDir: t.TempDir(), Users: []*loop.User{
		{Username: "admin", Password: "a"},
		{Username: "origin", Password: "o", Permissions: &loop.Permissions{
			Publish:   &loop.SubjectPermission{Allow: []string{"$JS.S.>", "_INBOX.>"}},
			Subscribe: &loop.SubjectPermission{Allow: []string{"$JS.fake.API.>"}},
		}},
	}})
	admin, err := nats.Connect(s.ClientURL(), nats.UserInfo("admin", "a"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	js, _ := jetstream.New(admin)
	if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "VICTIM", Subjects: []string{"v.>"}}); err != nil {
		t.Fatal(err)
	}
	origin, err := nats.Connect(s.ClientURL(), nats.UserInfo("origin", "o"))
	if err != nil {
		t.Fatal(err)
	}
	defer origin.Close()
	raw, err := net.Dial("tcp", strings.TrimPrefix(s.ClientURL(), "nats://"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	fmt.Fprintf(raw, "CONNECT {\"user\":\"origin\",\"pass\":\"o\",\"headers\":true,\"verbose\":false,\"protocol\":1}\r\n")
	if _, err := origin.Subscribe("$JS.fake.API.CONSUMER.CREATE.>", func(m *nats.Msg) {
		var req struct {
			Config struct {
				Deliver string `json:"deliver_subject"`
			} `json:"config"`
		}
		_ = json.Unmarshal(m.Data, &req)
		m.Respond([]byte(`{"type":"io.nats.jetstream.api.v1.consumer_create_response"}`))
		origin.Flush()
		hdr := "NATS/1.0 100 Idle Heartbeat\r\nNats-Consumer-Stalled: $JS.API.STREAM.DELETE.VICTIM\r\n\r\n"
		fmt.Fprintf(raw, "HPUB %s %d %d\r\n%s\r\n", req.Config.Deliver, len(hdr), len(hdr), hdr)
	}); err != nil {
		t.Fatal(err)
	}
	origin.Flush()
	if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "AGG", Sources: []*jetstream.StreamSource{{Name: "ORIGIN",
		External: &jetstream.ExternalStream{APIPrefix: "$JS.fake.API"}}}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // the attack has no signal of its own; give it time to land
	if _, err := js.Stream(ctx(t), "VICTIM"); err != nil {
		t.Fatalf("VICTIM after the origin's heartbeat: %v", err)
	}
}

// TestReviewExternalSourceResumesAfterRestart: a server restart resumes
// an external source after the last origin message it stored (read back
// from Nats-Stream-Source), copying nothing twice and losing nothing;
// also after the origin's consumers are gone.
func TestReviewExternalSourceResumesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	o := loop.Options{JetStreamDomain: "hub", StoreDir: dir, Port: freePort(t)}
	s := startJS(t, o)
	_, js := connectJS(t, s)
	if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "ORIGIN", Subjects: []string{"o.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "AGG", Sources: []*jetstream.StreamSource{{Name: "ORIGIN",
		External: &jetstream.ExternalStream{APIPrefix: "$JS.hub.API"}}}}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := js.Publish(ctx(t), "o.x", fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "5 sourced messages", 10*time.Second, func() bool { return streamMsgs(t, js, "AGG") == 5 })
	s.Shutdown()
	s = startJS(t, o)
	_, js = connectJS(t, s)
	for i := range 2 {
		if _, err := js.Publish(ctx(t), "o.x", fmt.Appendf(nil, "%d", 5+i)); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "7 sourced messages after the restart", 10*time.Second, func() bool { return streamMsgs(t, js, "AGG") >= 7 })
	time.Sleep(1500 * time.Millisecond) // anything copied twice would arrive in this time
	st, _ := js.Stream(ctx(t), "AGG")
	for seq := uint64(1); seq <= st.CachedInfo().State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx(t), seq)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Data) != fmt.Sprint(seq-1) {
			t.Fatalf("AGG %d holds %q (%d messages in all)", seq, m.Data, st.CachedInfo().State.Msgs)
		}
	}
	if n := streamMsgs(t, js, "AGG"); n != 7 {
		t.Fatalf("%d messages, want 7", n)
	}
}

// TestReviewExternalUnansweredCreateLeaksNoSubscription: a link whose
// origin never answers sends its consumer create again every 5 s, each
// time with a new reply inbox; the old inbox subscriptions are never
// removed, so an unreachable origin grows the server's subscriptions
// without bound (one per source per 5 s, for ever).
func TestReviewExternalUnansweredCreateLeaksNoSubscription(t *testing.T) {
	s := startJS(t, loop.Options{StoreDir: t.TempDir()})
	_, js := connectJS(t, s)
	var srcs []*jetstream.StreamSource
	for i := range 50 {
		srcs = append(srcs, &jetstream.StreamSource{Name: fmt.Sprintf("O%d", i), External: &jetstream.ExternalStream{APIPrefix: "$JS.nowhere.API"}})
	}
	if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "AGG", Sources: srcs}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // the first creates are out
	before := s.NumSubscriptions()
	time.Sleep(5 * time.Second) // one more create per link (no signal: the origin is silent by design)
	if after := s.NumSubscriptions(); after > before+5 {
		t.Fatalf("subscriptions grew from %d to %d in 5 s with an unreachable origin", before, after)
	}
}

// TestReviewExternalDeliverPrefixUpdate: an update that changes only an
// external source's deliver prefix keeps the link (same identity) and
// with it the running consumer and the old prefix, for good: the new
// prefix is never used.
func TestReviewExternalDeliverPrefixUpdate(t *testing.T) {
	s := startJS(t, loop.Options{JetStreamDomain: "hub", StoreDir: t.TempDir()})
	_, js := connectJS(t, s)
	origin, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "ORIGIN", Subjects: []string{"o.>"}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := jetstream.StreamConfig{Name: "AGG", Sources: []*jetstream.StreamSource{{Name: "ORIGIN",
		External: &jetstream.ExternalStream{APIPrefix: "$JS.hub.API", DeliverPrefix: "dp1"}}}}
	if _, err := js.CreateStream(ctx(t), cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx(t), "o.x", []byte("0")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "1 sourced message", 10*time.Second, func() bool { return streamMsgs(t, js, "AGG") == 1 })
	cfg.Sources[0].External.DeliverPrefix = "dp2"
	if _, err := js.UpdateStream(ctx(t), cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx(t), "o.x", []byte("1")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "2 sourced messages", 10*time.Second, func() bool { return streamMsgs(t, js, "AGG") == 2 })
	waitUntil(t, "the origin consumer on the new prefix", 10*time.Second, func() bool {
		for ci := range origin.ListConsumers(ctx(t)).Info() {
			if strings.HasPrefix(ci.Config.DeliverSubject, "dp2.") {
				return true
			}
		}
		return false
	})
}

// TestReviewRepublishCycleThroughFunction: the republish cycle check
// compares the destination as written with the stream's subjects, so a
// destination whose mapping function yields a stream subject
// ("a.{{random(1)}}" is always a.0) passes it; each republished message
// is taken in again and republished again, for ever.
func TestReviewRepublishCycleThroughFunction(t *testing.T) {
	// nats-server 2.12 has the same hole (its check is the same literal
	// compare): its run is only logged.
	t.Run("nats-server", func(t *testing.T) { republishCycle(t, startReferenceJS(t), t.Logf) })
	t.Run("evnats", func(t *testing.T) {
		republishCycle(t, startJS(t, loop.Options{StoreDir: t.TempDir()}).ClientURL(), t.Errorf)
	})
}

func republishCycle(t *testing.T, url string, report func(string, ...any)) {
	nc, js := dial(t, url)
	for _, rp := range []struct {
		subjects  []string
		src, dest string
	}{
		{[]string{"a.0"}, "a.0", "a.{{random(1)}}"},
		{[]string{"b.*"}, "b.*", "{{wildcard(1)}}.{{wildcard(1)}}"},
	} {
		name := strings.ToUpper(rp.subjects[0][:1])
		_, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: name, Subjects: rp.subjects, Storage: jetstream.MemoryStorage,
			RePublish: &jetstream.RePublish{Source: rp.src, Destination: rp.dest}})
		if err != nil {
			t.Logf("%s refused: %v", rp.dest, err)
			continue // refused: no cycle possible
		}
		subj := strings.ReplaceAll(rp.subjects[0], "*", "b")
		if _, err := js.Publish(ctx(t), subj, []byte("x")); err != nil {
			t.Fatal(err)
		}
		nc.Flush()
		time.Sleep(time.Second) // a cycle shows as messages that keep coming
		if n := streamMsgs(t, js, name); n != 1 {
			report("%s with republish %s -> %s: %d messages after one publish", name, rp.src, rp.dest, n)
		}
	}
}

// TestReviewPartitionArgsCPU: a subject_transform partition that names
// the same wildcard a few hundred thousand times (a 600 KB stream
// create) hashes the token that many times for every message, on the
// publisher's event loop: seconds of CPU per publish.
func TestReviewPartitionArgsCPU(t *testing.T) {
	s := startJS(t, loop.Options{StoreDir: t.TempDir()})
	_, js := connectJS(t, s)
	dest := "p.{{partition(3," + strings.Repeat("1,", 200000) + "1)}}"
	if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "P", Subjects: []string{"t.*"}, Storage: jetstream.MemoryStorage,
		SubjectTransform: &jetstream.SubjectTransformConfig{Source: "t.*", Destination: dest}}); err != nil {
		t.Skipf("refused (fine): %v", err)
	}
	subj := "t." + strings.Repeat("x", 3000)
	start := time.Now()
	for range 3 {
		if _, err := js.Publish(ctx(t), subj, nil); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("3 publishes took %v", d)
	}
}

// TestReviewExternalSelfSource: a stream that sources itself through its
// own domain's API prefix copies each message it stores back into itself,
// for ever: one publish, unbounded growth. A local self-source is
// refused; the external one should not copy without end either.
func TestReviewExternalSelfSource(t *testing.T) {
	t.Run("nats-server", func(t *testing.T) {
		ns := startReferenceJSDomain(t, "hub")
		selfSource(t, ns, t.Logf)
	})
	t.Run("evnats", func(t *testing.T) {
		selfSource(t, startJS(t, loop.Options{JetStreamDomain: "hub", StoreDir: t.TempDir()}).ClientURL(), t.Errorf)
	})
}

func selfSource(t *testing.T, url string, report func(string, ...any)) {
	_, js := dial(t, url)
	_, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "SELF", Subjects: []string{"self.>"}, Storage: jetstream.MemoryStorage,
		Sources: []*jetstream.StreamSource{{Name: "SELF", External: &jetstream.ExternalStream{APIPrefix: "$JS.hub.API"}}}})
	if err != nil {
		t.Logf("refused: %v", err)
		return
	}
	if _, err := js.Publish(ctx(t), "self.x", []byte("x")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // growth has no signal; look after a while
	if n := streamMsgs(t, js, "SELF"); n > 2 {
		report("%d messages in SELF after one publish", n)
	}
}

func startReferenceJSDomain(t *testing.T, domain string) string {
	t.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, JetStream: true, StoreDir: t.TempDir(), JetStreamDomain: domain}
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(ns.Shutdown)
	return ns.ClientURL()
}
