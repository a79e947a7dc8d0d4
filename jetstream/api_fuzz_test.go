package jetstream_test

import (
	"encoding/json"
	"io/fs"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	"github.com/nats-io/nats.go"
)

// fuzzSubjects is the $JS.API table the fuzz target draws from; %1 is a
// stream name, %2 a consumer name, both from the input.
var fuzzSubjects = []string{
	"$JS.API.INFO",
	"$JS.API.STREAM.CREATE.%1",
	"$JS.API.STREAM.UPDATE.%1",
	"$JS.API.STREAM.INFO.%1",
	"$JS.API.STREAM.DELETE.%1",
	"$JS.API.STREAM.PURGE.%1",
	"$JS.API.STREAM.NAMES",
	"$JS.API.STREAM.LIST",
	"$JS.API.STREAM.MSG.GET.%1",
	"$JS.API.STREAM.MSG.DELETE.%1",
	"$JS.API.CONSUMER.CREATE.%1",
	"$JS.API.CONSUMER.CREATE.%1.%2",
	"$JS.API.CONSUMER.DURABLE.CREATE.%1.%2",
	"$JS.API.CONSUMER.INFO.%1.%2",
	"$JS.API.CONSUMER.DELETE.%1.%2",
	"$JS.API.CONSUMER.NAMES.%1",
	"$JS.API.CONSUMER.LIST.%1",
	"$JS.API.CONSUMER.MSG.NEXT.%1.%2",
	"$JS.API.CONSUMER.UNPIN.%1.%2",
	"$JS.API.CONSUMER.PAUSE.%1.%2",
	"$JS.API.DIRECT.GET.%1",
	"%1", // a publish to a stream subject
	"%1", // the same with header %2: <body>
}

// storeLayout is every path (relative to the store directory, with '/')
// that evnats itself creates: stream and durable directories named by valid
// names, their meta files, block files, the directory deletes go through,
// and the MQTT bridge's directory.
var storeLayout = regexp.MustCompile(`^(jetstream(/\$G(/trash|/streams(/[^/.*>\\\s]+(/meta\.json(\.tmp)?|/msgs(/\d+\.blk)?|/obs(/[^/.*>\\\s]+(/meta\.json(\.tmp)?|/log(/\d+\.blk)?)?)?)?)?)?)?|mqtt(/.*)?)$`)

// fuzzServer is the live server one fuzz worker sends its inputs to,
// restarted on the same directory every restartEvery inputs.
type fuzzServer struct {
	base, store string
	s           *loop.Server
	nc          *nats.Conn
	n           int
}

const restartEvery = 8

func (fz *fuzzServer) start(t testing.TB) {
	t.Helper()
	s, err := loop.New(loop.Options{Host: "127.0.0.1", Port: -1, IO: loop.IOGoroutine, JetStream: true,
		StoreDir: fz.store, LogWriter: &looptest.LogBuffer{}})
	if err != nil {
		t.Fatalf("server does not start on the fuzzed store: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("server does not start on the fuzzed store: %v", err)
	}
	nc, err := nats.Connect(s.ClientURL(), nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	fz.s, fz.nc = s, nc
}

func (fz *fuzzServer) stop() {
	fz.nc.Close()
	fz.s.Shutdown()
}

// sync waits until the manager has handled everything sent before it: it
// serves requests in order, so the reply to INFO is that signal.
func (fz *fuzzServer) sync(t testing.TB) {
	t.Helper()
	if _, err := fz.nc.Request("$JS.API.INFO", nil, 5*time.Second); err != nil {
		t.Fatalf("server stopped answering: %v", err)
	}
}

func (fz *fuzzServer) streamNames(t testing.TB) []string {
	t.Helper()
	msg, err := fz.nc.Request("$JS.API.STREAM.NAMES", nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Streams []string `json:"streams"`
	}
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		t.Fatal(err)
	}
	return r.Streams
}

// restart stops the server and starts it again on the same directory; it
// must come back with the same streams and a clean layout.
func (fz *fuzzServer) restart(t testing.TB) []string {
	t.Helper()
	before := fz.streamNames(t)
	fz.stop()
	fz.start(t)
	after := fz.streamNames(t)
	if !slices.Equal(before, after) {
		t.Fatalf("streams before restart %v, after %v", before, after)
	}
	fz.checkLayout(t)
	return after
}

// checkLayout fails if anything exists under base but the store directory
// and, inside it, what the store creates.
func (fz *fuzzServer) checkLayout(t testing.TB) {
	t.Helper()
	err := filepath.WalkDir(fz.base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == fz.base || p == fz.store || strings.HasPrefix(fz.store, p+string(filepath.Separator)) {
			return nil // the store directory and the directories above it
		}
		rel, err := filepath.Rel(fz.store, p)
		if err != nil || strings.HasPrefix(rel, "..") {
			t.Fatalf("file outside the store: %s", p)
		}
		if !storeLayout.MatchString(filepath.ToSlash(rel)) {
			t.Fatalf("unexpected path in the store: %s", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// validToken reports whether s can be put in a subject on the wire; inputs
// that cannot are not something a client can send.
func validToken(s string) bool {
	return s != "" && !strings.ContainsAny(s, " \t\r\n\x00")
}

// FuzzJetStreamAPI sends random $JS.API requests (a subject from the table,
// names and a JSON body from the input) to a live server with a file store.
// After each input the store holds only what the store creates and nothing
// is written outside it; every few inputs the server is restarted on the
// same directory and must come back with the same streams.
func FuzzJetStreamAPI(f *testing.F) {
	long := strings.Repeat("x", 300)
	for _, seed := range []struct {
		op     uint8
		s1, s2 string
		body   string
		n      int64
	}{
		{1, "S", "", `{"name":"S","subjects":["s.>"],"max_msgs":-5,"max_age":-1}`, 0},
		{1, "S", "", `{"name":"S","subjects":["s.>"],"max_msgs":-5,"max_bytes":-9223372036854775808,"max_msg_size":-2147483648}`, 0},
		{19, "s.a", "", `hello`, 0},
		{20, "s.a", "Nats-Rollup", `all`, 0},
		{20, "s.a", "Nats-Expected-Last-Sequence", `-1`, 0},
		{20, "s.a", "Nats-Expected-Last-Subject-Sequence", `18446744073709551616`, 0},
		{20, "s.a", "Nats-Msg-Id", ``, 0},
		{1, "M", "", `{"name":"M","storage":"memory","duplicate_window":-1,"num_replicas":-3}`, 0},
		{1, "..", "", `{"name":".."}`, 0},
		{1, "a/b", "", `{"name":"a/b"}`, 0},
		{1, long, "", `{}`, 0},
		{11, "S", "..", `{"stream_name":"S","config":{"durable_name":".."}}`, 0},
		{10, "S", "", `{"stream_name":"S","config":{"durable_name":"../../../../../../../x"}}`, 0},
		{10, "S", "", `{"stream_name":"S","config":{"name":"..\\..\\x","ack_wait":-1}}`, 0},
		{12, "S", "D", `{"stream_name":"S","config":{"durable_name":"D","max_deliver":-9,"backoff":[-1],"max_ack_pending":-100}}`, 0},
		{12, "S", "P", `{"stream_name":"S","config":{"durable_name":"P","max_waiting":-1,"max_batch":-1,"max_expires":-1,"opt_start_seq":18446744073709551615,"deliver_policy":"by_start_sequence"}}`, 0},
		{6, "", "", `{"offset":-1}`, 0},
		{7, "", "", `{"offset":-9223372036854775808}`, 0},
		{15, "S", "", `{"offset":9223372036854775807}`, 0},
		{16, "S", "", `{"offset":-1}`, 0},
		{17, "S", "P", `{"batch":-5,"max_bytes":-1,"expires":-1,"no_wait":true}`, 0},
		{8, "S", "", `{"seq":18446744073709551615}`, 0},
		{8, "S", "", `{"last_by_subj":"s.*"}`, 0},
		{9, "S", "", `{"seq":0}`, 0},
		{20, "S", "", `{"seq":-1}`, 0},
		{5, "S", "", `{"filter":"s.>","keep":18446744073709551615}`, 0},
		{5, "S", "", `{"seq":18446744073709551615}`, 0},
		{21, "s.a", "", `x`, 0},
		{21, "s.a", "", `x`, 0},
		{14, "S", "D", ``, 0},
		{12, "S", "G", `{"stream_name":"S","config":{"durable_name":"G","priority_policy":"pinned_client","priority_groups":["A"],"priority_timeout":-1}}`, 0},
		{17, "S", "G", `{"batch":2,"group":"A","id":"x","min_pending":-1,"min_ack_pending":9223372036854775807}`, 0},
		{18, "S", "G", `{"group":"A"}`, 0},
		{18, "S", "G", `{"group":"../../x"}`, 0},
		{19, "S", "G", `{"pause_until":"2999-01-01T00:00:00Z"}`, 0},
		{4, "S", "", ``, 0},
		// Valid shapes, hostile numbers: %n is the input's n.
		{1, "T", "", `{"name":"T","subjects":["t"],"max_msgs":%n,"max_bytes":%n,"max_msgs_per_subject":%n}`, -2},
		{1, "T", "", `{"name":"T","subjects":["t"],"max_age":%n,"duplicate_window":%n}`, math.MinInt64},
		{1, "T", "", `{"name":"T","subjects":["t"],"max_consumers":%n,"max_msg_size":%n}`, math.MaxInt32 + 1},
		{11, "T", "C", `{"stream_name":"T","config":{"ack_wait":%n,"max_deliver":%n,"max_ack_pending":%n,"max_waiting":%n}}`, -7},
		{11, "T", "C", `{"stream_name":"T","config":{"deliver_policy":"by_start_sequence","opt_start_seq":%n}}`, math.MaxInt64},
		{17, "T", "C", `{"batch":%n,"expires":%n,"max_bytes":%n,"no_wait":true}`, math.MinInt64},
		{17, "S", "G", `{"batch":1,"group":"A","priority":%n,"min_pending":%n}`, math.MinInt64},
		{6, "", "", `{"offset":%n}`, math.MinInt64},
		{16, "T", "", `{"offset":%n}`, math.MaxInt64},
	} {
		f.Add(seed.op, seed.s1, seed.s2, seed.body, seed.n)
	}
	base := f.TempDir()
	fz := &fuzzServer{base: base, store: filepath.Join(base, "a", "b", "c", "d", "e", "f", "g", "store")}
	fz.start(f)
	f.Cleanup(func() {
		fz.restart(f) // what the last inputs stored must come back too
		fz.stop()
	})
	f.Fuzz(func(t *testing.T, op uint8, s1, s2, body string, n int64) {
		body = strings.ReplaceAll(body, "%n", strconv.FormatInt(n, 10))
		subject := fuzzSubjects[int(op)%len(fuzzSubjects)]
		if strings.Contains(subject, "%1") && !validToken(s1) || strings.Contains(subject, "%2") && !validToken(s2) {
			t.Skip("not a subject a client can send")
		}
		subject = strings.NewReplacer("%1", s1, "%2", s2).Replace(subject)
		msg := &nats.Msg{Subject: subject, Reply: "_INBOX.fuzz", Data: []byte(body)}
		if int(op)%len(fuzzSubjects) == len(fuzzSubjects)-1 {
			if strings.ContainsAny(s2, ":") || strings.ContainsAny(body, "\r\n") {
				t.Skip("not a header a client can send")
			}
			msg.Header = nats.Header{s2: []string{body}}
		}
		if err := fz.nc.PublishMsg(msg); err != nil {
			t.Skip(err)
		}
		fz.sync(t)
		fz.checkLayout(t)
		if fz.n++; fz.n%restartEvery == 0 {
			after := fz.restart(t)
			if len(after) > 32 { // keep a long fuzz run's store, and so its speed, bounded
				for _, n := range after {
					if _, err := fz.nc.Request("$JS.API.STREAM.DELETE."+n, nil, 5*time.Second); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	})
}
