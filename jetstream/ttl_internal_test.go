package jetstream

import (
	"testing"
	"time"

	"github.com/evnats/evnats/jetstream/store"
)

// TestTTLIndexPruned: entries of long-TTL messages that max_msgs evicts
// are dropped from the expiry index, which stays near the stream's size.
func TestTTLIndexPruned(t *testing.T) {
	cfg := StreamConfig{Name: "P", AllowMsgTTL: true, MaxMsgs: 10}
	if e := normalize(&cfg); e != nil {
		t.Fatal(e)
	}
	st := &stream{cfg: cfg, store: store.NewMemStore(), dedupe: map[string]dedupeEntry{},
		perSubj: map[string]uint64{}, consumers: map[string]*consumer{}}
	hdr := []byte("NATS/1.0\r\nNats-TTL: 1h\r\n\r\n")
	now := time.Now()
	for i := 0; i < 10000; i++ {
		if res := st.storeMsg("p", hdr, nil, now, false, nil); !res.pending {
			t.Fatalf("store %d: %+v", i, res.ack)
		}
	}
	if n := len(st.ttls); n > 2*10+1024+1 {
		t.Fatalf("expiry index holds %d entries for 10 messages", n)
	}
	st.tick(now.Add(2 * time.Hour))
	if s := st.store.State(); s.Msgs != 0 || len(st.ttls) != 0 {
		t.Fatalf("after the TTL: %d messages, %d index entries", s.Msgs, len(st.ttls))
	}
}

// TestTTLFarFuture: a TTL whose expiry is past int64 nanoseconds does not
// wrap around and expire at once.
func TestTTLFarFuture(t *testing.T) {
	cfg := StreamConfig{Name: "F", AllowMsgTTL: true}
	if e := normalize(&cfg); e != nil {
		t.Fatal(e)
	}
	st := &stream{cfg: cfg, store: store.NewMemStore(), dedupe: map[string]dedupeEntry{},
		perSubj: map[string]uint64{}, consumers: map[string]*consumer{}}
	now := time.Now()
	for _, v := range []string{"9223372036854775807", "2562047h", "9000000000"} {
		if res := st.storeMsg("f", []byte("NATS/1.0\r\nNats-TTL: "+v+"\r\n\r\n"), nil, now, false, nil); !res.pending {
			t.Fatalf("%s: %+v", v, res.ack)
		}
	}
	st.tick(now.Add(time.Hour))
	if n := st.store.State().Msgs; n != 3 {
		t.Fatalf("%d of 3 far-future messages left after an hour", n)
	}
}
