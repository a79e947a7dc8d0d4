package jetstream

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evnats/evnats/jetstream/store"
)

// fakeHost is a Host without a server: it keeps subscriptions so a test can
// publish into them, and hands what the manager sends to a channel.
type fakeHost struct {
	mu   sync.Mutex
	subs map[string]func(subject, reply string, hdr, data []byte)
	out  chan string // reply subjects of what the manager published
}

func newFakeHost() *fakeHost {
	return &fakeHost{subs: map[string]func(string, string, []byte, []byte){}, out: make(chan string, 1024)}
}

func (h *fakeHost) Subscribe(subject string, fn func(subject, reply string, hdr, data []byte)) func() {
	h.mu.Lock()
	h.subs[subject] = fn
	h.mu.Unlock()
	return func() {}
}

func (h *fakeHost) Publish(subject, reply string, hdr, data []byte) {
	select {
	case h.out <- subject:
	default:
	}
}

func (h *fakeHost) Deliver(to, subject, reply string, hdr, data []byte, resume func()) bool {
	select {
	case h.out <- to:
	default:
	}
	return true
}

func (h *fakeHost) Interest(string) bool { return true }

// call sends a request to subject through the subscription registered on
// sub and waits for the reply to reply.
func (h *fakeHost) call(t testing.TB, sub, subject, reply, data string) {
	t.Helper()
	h.mu.Lock()
	fn := h.subs[sub]
	h.mu.Unlock()
	if fn == nil {
		t.Fatalf("no subscription on %s", sub)
	}
	fn(subject, reply, nil, []byte(data))
	timeout := time.After(5 * time.Second)
	for {
		select {
		case got := <-h.out:
			if got == reply {
				return
			}
		case <-timeout:
			t.Fatalf("no reply to %s", subject)
		}
	}
}

// buildMetaBase makes a store directory with a file stream, messages and a
// durable consumer that has deliveries and an ack in its log.
func buildMetaBase(t testing.TB) string {
	dir := t.TempDir()
	h := newFakeHost()
	m, err := Start(Config{StoreDir: dir}, h)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	h.call(t, "$JS.API.>", "$JS.API.STREAM.CREATE.S", "r1", `{"name":"S","subjects":["s.>"]}`)
	for i := 0; i < 5; i++ {
		h.call(t, "s.>", "s.x", "ack", "m")
	}
	h.call(t, "$JS.API.>", "$JS.API.CONSUMER.CREATE.S.C", "r2",
		`{"stream_name":"S","config":{"durable_name":"C","ack_policy":"explicit","backoff":[1000000000]}}`)
	h.call(t, "$JS.API.>", "$JS.API.CONSUMER.MSG.NEXT.S.C", "inbox", `{"batch":2}`)
	h.call(t, "$JS.ACK.S.C.>", "$JS.ACK.S.C.1.1.1.0.4", "r3", "+ACK")
	return dir
}

func copyTree(t testing.TB, from, to string) {
	err := filepath.Walk(from, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// FuzzRecoverMeta replaces a stream's or a consumer's meta.json, or adds a
// snapshot record to a consumer's log, and starts JetStream on it: start
// must not panic and must finish quickly (refusing a config it cannot read
// is allowed), and a started manager must answer requests and stop.
func FuzzRecoverMeta(f *testing.F) {
	base := buildMetaBase(f)
	streamDir := filepath.Join(base, "jetstream", "$G", "streams", "S")
	f.Add(uint8(0), []byte(`{"config":{"name":"S","subjects":["s.>"],"retention":"workqueue","storage":"file","max_msgs":-5}}`))
	f.Add(uint8(0), []byte(`{"config":{"name":"S","subjects":[">"],"storage":"file"}}`))
	f.Add(uint8(0), []byte(`{not json`))
	f.Add(uint8(1), []byte(`{"config":{"durable_name":"C","deliver_policy":"last","ack_policy":"all","backoff":[1]}}`))
	f.Add(uint8(1), []byte(`{"config":{"durable_name":"C","deliver_subject":"s.loop","ack_policy":"explicit"}}`))
	f.Add(uint8(1), []byte(`{"config":{"durable_name":"C","opt_start_seq":18446744073709551615,"deliver_policy":"by_start_sequence"}}`))
	f.Add(uint8(2), []byte(`{"next":0,"dseq":18446744073709551615,"ack_floor":{"consumer_seq":0,"stream_seq":18446744073709551615},"pending":{"1":[0,0],"18446744073709551615":[-1,-7]}}`))
	f.Add(uint8(2), []byte(`{"next":18446744073709551615,"pending":{"3":[3,0]}}`))
	f.Add(uint8(2), []byte(`null`))
	f.Add(uint8(2), []byte(`{"pending":{"0":[0,2147483647]}}`))
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		dir := t.TempDir()
		copyTree(t, base, dir)
		sdir := filepath.Join(dir, strings.TrimPrefix(streamDir, base))
		switch which % 3 {
		case 0:
			os.WriteFile(filepath.Join(sdir, "meta.json"), data, 0o644)
		case 1:
			os.WriteFile(filepath.Join(sdir, "obs", "C", "meta.json"), data, 0o644)
		case 2:
			w := store.NewWriter(store.OSFS{}, store.SyncPolicy{})
			fs, err := store.OpenFileStore(store.FileStoreConfig{Dir: filepath.Join(sdir, "obs", "C", "log"), Writer: w})
			if err != nil {
				t.Fatal(err)
			}
			fs.Append(evSnapshot, nil, data, 0, nil)
			w.Close()
		}
		h := newFakeHost()
		started := make(chan *Manager, 1)
		go func() {
			m, err := Start(Config{StoreDir: dir}, h)
			if err != nil {
				t.Logf("start refused: %v", err)
				m = nil // refusing an unreadable config is fine
			}
			started <- m
		}()
		var m *Manager
		select {
		case m = <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("start did not finish")
		}
		if m == nil {
			return
		}
		defer m.Stop()
		h.call(t, "$JS.API.>", "$JS.API.STREAM.INFO.S", "i1", "")
		h.call(t, "$JS.API.>", "$JS.API.CONSUMER.INFO.S.C", "i2", "")
		h.call(t, "$JS.API.>", "$JS.API.CONSUMER.MSG.NEXT.S.C", "i3", `{"batch":3,"no_wait":true}`)
		// Ends by its expiry (a 408 from the manager's tick) if nothing is
		// delivered first: either way the tick's timers run on this state.
		h.call(t, "$JS.API.>", "$JS.API.CONSUMER.MSG.NEXT.S.C", "i4", `{"batch":1,"expires":60000000}`)
	})
}
