package jetstream_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// incr publishes a counter increment with extra headers (name, value
// pairs) and body, and returns the ack's "val" or the error code.
func incr(t *testing.T, nc *nats.Conn, subject, by, body string, hdr ...string) string {
	t.Helper()
	m := nats.NewMsg(subject)
	m.Data = []byte(body)
	if by != "" {
		m.Header.Set("Nats-Incr", by)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		m.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := nc.RequestMsg(m, 5*time.Second)
	if err != nil {
		t.Fatalf("publish %s %q: %v", subject, by, err)
	}
	var ack struct {
		Seq   uint64 `json:"seq"`
		Val   string `json:"val"`
		Error *struct {
			Code    int    `json:"code"`
			ErrCode int    `json:"err_code"`
			Desc    string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		t.Fatalf("ack %q: %v", resp.Data, err)
	}
	if ack.Error != nil {
		return fmt.Sprintf("error %d %d %s", ack.Error.Code, ack.Error.ErrCode, ack.Error.Desc)
	}
	return fmt.Sprintf("seq %d val %s", ack.Seq, ack.Val)
}

// counterScenario drives one server through counter configs, increments
// (valid, invalid, refused) and a sourcing aggregate, and returns one line
// per outcome.
func counterScenario(t *testing.T, url string) []string {
	t.Helper()
	nc, js := dial(t, url)
	c := ctx(t)
	var out []string
	for _, cfg := range []jetstream.StreamConfig{
		{Name: "DN", AllowMsgCounter: true, Discard: jetstream.DiscardNew},
		{Name: "TTL", AllowMsgCounter: true, AllowMsgTTL: true},
		{Name: "WQ", AllowMsgCounter: true, Retention: jetstream.WorkQueuePolicy},
		{Name: "IN", AllowMsgCounter: true, Retention: jetstream.InterestPolicy},
		{Name: "MIR", AllowMsgCounter: true, Mirror: &jetstream.StreamSource{Name: "X"}},
	} {
		_, err := js.CreateStream(c, cfg)
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) {
			t.Fatalf("%s: want an API error, got %v", cfg.Name, err)
		}
		out = append(out, fmt.Sprintf("create %s: %d %d %s", cfg.Name, apiErr.Code, apiErr.ErrorCode, apiErr.Description))
	}
	cnt := jetstream.StreamConfig{Name: "CNT", Subjects: []string{"cnt.>"}, AllowMsgCounter: true, AllowAtomicPublish: true, AllowRollup: true}
	if _, err := js.CreateStream(c, cnt); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "PLAIN", Subjects: []string{"plain"}}); err != nil {
		t.Fatal(err)
	}
	cnt.AllowMsgCounter = false
	_, err := js.UpdateStream(c, cnt)
	out = append(out, fmt.Sprintf("update off: %v", err))
	big := "123456789012345678901234567890123456789"
	for _, p := range [][]string{
		{"cnt.a", "1", ""}, {"cnt.a", "+5", ""}, {"cnt.a", "-3", ""}, {"cnt.a", "0", ""},
		{"cnt.a", big, ""}, {"cnt.a", "-" + big + "0", ""}, {"cnt.a", "9223372036854775807", ""}, {"cnt.a", "9223372036854775807", ""},
		{"cnt.a", "abc", ""}, {"cnt.a", "1.5", ""}, {"cnt.a", "0x10", ""}, {"cnt.a", "1e3", ""}, {"cnt.a", "--1", ""}, {"cnt.a", "1_000", ""},
		{"cnt.a", "", ""}, {"cnt.a", "", "body"}, {"cnt.a", "1", "body"},
		{"cnt.b", "1", "", "Nats-Expected-Stream", "CNT"}, {"cnt.b", "1", "", "Nats-Rollup", "sub"},
		{"cnt.b", "1", "", "Nats-Expected-Last-Sequence", "0"}, {"cnt.b", "1", "", "Nats-Expected-Last-Subject-Sequence", "0"},
		{"cnt.b", "1", "", "Nats-Expected-Last-Msg-Id", "x"}, {"cnt.b", "2", "", "Nats-TTL", "5s"},
		{"cnt.b", "7", "", "Nats-Msg-Id", "once"}, {"cnt.b", "7", "", "Nats-Msg-Id", "once"},
		{"plain", "1", ""}, {"plain", "x", ""}, {"plain", "", "ok"},
	} {
		out = append(out, fmt.Sprintf("incr %s %q %q %v: %s", p[0], p[1], p[2], p[3:], incr(t, nc, p[0], p[1], p[2], p[3:]...)))
	}
	// An atomic batch: the second increment sees the first.
	for i, by := range []string{"10", "20"} {
		m := nats.NewMsg("cnt.batch")
		m.Header.Set("Nats-Incr", by)
		m.Header.Set("Nats-Batch-Id", "b")
		m.Header.Set("Nats-Batch-Sequence", fmt.Sprint(i+1))
		if i == 1 {
			m.Header.Set("Nats-Batch-Commit", "1")
		}
		if _, err := nc.RequestMsg(m, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := js.Stream(c, "CNT")
	for _, subj := range []string{"cnt.a", "cnt.b", "cnt.batch"} {
		m, err := st.GetLastMsgForSubject(c, subj)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("stored %s %s Nats-Incr=%s", subj, m.Data, m.Header.Get("Nats-Incr")))
	}
	// Sources: an aggregate sums the counters of two streams.
	for _, name := range []string{"C1", "C2"} {
		if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: name, Subjects: []string{strings.ToLower(name) + ".*"}, AllowMsgCounter: true}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "AGG", AllowMsgCounter: true, Sources: []*jetstream.StreamSource{
		{Name: "C1", SubjectTransforms: []jetstream.SubjectTransformConfig{{Source: "c1.*", Destination: "total.{{wildcard(1)}}"}}},
		{Name: "C2", SubjectTransforms: []jetstream.SubjectTransformConfig{{Source: "c2.*", Destination: "total.{{wildcard(1)}}"}}},
	}}); err != nil {
		t.Fatal(err)
	}
	for i, p := range [][2]string{{"c1.x", "5"}, {"c2.x", "7"}, {"c1.x", "3"}, {"c2.x", "-10"}} {
		out = append(out, fmt.Sprintf("incr %s %s: %s", p[0], p[1], incr(t, nc, p[0], p[1], "")))
		// One at a time, so both servers copy in the same order.
		waitFor(t, 5*time.Second, "the aggregate copies", func() bool {
			agg, err := js.Stream(c, "AGG")
			return err == nil && agg.CachedInfo().State.Msgs == uint64(i+1)
		})
	}
	agg, _ := js.Stream(c, "AGG")
	for seq := uint64(1); seq <= agg.CachedInfo().State.LastSeq; seq++ {
		m, err := agg.GetMsg(c, seq)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("agg %d %s %s Nats-Incr=%s Nats-Counter-Sources=%s", seq, m.Subject, m.Data,
			m.Header.Get("Nats-Incr"), m.Header.Get("Nats-Counter-Sources")))
	}
	return out
}

// TestCounterDifferential compares config errors, acks, stored totals
// and a sourced aggregate with nats-server's.
func TestCounterDifferential(t *testing.T) {
	differential(t, counterScenario)
}

// TestCounterHostile: increments and totals beyond evnats' cap of 256
// digits are refused as invalid, not parsed for seconds on the Manager
// goroutine, and a stored total survives a restart.
func TestCounterHostile(t *testing.T) {
	dir := t.TempDir()
	s := startJS(t, loop.Options{StoreDir: dir})
	nc, js := connectJS(t, s)
	c := ctx(t)
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "H", Subjects: []string{"h.>"}, AllowMsgCounter: true}); err != nil {
		t.Fatal(err)
	}
	nines := strings.Repeat("9", 256)
	for _, tc := range []struct{ by, want string }{
		{strings.Repeat("9", 1<<16), "error 400 10171 message counter increment is invalid"},
		{"1" + nines, "error 400 10171 message counter increment is invalid"},
		{nines, "seq 1 val " + nines},
		{"1", "error 400 10171 message counter increment is invalid"}, // the total would have 257 digits
		{"-" + nines, "seq 2 val 0"},
		{"-" + nines, "seq 3 val -" + nines},
	} {
		if got := incr(t, nc, "h.x", tc.by, ""); got != tc.want {
			t.Fatalf("Nats-Incr of %d bytes: %s, want %s", len(tc.by), got, tc.want)
		}
	}
	nc.Close()
	s.Shutdown()
	s = startJS(t, loop.Options{StoreDir: dir})
	nc, _ = connectJS(t, s)
	if got := incr(t, nc, "h.x", "+"+nines, ""); got != "seq 4 val 0" {
		t.Fatalf("after restart: %s", got)
	}
}
