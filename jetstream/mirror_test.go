package jetstream_test

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	jsapi "github.com/evnats/evnats/jetstream"
	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// sourceHeader is a message's Nats-Stream-Source without its sixth field,
// the origin's identity (a hash of its creation time, as nats-server 2.15
// writes it), which it checks is there: eight base-62 digits.
func sourceHeader(t *testing.T, h nats.Header) string {
	t.Helper()
	v := h.Get("Nats-Stream-Source")
	if v == "" {
		return ""
	}
	f := strings.Split(v, " ")
	if len(f) != 6 || len(f[5]) != 8 || strings.Trim(f[5], "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") != "" {
		t.Errorf("Nats-Stream-Source %q: no identity as its sixth field", v)
		return v
	}
	return strings.Join(f[:5], " ")
}

// until polls cond (copying has no event a client can wait on; stream info
// is what nats-server's own tests poll too) and fails after 10 s.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func streamInfo(t *testing.T, js jetstream.JetStream, name string) *jetstream.StreamInfo {
	t.Helper()
	st, err := js.Stream(ctx(t), name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	info, err := st.Info(ctx(t))
	if err != nil {
		t.Fatalf("stream %s info: %v", name, err)
	}
	return info
}

func publishN(t *testing.T, js jetstream.JetStream, subject func(i int) string, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		if _, err := js.Publish(ctx(t), subject(i), []byte(fmt.Sprint(i))); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
}

func getMsg(t *testing.T, js jetstream.JetStream, stream string, seq uint64) *jetstream.RawStreamMsg {
	t.Helper()
	st, err := js.Stream(ctx(t), stream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetMsg(ctx(t), seq)
	if err != nil {
		t.Fatalf("%s seq %d: %v", stream, seq, err)
	}
	return m
}

// TestMirrorKeepsOriginSequences: a mirror holds the origin's messages
// under the origin's sequences (a deleted one stays a gap), follows new
// publishes, takes no publishes of its own and reports itself in info.
func TestMirrorKeepsOriginSequences(t *testing.T) {
	eachSetup(t, func(t *testing.T, js jetstream.JetStream, storage jetstream.StorageType) {
		c := ctx(t)
		origin, err := js.CreateStream(c, jetstream.StreamConfig{Name: "ORIGIN", Subjects: []string{"orders.>"}, Storage: storage})
		if err != nil {
			t.Fatal(err)
		}
		publishN(t, js, func(i int) string { return fmt.Sprintf("orders.%d", i%2) }, 1, 10)
		if err := origin.DeleteMsg(c, 3); err != nil {
			t.Fatal(err)
		}
		mcfg := jetstream.StreamConfig{Name: "M", Storage: storage, Mirror: &jetstream.StreamSource{Name: "ORIGIN"}}
		if _, err := js.CreateStream(c, mcfg); err != nil {
			t.Fatal(err)
		}
		publishN(t, js, func(i int) string { return fmt.Sprintf("orders.%d", i%2) }, 11, 12)
		until(t, "the mirror to catch up", func() bool { return streamInfo(t, js, "M").State.LastSeq == 12 })
		info := streamInfo(t, js, "M")
		if info.State.Msgs != 11 || info.State.FirstSeq != 1 || info.State.NumDeleted != 1 {
			t.Fatalf("mirror state %+v", info.State)
		}
		if info.Mirror == nil || info.Mirror.Name != "ORIGIN" || info.Mirror.Lag != 0 || info.Mirror.Error != nil || info.Mirror.Active < 0 {
			t.Fatalf("mirror info %+v", info.Mirror)
		}
		if len(info.Config.Subjects) != 0 {
			t.Fatalf("mirror subjects %v", info.Config.Subjects)
		}
		for seq := uint64(1); seq <= 12; seq++ {
			if seq == 3 {
				continue
			}
			want := getMsg(t, js, "ORIGIN", seq)
			got := getMsg(t, js, "M", seq)
			if got.Subject != want.Subject || string(got.Data) != string(want.Data) || !got.Time.Equal(want.Time) {
				t.Fatalf("seq %d: mirror %s %q %v, origin %s %q %v", seq, got.Subject, got.Data, got.Time, want.Subject, want.Data, want.Time)
			}
		}
		// A mirror has no subjects: a publish to its name reaches no stream.
		if _, err := js.Publish(c, "M", []byte("x")); !errors.Is(err, jetstream.ErrNoStreamResponse) {
			t.Fatalf("publish to a mirror: %v", err)
		}
		// Its config can not change; removing the mirror promotes it.
		mcfg.Mirror.FilterSubject = "orders.1"
		if _, err := js.UpdateStream(c, mcfg); !isCode(err, 10055) {
			t.Fatalf("mirror update: %v", err)
		}
	})
}

func isCode(err error, code int) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && int(apiErr.ErrorCode) == code
}

// TestMirrorFilterStartAndTransform: a mirror copies from opt_start_seq,
// only its filter's subjects (the others leave gaps), and rewrites
// subjects by its transforms.
func TestMirrorFilterStartAndTransform(t *testing.T) {
	s := startJS(t, loop.Options{})
	_, js := connectJS(t, s)
	c := ctx(t)
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "ORIGIN", Subjects: []string{"orders.*.*"}}); err != nil {
		t.Fatal(err)
	}
	subj := func(i int) string { return fmt.Sprintf("orders.%s.%d", []string{"eu", "us"}[i%2], i) }
	publishN(t, js, subj, 1, 20)
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "EU", Mirror: &jetstream.StreamSource{
		Name: "ORIGIN", OptStartSeq: 5, FilterSubject: "orders.eu.*"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "TR", Mirror: &jetstream.StreamSource{
		Name: "ORIGIN", SubjectTransforms: []jetstream.SubjectTransformConfig{{Source: "orders.us.*", Destination: "us.{{wildcard(1)}}"}}}}); err != nil {
		t.Fatal(err)
	}
	until(t, "both mirrors", func() bool {
		return streamInfo(t, js, "EU").State.Msgs == 8 && streamInfo(t, js, "TR").State.Msgs == 10
	})
	info := streamInfo(t, js, "EU")
	if info.State.FirstSeq != 6 || info.State.LastSeq != 20 || info.Mirror.FilterSubject != "orders.eu.*" || info.Mirror.Lag != 0 {
		t.Fatalf("filtered mirror: %+v %+v", info.State, info.Mirror)
	}
	if m := getMsg(t, js, "EU", 6); m.Subject != "orders.eu.6" {
		t.Fatalf("EU seq 6: %s", m.Subject)
	}
	if m := getMsg(t, js, "TR", 7); m.Subject != "us.7" || string(m.Data) != "7" {
		t.Fatalf("TR seq 7: %s %q", m.Subject, m.Data)
	}
	if tr := streamInfo(t, js, "TR").Mirror.SubjectTransforms; len(tr) != 1 || tr[0].Destination != "us.{{wildcard(1)}}" {
		t.Fatalf("mirror transforms in info: %+v", tr)
	}
}

// TestSourcesAppendWithHeader: a stream sourcing two origins stores their
// messages under its own sequences with nats-server's Nats-Stream-Source
// header, applies each source's filter, start and transform, and keeps
// taking publishes on its own subjects.
func TestSourcesAppendWithHeader(t *testing.T) {
	eachSetup(t, func(t *testing.T, js jetstream.JetStream, storage jetstream.StorageType) {
		c := ctx(t)
		for _, n := range []string{"A", "B"} {
			if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: n, Subjects: []string{strings.ToLower(n) + ".>"}, Storage: storage}); err != nil {
				t.Fatal(err)
			}
		}
		publishN(t, js, func(i int) string { return fmt.Sprintf("a.%d", i) }, 1, 4)
		publishN(t, js, func(i int) string { return fmt.Sprintf("b.%s", []string{"x", "y"}[i%2]) }, 1, 6)
		_, err := js.CreateStream(c, jetstream.StreamConfig{Name: "ALL", Subjects: []string{"all"}, Storage: storage, Sources: []*jetstream.StreamSource{
			{Name: "A", OptStartSeq: 3},
			{Name: "B", SubjectTransforms: []jetstream.SubjectTransformConfig{{Source: "b.x", Destination: "from.b.x"}}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		until(t, "sources", func() bool { return streamInfo(t, js, "ALL").State.Msgs == 5 })
		if _, err := js.Publish(c, "all", []byte("own")); err != nil {
			t.Fatal(err)
		}
		publishN(t, js, func(i int) string { return fmt.Sprintf("a.%d", i) }, 5, 5)
		until(t, "the new message", func() bool { return streamInfo(t, js, "ALL").State.Msgs == 7 })

		hdrs := map[string]string{}
		for seq := uint64(1); seq <= 7; seq++ {
			m := getMsg(t, js, "ALL", seq)
			hdrs[m.Subject] = sourceHeader(t, m.Header)
		}
		want := map[string]string{
			"a.3": "A 3 > > a.3", "a.4": "A 4 > > a.4", "a.5": "A 5 > > a.5",
			"from.b.x": "B 6 b.x from.b.x b.x", "all": "",
		}
		for s, h := range want {
			if hdrs[s] != h {
				t.Errorf("%s: Nats-Stream-Source %q, want %q (all: %v)", s, hdrs[s], h, hdrs)
			}
		}
		info := streamInfo(t, js, "ALL")
		if len(info.Sources) != 2 || info.Sources[0].Name != "A" || info.Sources[1].Name != "B" || info.Sources[0].Lag != 0 || info.Sources[0].Active < 0 {
			t.Fatalf("sources info %+v", info.Sources)
		}
	})
}

// TestMirrorAndSourceSurviveRestart: a restart in the middle of copying
// loses nothing and duplicates nothing; both resume where they stopped.
func TestMirrorAndSourceSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	s := startJS(t, loop.Options{StoreDir: dir})
	_, js := connectJS(t, s)
	c := ctx(t)
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "ORIGIN", Subjects: []string{"o.>"}}); err != nil {
		t.Fatal(err)
	}
	const first, total = 3000, 3500
	subj := func(i int) string { return fmt.Sprintf("o.%d", i%7) }
	// Published asynchronously so the origin fills faster than a tick.
	for i := 1; i <= first; i++ {
		if _, err := js.PublishAsync(subj(i), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-c.Done():
		t.Fatal("async publishes not acked")
	}
	restore := jsapi.SetLinkCatchUp(50) // 3,000 messages take about 60 ticks
	defer restore()
	for _, cfg := range []jetstream.StreamConfig{
		{Name: "M", Mirror: &jetstream.StreamSource{Name: "ORIGIN"}},
		{Name: "S", Sources: []*jetstream.StreamSource{{Name: "ORIGIN"}}},
	} {
		if _, err := js.CreateStream(c, cfg); err != nil {
			t.Fatal(err)
		}
	}
	until(t, "copying to start", func() bool {
		return streamInfo(t, js, "M").State.Msgs > 0 && streamInfo(t, js, "S").State.Msgs > 0
	})
	m, src := streamInfo(t, js, "M").State.Msgs, streamInfo(t, js, "S").State.Msgs
	s.Shutdown()
	if m >= first || src >= first {
		t.Fatalf("copies finished before the restart (%d, %d): nothing resumes", m, src)
	}
	restore()
	s2 := startJS(t, loop.Options{StoreDir: dir})
	_, js = connectJS(t, s2)
	publishN(t, js, subj, first+1, total)
	until(t, "both to catch up", func() bool {
		return streamInfo(t, js, "M").State.Msgs == total && streamInfo(t, js, "S").State.Msgs >= total
	})
	if info := streamInfo(t, js, "S"); info.State.Msgs != total || info.State.LastSeq != total {
		t.Fatalf("source holds %+v, want %d messages", info.State, total)
	}
	seen := make(map[string]bool)
	for seq := uint64(1); seq <= total; seq++ {
		if m := getMsg(t, js, "M", seq); string(m.Data) != fmt.Sprint(seq) {
			t.Fatalf("mirror seq %d holds %q", seq, m.Data)
		}
		h := getMsg(t, js, "S", seq).Header.Get("Nats-Stream-Source")
		if seen[h] {
			t.Fatalf("source copied %q twice", h)
		}
		seen[h] = true
	}
}

// TestOriginCreatedLater: a mirror of a stream that does not exist is
// accepted and reports the error; once the origin appears it copies, and
// deleting the origin leaves the copies and an error, until it returns.
func TestOriginCreatedLater(t *testing.T) {
	s := startJS(t, loop.Options{})
	_, js := connectJS(t, s)
	c := ctx(t)
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "M", Mirror: &jetstream.StreamSource{Name: "LATER"}}); err != nil {
		t.Fatal(err)
	}
	until(t, "the missing origin in info", func() bool {
		m := streamInfo(t, js, "M").Mirror
		return m != nil && m.Error != nil && m.Active == -1
	})
	// A consumer of the mirror waits for what the mirror will copy.
	cons, err := js.CreateOrUpdateConsumer(c, "M", jetstream.ConsumerConfig{Durable: "C", AckPolicy: jetstream.AckNonePolicy})
	if err != nil {
		t.Fatal(err)
	}
	fetched := make(chan string, 3)
	go func() {
		defer close(fetched)
		batch, err := cons.Fetch(3, jetstream.FetchMaxWait(8*time.Second))
		if err != nil {
			return
		}
		for m := range batch.Messages() {
			fetched <- string(m.Data())
		}
	}()
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "LATER", Subjects: []string{"later"}}); err != nil {
		t.Fatal(err)
	}
	publishN(t, js, func(int) string { return "later" }, 1, 3)
	until(t, "the copies", func() bool { return streamInfo(t, js, "M").State.Msgs == 3 })
	var got []string
	for d := range fetched {
		got = append(got, d)
	}
	if strings.Join(got, ",") != "1,2,3" {
		t.Fatalf("the mirror's consumer got %v", got)
	}
	if m := streamInfo(t, js, "M").Mirror; m.Error != nil || m.Lag != 0 {
		t.Fatalf("mirror info after the origin came: %+v", m)
	}
	if err := js.DeleteStream(c, "LATER"); err != nil {
		t.Fatal(err)
	}
	until(t, "the deleted origin in info", func() bool { return streamInfo(t, js, "M").Mirror.Error != nil })
	if info := streamInfo(t, js, "M"); info.State.Msgs != 3 {
		t.Fatalf("mirror lost its messages with the origin: %+v", info.State)
	}
}

// TestMirrorSourceConfigRules: the configs nats-server refuses are refused
// with its codes (checked against an in-process nats-server), and what
// evnats lacks (consumer) is refused rather
// than dropped.
func TestMirrorSourceConfigRules(t *testing.T) {
	cases := []struct {
		name, body string
		code       int
		evnatsOnly bool // nats-server accepts it; evnats does not implement it, or refuses what would store its own deliveries
	}{
		{"itself", `{"name":"X","mirror":{"name":"X"}}`, 10052, false},
		{"source cycle", `{"name":"A","subjects":["a"],"sources":[{"name":"B"}]}`, 10052, false},
		{"mirror cycle", `{"name":"A","mirror":{"name":"B"}}`, 10052, false},
		{"mirror and sources", `{"name":"X","mirror":{"name":"O"},"sources":[{"name":"O"}]}`, 10031, false},
		{"subjects on a mirror", `{"name":"X","subjects":["x"],"mirror":{"name":"O"}}`, 10034, false},
		{"first_seq on a mirror", `{"name":"X","first_seq":5,"mirror":{"name":"O"}}`, 10143, false},
		{"bad mirror name", `{"name":"X","mirror":{"name":"a.b"}}`, 10142, false},
		{"bad source name", `{"name":"X","sources":[{"name":""}]}`, 10141, false},
		{"null source", `{"name":"X","sources":[null]}`, 10141, false},
		{"duplicate source", `{"name":"X","sources":[{"name":"O"},{"name":"O"}]}`, 10140, false},
		{"filter and transforms", `{"name":"X","sources":[{"name":"O","filter_subject":"o.a","subject_transforms":[{"src":"o.b","dest":"p"}]}]}`, 10144, false},
		{"overlapping transforms", `{"name":"X","sources":[{"name":"O","subject_transforms":[{"src":"o.*","dest":"p"},{"src":"o.a","dest":"q"}]}]}`, 10147, false},
		{"bad transform dest", `{"name":"X","mirror":{"name":"O","subject_transforms":[{"src":"o.*","dest":"p.{{wildcard(2)}}"}]}}`, 10154, false},
		{"mirror smaller max msg size", `{"name":"X","max_msg_size":10,"mirror":{"name":"O"}}`, 10030, false},
		{"start seq and time", `{"name":"X","mirror":{"name":"O","opt_start_seq":2,"opt_start_time":"2024-01-01T00:00:00Z"}}`, 10032, true},
		{"unknown mapping function", `{"name":"X","sources":[{"name":"O","subject_transforms":[{"src":"o.*","dest":"{{partition(3,1)}}.{{nosuch(1)}}"}]}]}`, 10146, false},
		{"external api overlap", `{"name":"X","mirror":{"name":"O","external":{"api":"$JS.API","deliver":""}}}`, 10021, false},
		{"external api wildcard", `{"name":"X","sources":[{"name":"O","external":{"api":"$JS.*.API","deliver":""}}]}`, 10052, false},
		{"external deliver wildcard", `{"name":"X","sources":[{"name":"O","external":{"api":"$JS.hub.API","deliver":"d.*"}}]}`, 10024, false},
		{"external deliver overlap", `{"name":"X","subjects":["x.>"],"sources":[{"name":"O","external":{"api":"$JS.hub.API","deliver":"x"}}]}`, 10022, true},
		{"source consumer", `{"name":"X","sources":[{"name":"O","consumer":{"name":"c","deliver_subject":"d"}}]}`, 10052, true},
	}
	for _, server := range []string{"nats-server", "evnats"} {
		t.Run(server, func(t *testing.T) {
			var url string
			if server == "evnats" {
				url = startJS(t, loop.Options{}).ClientURL()
			} else {
				url = startReferenceJS(t)
			}
			nc, err := nats.Connect(url, nats.NoReconnect())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			wantAPIOK(t, apiCall(t, nc, "$JS.API.STREAM.CREATE.O", `{"name":"O","subjects":["o.>"],"max_msg_size":1024}`))
			wantAPIOK(t, apiCall(t, nc, "$JS.API.STREAM.CREATE.B", `{"name":"B","subjects":["b"],"sources":[{"name":"A"}]}`))
			for _, tc := range cases {
				if tc.evnatsOnly && server != "evnats" {
					continue
				}
				name := strings.Split(strings.Split(tc.body, `"name":"`)[1], `"`)[0]
				wantAPIError(t, apiCall(t, nc, "$JS.API.STREAM.CREATE."+name, tc.body), tc.code, tc.name)
			}
			if server != "evnats" {
				return
			}
			r := apiCall(t, nc, "$JS.API.STREAM.CREATE.X", `{"name":"X","sources":[{"name":"O","consumer":{"name":"c"}}]}`)
			if r.Error == nil || !strings.Contains(r.Error.Description, "sources.consumer") {
				t.Fatalf("consumer: %+v", r.Error)
			}
			names := apiCall(t, nc, "$JS.API.STREAM.NAMES", "")
			if names.Error != nil || names.Total != 2 {
				t.Fatalf("streams after refusals: %s", names.Streams)
			}
		})
	}
}

func wantAPIOK(t *testing.T, r apiReply) {
	t.Helper()
	if r.Error != nil {
		t.Fatalf("api error %+v", r.Error)
	}
}

// TestSourcesUpdate: an update that adds a source starts copying it; a
// source kept across the update goes on from where it was, copying
// nothing twice; a removed one stops.
func TestSourcesUpdate(t *testing.T) {
	s := startJS(t, loop.Options{})
	_, js := connectJS(t, s)
	c := ctx(t)
	for _, n := range []string{"A", "B"} {
		if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: n, Subjects: []string{strings.ToLower(n)}}); err != nil {
			t.Fatal(err)
		}
	}
	publishN(t, js, func(int) string { return "a" }, 1, 3)
	publishN(t, js, func(int) string { return "b" }, 1, 2)
	cfg := jetstream.StreamConfig{Name: "S", Sources: []*jetstream.StreamSource{{Name: "A"}}}
	if _, err := js.CreateStream(c, cfg); err != nil {
		t.Fatal(err)
	}
	until(t, "A copied", func() bool { return streamInfo(t, js, "S").State.Msgs == 3 })
	cfg.Sources = append(cfg.Sources, &jetstream.StreamSource{Name: "B"})
	if _, err := js.UpdateStream(c, cfg); err != nil {
		t.Fatal(err)
	}
	until(t, "B copied", func() bool { return streamInfo(t, js, "S").State.Msgs == 5 })
	cfg.Sources = cfg.Sources[1:] // only B
	if _, err := js.UpdateStream(c, cfg); err != nil {
		t.Fatal(err)
	}
	publishN(t, js, func(int) string { return "a" }, 4, 4)
	publishN(t, js, func(int) string { return "b" }, 3, 3)
	until(t, "B's new message", func() bool { return streamInfo(t, js, "S").State.Msgs == 6 })
	info := streamInfo(t, js, "S")
	if len(info.Sources) != 1 || info.Sources[0].Name != "B" {
		t.Fatalf("sources after the update: %+v", info.Sources)
	}
	if m := getMsg(t, js, "S", 6); sourceHeader(t, m.Header) != "B 3 > > b" {
		t.Fatalf("last message: %q", m.Header.Get("Nats-Stream-Source"))
	}
}

// TestSealedMirrorStops: a sealed mirror takes no more messages; its lag
// shows what it no longer copies.
func TestSealedMirrorStops(t *testing.T) {
	s := startJS(t, loop.Options{})
	_, js := connectJS(t, s)
	c := ctx(t)
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "O", Subjects: []string{"o"}}); err != nil {
		t.Fatal(err)
	}
	publishN(t, js, func(int) string { return "o" }, 1, 2)
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "M", Mirror: &jetstream.StreamSource{Name: "O"}}); err != nil {
		t.Fatal(err)
	}
	until(t, "the copies", func() bool { return streamInfo(t, js, "M").State.Msgs == 2 })
	cfg := streamInfo(t, js, "M").Config
	cfg.Sealed = true
	if _, err := js.UpdateStream(c, cfg); err != nil {
		t.Fatal(err)
	}
	publishN(t, js, func(int) string { return "o" }, 3, 4)
	until(t, "the lag", func() bool { return streamInfo(t, js, "M").Mirror.Lag == 2 })
	if info := streamInfo(t, js, "M"); info.State.Msgs != 2 {
		t.Fatalf("sealed mirror copied: %+v", info.State)
	}
}

// TestMirrorAndSourceSurviveKill9: the server is killed with SIGKILL while
// a mirror and a source copy a 20,000-message origin; after a restart both
// hold every origin message exactly once.
func TestMirrorAndSourceSurviveKill9(t *testing.T) {
	bin, dir, port := processSetup(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	p := startProc(t, bin, port, dir)
	nc, err := nats.Connect(url, nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	c := ctx(t)
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "O", Subjects: []string{"o.*"}}); err != nil {
		t.Fatal(err)
	}
	const total = 20000
	for i := 1; i <= total; i++ {
		if _, err := js.PublishAsync(fmt.Sprintf("o.%d", i%5), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-c.Done():
		t.Fatal("publishes not acked")
	}
	for _, cfg := range []jetstream.StreamConfig{
		{Name: "M", Mirror: &jetstream.StreamSource{Name: "O"}},
		{Name: "S", Sources: []*jetstream.StreamSource{{Name: "O"}}},
	} {
		if _, err := js.CreateStream(c, cfg); err != nil {
			t.Fatal(err)
		}
	}
	var atKill uint64
	for deadline := time.Now().Add(5 * time.Second); atKill == 0 && time.Now().Before(deadline); {
		atKill = streamInfo(t, js, "S").State.Msgs // polled without pause: the copy takes well under a second
	}
	_ = p.Process.Signal(syscall.SIGKILL)
	_, _ = p.Process.Wait()
	nc.Close()
	t.Logf("source held %d of %d when killed", atKill, total)

	startProc(t, bin, port, dir)
	nc2, err := nats.Connect(url, nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	defer nc2.Close()
	js2, _ := jetstream.New(nc2)
	t.Logf("after the restart, before copying resumes: source %d, mirror %d", streamInfo(t, js2, "S").State.Msgs, streamInfo(t, js2, "M").State.Msgs)
	until(t, "both to catch up", func() bool {
		return streamInfo(t, js2, "M").State.Msgs == total && streamInfo(t, js2, "S").State.Msgs >= total
	})
	if st := streamInfo(t, js2, "S").State; st.Msgs != total || st.LastSeq != total {
		t.Fatalf("source after restart: %+v", st)
	}
	if st := streamInfo(t, js2, "M").State; st.FirstSeq != 1 || st.LastSeq != total {
		t.Fatalf("mirror after restart: %+v", st)
	}
	// Every origin sequence once in the source, read with one consumer.
	cons, err := js2.OrderedConsumer(ctx(t), "S", jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[string]bool, total)
	for len(seen) < total {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			h := m.Headers().Get("Nats-Stream-Source")
			if seen[h] {
				t.Fatalf("source holds %q twice", h)
			}
			seen[h] = true
			n++
		}
		if n == 0 {
			t.Fatalf("source read stopped at %d", len(seen))
		}
	}
}

// TestStartTime: opt_start_time starts a mirror and a source at the first
// origin message stored at or after it.
func TestStartTime(t *testing.T) {
	s := startJS(t, loop.Options{})
	_, js := connectJS(t, s)
	c := ctx(t)
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "O", Subjects: []string{"o"}}); err != nil {
		t.Fatal(err)
	}
	publishN(t, js, func(int) string { return "o" }, 1, 30)
	start := getMsg(t, js, "O", 17).Time
	for _, cfg := range []jetstream.StreamConfig{
		{Name: "M", Mirror: &jetstream.StreamSource{Name: "O", OptStartTime: &start}},
		{Name: "S", Sources: []*jetstream.StreamSource{{Name: "O", OptStartTime: &start}}},
	} {
		if _, err := js.CreateStream(c, cfg); err != nil {
			t.Fatal(err)
		}
	}
	until(t, "the copies", func() bool {
		return streamInfo(t, js, "M").State.Msgs == 14 && streamInfo(t, js, "S").State.Msgs == 14
	})
	if st := streamInfo(t, js, "M").State; st.FirstSeq != 17 {
		t.Fatalf("mirror starts at %d, want 17", st.FirstSeq)
	}
	if h := sourceHeader(t, getMsg(t, js, "S", 1).Header); h != "O 17 > > o" {
		t.Fatalf("source's first message: %q", h)
	}
}
