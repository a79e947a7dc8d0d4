package jetstream_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evnats/evnats/jetstream/store"
	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// persistScenario sends stream creates and updates with persist_mode as
// raw requests and reports, for each, the error or the persist_mode the
// config echoes, then the stream info's and a publish's outcome.
func persistScenario(t *testing.T, url string) []string {
	nc, js := dial(t, url)
	var out []string
	req := func(what, subj, body string) map[string]any {
		msg, err := nc.Request(subj, []byte(body), 5*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		var resp map[string]any
		if err := json.Unmarshal(msg.Data, &resp); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if e, ok := resp["error"].(map[string]any); ok {
			out = append(out, fmt.Sprintf("%s: %v %v %v", what, e["code"], e["err_code"], e["description"]))
			return nil
		}
		cfg, _ := resp["config"].(map[string]any)
		pm, ok := cfg["persist_mode"]
		out = append(out, fmt.Sprintf("%s: %s persist_mode %v %v", what, resp["type"], pm, ok))
		return resp
	}
	create := func(what, name, extra string) map[string]any {
		return req(what, "$JS.API.STREAM.CREATE."+name, `{"name":"`+name+`","subjects":["`+strings.ToLower(name)+`"]`+extra+`}`)
	}
	update := func(what, name, extra string) map[string]any {
		return req(what, "$JS.API.STREAM.UPDATE."+name, `{"name":"`+name+`","subjects":["`+strings.ToLower(name)+`"]`+extra+`}`)
	}
	create("async file", "A", `,"persist_mode":"async"`)
	req("info", "$JS.API.STREAM.INFO.A", "")
	update("update to default", "A", `,"persist_mode":"default"`)
	update("update dropping it", "A", ``)
	update("update keeping it", "A", `,"persist_mode":"async","description":"d"`)
	create("default", "D", `,"persist_mode":"default"`)
	create("empty", "E", `,"persist_mode":""`)
	update("update to async", "D", `,"persist_mode":"async"`)
	create("memory", "M", `,"persist_mode":"async","storage":"memory"`)
	create("atomic", "B", `,"persist_mode":"async","allow_atomic":true`)
	create("bogus", "X", `,"persist_mode":"Async"`)
	create("number", "Y", `,"persist_mode":1`)
	create("null", "Z", `,"persist_mode":null`)
	for i := range 3 {
		ack, err := js.Publish(ctx(t), "a", []byte(fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("publish: %s %d %v", ack.Stream, ack.Sequence, ack.Duplicate))
	}
	st, err := js.Stream(ctx(t), "A")
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, fmt.Sprintf("client info: %v msgs %d", st.CachedInfo().Config.PersistMode, st.CachedInfo().State.Msgs))
	return out
}

// TestPersistModeDifferential compares persist_mode's config rules, its
// echo in create, update and info responses, and publishing to an async
// stream with nats-server's.
func TestPersistModeDifferential(t *testing.T) {
	differential(t, persistScenario)
}

// TestPersistAsyncSurvivesRestart publishes to an async file stream
// through nats.go, restarts the server on the same store and checks the
// config and every acknowledged message came back: async acks do not wait
// for the write, but a clean stop still writes everything queued.
func TestPersistAsyncSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := startJS(t, loop.Options{StoreDir: dir})
	nc, js := connectJS(t, s)
	if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "A", Subjects: []string{"a"}, PersistMode: jetstream.AsyncPersistMode}); err != nil {
		t.Fatal(err)
	}
	const n = 500
	futures := make([]jetstream.PubAckFuture, n)
	for i := range futures {
		f, err := js.PublishAsync("a", []byte(fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		futures[i] = f
	}
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			if ack.Sequence != uint64(i+1) {
				t.Fatalf("ack %d: seq %d", i, ack.Sequence)
			}
		case err := <-f.Err():
			t.Fatal(err)
		case <-time.After(5 * time.Second):
			t.Fatal("no ack")
		}
	}
	nc.Close()
	s.Shutdown()
	s2 := startJS(t, loop.Options{StoreDir: dir})
	_, js2 := connectJS(t, s2)
	st, err := js2.Stream(ctx(t), "A")
	if err != nil {
		t.Fatal(err)
	}
	info := st.CachedInfo()
	if info.Config.PersistMode != jetstream.AsyncPersistMode || info.State.Msgs != n {
		t.Fatalf("after restart: persist_mode %v, %d messages; want async, %d", info.Config.PersistMode, info.State.Msgs, n)
	}

}

// heldDisk is an OS file system whose writes to message blocks wait, while
// held, until release: a disk that is slow to take data.
type heldDisk struct {
	store.OSFS
	held    atomic.Bool
	release chan struct{}
}

type heldFile struct {
	store.File
	d    *heldDisk
	name string
}

func (d *heldDisk) OpenFile(name string, flag int, perm os.FileMode) (store.File, error) {
	f, err := d.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &heldFile{File: f, d: d, name: name}, nil
}

func (f *heldFile) Write(p []byte) (int, error) {
	if f.d.held.Load() && strings.Contains(f.name, string(os.PathSeparator)+"msgs"+string(os.PathSeparator)) {
		<-f.d.release
	}
	return f.File.Write(p)
}

// TestPersistAsyncAcksBeforeWrite holds the disk's writes: a publish to an
// async stream is acknowledged while its write waits, one to a default
// stream only once the write is done.
func TestPersistAsyncAcksBeforeWrite(t *testing.T) {
	disk := &heldDisk{release: make(chan struct{})}
	s := startJS(t, loop.Options{StoreDir: t.TempDir(), JetStreamFS: disk})
	nc, js := connectJS(t, s)
	for _, cfg := range []jetstream.StreamConfig{
		{Name: "A", Subjects: []string{"a"}, PersistMode: jetstream.AsyncPersistMode},
		{Name: "D", Subjects: []string{"d"}},
	} {
		if _, err := js.CreateStream(ctx(t), cfg); err != nil {
			t.Fatal(err)
		}
	}
	disk.held.Store(true)
	released := false
	defer func() {
		if !released {
			close(disk.release)
		}
	}()
	if ack, err := js.Publish(ctx(t), "a", []byte("x")); err != nil || ack.Sequence != 1 {
		t.Fatalf("async publish while the disk is held: %v %v", ack, err)
	}
	msg, err := nc.Request("d", []byte("y"), 300*time.Millisecond)
	if err == nil {
		t.Fatalf("default stream acknowledged before its write: %s", msg.Data)
	}
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.PublishRequest("d", inbox, []byte("z")); err != nil {
		t.Fatal(err)
	}
	released = true
	close(disk.release)
	ack, err := sub.NextMsg(5 * time.Second)
	if err != nil || !strings.Contains(string(ack.Data), `"seq":2`) {
		t.Fatalf("default stream ack after the write: %v %v", ack, err)
	}
}
