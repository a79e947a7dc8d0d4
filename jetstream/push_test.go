package jetstream_test

import (
	"bytes"
	"crypto/rand"
	"io"
	"sort"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestKeyValueWatchKeysHistory exercises the push consumers KV builds on:
// ordered, flow-controlled, heartbeated, last-per-subject, headers-only.
func TestKeyValueWatchKeysHistory(t *testing.T) {
	eachSetup(t, func(t *testing.T, js jetstream.JetStream, storage jetstream.StorageType) {
		c := ctx(t)
		kv, err := js.CreateKeyValue(c, jetstream.KeyValueConfig{Bucket: "w", History: 5, Storage: storage})
		if err != nil {
			t.Fatal(err)
		}
		kv.Put(c, "a", []byte("1"))
		kv.Put(c, "b", []byte("1"))
		kv.Put(c, "a", []byte("2"))
		kv.Delete(c, "b")
		kv.Put(c, "c", []byte("1"))

		keys, err := kv.Keys(c)
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(keys)
		if len(keys) != 2 || keys[0] != "a" || keys[1] != "c" {
			t.Fatalf("keys %v", keys)
		}
		hist, err := kv.History(c, "a")
		if err != nil || len(hist) != 2 || string(hist[0].Value()) != "1" || string(hist[1].Value()) != "2" {
			t.Fatalf("history %v %v", hist, err)
		}

		w, err := kv.WatchAll(c)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		// Initial values (latest per key, deletes included), then nil, then live updates.
		seen := map[string]string{}
		for e := range w.Updates() {
			if e == nil {
				break
			}
			seen[e.Key()] = string(e.Value()) + "/" + e.Operation().String()
		}
		if seen["a"] != "2/KeyValuePutOp" || seen["b"] != "/KeyValueDeleteOp" || seen["c"] != "1/KeyValuePutOp" || len(seen) != 3 {
			t.Fatalf("initial watch values %v", seen)
		}
		kv.Put(c, "d", []byte("live"))
		select {
		case e := <-w.Updates():
			if e == nil || e.Key() != "d" || string(e.Value()) != "live" {
				t.Fatalf("live update %v", e)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no live update")
		}
	})
}

func TestObjectStorePutGet(t *testing.T) {
	eachSetup(t, func(t *testing.T, js jetstream.JetStream, storage jetstream.StorageType) {
		c := ctx(t)
		obs, err := js.CreateObjectStore(c, jetstream.ObjectStoreConfig{Bucket: "files", Storage: storage})
		if err != nil {
			t.Fatal(err)
		}
		blob := make([]byte, 2<<20+12345) // 2 MB and change: many 128 KiB chunks
		rand.Read(blob)
		info, err := obs.PutBytes(c, "big.bin", blob)
		if err != nil {
			t.Fatal(err)
		}
		if info.Size != uint64(len(blob)) || info.Chunks < 16 {
			t.Fatalf("put info %+v", info)
		}
		r, err := obs.Get(c, "big.bin")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, blob) {
			t.Fatalf("object read back %d bytes, err %v", len(got), err)
		}
		list, err := obs.List(c)
		if err != nil || len(list) != 1 || list[0].Name != "big.bin" {
			t.Fatalf("list %v %v", list, err)
		}
		if err := obs.Delete(c, "big.bin"); err != nil {
			t.Fatal(err)
		}
		if _, err := obs.Get(c, "big.bin"); err == nil {
			t.Fatal("deleted object still readable")
		}
	})
}
