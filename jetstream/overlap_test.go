package jetstream_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// overlapScenario creates streams whose subjects overlap others', some by
// wildcards, among many subjects, and reports each create's or update's
// error code and text.
func overlapScenario(t *testing.T, url string) []string {
	_, js := dial(t, url)
	many := make([]string, 2000)
	for i := range many {
		many[i] = fmt.Sprintf("orders.%d.new", i)
	}
	steps := []struct {
		name   string
		update bool
		subs   []string
	}{
		{"ORDERS", false, many},
		{"WILD", false, []string{"orders.*.new"}},          // collides with every one of ORDERS'
		{"LAST", false, []string{"x", "orders.1999.>"}},    // collides with ORDERS' last
		{"FULL", false, []string{"orders.>"}},              // covers all
		{"OTHER", false, []string{"orders.2000.old", "y"}}, // no overlap
		{"OTHER", true, []string{"y", "orders.5.*"}},       // update into ORDERS' space
		{"OTHER", true, []string{"z"}},                     // update away: fine
		{"ORDERS", true, append(many[:1000:1000], "y.>")},  // ORDERS update: its own subjects do not count
		{"ORDERS", true, append(many[:1000:1000], "z")},    // but OTHER's do
		{"SELF", false, []string{"a.b", "c", "a.*", "c"}},  // overlaps within itself: the first pair is named
		{"SELF", false, []string{"a.>", "b", "a.x.y"}},
	}
	var out []string
	for _, s := range steps {
		cfg := jetstream.StreamConfig{Name: s.name, Subjects: s.subs, Storage: jetstream.MemoryStorage}
		var err error
		if s.update {
			_, err = js.UpdateStream(ctx(t), cfg)
		} else {
			_, err = js.CreateStream(ctx(t), cfg)
		}
		var apiErr *jetstream.APIError
		switch {
		case err == nil:
			out = append(out, s.name+": ok")
		case errors.As(err, &apiErr):
			out = append(out, fmt.Sprintf("%s: %d %d %s", s.name, apiErr.Code, apiErr.ErrorCode, apiErr.Description))
		default:
			t.Fatalf("%s: %v", s.name, err)
		}
	}

	return out
}

// TestSubjectOverlapDifferential checks that a stream create or update
// whose subjects overlap another stream's is refused with 10065 "subjects
// overlap with an existing stream", and one overlapping itself with the
// pair nats-server names, as nats-server does.
func TestSubjectOverlapDifferential(t *testing.T) {
	differential(t, overlapScenario)
}
