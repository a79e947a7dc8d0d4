package jetstream_test

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/evnats/evnats/jetstream/store"
	"github.com/evnats/evnats/jetstream/store/storetest"
	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go/jetstream"
)

// metaModel is what the client was told exists: "S" -> a stream's
// description and max_msgs, "S/C" -> a consumer's description; "#S" -> how
// many messages were acknowledged to S.
type metaModel map[string]string

// metaStep is one client action and what its acknowledgement means.
type metaStep struct {
	name  string
	do    func(c context.Context, js jetstream.JetStream) error
	apply func(m metaModel)
}

func streamSig(desc string, maxMsgs int64) string { return desc + "|" + strconv.FormatInt(maxMsgs, 10) }

// metaSteps creates, updates and deletes file and memory streams and
// durable consumers, with messages in between.
func metaSteps() []metaStep {
	createS := func(name, desc string, storage jetstream.StorageType, maxMsgs int64, update bool) metaStep {
		cfg := jetstream.StreamConfig{Name: name, Subjects: []string{strings.ToLower(name) + ".>"}, Description: desc, Storage: storage, MaxMsgs: maxMsgs}
		verb := "create"
		if update {
			verb = "update"
		}
		return metaStep{verb + " stream " + name + " " + desc,
			func(c context.Context, js jetstream.JetStream) error {
				var err error
				if update {
					_, err = js.UpdateStream(c, cfg)
				} else {
					_, err = js.CreateStream(c, cfg)
				}
				return err
			},
			func(m metaModel) { m[name] = streamSig(desc, maxMsgs) }}
	}
	consumer := func(stream, name, desc string) metaStep {
		return metaStep{"create or update consumer " + stream + "/" + name + " " + desc,
			func(c context.Context, js jetstream.JetStream) error {
				_, err := js.CreateOrUpdateConsumer(c, stream, jetstream.ConsumerConfig{Durable: name, Description: desc,
					AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverNewPolicy})
				return err
			},
			func(m metaModel) { m[stream+"/"+name] = desc }}
	}
	return []metaStep{
		createS("S", "s1", jetstream.FileStorage, -1, false),
		{"publish 3 to S", func(c context.Context, js jetstream.JetStream) error {
			for i := 0; i < 3; i++ {
				if _, err := js.Publish(c, "s.a", []byte("m")); err != nil {
					return err
				}
			}
			return nil
		}, func(m metaModel) { m["#S"] = "3" }},
		createS("S", "s2", jetstream.FileStorage, 100, true),
		consumer("S", "C", "c1"),
		consumer("S", "C", "c2"),
		createS("T", "t1", jetstream.MemoryStorage, -1, false),
		consumer("S", "E", "e1"),
		{"delete consumer S/C", func(c context.Context, js jetstream.JetStream) error {
			return js.DeleteConsumer(c, "S", "C")
		}, func(m metaModel) { delete(m, "S/C") }},
		createS("T", "t2", jetstream.MemoryStorage, 10, true),
		{"delete stream T", func(c context.Context, js jetstream.JetStream) error {
			return js.DeleteStream(c, "T")
		}, func(m metaModel) { delete(m, "T") }},
		{"delete stream S", func(c context.Context, js jetstream.JetStream) error {
			return js.DeleteStream(c, "S")
		}, func(m metaModel) { delete(m, "S"); delete(m, "S/C"); delete(m, "S/E"); delete(m, "#S") }},
	}
}

// countMeta selects the metadata changes, which the Manager makes in a
// fixed order, from the message blocks' (the Writer's, timed by its
// goroutines): each is a crash point.
func countMeta(op storetest.Op) bool {
	if strings.HasSuffix(op.Path, ".blk") {
		return false
	}
	base := filepath.Base(op.Path)
	return op.Kind != "syncdir" || (base != "msgs" && base != "log")
}

// TestMetadataSurvivesCrashes crashes the store at every change the
// stream and consumer creates, updates and deletes make (temp file written,
// torn, synced, renamed, directory synced, moved to the trash), restarts on
// what a kill -9 leaves and on what a power loss leaves, and checks: the
// server starts; what was acknowledged exists with its acknowledged config
// (and messages, and a consumer's starting position); what was not is
// either absent or complete; nothing else exists.
func TestMetadataSurvivesCrashes(t *testing.T) {
	for _, mode := range []struct {
		name      string
		powerLoss bool
		sync      store.SyncPolicy
	}{{"kill", false, store.SyncPolicy{}}, {"powerloss", true, store.SyncPolicy{Always: true}}} {
		t.Run(mode.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "store")
			// A run without a crash counts the crash points.
			fs := storetest.NewCrashFS(filepath.Dir(root))
			s := startJS(t, loop.Options{StoreDir: root, JetStreamFS: fs, JetStreamSync: mode.sync, IO: loop.IOGoroutine})
			_, js := connectJS(t, s)
			fs.Arm(0, countMeta)
			for _, st := range metaSteps() {
				if err := st.do(ctx(t), js); err != nil {
					t.Fatalf("%s without a crash: %v", st.name, err)
				}
			}
			s.Shutdown()
			points := fs.Ops()
			if len(points) < 40 {
				t.Fatalf("only %d crash points: %v", len(points), points)
			}
			for n := 1; n <= len(points); n++ {
				crashAt(t, n, points[n-1], mode.powerLoss, mode.sync)
			}
			t.Logf("%d crash points", len(points))
		})
	}
}

// crashAt runs the steps with a crash at the n-th counted change, restarts
// and checks what is there against what was acknowledged.
func crashAt(t *testing.T, n int, point storetest.Op, powerLoss bool, sync store.SyncPolicy) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "store")
	fs := storetest.NewCrashFS(filepath.Dir(root))
	o := loop.Options{StoreDir: root, JetStreamFS: fs, JetStreamSync: sync, IO: loop.IOGoroutine}
	s := startJS(t, o)
	nc, js := connectJS(t, s)
	fs.Arm(n, countMeta)
	acked := metaModel{}
	var inflight *metaStep
	for _, st := range metaSteps() {
		if err := st.do(ctx(t), js); err != nil {
			inflight = &st
			break
		}
		st.apply(acked)
		if fs.Crashed() {
			break // acknowledged after its commit point; the process is dead now
		}
	}
	if !fs.Crashed() {
		t.Fatalf("crash point %d (%v) never reached", n, point)
	}
	nc.Close()
	s.Shutdown()
	fs.Restart(powerLoss)

	s = startJS(t, o) // fails the test if the server refuses to start
	defer s.Shutdown()
	_, js = connectJS(t, s)
	got := observe(t, js)
	allowed := []metaModel{acked}
	what := "nothing in flight"
	if inflight != nil {
		done := maps.Clone(acked)
		inflight.apply(done)
		allowed = append(allowed, done)
		what = inflight.name + " in flight"
	}
	// The whole state is one of them: an operation in flight happened
	// entirely or not at all.
	ok := false
	for _, a := range allowed {
		ok = ok || sameState(got, a, acked)
	}
	if !ok {
		t.Fatalf("crash at %d (%s %s), %s, restart after %s: found %v, acknowledged %v",
			n, point.Kind, point.Path, what, map[bool]string{true: "power loss", false: "kill"}[powerLoss], got, acked)
	}
	// A consumer delivers new messages: it was created after the three.
	for _, name := range []string{"C", "E"} {
		if _, ok := got["S/"+name]; ok {
			st, _ := js.Stream(ctx(t), "S")
			cons, err := st.Consumer(ctx(t), name)
			if err != nil {
				t.Fatal(err)
			}
			info, _ := cons.Info(ctx(t))
			if info.NumPending != 0 {
				t.Fatalf("crash at %d (%s %s): consumer %s lost its starting position: %d pending", n, point.Kind, point.Path, name, info.NumPending)
			}
		}
	}
}

// observe reads every stream and consumer the server has into a metaModel.
func observe(t *testing.T, js jetstream.JetStream) metaModel {
	t.Helper()
	c := ctx(t)
	m := metaModel{}
	names := js.StreamNames(c)
	for name := range names.Name() {
		st, err := js.Stream(c, name)
		if err != nil {
			t.Fatalf("stream %s listed but not found: %v", name, err)
		}
		info, err := st.Info(c)
		if err != nil {
			t.Fatal(err)
		}
		m[name] = streamSig(info.Config.Description, info.Config.MaxMsgs)
		if info.Config.Storage == jetstream.FileStorage {
			m["#"+name] = strconv.FormatUint(info.State.Msgs, 10)
			if info.State.Msgs == 0 {
				delete(m, "#"+name)
			}
		}
		cs := st.ConsumerNames(c)
		for cn := range cs.Name() {
			cons, err := st.Consumer(c, cn)
			if err != nil {
				t.Fatal(err)
			}
			ci, _ := cons.Info(c)
			m[name+"/"+cn] = ci.Config.Description
		}
		if err := cs.Err(); err != nil && !errors.Is(err, jetstream.ErrEndOfData) {
			t.Fatal(err)
		}
	}
	if err := names.Err(); err != nil && !errors.Is(err, jetstream.ErrEndOfData) {
		t.Fatal(err)
	}
	return m
}

// sameState reports whether got is want; message counts may lie between
// what was acknowledged and what was sent (acks are per message).
func sameState(got, want, acked metaModel) bool {
	for key := range got {
		if _, ok := want[key]; !ok && !strings.HasPrefix(key, "#") {
			return false
		}
	}
	for key, w := range want {
		g := got[key]
		if strings.HasPrefix(key, "#") {
			n, _ := strconv.Atoi(g)
			least, _ := strconv.Atoi(acked[key])
			if n < least || n > 3 {
				return false
			}
			continue
		}
		if g != w {
			return false
		}
	}
	return true
}

// TestRecoveryCopesWithLeftovers starts on every state an interrupted
// metadata write or delete leaves on disk: a torn meta.json.tmp beside a
// stream's and a consumer's config, a stream directory with messages but no
// config (a create never acknowledged, or a delete cut short), a config
// without message files, a full trash. The server starts, keeps what has a
// config, clears the temp files and the trash, and a stream created under
// the leftover directory's name starts empty.
func TestRecoveryCopesWithLeftovers(t *testing.T) {
	dir := t.TempDir()
	s, _, js := storeServer(t, loop.IOGoroutine, dir)
	c := ctx(t)
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}, Description: "kept"}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(c, "s", []byte("m")); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateOrUpdateConsumer(c, "S", jetstream.ConsumerConfig{Durable: "D", Description: "kept"}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "V", Subjects: []string{"v"}, Description: "no data"}); err != nil {
		t.Fatal(err)
	}
	s.Shutdown()
	streams := filepath.Join(dir, "jetstream", "$G", "streams")
	torn := []byte(`{"config":{"name":"S","subj`)
	writeFile(t, filepath.Join(streams, "S", "meta.json.tmp"), torn)
	writeFile(t, filepath.Join(streams, "S", "obs", "D", "meta.json.tmp"), torn)
	copyFile(t, filepath.Join(streams, "S", "msgs", "00000001.blk"), filepath.Join(streams, "U", "msgs", "00000001.blk"))
	writeFile(t, filepath.Join(streams, "U", "meta.json.tmp"), []byte(`{"config":{"name":"U","subjects":["u"],"storage":"file"}}`))
	if err := os.RemoveAll(filepath.Join(streams, "V", "msgs")); err != nil {
		t.Fatal(err)
	}
	trash := filepath.Join(dir, "jetstream", "$G", "trash")
	copyFile(t, filepath.Join(streams, "S", "meta.json"), filepath.Join(trash, "1-1", "meta.json"))

	_, _, js = storeServer(t, loop.IOGoroutine, dir)
	got := observe(t, js)
	want := metaModel{"S": streamSig("kept", -1), "#S": "1", "S/D": "kept", "V": streamSig("no data", -1)}
	if !sameState(got, want, want) {
		t.Fatalf("after restart %v, want %v", got, want)
	}
	for _, p := range []string{filepath.Join(streams, "S", "meta.json.tmp"), filepath.Join(streams, "S", "obs", "D", "meta.json.tmp"),
		filepath.Join(trash, "1-1")} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left after recovery: %v", p, err)
		}
	}
	st, err := js.CreateStream(c, jetstream.StreamConfig{Name: "U", Subjects: []string{"u"}})
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := st.Info(c); info.State.Msgs != 0 {
		t.Fatalf("stream U created over a leftover directory has %d messages", info.State.Msgs)
	}
}

func writeFile(t *testing.T, name string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDeletesStayInsideTheStore: the longest names a client may use are
// created and deleted through the trash (whose entries are numbers, never
// names) and leave nothing behind, inside the store or outside.
func TestDeletesStayInsideTheStore(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "store")
	_, _, js := storeServer(t, loop.IOGoroutine, dir)
	c := ctx(t)
	long := strings.Repeat("é", 127) + "x" // 255 bytes
	st, err := js.CreateStream(c, jetstream.StreamConfig{Name: long, Subjects: []string{"l"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{long, "D"} {
		if _, err := st.CreateOrUpdateConsumer(c, jetstream.ConsumerConfig{Durable: d}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.DeleteConsumer(c, long); err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(c, long); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"streams", "trash"} {
		if names, err := os.ReadDir(filepath.Join(dir, "jetstream", "$G", sub)); err != nil || len(names) != 0 {
			t.Fatalf("%s after the deletes: %v %v", sub, names, err)
		}
	}
	onlyStore(t, root)
}
