package jetstream_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/evnats/evnats/jetstream/store"
	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go/jetstream"
)

// metaFailFS is an OS file system on which writing a config (meta.json,
// through its temporary file) fails while fail is set.
type metaFailFS struct {
	store.OSFS
	fail atomic.Bool
}

func (f *metaFailFS) OpenFile(name string, flag int, perm os.FileMode) (store.File, error) {
	if f.fail.Load() && filepath.Base(name) == "meta.json"+store.TempSuffix {
		return nil, errors.New("injected: config write failed")
	}
	return f.OSFS.OpenFile(name, flag, perm)
}

// TestFailedUpdateChangesNothing: a stream or consumer update whose config
// could not be written is answered with an error and changes nothing, in
// memory as on disk: the info before and after a restart shows the old
// config.
func TestFailedUpdateChangesNothing(t *testing.T) {
	dir := t.TempDir()
	fs := &metaFailFS{}
	s := startJS(t, loop.Options{StoreDir: dir, JetStreamFS: fs})
	_, js := connectJS(t, s)
	c := ctx(t)
	st, err := js.CreateStream(c, jetstream.StreamConfig{Name: "U", Description: "old", MaxMsgs: 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateConsumer(c, jetstream.ConsumerConfig{Durable: "D", Description: "old", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	fs.fail.Store(true)
	if _, err := js.UpdateStream(c, jetstream.StreamConfig{Name: "U", Description: "new", MaxMsgs: 1}); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("stream update: %v", err)
	}
	if _, err := st.UpdateConsumer(c, jetstream.ConsumerConfig{Durable: "D", Description: "new", AckPolicy: jetstream.AckExplicitPolicy}); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("consumer update: %v", err)
	}
	fs.fail.Store(false)
	check := func(js jetstream.JetStream, when string) {
		t.Helper()
		st, err := js.Stream(c, "U")
		if err != nil {
			t.Fatal(err)
		}
		if cfg := st.CachedInfo().Config; cfg.Description != "old" || cfg.MaxMsgs != 10 {
			t.Fatalf("%s: stream config %q max_msgs %d, want the old one", when, cfg.Description, cfg.MaxMsgs)
		}
		cons, err := st.Consumer(c, "D")
		if err != nil {
			t.Fatal(err)
		}
		if d := cons.CachedInfo().Config.Description; d != "old" {
			t.Fatalf("%s: consumer description %q, want the old one", when, d)
		}
	}
	check(js, "before restart")
	// The old limit still applies: a failed update to max_msgs 1 must not
	// have trimmed the stream either.
	for range 3 {
		if _, err := js.Publish(c, "U", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if info, _ := st.Info(c); info.State.Msgs != 3 {
		t.Fatalf("messages %d, want 3 under the old max_msgs", info.State.Msgs)
	}
	s.Shutdown()
	s2 := startJS(t, loop.Options{StoreDir: dir})
	_, js2 := connectJS(t, s2)
	check(js2, "after restart")
}
