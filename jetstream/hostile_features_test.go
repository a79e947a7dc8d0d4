package jetstream_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Hostile input against the newer JetStream features (pause, batches,
// sources), each found by a review: a request that crashed a handler,
// left state behind that broke later requests, or grew without bound.

// noPanics fails the test if the server logged a recovered panic.
func noPanics(t *testing.T, log *looptest.LogBuffer) {
	t.Helper()
	if s := log.String(); strings.Contains(s, "internal error") {
		t.Fatalf("the server recovered a panic:\n%s", s)
	}
}

// TestPauseUntilOutOfJSONRange: a pause_until whose UTC year leaves
// 0..9999 (a year-0 time with a positive offset) cannot be written back as
// JSON; it must be refused, not stored where every later info panics.
func TestPauseUntilOutOfJSONRange(t *testing.T) {
	var log looptest.LogBuffer
	s := startJS(t, loop.Options{LogWriter: &log})
	nc, js := connectJS(t, s)
	st, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "PR", Subjects: []string{"pr.>"}, Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	for _, durable := range []string{"", "D"} {
		c, err := st.CreateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: durable, InactiveThreshold: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		name := c.CachedInfo().Name
		for _, until := range []string{"0000-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"} {
			r := apiCall(t, nc, "$JS.API.CONSUMER.PAUSE.PR."+name, `{"pause_until":"`+until+`"}`)
			if r.Error == nil || r.Error.Code != 400 {
				t.Fatalf("pause_until %s: got %+v, want a 400", until, r.Error)
			}
		}
		if _, err := c.Info(ctx(t)); err != nil {
			t.Fatalf("consumer %q info after a refused pause: %v", name, err)
		}
	}
	for _, cfg := range []string{
		`{"stream_name":"PR","config":{"name":"BAD1","pause_until":"0000-01-01T00:00:00+01:00"}}`,
		`{"stream_name":"PR","config":{"name":"BAD2","opt_start_time":"0000-01-01T00:00:00+01:00","deliver_policy":"by_start_time"}}`,
	} {
		var req struct {
			Config struct{ Name string } `json:"config"`
		}
		json.Unmarshal([]byte(cfg), &req)
		r := apiCall(t, nc, "$JS.API.CONSUMER.CREATE.PR."+req.Config.Name, cfg)
		if r.Error == nil {
			if _, err := st.Consumer(ctx(t), req.Config.Name); err != nil {
				t.Fatalf("%s accepted but info fails: %v", cfg, err)
			}
		}
	}
	for i, src := range []string{
		`{"name":"S1","sources":[{"name":"PR","opt_start_time":"0000-01-01T00:00:00+01:00"}]}`,
		`{"name":"S2","mirror":{"name":"PR","opt_start_time":"9999-12-31T23:59:59-01:00"}}`,
	} {
		r := apiCall(t, nc, fmt.Sprintf("$JS.API.STREAM.CREATE.S%d", i+1), src)
		if r.Error == nil {
			if _, err := js.Stream(ctx(t), fmt.Sprintf("S%d", i+1)); err != nil {
				t.Fatalf("%s accepted but info fails: %v", src, err)
			}
		}
	}
	noPanics(t, &log)
}

var _ = nats.Connect
