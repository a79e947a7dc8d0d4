package jetstream_test

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// schedulePublish publishes a message with headers (name, value pairs)
// and returns "ok" or the API error.
func schedulePublish(t *testing.T, js jetstream.JetStream, subject string, hdr ...string) string {
	t.Helper()
	m := nats.NewMsg(subject)
	m.Data = []byte("body")
	for i := 0; i+1 < len(hdr); i += 2 {
		m.Header.Set(hdr[i], hdr[i+1])
	}
	_, err := js.PublishMsg(ctx(t), m)
	if err == nil {
		return "ok"
	}
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("publish %s: %v", subject, err)
	}
	return fmt.Sprintf("%d %s", apiErr.ErrorCode, apiErr.Description)
}

// headerKeys lists a message's headers, values of times replaced.
func headerKeys(h nats.Header) string {
	var keys []string
	for k, vs := range h {
		v := strings.Join(vs, ",")
		if k == "Nats-Schedule-Next" && v != "purge" {
			if _, err := time.Parse(time.RFC3339Nano, v); err == nil {
				v = "<time>"
			}
		}
		keys = append(keys, k+"="+v)
	}
	sort.Strings(keys)
	return strings.Join(keys, " ")
}

// scheduleScenario drives one server through schedule configs, publishes
// with schedule headers, and firings, and returns one line per outcome.
func scheduleScenario(t *testing.T, url, later string) []string {
	t.Helper()
	_, js := dial(t, url)
	c := ctx(t)
	var out []string
	for _, cfg := range []jetstream.StreamConfig{
		{Name: "DN", AllowMsgSchedules: true, Discard: jetstream.DiscardNew},
		{Name: "CNT", AllowMsgSchedules: true, AllowMsgCounter: true},
		{Name: "MIR", AllowMsgSchedules: true, Mirror: &jetstream.StreamSource{Name: "X"}},
		{Name: "SRC", AllowMsgSchedules: true, Sources: []*jetstream.StreamSource{{Name: "X"}}},
	} {
		_, err := js.CreateStream(c, cfg)
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) {
			t.Fatalf("%s: want an API error, got %v", cfg.Name, err)
		}
		out = append(out, fmt.Sprintf("create %s: %d %s", cfg.Name, apiErr.ErrorCode, apiErr.Description))
	}
	st, err := js.CreateStream(c, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, AllowMsgSchedules: true, DenyPurge: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	out = append(out, fmt.Sprintf("config rollup=%v deny_purge=%v", cfg.AllowRollup, cfg.DenyPurge))
	cfg.AllowMsgSchedules = false
	_, err = js.UpdateStream(c, cfg)
	out = append(out, fmt.Sprintf("disable: %v", err))
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "OFF", Subjects: []string{"off.>"}}); err != nil {
		t.Fatal(err)
	}
	at := []string{"Nats-Schedule", "@at " + later, "Nats-Schedule-Target", "s.t"}
	for _, p := range []struct {
		subject string
		hdr     []string
	}{
		{"off.a", at},
		{"off.a", []string{"Nats-Schedule", "bogus"}},
		{"s.a", []string{"Nats-Schedule", "bogus", "Nats-Schedule-Target", "s.t"}},
		{"s.a", []string{"Nats-Schedule", "@every 500ms", "Nats-Schedule-Target", "s.t"}},
		{"s.a", []string{"Nats-Schedule", "@every 1m", "Nats-Schedule-Target", "s.t", "Nats-Schedule-Time-Zone", "Europe/Paris"}},
		{"s.a", []string{"Nats-Schedule", "0 0 * * * *", "Nats-Schedule-Target", "s.t", "Nats-Schedule-Time-Zone", "Mars/Olympus"}},
		{"s.a", []string{"Nats-Schedule", "0 0 * * * *", "Nats-Schedule-Target", "s.t", "Nats-Schedule-Time-Zone", "Europe/Paris"}},
		{"s.a", []string{"Nats-Schedule", "0 0 * * * *", "Nats-Schedule-Target", "s.t", "Nats-Schedule-Time-Zone", "../../../../etc/passwd"}},
		{"s.a", []string{"Nats-Schedule", "0 0 * * * *", "Nats-Schedule-Target", "s.t", "Nats-Schedule-Time-Zone", "/etc/localtime"}},
		{"s.a", []string{"Nats-Schedule", "0 0 * * * *", "Nats-Schedule-Target", "s.t", "Nats-Schedule-Time-Zone", "Local"}},
		{"s.a", []string{"Nats-Schedule", "0 0 * * * *", "Nats-Schedule-Target", "s.t", "Nats-Schedule-Time-Zone", ""}},
		{"s.a", []string{"Nats-Schedule", "@at " + later, "Nats-Schedule-Target", "s.t", "Nats-Schedule-Time-Zone", "UTC"}},
		{"s.a", []string{"Nats-Schedule", "@every 99999999999h", "Nats-Schedule-Target", "s.t"}},
		{"s.a", []string{"Nats-Schedule", "0 0 0 30 2 *", "Nats-Schedule-Target", "s.t"}},
		{"s.a", []string{"Nats-Schedule", "@at 9999-12-31T23:59:59Z", "Nats-Schedule-Target", "s.t"}},
		{"s.a", []string{"Nats-Schedule", "0 0 * * *", "Nats-Schedule-Target", "s.t"}},
		{"s.a", []string{"Nats-Schedule", "0 70 * * * *", "Nats-Schedule-Target", "s.t"}},
		{"s.a", []string{"Nats-Schedule", "*/15 0-30/5 9-17 ? JAN-MAR MON-FRI", "Nats-Schedule-Target", "s.t"}},
		{"s.a", []string{"Nats-Schedule", "@daily", "Nats-Schedule-Target", "s.t"}},
		{"s.a", []string{"Nats-Schedule", "@at yesterday", "Nats-Schedule-Target", "s.t"}},
		{"s.a", append([]string{"Nats-Schedule-TTL", "0"}, at...)},
		{"s.a", append([]string{"Nats-Schedule-TTL", "5s"}, at...)},
		{"s.a", append([]string{"Nats-Schedule-Rollup", "all"}, at...)},
		{"s.a", append([]string{"Nats-Rollup", "all"}, at...)},
		{"s.a", []string{"Nats-Schedule", "@at " + later}},
		{"s.a", []string{"Nats-Schedule", "@at " + later, "Nats-Schedule-Target", "s.a"}},
		{"s.a", []string{"Nats-Schedule", "@at " + later, "Nats-Schedule-Target", "elsewhere"}},
		{"s.a", []string{"Nats-Schedule", "@at " + later, "Nats-Schedule-Target", "s.*"}},
		{"s.a", append([]string{"Nats-Schedule-Source", "s.t"}, at...)},
		{"s.a", append([]string{"Nats-Schedule-Source", "elsewhere"}, at...)},
		{"s.a", []string{"Nats-Schedule-Next", "2030-01-01T00:00:00Z", "Nats-Scheduler", "s.x"}},
		{"s.a", []string{"Nats-Schedule-Next", "purge"}},
		{"s.a", []string{"Nats-Schedule-Next", "purge", "Nats-Scheduler", "s.a"}},
		{"s.a", []string{"Nats-Scheduler", "s.x"}},
		{"s.a", at},
	} {
		out = append(out, fmt.Sprintf("publish %s %q: %s", p.subject, p.hdr, schedulePublish(t, js, p.subject, p.hdr...)))
	}
	m, err := st.GetLastMsgForSubject(c, "s.a")
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, "stored schedule "+headerKeys(m.Header))
	// A client cancels the schedule: the purge removes s.a.
	out = append(out, "cancel: "+schedulePublish(t, js, "s.cancel", "Nats-Schedule-Next", "purge", "Nats-Scheduler", "s.a"))
	_, err = st.GetLastMsgForSubject(c, "s.a")
	out = append(out, fmt.Sprintf("after cancel: %v", err))

	// One-off and repeating schedules fire.
	cons, err := st.OrderedConsumer(c, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"s.fired.>"}})
	if err != nil {
		t.Fatal(err)
	}
	soon := time.Now().Add(time.Second).UTC().Format(time.RFC3339)
	for _, p := range [][]string{
		{"s.once", "Nats-Schedule", "@at " + soon, "Nats-Schedule-Target", "s.fired.once", "Nats-Msg-Id", "m1", "Custom", "kept"},
		{"s.src", "Nats-Schedule", "@at " + soon, "Nats-Schedule-Target", "s.fired.src", "Nats-Schedule-Source", "s.data", "Nats-Schedule-Rollup", "sub"},
		{"s.data", "From", "source"},
		{"s.rep", "Nats-Schedule", "@every 1s", "Nats-Schedule-Target", "s.fired.rep"},
	} {
		if r := schedulePublish(t, js, p[0], p[1:]...); r != "ok" {
			t.Fatalf("%v: %s", p, r)
		}
	}
	fired := map[string][]string{}
	for len(fired["s.fired.rep"]) < 2 || len(fired["s.fired.once"]) < 1 || len(fired["s.fired.src"]) < 1 {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("firings so far %v: %v", fired, err)
		}
		fired[m.Subject()] = append(fired[m.Subject()], fmt.Sprintf("%q %s", m.Data(), headerKeys(m.Headers())))
	}
	for _, subj := range []string{"s.fired.once", "s.fired.src", "s.fired.rep"} {
		out = append(out, subj+": "+fired[subj][0])
	}
	for _, subj := range []string{"s.once", "s.src", "s.rep"} {
		_, err := st.GetLastMsgForSubject(c, subj)
		out = append(out, fmt.Sprintf("schedule %s after firing: %v", subj, err))
	}
	return out
}

// TestMsgScheduleDifferential compares config errors, publish verdicts,
// stored schedules and fired messages with nats-server's.
func TestMsgScheduleDifferential(t *testing.T) {
	later := time.Now().Add(time.Hour).UTC().Format(time.RFC3339) // the same in both runs
	differential(t, func(t *testing.T, url string) []string { return scheduleScenario(t, url, later) })
}

// TestMsgScheduleSurvivesRestart: a one-off schedule stored before a
// restart fires after it.
func TestMsgScheduleSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := startJS(t, loop.Options{StoreDir: dir})
	_, js := connectJS(t, s)
	c := ctx(t)
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "R", Subjects: []string{"r.>"}, AllowMsgSchedules: true}); err != nil {
		t.Fatal(err)
	}
	soon := time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339)
	if r := schedulePublish(t, js, "r.s", "Nats-Schedule", "@at "+soon, "Nats-Schedule-Target", "r.t"); r != "ok" {
		t.Fatal(r)
	}
	s.Shutdown()
	s = startJS(t, loop.Options{StoreDir: dir})
	_, js = connectJS(t, s)
	st, err := js.Stream(c, "R")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the schedule fires after the restart", func() bool {
		m, err := st.GetLastMsgForSubject(c, "r.t")
		return err == nil && m.Header.Get("Nats-Scheduler") == "r.s"
	})
	if _, err := st.GetLastMsgForSubject(c, "r.s"); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Fatalf("schedule after firing: %v", err)
	}
	// A new schedule on the same subject survives the next restart: the
	// replayed firing's purge is not applied again.
	later := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if r := schedulePublish(t, js, "r.s", "Nats-Schedule", "@at "+later, "Nats-Schedule-Target", "r.t"); r != "ok" {
		t.Fatal(r)
	}
	s.Shutdown()
	s = startJS(t, loop.Options{StoreDir: dir})
	_, js = connectJS(t, s)
	if st, err = js.Stream(c, "R"); err != nil {
		t.Fatal(err)
	}
	if m, err := st.GetLastMsgForSubject(c, "r.s"); err != nil || m.Header.Get("Nats-Schedule") != "@at "+later {
		t.Fatalf("new schedule after a restart: %v %v", m, err)
	}
}
