package jetstream_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/evnats/evnats/jetstream/store"
	"github.com/evnats/evnats/jetstream/store/storetest"
	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go/jetstream"
)

// TestTornBatchIsInvisibleAfterRestart tears the block write of a batch's
// commit (kill -9 and power loss): the commit is answered with an error,
// and after the restart the stream holds the messages before the batch
// and none of it, and goes on at the next sequence.
func TestTornBatchIsInvisibleAfterRestart(t *testing.T) {
	for _, mode := range []struct {
		name      string
		powerLoss bool
		sync      store.SyncPolicy
	}{{"kill", false, store.SyncPolicy{}}, {"powerloss", true, store.SyncPolicy{Always: true}}} {
		t.Run(mode.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "store")
			fs := storetest.NewCrashFS(filepath.Dir(root))
			o := loop.Options{StoreDir: root, JetStreamFS: fs, JetStreamSync: mode.sync, IO: loop.IOGoroutine}
			s := startJS(t, o)
			nc, js := connectJS(t, s)
			c := ctx(t)
			if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "B", Subjects: []string{"b.>"}, AllowAtomicPublish: true}); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 2; i++ {
				if _, err := js.Publish(c, "b.single", []byte("s")); err != nil {
					t.Fatal(err)
				}
			}
			for i := 1; i <= 4; i++ {
				if a := batchMsg(t, nc, "b.x", "torn", i, ""); !a.empty {
					t.Fatalf("%+v", a)
				}
			}
			fs.Arm(1, func(op storetest.Op) bool { return op.Kind == "write" && strings.HasSuffix(op.Path, ".blk") })
			a := batchMsg(t, nc, "b.x", "torn", 5, "1")
			if !fs.Crashed() || a.Error == nil || a.Error.ErrCode != 10077 {
				t.Fatalf("crashed %v, commit answered %+v %+v", fs.Crashed(), a, a.Error)
			}
			nc.Close()
			s.Shutdown()
			fs.Restart(mode.powerLoss)

			s = startJS(t, o)
			defer s.Shutdown()
			_, js = connectJS(t, s)
			st, err := js.Stream(c, "B")
			if err != nil {
				t.Fatal(err)
			}
			if info := st.CachedInfo(); info.State.Msgs != 2 || info.State.LastSeq != 2 {
				t.Fatalf("after the torn batch: %+v", info.State)
			}
			if ack, err := js.Publish(c, "b.after", []byte("a")); err != nil || ack.Sequence != 3 {
				t.Fatalf("%+v %v", ack, err)
			}
		})
	}
}
