package jetstream_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// rawReply sends one request and describes its first reply: "<status>
// <description>" for a status message, else the payload.
func rawReply(t *testing.T, nc *nats.Conn, subject, body string) string {
	t.Helper()
	m, err := nc.Request(subject, []byte(body), 5*time.Second)
	if err != nil {
		t.Fatalf("%s %s: %v", subject, body, err)
	}
	if s := m.Header.Get("Status"); s != "" && len(m.Data) == 0 {
		return s + " " + m.Header.Get("Description")
	}
	return string(m.Data)
}

// apiErrorOf describes a JSON API reply's error, or "ok".
func apiErrorOf(t *testing.T, reply string) string {
	t.Helper()
	var r struct {
		Error *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(reply), &r); err != nil {
		t.Fatalf("%v: %s", err, reply)
	}
	if r.Error == nil {
		return "ok"
	}
	return fmt.Sprintf("%d %d %s", r.Error.Code, r.Error.ErrCode, r.Error.Description)
}

// fetchPinned fetches up to n messages, acks them, and returns how many
// came, the Nats-Pin-Id they carried (the last one) and the batch's error.
func fetchPinned(t *testing.T, c jetstream.Consumer, n int, wait time.Duration, opts ...jetstream.FetchOpt) (int, string, error) {
	t.Helper()
	batch, err := c.Fetch(n, append(opts, jetstream.FetchMaxWait(wait))...)
	if err != nil {
		t.Fatal(err)
	}
	got, pin := 0, ""
	for m := range batch.Messages() {
		pin = m.Headers().Get("Nats-Pin-Id")
		if err := m.Ack(); err != nil {
			t.Fatal(err)
		}
		got++
	}
	return got, pin, batch.Error()
}

// groupInfo is a consumer info's priority fields, as raw JSON.
func groupInfo(t *testing.T, nc *nats.Conn, stream, consumer string) (state string, pinned string) {
	t.Helper()
	var info struct {
		Config         map[string]json.RawMessage `json:"config"`
		PriorityGroups []struct {
			Group    string    `json:"group"`
			Pinned   string    `json:"pinned_client_id"`
			PinnedTS time.Time `json:"pinned_ts"`
		} `json:"priority_groups"`
	}
	reply := rawReply(t, nc, "$JS.API.CONSUMER.INFO."+stream+"."+consumer, "")
	if err := json.Unmarshal([]byte(reply), &info); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, k := range []string{"priority_groups", "priority_policy", "priority_timeout"} {
		fmt.Fprintf(&b, "%s=%s ", k, info.Config[k])
	}
	for _, g := range info.PriorityGroups {
		pinned = g.Pinned
		fmt.Fprintf(&b, "state{%s pinned:%v ts:%v}", g.Group, g.Pinned != "", !g.PinnedTS.IsZero())
	}
	return b.String(), pinned
}

// priorityScenario drives one server through the priority group features
// with nats.go and raw requests, and returns what a client observes:
// create verdicts, which fetch got how many messages, pull statuses, pin
// changes, unpin replies and info fields. Pin ids are random, so the trace
// says only whether one is there and whether it changed.
func priorityScenario(t *testing.T, url string) []string {
	t.Helper()
	nc := connectURL(t, url)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var trace []string
	add := func(format string, args ...any) { trace = append(trace, fmt.Sprintf(format, args...)) }
	st, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "PG", Subjects: []string{"pg.>"}})
	if err != nil {
		t.Fatal(err)
	}

	// Config rules, through raw creates so every refusal's text is seen.
	for i, cfg := range []string{
		`{"priority_policy":"overflow","priority_groups":["A","b-2/x_=y"]}`,
		`{"priority_policy":"pinned_client","priority_groups":["A"]}`,
		`{"priority_policy":"pinned_client","priority_groups":["A"],"priority_timeout":-5}`,
		`{"priority_policy":"prioritized","priority_groups":["A"],"priority_timeout":1000000000}`,
		`{"priority_policy":"none"}`,
		`{"priority_policy":"overflow"}`,
		`{"priority_policy":"overflow","priority_groups":[""]}`,
		`{"priority_policy":"overflow","priority_groups":["has space"]}`,
		`{"priority_policy":"overflow","priority_groups":["abcdefghijklmnopq"]}`,
		`{"priority_policy":"overflow","priority_groups":["A"],"deliver_subject":"push.pg"}`,
		`{"priority_groups":["A"]}`,
		`{"priority_timeout":1000000000}`,
		`{"priority_policy":"sideways","priority_groups":["A"]}`,
	} {
		name := fmt.Sprintf("R%d", i)
		body := `{"stream_name":"PG","action":"create","config":` + strings.TrimSuffix(cfg, "}") + `,"durable_name":"` + name + `","ack_policy":"explicit"}}`
		verdict := apiErrorOf(t, rawReply(t, nc, "$JS.API.CONSUMER.CREATE.PG."+name, body))
		if verdict == "ok" {
			state, _ := groupInfo(t, nc, "PG", name)
			verdict += " " + state
		}
		add("create %s: %s", cfg, verdict)
	}

	// Overflow: a pull with min_pending / min_ack_pending is served only
	// while the consumer is that far behind.
	for range 10 {
		if _, err := js.Publish(ctx(t), "pg.o", []byte("o")); err != nil {
			t.Fatal(err)
		}
	}
	ov, err := st.CreateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: "OV", FilterSubject: "pg.o", AckPolicy: jetstream.AckExplicitPolicy,
		PriorityPolicy: jetstream.PriorityPolicyOverflow, PriorityGroups: []string{"A"}})
	if err != nil {
		t.Fatal(err)
	}
	fetchKeep := func(what string, n int, wait time.Duration, opts ...jetstream.FetchOpt) {
		batch, err := ov.Fetch(n, append(opts, jetstream.FetchMaxWait(wait), jetstream.FetchPriorityGroup("A"))...)
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for range batch.Messages() { // not acked: they stay ack pending
			got++
		}
		add("overflow %s: %d, err %v", what, got, batch.Error())
	}
	fetchKeep("min_pending 100", 2, 300*time.Millisecond, jetstream.FetchMinPending(100))
	fetchKeep("min_pending 10", 2, 500*time.Millisecond, jetstream.FetchMinPending(10)) // one: then 9 are left
	fetchKeep("min_ack_pending 2", 2, 300*time.Millisecond, jetstream.FetchMinAckPending(2))
	fetchKeep("min_ack_pending 1", 2, 2*time.Second, jetstream.FetchMinAckPending(1))
	fetchKeep("plain", 2, 2*time.Second)
	for _, body := range []string{
		`{"batch":1,"expires":1000000000}`,
		`{"batch":1,"expires":1000000000,"group":"B"}`,
		`{"batch":1,"expires":1000000000,"group":"A","id":"x"}`,
		`{"batch":1,"expires":1000000000,"group":"A","priority":10}`,
		`{"batch":1,"expires":1000000000,"group":"A","priority":-1}`,
	} {
		add("overflow pull %s: %s", body, rawReply(t, nc, "$JS.API.CONSUMER.MSG.NEXT.PG.OV", body))
	}
	state, _ := groupInfo(t, nc, "PG", "OV")
	add("overflow info: %s", state)

	// Pinned client: the first client served is pinned; others wait until
	// it is unpinned or its pin times out.
	for range 6 {
		if _, err := js.Publish(ctx(t), "pg.n", []byte("n")); err != nil {
			t.Fatal(err)
		}
	}
	cfg := jetstream.ConsumerConfig{Durable: "PN", FilterSubject: "pg.n", AckPolicy: jetstream.AckExplicitPolicy,
		PriorityPolicy: jetstream.PriorityPolicyPinned, PriorityGroups: []string{"A"}, PinnedTTL: time.Second}
	c1, err := st.CreateConsumer(ctx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := st.Consumer(ctx(t), "PN") // a second client: its own pin id
	if err != nil {
		t.Fatal(err)
	}
	group := jetstream.FetchPriorityGroup("A")
	n, pin1, err := fetchPinned(t, c1, 1, 2*time.Second, group)
	add("pinned c1: %d, pin %v, err %v", n, pin1 != "", err)
	state, infoPin := groupInfo(t, nc, "PG", "PN")
	add("pinned info: %s, is c1's %v", state, infoPin == pin1)
	n, _, err = fetchPinned(t, c2, 1, 300*time.Millisecond, group)
	add("pinned c2 while c1 pinned: %d, err %v", n, err)
	n, pin, err := fetchPinned(t, c1, 1, 2*time.Second, group)
	add("pinned c1 again: %d, same pin %v, err %v", n, pin == pin1, err)
	add("pinned pull, other id: %s", rawReply(t, nc, "$JS.API.CONSUMER.MSG.NEXT.PG.PN", `{"batch":1,"expires":1000000000,"group":"A","id":"other"}`))
	add("pinned pull, min_pending: %s", rawReply(t, nc, "$JS.API.CONSUMER.MSG.NEXT.PG.PN", `{"batch":1,"expires":1000000000,"group":"A","min_pending":1}`))
	add("unpin: %v", st.UnpinConsumer(ctx(t), "PN", "A"))
	state, _ = groupInfo(t, nc, "PG", "PN")
	add("unpinned info: %s", state)
	add("pinned pull, stale id, no pin: %s", rawReply(t, nc, "$JS.API.CONSUMER.MSG.NEXT.PG.PN", `{"batch":1,"expires":1000000000,"group":"A","id":"stale"}`))
	n, pin2, err := fetchPinned(t, c2, 1, 2*time.Second, group)
	add("pinned c2 after unpin: %d, new pin %v, err %v", n, pin2 != "" && pin2 != pin1, err)
	n, _, err = fetchPinned(t, c1, 1, 300*time.Millisecond, group)
	add("pinned c1 with its old pin: %d, err %v", n, err)
	waitFor(t, 5*time.Second, "the pin to time out", func() bool { _, p := groupInfo(t, nc, "PG", "PN"); return p == "" })
	n, pin3, err := fetchPinned(t, c1, 1, 2*time.Second, group)
	add("pinned c1 after the timeout: %d, new pin %v, err %v", n, pin3 != "" && pin3 != pin2, err)
	for _, u := range []struct{ subject, body string }{
		{"$JS.API.CONSUMER.UNPIN.PG.PN", `{}`},
		{"$JS.API.CONSUMER.UNPIN.PG.PN", `{"group":"B"}`},
		{"$JS.API.CONSUMER.UNPIN.PG.PN", `{"group":"bad group"}`},
		{"$JS.API.CONSUMER.UNPIN.PG.PN", `not json`},
		{"$JS.API.CONSUMER.UNPIN.PG.NONE", `{"group":"A"}`},
		{"$JS.API.CONSUMER.UNPIN.NONE.PN", `{"group":"A"}`},
		{"$JS.API.CONSUMER.UNPIN.PG.PN", `{"group":"A"}`},
	} {
		add("unpin %s %s: %s", u.subject, u.body, apiErrorOf(t, rawReply(t, nc, u.subject, u.body)))
	}

	// Prioritized: waiting pulls are served by priority, 0 first.
	if _, err := st.CreateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: "PR", FilterSubject: "pg.p", AckPolicy: jetstream.AckNonePolicy,
		PriorityPolicy: jetstream.PriorityPolicyPrioritized, PriorityGroups: []string{"A"}}); err != nil {
		t.Fatal(err)
	}
	subs := make([]*nats.Subscription, 3)
	for i, prio := range []int{5, 1, 5} {
		inbox := nats.NewInbox()
		if subs[i], err = nc.SubscribeSync(inbox); err != nil {
			t.Fatal(err)
		}
		body := fmt.Sprintf(`{"batch":1,"expires":5000000000,"group":"A","priority":%d}`, prio)
		if err := nc.PublishRequest("$JS.API.CONSUMER.MSG.NEXT.PG.PR", inbox, []byte(body)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "the pull to wait", func() bool {
			info, err := js.Consumer(ctx(t), "PG", "PR")
			return err == nil && info.CachedInfo().NumWaiting == i+1
		})
	}
	for i := range 3 {
		if _, err := js.Publish(ctx(t), "pg.p", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		for j, sub := range subs {
			if m, err := sub.NextMsg(100 * time.Millisecond); err == nil {
				add("prioritized message %d went to pull %d (%s)", i, j, m.Data)
			}
		}
	}
	return trace
}

// TestPriorityGroupsDifferential runs the priority group scenario on evnats
// and on an in-process nats-server and compares what the clients saw.
func TestPriorityGroupsDifferential(t *testing.T) {
	ref := startReferenceJS(t)
	s := startJS(t, loop.Options{})
	want := priorityScenario(t, ref)
	got := priorityScenario(t, s.ClientURL())
	for i := range max(len(want), len(got)) {
		w, g := "(none)", "(none)"
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if w != g {
			t.Errorf("step %d:\nnats-server: %s\nevnats:      %s", i, w, g)
		}
	}
	if testing.Verbose() {
		t.Log("\n" + strings.Join(got, "\n"))
	}
}

// TestPinnedConsumerRestart: a durable pinned consumer
// keeps its config across a restart, and its pin (in memory, as
// nats-server's) is gone, so the next client is pinned afresh.
func TestPinnedConsumerRestart(t *testing.T) {
	dir := t.TempDir()
	s := startJS(t, loop.Options{StoreDir: dir})
	_, js := connectJS(t, s)
	st, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "PR", Subjects: []string{"pr.>"}})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := js.Publish(ctx(t), "pr.a", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	c, err := st.CreateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: "C", AckPolicy: jetstream.AckExplicitPolicy,
		PriorityPolicy: jetstream.PriorityPolicyPinned, PriorityGroups: []string{"G"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.CachedInfo().Config.PinnedTTL != 2*time.Minute {
		t.Fatalf("default priority_timeout %v, want 2m", c.CachedInfo().Config.PinnedTTL)
	}
	n, pin, err := fetchPinned(t, c, 1, 2*time.Second, jetstream.FetchPriorityGroup("G"))
	if n != 1 || pin == "" || err != nil {
		t.Fatalf("first fetch: %d, pin %q, %v", n, pin, err)
	}
	s.Shutdown()

	s2 := startJS(t, loop.Options{StoreDir: dir})
	_, js2 := connectJS(t, s2)
	c2, err := js2.Consumer(ctx(t), "PR", "C")
	if err != nil {
		t.Fatal(err)
	}
	info := c2.CachedInfo()
	if info.Config.PriorityPolicy != jetstream.PriorityPolicyPinned || !slices.Equal(info.Config.PriorityGroups, []string{"G"}) ||
		len(info.PriorityGroups) != 1 || info.PriorityGroups[0].PinnedClientID != "" {
		t.Fatalf("after restart: config %+v, groups %+v", info.Config, info.PriorityGroups)
	}
	n, pin2, err := fetchPinned(t, c2, 1, 2*time.Second, jetstream.FetchPriorityGroup("G"))
	if n != 1 || pin2 == "" || pin2 == pin || err != nil {
		t.Fatalf("fetch after restart: %d, pin %q (before %q), %v", n, pin2, pin, err)
	}
}

// TestPinnedConsume: nats.go's Consume keeps the pin across its pulls, so
// one of two consuming clients gets every message until it stops; then,
// after priority_timeout, the other takes over (what the stopped client's
// last pull took comes back after ack_wait).
func TestPinnedConsume(t *testing.T) {
	s := startJS(t, loop.Options{})
	_, js := connectJS(t, s)
	st, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "PC", Subjects: []string{"pc.>"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: "C", AckPolicy: jetstream.AckExplicitPolicy,
		AckWait:        time.Second,
		PriorityPolicy: jetstream.PriorityPolicyPinned, PriorityGroups: []string{"G"}, PinnedTTL: time.Second}); err != nil {
		t.Fatal(err)
	}
	got := make(chan int, 100)
	var ccs []jetstream.ConsumeContext
	for i := range 2 {
		c, err := st.Consumer(ctx(t), "C")
		if err != nil {
			t.Fatal(err)
		}
		cc, err := c.Consume(func(m jetstream.Msg) { _ = m.Ack(); got <- i },
			jetstream.PullPriorityGroup("G"), jetstream.PullMaxMessages(5), jetstream.PullExpiry(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		ccs = append(ccs, cc)
		defer cc.Stop()
	}
	publish := func(n int) {
		for range n {
			if _, err := js.Publish(ctx(t), "pc.a", []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
	}
	receive := func(n int) map[int]int {
		by := map[int]int{}
		for range n {
			select {
			case who := <-got:
				by[who]++
			case <-time.After(5 * time.Second):
				t.Fatalf("received %v of %d", by, n)
			}
		}
		return by
	}
	publish(20)
	by := receive(20)
	if len(by) != 1 {
		t.Fatalf("two pinned consumers shared the messages: %v", by)
	}
	first := 0
	for who := range by {
		first = who
	}
	ccs[first].Stop()
	publish(5)
	deadline := time.After(10 * time.Second)
	for {
		select {
		case who := <-got:
			if who != first {
				return // the other client took over
			}
		case <-deadline:
			t.Fatalf("client %d never took over from the stopped client %d", 1-first, first)
		}
	}
}

// TestOverflowUnfilteredCount: on an unfiltered stream without gaps the
// min_pending count comes from the sequence numbers instead of a scan (the
// differential scenario's consumer filters). The message at hand counts,
// so min_pending N serves one message when N are pending, and a
// redelivery is counted on top; nats-server must agree.
func TestOverflowUnfilteredCount(t *testing.T) {
	s := startJS(t, loop.Options{})
	want := []int{0, 1, 2, 1}
	for _, url := range []string{startReferenceJS(t), s.ClientURL()} {
		if got := overflowCounts(t, url); !slices.Equal(got, want) {
			t.Errorf("%s: fetched %v, want %v", url, got, want)
		}
	}
}

// overflowCounts fetches with min_pending 6, 5, 3, then (after a nak) 3
// from a 5-message stream and returns how many messages each fetch got.
func overflowCounts(t *testing.T, url string) []int {
	nc := connectURL(t, url)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "OU", Subjects: []string{"ou.>"}})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := js.Publish(ctx(t), "ou.a", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	c, err := st.CreateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: "C", AckPolicy: jetstream.AckExplicitPolicy,
		PriorityPolicy: jetstream.PriorityPolicyOverflow, PriorityGroups: []string{"G"}})
	if err != nil {
		t.Fatal(err)
	}
	var counts []int
	var last []jetstream.Msg
	for i, minPending := range []int64{6, 5, 3, 3} {
		if i == 3 {
			if err := last[0].Nak(); err != nil { // due again, on top of the 2 pending
				t.Fatal(err)
			}
		}
		batch, err := c.Fetch(5, jetstream.FetchPriorityGroup("G"), jetstream.FetchMinPending(minPending), jetstream.FetchMaxWait(400*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		last = last[:0]
		for m := range batch.Messages() {
			last = append(last, m)
		}
		counts = append(counts, len(last))
	}
	return counts
}
