package jetstream_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/evnats/evnats/jetstream/store"
	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go/jetstream"
)

// TestConsumerLogOneRecordPerStep: the deliveries of one pull are one
// record of a durable consumer's log (not one per message), and the
// consumer's position and acks come back from such records after a
// restart.
func TestConsumerLogOneRecordPerStep(t *testing.T) {
	const n = 300
	dir := t.TempDir()
	s := startJS(t, loop.Options{StoreDir: dir})
	_, js := connectJS(t, s)
	c := ctx(t)
	st := setupStream(t, js, jetstream.FileStorage, n)
	cons, err := st.CreateOrUpdateConsumer(c, jetstream.ConsumerConfig{Durable: "keep", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	b, err := cons.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for m := range b.Messages() {
		if got++; got <= 10 {
			if err := m.DoubleAck(c); err != nil { // confirmed once its record is durable
				t.Fatal(err)
			}
		}
	}
	if got != n {
		t.Fatalf("fetched %d of %d", got, n)
	}
	s.Shutdown()

	logDir := filepath.Join(dir, "jetstream", "$G", "streams", "EV", "obs", "keep", "log")
	w := store.NewWriter(store.OSFS{}, store.SyncPolicy{})
	defer w.Close()
	fs, err := store.OpenFileStore(store.FileStoreConfig{Dir: logDir, Writer: w})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for seq := uint64(0); ; seq++ {
		m, err := fs.LoadNext("", seq)
		if err != nil {
			break
		}
		seq = m.Seq
		kinds[m.Subject]++
	}
	fs.Close()
	// 300 deliveries in one pull, then ten double acks, each its own step.
	if kinds["D"] != 0 || kinds["A"] != 0 || kinds["B"] == 0 || kinds["B"] > 11 {
		t.Fatalf("log records by kind: %v", kinds)
	}

	s2 := startJS(t, loop.Options{StoreDir: dir})
	_, js2 := connectJS(t, s2)
	st2, _ := js2.Stream(c, "EV")
	cons2, err := st2.Consumer(c, "keep")
	if err != nil {
		t.Fatal(err)
	}
	info, _ := cons2.Info(c)
	if info.Delivered.Stream != n || info.Delivered.Consumer != n || info.AckFloor.Stream != 10 || info.NumAckPending != n-10 {
		t.Fatalf("restored %+v / %+v, ack pending %d", info.Delivered, info.AckFloor, info.NumAckPending)
	}
}
