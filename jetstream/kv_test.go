package jetstream_test

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestKeyValueBasics drives the nats.go KV client, which rides on streams
// with allow_direct, rollups and expected-subject-sequence headers.
func TestKeyValueBasics(t *testing.T) {
	eachSetup(t, func(t *testing.T, js jetstream.JetStream, storage jetstream.StorageType) {
		c := ctx(t)
		kv, err := js.CreateKeyValue(c, jetstream.KeyValueConfig{Bucket: "cfg", History: 3, Storage: storage})
		if err != nil {
			t.Fatal(err)
		}
		rev, err := kv.Put(c, "db.host", []byte("a"))
		if err != nil || rev != 1 {
			t.Fatalf("put: %d %v", rev, err)
		}
		e, err := kv.Get(c, "db.host")
		if err != nil || string(e.Value()) != "a" || e.Revision() != 1 || e.Operation() != jetstream.KeyValuePut {
			t.Fatalf("get: %+v %v", e, err)
		}
		if _, err := kv.Update(c, "db.host", []byte("b"), 1); err != nil {
			t.Fatalf("update with right revision: %v", err)
		}
		if _, err := kv.Update(c, "db.host", []byte("c"), 1); err == nil {
			t.Fatal("update with stale revision accepted")
		}
		if _, err := kv.Create(c, "db.host", []byte("x")); !errors.Is(err, jetstream.ErrKeyExists) {
			t.Fatalf("create existing: %v", err)
		}
		if _, err := kv.Create(c, "db.port", []byte("5432")); err != nil {
			t.Fatalf("create new: %v", err)
		}
		if err := kv.Delete(c, "db.port"); err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Get(c, "db.port"); !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Fatalf("get deleted: %v", err)
		}
		if _, err := kv.Create(c, "db.port", []byte("6543")); err != nil {
			t.Fatalf("create after delete: %v", err)
		}
		if _, err := kv.Get(c, "missing"); !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Fatalf("get missing: %v", err)
		}
		for i := 0; i < 5; i++ {
			kv.Put(c, "counter", []byte{byte('0' + i)})
		}
		if err := kv.Purge(c, "counter"); err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Get(c, "counter"); !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Fatalf("get purged: %v", err)
		}
		st, err := kv.Status(c)
		if err != nil || st.Bucket() != "cfg" || st.History() != 3 {
			t.Fatalf("status: %v %v", st, err)
		}
		// counter: the purge marker alone remains of its puts (rollup).
		info, _ := js.Stream(c, "KV_cfg")
		si, _ := info.Info(c)
		if si.State.Msgs != 2+3+1 {
			t.Fatalf("stream holds %d messages, want 6: db.host x2, db.port x3 (put, delete, put), the purge marker", si.State.Msgs)
		}
	})
}

func TestDirectGet(t *testing.T) {
	eachSetup(t, func(t *testing.T, js jetstream.JetStream, storage jetstream.StorageType) {
		c := ctx(t)
		st, err := js.CreateStream(c, jetstream.StreamConfig{Name: "DG", Subjects: []string{"dg.>"}, Storage: storage, AllowDirect: true})
		if err != nil {
			t.Fatal(err)
		}
		m := nats.NewMsg("dg.a")
		m.Header.Set("X-Own", "kept")
		m.Data = []byte("one")
		js.PublishMsg(c, m)
		js.Publish(c, "dg.b", []byte("two"))
		got, err := st.GetMsg(c, 1) // allow_direct: served by DIRECT.GET with a JSON body
		if err != nil || string(got.Data) != "one" || got.Header.Get("X-Own") != "kept" || got.Subject != "dg.a" || got.Sequence != 1 {
			t.Fatalf("direct get 1: %+v %v", got, err)
		}
		last, err := st.GetLastMsgForSubject(c, "dg.*") // wildcard last-by-subject, as the object store needs
		if err != nil || last.Sequence != 2 {
			t.Fatalf("direct last dg.*: %+v %v", last, err)
		}
		if _, err := st.GetMsg(c, 99); !errors.Is(err, jetstream.ErrMsgNotFound) {
			t.Fatalf("direct get missing: %v", err)
		}
	})
}
