package jetstream_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func startJS(t *testing.T, o loop.Options) *loop.Server {
	t.Helper()
	o.JetStream = true
	return looptest.Start(t, o)
}

func connectJS(t *testing.T, s *loop.Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	return dial(t, s.ClientURL())
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

var setups = []struct {
	name    string
	io      string
	storage jetstream.StorageType
}{
	{"gnet-file", loop.IOGnet, jetstream.FileStorage},
	{"gnet-memory", loop.IOGnet, jetstream.MemoryStorage},
	{"goroutine-file", loop.IOGoroutine, jetstream.FileStorage},
}

func eachSetup(t *testing.T, f func(t *testing.T, js jetstream.JetStream, storage jetstream.StorageType)) {
	for _, su := range setups {
		t.Run(su.name, func(t *testing.T) {
			s := startJS(t, loop.Options{IO: su.io, Loops: 2})
			_, js := connectJS(t, s)
			f(t, js, su.storage)
		})
	}
}

func TestStreamPublishAndInfo(t *testing.T) {
	eachSetup(t, func(t *testing.T, js jetstream.JetStream, storage jetstream.StorageType) {
		c := ctx(t)
		st, err := js.CreateStream(c, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, Storage: storage})
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 100; i++ {
			ack, err := js.Publish(c, fmt.Sprintf("orders.%d", i%3), []byte(fmt.Sprint(i)))
			if err != nil {
				t.Fatal(err)
			}
			if ack.Stream != "ORDERS" || ack.Sequence != uint64(i) {
				t.Fatalf("ack %+v, want seq %d", ack, i)
			}
		}
		info, err := st.Info(c)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs != 100 || info.State.FirstSeq != 1 || info.State.LastSeq != 100 || info.Config.Storage != storage {
			t.Fatalf("info %+v", info.State)
		}
		m, err := st.GetMsg(c, 42)
		if err != nil || string(m.Data) != "42" || m.Subject != "orders.0" {
			t.Fatalf("get 42: %+v %v", m, err)
		}
		last, err := st.GetLastMsgForSubject(c, "orders.1")
		if err != nil || last.Sequence != 100 {
			t.Fatalf("last orders.1: %+v %v", last, err)
		}
		if _, err := st.GetMsg(c, 1000); !errors.Is(err, jetstream.ErrMsgNotFound) {
			t.Fatalf("missing msg: %v", err)
		}
		if err := st.DeleteMsg(c, 42); err != nil {
			t.Fatal(err)
		}
		if _, err := st.GetMsg(c, 42); !errors.Is(err, jetstream.ErrMsgNotFound) {
			t.Fatalf("deleted msg: %v", err)
		}
		if err := st.Purge(c, jetstream.WithPurgeSubject("orders.2")); err != nil {
			t.Fatal(err)
		}
		info, _ = st.Info(c)
		if info.State.Msgs != 99-33 {
			t.Fatalf("after subject purge %d msgs", info.State.Msgs)
		}
		if err := st.Purge(c, jetstream.WithPurgeKeep(10)); err != nil {
			t.Fatal(err)
		}
		info, _ = st.Info(c)
		if info.State.Msgs != 10 || info.State.LastSeq != 100 {
			t.Fatalf("after keep-10 purge %+v", info.State)
		}
		if err := st.Purge(c); err != nil {
			t.Fatal(err)
		}
		info, _ = st.Info(c)
		if info.State.Msgs != 0 || info.State.FirstSeq != 101 {
			t.Fatalf("after purge %+v", info.State)
		}
		if ack, _ := js.Publish(c, "orders.x", nil); ack == nil || ack.Sequence != 101 {
			t.Fatalf("sequence after purge: %+v", ack)
		}
	})
}

func TestStreamManagementErrors(t *testing.T) {
	eachSetup(t, func(t *testing.T, js jetstream.JetStream, storage jetstream.StorageType) {
		c := ctx(t)
		cfg := jetstream.StreamConfig{Name: "A", Subjects: []string{"a.*"}, Storage: storage}
		if _, err := js.CreateStream(c, cfg); err != nil {
			t.Fatal(err)
		}
		if _, err := js.CreateStream(c, cfg); err != nil {
			t.Fatalf("identical create is not idempotent: %v", err)
		}
		cfg.MaxMsgs = 5
		if _, err := js.CreateStream(c, cfg); !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			t.Fatalf("different config: %v", err)
		}
		_, err := js.CreateStream(c, jetstream.StreamConfig{Name: "B", Subjects: []string{"a.b"}, Storage: storage})
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode != 10065 {
			t.Fatalf("overlap: %v", err)
		}
		if _, err := js.Stream(c, "NOPE"); !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Fatalf("missing stream: %v", err)
		}
		if _, err := js.UpdateStream(c, jetstream.StreamConfig{Name: "A", Subjects: []string{"a.*", "z"}, Storage: storage, MaxMsgs: 3}); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 5; i++ {
			js.Publish(c, "z", nil)
		}
		st, _ := js.Stream(c, "A")
		if info, _ := st.Info(c); info.State.Msgs != 3 || info.Config.MaxMsgs != 3 {
			t.Fatalf("update not applied: %+v", info)
		}
		js.CreateStream(c, jetstream.StreamConfig{Name: "C", Storage: storage})
		var names []string
		l := js.StreamNames(c)
		for n := range l.Name() {
			names = append(names, n)
		}
		if fmt.Sprint(names) != "[A C]" || l.Err() != nil {
			t.Fatalf("names %v %v", names, l.Err())
		}
		infos := js.ListStreams(c)
		count := 0
		for range infos.Info() {
			count++
		}
		if count != 2 {
			t.Fatalf("list gave %d", count)
		}
		ai, err := js.AccountInfo(c)
		if err != nil || ai.Streams != 2 {
			t.Fatalf("account info %+v %v", ai, err)
		}
		if err := js.DeleteStream(c, "C"); err != nil {
			t.Fatal(err)
		}
		if err := js.DeleteStream(c, "C"); !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Fatalf("second delete: %v", err)
		}
	})
}

func TestPublishRules(t *testing.T) {
	eachSetup(t, func(t *testing.T, js jetstream.JetStream, storage jetstream.StorageType) {
		c := ctx(t)
		js.CreateStream(c, jetstream.StreamConfig{Name: "R", Subjects: []string{"r.>"}, Storage: storage, MaxMsgsPerSubject: 2})
		a1, _ := js.Publish(c, "r.a", []byte("1"), jetstream.WithMsgID("id-1"))
		a2, err := js.Publish(c, "r.a", []byte("1 again"), jetstream.WithMsgID("id-1"))
		if err != nil || !a2.Duplicate || a2.Sequence != a1.Sequence {
			t.Fatalf("duplicate: %+v %v", a2, err)
		}
		var apiErr *jetstream.APIError
		_, err = js.Publish(c, "r.a", nil, jetstream.WithExpectLastSequence(99))
		if !errors.As(err, &apiErr) || apiErr.ErrorCode != 10071 {
			t.Fatalf("expected last seq: %v", err)
		}
		if _, err := js.Publish(c, "r.a", nil, jetstream.WithExpectLastSequence(1)); err != nil {
			t.Fatalf("right expected last seq: %v", err)
		}
		// KV Create relies on "0 means no message on this subject yet".
		if _, err := js.Publish(c, "r.new", nil, jetstream.WithExpectLastSequencePerSubject(0)); err != nil {
			t.Fatalf("expect subject seq 0: %v", err)
		}
		_, err = js.Publish(c, "r.new", nil, jetstream.WithExpectLastSequencePerSubject(0))
		if !errors.As(err, &apiErr) || apiErr.ErrorCode != 10071 {
			t.Fatalf("expect subject seq 0 on existing subject: %v", err)
		}
		if _, err := js.Publish(c, "r.a", nil, jetstream.WithExpectStream("OTHER")); err == nil {
			t.Fatal("expected stream mismatch accepted")
		}
		if _, err := js.Publish(c, "r.a", nil, jetstream.WithExpectLastMsgID("nope")); err == nil {
			t.Fatal("expected last msg id mismatch accepted")
		}
		js.Publish(c, "r.a", []byte("x"))
		st, _ := js.Stream(c, "R")
		info, _ := st.Info(c)
		// r.a keeps its newest 2 messages; r.new has 1.
		if info.State.Msgs != 3 {
			t.Fatalf("max per subject: %+v", info.State)
		}
		if _, err := js.Publish(c, "nostream", nil); !errors.Is(err, jetstream.ErrNoStreamResponse) {
			t.Fatalf("publish without stream: %v", err)
		}
	})
}

func TestDiscardNew(t *testing.T) {
	eachSetup(t, func(t *testing.T, js jetstream.JetStream, storage jetstream.StorageType) {
		c := ctx(t)
		js.CreateStream(c, jetstream.StreamConfig{Name: "D", Storage: storage, MaxMsgs: 3, Discard: jetstream.DiscardNew})
		for i := 0; i < 3; i++ {
			if _, err := js.Publish(c, "D", nil); err != nil {
				t.Fatal(err)
			}
		}
		_, err := js.Publish(c, "D", nil)
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode != 10077 || apiErr.Description != "maximum messages exceeded" {
			t.Fatalf("discard new: %v", err)
		}
	})
}

func TestFileStreamSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := startJS(t, loop.Options{StoreDir: dir})
	_, js := connectJS(t, s)
	c := ctx(t)
	js.CreateStream(c, jetstream.StreamConfig{Name: "P", Subjects: []string{"p.*"}})
	for i := 1; i <= 50; i++ {
		if _, err := js.Publish(c, "p.x", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := js.Stream(c, "P")
	st.DeleteMsg(c, 10)
	s.Shutdown()

	s2 := startJS(t, loop.Options{StoreDir: dir})
	_, js2 := connectJS(t, s2)
	st2, err := js2.Stream(c, "P")
	if err != nil {
		t.Fatal(err)
	}
	info, _ := st2.Info(c)
	if info.State.Msgs != 49 || info.State.LastSeq != 50 || info.Config.Subjects[0] != "p.*" {
		t.Fatalf("after restart %+v %+v", info.State, info.Config)
	}
	if m, err := st2.GetMsg(c, 50); err != nil || string(m.Data) != "50" {
		t.Fatalf("get 50: %v", err)
	}
	if ack, err := js2.Publish(c, "p.y", nil); err != nil || ack.Sequence != 51 {
		t.Fatalf("publish after restart: %+v %v", ack, err)
	}
}

func TestJetStreamDisabled(t *testing.T) {
	s, err := loop.New(loop.Options{Host: "127.0.0.1", Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Shutdown()
	_, js := connectJS(t, s)
	if _, err := js.AccountInfo(ctx(t)); !errors.Is(err, jetstream.ErrJetStreamNotEnabled) {
		t.Fatalf("got %v", err)
	}
}

// TestRecreateDeletedStream: a stream deleted and created again under the
// same name starts empty and stores normally (the writer must not keep
// writing into the deleted files).
func TestRecreateDeletedStream(t *testing.T) {
	eachSetup(t, func(t *testing.T, js jetstream.JetStream, storage jetstream.StorageType) {
		c := ctx(t)
		cfg := jetstream.StreamConfig{Name: "RE", Storage: storage}
		for round := 0; round < 3; round++ {
			st, err := js.CreateStream(c, cfg)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 5; i++ {
				if _, err := js.Publish(c, "RE", []byte(fmt.Sprint(round, i))); err != nil {
					t.Fatal(err)
				}
			}
			// Sequence 1 is read back from the file: later appends have
			// dropped it from the store's in-memory copy of unwritten records.
			m, err := st.GetMsg(c, 1)
			if err != nil || string(m.Data) != fmt.Sprint(round, 0) {
				t.Fatalf("round %d: %v %v", round, m, err)
			}
			if err := js.DeleteStream(c, "RE"); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestS2CompressedStream(t *testing.T) {
	s := startJS(t, loop.Options{})
	_, js := connectJS(t, s)
	c := ctx(t)
	st, err := js.CreateStream(c, jetstream.StreamConfig{Name: "Z", Compression: jetstream.S2Compression})
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte(fmt.Sprintf("%0500d", 7))
	for i := 0; i < 50; i++ {
		js.Publish(c, "Z", payload)
	}
	info, _ := st.Info(c)
	if info.Config.Compression != jetstream.S2Compression || info.State.Msgs != 50 {
		t.Fatalf("info %+v %+v", info.Config.Compression, info.State)
	}
	m, err := st.GetMsg(c, 3)
	if err != nil || string(m.Data) != string(payload) {
		t.Fatalf("get: %v", err)
	}
}

func TestAccountStorageLimit(t *testing.T) {
	s := startJS(t, loop.Options{JetStreamMaxMemory: 16 << 10})
	_, js := connectJS(t, s)
	c := ctx(t)
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "M", Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	ai, _ := js.AccountInfo(c)
	if ai.Limits.MaxMemory != 16<<10 {
		t.Fatalf("limits %+v", ai.Limits)
	}
	var apiErr *jetstream.APIError
	for i := 0; i < 40; i++ {
		_, err := js.Publish(c, "M", make([]byte, 1024))
		if err == nil {
			continue
		}
		if !errors.As(err, &apiErr) || apiErr.ErrorCode != 10023 || i < 14 {
			t.Fatalf("publish %d: %v", i, err)
		}
		return
	}
	t.Fatal("40 KiB stored under a 16 KiB memory limit")
}
