package jetstream_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jsapi "github.com/evnats/evnats/jetstream"
	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// apiReply is the part of every $JS.API reply these tests look at.
type apiReply struct {
	Error *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
	Total   int             `json:"total"`
	Offset  int             `json:"offset"`
	Limit   int             `json:"limit"`
	Streams json.RawMessage `json:"streams"`
	Config  json.RawMessage `json:"config"`
}

// apiCall sends a raw request to the API, as any client could.
func apiCall(t *testing.T, nc *nats.Conn, subject, body string) apiReply {
	t.Helper()
	msg, err := nc.Request(subject, []byte(body), 5*time.Second)
	if err != nil {
		t.Fatalf("%s %s: %v", subject, body, err)
	}
	var r apiReply
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		t.Fatalf("%s: reply %q: %v", subject, msg.Data, err)
	}
	return r
}

func wantAPIError(t *testing.T, r apiReply, errCode int, what string) {
	t.Helper()
	if r.Error == nil || r.Error.ErrCode != errCode {
		t.Fatalf("%s: got error %+v, want err_code %d", what, r.Error, errCode)
	}
}

// storeServer starts a JetStream server on a store directory inside root,
// so that anything written beside the store shows up in root.
func storeServer(t *testing.T, io, storeDir string) (*loop.Server, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	s := startJS(t, loop.Options{IO: io, StoreDir: storeDir})
	nc, js := connectJS(t, s)
	return s, nc, js
}

// onlyStore fails the test if root holds anything but the store directory.
func onlyStore(t *testing.T, root string) {
	t.Helper()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "store" {
			t.Fatalf("a client request wrote %s outside the store", filepath.Join(root, e.Name()))
		}
	}
}

// TestClientNamesCannotLeaveTheStore sends the names issue 9 found (a durable
// name climbing out of the store; ".." overwriting the stream's own config)
// through every create form, then restarts the server on the same directory:
// stream S and its messages must still be there, and nothing outside.
func TestClientNamesCannotLeaveTheStore(t *testing.T) {
	for _, tr := range looptest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "store")
			s, nc, js := storeServer(t, tr.IO, dir)
			c := ctx(t)
			if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}}); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 3; i++ {
				if _, err := js.Publish(c, "s", []byte("m")); err != nil {
					t.Fatal(err)
				}
			}
			escape := "../../../../../../outside" // from <store>/jetstream/$G/streams/S/obs
			cases := []struct {
				subject, body string
				errCode       int
			}{
				{"$JS.API.CONSUMER.CREATE.S", `{"stream_name":"S","config":{"durable_name":"` + escape + `"}}`, 10020},
				{"$JS.API.CONSUMER.CREATE.S", `{"stream_name":"S","config":{"name":"` + escape + `"}}`, 10052},
				{"$JS.API.CONSUMER.CREATE.S", `{"stream_name":"S","config":{"name":".."}}`, 10052},
				{"$JS.API.CONSUMER.CREATE.S", `{"stream_name":"S","config":{"name":"a\u0000b"}}`, 10052},
				{"$JS.API.CONSUMER.CREATE.S.x", `{"stream_name":"S","config":{"durable_name":".."}}`, 10017},
				{"$JS.API.CONSUMER.CREATE.S.x", `{"stream_name":"S","config":{"durable_name":"` + escape + `"}}`, 10017},
				{"$JS.API.CONSUMER.CREATE.S.a/b", `{"stream_name":"S","config":{"durable_name":"a/b"}}`, 10127},
				{"$JS.API.CONSUMER.CREATE.S.a\\b", `{"stream_name":"S","config":{}}`, 10127},
				{"$JS.API.CONSUMER.DURABLE.CREATE.S.x", `{"stream_name":"S","config":{"durable_name":".."}}`, 10017},
				{"$JS.API.CONSUMER.CREATE.S." + strings.Repeat("n", 256), `{"stream_name":"S","config":{}}`, 10102},
				{"$JS.API.STREAM.CREATE.a/b", `{"name":"a/b"}`, 10128},
				{"$JS.API.STREAM.CREATE.x", `{"name":"` + escape + `"}`, 10056},
				{"$JS.API.STREAM.CREATE." + strings.Repeat("n", 256), `{}`, 10052},
			}
			for _, tc := range cases {
				wantAPIError(t, apiCall(t, nc, tc.subject, tc.body), tc.errCode, tc.subject+" "+tc.body)
			}
			onlyStore(t, root)
			s.Shutdown()

			_, _, js = storeServer(t, tr.IO, dir)
			st, err := js.Stream(c, "S")
			if err != nil {
				t.Fatalf("stream S lost after restart: %v", err)
			}
			if info, _ := st.Info(c); info.State.Msgs != 3 {
				t.Fatalf("stream S has %d messages after restart, want 3", info.State.Msgs)
			}
			onlyStore(t, root)
		})
	}
}

// TestRecoverySkipsForeignMeta: a meta.json in a directory whose name is not
// the stream (or durable) it names is not recovered as that stream.
func TestRecoverySkipsForeignMeta(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "store")
	s, _, js := storeServer(t, loop.IOGoroutine, dir)
	c := ctx(t)
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateOrUpdateConsumer(c, "S", jetstream.ConsumerConfig{Durable: "D"}); err != nil {
		t.Fatal(err)
	}
	s.Shutdown()
	streams := filepath.Join(dir, "jetstream", "$G", "streams")
	copyFile(t, filepath.Join(streams, "S", "meta.json"), filepath.Join(streams, "T", "meta.json"))
	copyFile(t, filepath.Join(streams, "S", "obs", "D", "meta.json"), filepath.Join(streams, "S", "obs", "E", "meta.json"))

	_, _, js = storeServer(t, loop.IOGoroutine, dir)
	names := js.StreamNames(c)
	var got []string
	for n := range names.Name() {
		got = append(got, n)
	}
	if len(got) != 1 || got[0] != "S" {
		t.Fatalf("streams after restart %v, want [S]", got)
	}
	st, err := js.Stream(c, "S")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Consumer(c, "E"); err == nil {
		t.Fatal("consumer E recovered from a directory whose meta names D")
	}
	if _, err := st.Consumer(c, "D"); err != nil {
		t.Fatalf("consumer D: %v", err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestConsumerNameInSubjectMustMatchBody checks the create forms' name rules
// against nats-server's error codes, and that the agreeing forms still work.
func TestConsumerNameInSubjectMustMatchBody(t *testing.T) {
	s := startJS(t, loop.Options{})
	nc, js := connectJS(t, s)
	c := ctx(t)
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		subject, body string
		errCode       int
	}{
		{"$JS.API.CONSUMER.CREATE.S.A", `{"stream_name":"S","config":{"durable_name":"B"}}`, 10017},
		{"$JS.API.CONSUMER.DURABLE.CREATE.S.A", `{"stream_name":"S","config":{"durable_name":"B"}}`, 10017},
		{"$JS.API.CONSUMER.DURABLE.CREATE.S.A", `{"stream_name":"S","config":{}}`, 10018},
		{"$JS.API.CONSUMER.DURABLE.CREATE.S", `{"stream_name":"S","config":{"durable_name":"S"}}`, 10016},
		{"$JS.API.CONSUMER.CREATE.S", `{"stream_name":"S","config":{"durable_name":"A"}}`, 10020},
		{"$JS.API.CONSUMER.CREATE.S", `{"stream_name":"S","config":{"name":"A","durable_name":"B"}}`, 10020},
		{"$JS.API.CONSUMER.CREATE.S.A", `{"stream_name":"T","config":{}}`, 10056},
	} {
		wantAPIError(t, apiCall(t, nc, tc.subject, tc.body), tc.errCode, tc.subject+" "+tc.body)
	}
	// The forms that agree succeed, and the subject's name is the consumer's.
	for _, tc := range []struct{ subject, body, name string }{
		{"$JS.API.CONSUMER.CREATE.S.A", `{"stream_name":"S","config":{"durable_name":"A"}}`, "A"},
		{"$JS.API.CONSUMER.CREATE.S.B", `{"stream_name":"S","config":{"name":"other"}}`, "B"},
		{"$JS.API.CONSUMER.DURABLE.CREATE.S.C", `{"stream_name":"S","config":{"durable_name":"C"}}`, "C"},
		{"$JS.API.CONSUMER.CREATE.S", `{"stream_name":"S","config":{"name":"E"}}`, "E"},
	} {
		if r := apiCall(t, nc, tc.subject, tc.body); r.Error != nil {
			t.Fatalf("%s: %+v", tc.subject, r.Error)
		}
		if _, err := js.Consumer(c, "S", tc.name); err != nil {
			t.Fatalf("%s: consumer %s: %v", tc.subject, tc.name, err)
		}
	}
}

// TestPageOffsetsAreClamped: the offsets that crashed the server are clamped
// as nats-server clamps them (negative to 0, past the end to the end).
func TestPageOffsetsAreClamped(t *testing.T) {
	s := startJS(t, loop.Options{})
	nc, js := connectJS(t, s)
	c := ctx(t)
	for _, n := range []string{"A", "B", "C"} {
		if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: n, Storage: jetstream.MemoryStorage}); err != nil {
			t.Fatal(err)
		}
		if _, err := js.CreateOrUpdateConsumer(c, "A", jetstream.ConsumerConfig{Durable: "D" + n}); err != nil {
			t.Fatal(err)
		}
	}
	for _, subject := range []string{"$JS.API.STREAM.NAMES", "$JS.API.STREAM.LIST", "$JS.API.CONSUMER.NAMES.A", "$JS.API.CONSUMER.LIST.A"} {
		for _, tc := range []struct{ offset, want, n int }{
			{-1, 0, 3}, {-1 << 62, 0, 3}, {1, 1, 2}, {3, 3, 0}, {4, 3, 0}, {1<<63 - 1, 3, 0},
		} {
			r := apiCall(t, nc, subject, fmt.Sprintf(`{"offset":%d}`, tc.offset))
			if r.Error != nil || r.Total != 3 || r.Offset != tc.want {
				t.Fatalf("%s offset %d: %+v", subject, tc.offset, r)
			}
		}
		if r := apiCall(t, nc, subject, `{"offset":"x"}`); r.Error == nil || r.Error.ErrCode != 10025 {
			t.Fatalf("%s bad JSON: %+v", subject, r.Error)
		}
	}
	if _, err := js.AccountInfo(c); err != nil {
		t.Fatalf("server stopped serving: %v", err)
	}
}

// TestNegativeLimitsNormalizedOrRefused follows nats-server outside pedantic
// mode: counts below -1 mean unlimited; negative durations are refused.
func TestNegativeLimitsNormalizedOrRefused(t *testing.T) {
	s := startJS(t, loop.Options{})
	nc, js := connectJS(t, s)
	c := ctx(t)
	r := apiCall(t, nc, "$JS.API.STREAM.CREATE.N",
		`{"name":"N","max_msgs":-5,"max_bytes":-7,"max_msgs_per_subject":-2,"max_msg_size":-9,"max_consumers":-3,"storage":"memory"}`)
	if r.Error != nil {
		t.Fatal(r.Error)
	}
	var cfg map[string]any
	_ = json.Unmarshal(r.Config, &cfg)
	for _, k := range []string{"max_msgs", "max_bytes", "max_msgs_per_subject", "max_msg_size", "max_consumers"} {
		if cfg[k] != float64(-1) {
			t.Fatalf("%s stored as %v, want -1", k, cfg[k])
		}
	}
	for _, tc := range []struct {
		body    string
		errCode int
	}{
		{`{"name":"M","max_age":-1}`, 10052},
		{`{"name":"M","max_age":1000}`, 10052}, // below 100ms
		{`{"name":"M","duplicate_window":-1}`, 10052},
		{`{"name":"M","duplicate_window":1000}`, 10052},
		{`{"name":"M","num_replicas":-1}`, 10133},
		{`{"name":"M","description":"` + strings.Repeat("d", 4097) + `"}`, 10052},
	} {
		wantAPIError(t, apiCall(t, nc, "$JS.API.STREAM.CREATE.M", tc.body), tc.errCode, tc.body)
	}
	for _, tc := range []struct {
		body    string
		errCode int
	}{
		{`{"stream_name":"N","config":{"ack_wait":-1}}`, 10183},
		{`{"stream_name":"N","config":{"backoff":[1000000000,-1]}}`, 10184},
		{`{"stream_name":"N","config":{"num_replicas":-1}}`, 10133},
	} {
		wantAPIError(t, apiCall(t, nc, "$JS.API.CONSUMER.CREATE.N.C", tc.body), tc.errCode, tc.body)
	}
	cons, err := js.CreateOrUpdateConsumer(c, "N", jetstream.ConsumerConfig{Durable: "C", MaxDeliver: -5, MaxAckPending: -9,
		MaxRequestBatch: -1, MaxRequestMaxBytes: -1, MaxRequestExpires: -1, InactiveThreshold: -1, MaxWaiting: -4})
	if err != nil {
		t.Fatal(err)
	}
	got := cons.CachedInfo().Config
	if got.MaxDeliver != -1 || got.MaxAckPending != -1 || got.MaxRequestBatch != 0 || got.MaxRequestMaxBytes != 0 ||
		got.MaxRequestExpires != 0 || got.InactiveThreshold != 0 || got.MaxWaiting <= 0 {
		t.Fatalf("consumer limits not normalised: %+v", got)
	}
	// -1 really means unlimited: the stream stores what is published.
	for i := 0; i < 5; i++ {
		if _, err := js.Publish(c, "N", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	st, err := js.Stream(c, "N")
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := st.Info(c); info.State.Msgs != 5 {
		t.Fatalf("%d messages stored, want 5", info.State.Msgs)
	}
}

// TestDuplicateWindowBoundedByMaxAge: the default window is 2m or max_age if
// shorter; a window longer than max_age is refused, as nats-server does.
func TestDuplicateWindowBoundedByMaxAge(t *testing.T) {
	s := startJS(t, loop.Options{})
	nc, js := connectJS(t, s)
	c := ctx(t)
	st, err := js.CreateStream(c, jetstream.StreamConfig{Name: "A", MaxAge: time.Second, Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	if d := st.CachedInfo().Config.Duplicates; d != time.Second {
		t.Fatalf("default window with max_age 1s: %v", d)
	}
	st, err = js.CreateStream(c, jetstream.StreamConfig{Name: "B", Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	if d := st.CachedInfo().Config.Duplicates; d != 2*time.Minute {
		t.Fatalf("default window: %v", d)
	}
	wantAPIError(t, apiCall(t, nc, "$JS.API.STREAM.CREATE.C", `{"name":"C","max_age":1000000000,"duplicate_window":2000000000}`),
		10052, "window > max_age")
	wantAPIError(t, apiCall(t, nc, "$JS.API.STREAM.UPDATE.A", `{"name":"A","storage":"memory","max_age":1000000000,"duplicate_window":2000000000}`),
		10052, "update window > max_age")
}

// TestErrorsDoNotShowStorePaths makes the store fail under a consumer create
// and a stream create and checks no reply carries the store directory.
func TestErrorsDoNotShowStorePaths(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "secret-store-location")
	s := startJS(t, loop.Options{StoreDir: dir})
	nc, js := connectJS(t, s)
	c := ctx(t)
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}}); err != nil {
		t.Fatal(err)
	}
	// Make the consumer directory unwritable: the store's errors name paths.
	obs := filepath.Join(dir, "jetstream", "$G", "streams", "S", "obs")
	if err := os.WriteFile(obs, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	streams := filepath.Join(dir, "jetstream", "$G", "streams")
	if err := os.WriteFile(filepath.Join(streams, "T"), []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, req := range []struct{ subject, body string }{
		{"$JS.API.CONSUMER.CREATE.S.D", `{"stream_name":"S","config":{"durable_name":"D"}}`},
		{"$JS.API.STREAM.CREATE.T", `{"name":"T"}`},
	} {
		msg, err := nc.Request(req.subject, []byte(req.body), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(msg.Data), `"error"`) {
			t.Fatalf("%s: expected a failure, got %s", req.subject, msg.Data)
		}
		if strings.Contains(string(msg.Data), "secret-store-location") || strings.Contains(string(msg.Data), root) {
			t.Fatalf("%s: reply shows the store path: %s", req.subject, msg.Data)
		}
	}
}

// TestHandlerPanicGets500: a handler that panics costs its request a 500
// reply and a logged stack; the server goes on serving.
func TestHandlerPanicGets500(t *testing.T) {
	var log looptest.LogBuffer
	s := startJS(t, loop.Options{LogWriter: &log})
	nc, js := connectJS(t, s)
	defer jsapi.SetAPIHandlerPanicking("$JS.API.STREAM.NAMES")()
	r := apiCall(t, nc, "$JS.API.STREAM.NAMES", "")
	if r.Error == nil || r.Error.Code != 500 || r.Error.ErrCode != 10051 || r.Error.Description != "internal error" {
		t.Fatalf("panicking handler replied %+v", r.Error)
	}
	if !strings.Contains(log.String(), "test: handler panic") || !strings.Contains(log.String(), "goroutine") {
		t.Fatalf("no panic and stack in the log:\n%s", log.String())
	}
	if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "AFTER", Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatalf("server stopped serving after a panic: %v", err)
	}
}
