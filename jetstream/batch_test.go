package jetstream_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	jsapi "github.com/evnats/evnats/jetstream"
	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// batchAck is a reply to a batch message: empty when staged, else a PubAck.
type batchAck struct {
	Stream string `json:"stream"`
	Seq    uint64 `json:"seq"`
	Batch  string `json:"batch"`
	Count  int    `json:"count"`
	Error  *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
	empty bool
}

// batchMsg publishes one message of an atomic batch with raw headers (nats.go
// v1.55 has no batch publisher) and returns the reply.
func batchMsg(t *testing.T, nc *nats.Conn, subject, id string, seq int, commit string, extra ...string) batchAck {
	t.Helper()
	m := nats.NewMsg(subject)
	m.Data = []byte(fmt.Sprint("m", seq))
	m.Header.Set("Nats-Batch-Id", id)
	m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(seq))
	if commit != "" {
		m.Header.Set("Nats-Batch-Commit", commit)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m.Header.Set(extra[i], extra[i+1])
	}
	r, err := nc.RequestMsg(m, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var a batchAck
	if len(r.Data) == 0 {
		a.empty = true
		return a
	}
	if err := json.Unmarshal(r.Data, &a); err != nil {
		t.Fatalf("%q: %v", r.Data, err)
	}
	return a
}

func getBatchMsg(t *testing.T, js jetstream.JetStream, name string, seq uint64) (*jetstream.RawStreamMsg, error) {
	t.Helper()
	st, err := js.Stream(ctx(t), name)
	if err != nil {
		t.Fatal(err)
	}
	return st.GetMsg(ctx(t), seq)
}

func wantBatchErr(t *testing.T, a batchAck, code int, desc string) {
	t.Helper()
	if a.Error == nil || a.Error.ErrCode != code || (desc != "" && a.Error.Description != desc) {
		t.Fatalf("want %d %q, got %+v %+v", code, desc, a, a.Error)
	}
}

func msgCount(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	st, err := js.Stream(ctx(t), name)
	if err != nil {
		t.Fatal(err)
	}
	return st.CachedInfo().State.Msgs
}

// TestAtomicBatchCommit: staged messages get an empty reply and are not
// visible; the commit stores them all with one PubAck that names the batch
// and counts it; an "eob" commit is not stored and marks the last message.
func TestAtomicBatchCommit(t *testing.T) {
	for _, su := range setups {
		t.Run(su.name, func(t *testing.T) {
			s := startJS(t, loop.Options{IO: su.io, Loops: 2})
			nc, js := connectJS(t, s)
			c := ctx(t)
			if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "B", Subjects: []string{"b.>"}, Storage: su.storage, AllowAtomicPublish: true}); err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 3; i++ {
				if a := batchMsg(t, nc, "b.x", "one", i, ""); !a.empty {
					t.Fatalf("staged message %d: %+v", i, a)
				}
			}
			if n := msgCount(t, js, "B"); n != 0 {
				t.Fatalf("%d messages visible before the commit", n)
			}
			a := batchMsg(t, nc, "b.y", "one", 4, "1")
			if a.Error != nil || a.Stream != "B" || a.Seq != 4 || a.Batch != "one" || a.Count != 4 {
				t.Fatalf("commit ack %+v %+v", a, a.Error)
			}
			for seq := uint64(1); seq <= 4; seq++ {
				m, err := getBatchMsg(t, js, "B", seq)
				if err != nil || string(m.Data) != fmt.Sprint("m", seq) || m.Header.Get("Nats-Batch-Id") != "one" {
					t.Fatalf("seq %d: %+v %v", seq, m, err)
				}
			}
			// End of batch: the marker is not stored; the last message is the commit.
			batchMsg(t, nc, "b.x", "two", 1, "")
			batchMsg(t, nc, "b.x", "two", 2, "")
			a = batchMsg(t, nc, "b.x", "two", 3, "eob")
			if a.Error != nil || a.Seq != 6 || a.Batch != "two" || a.Count != 2 {
				t.Fatalf("eob ack %+v %+v", a, a.Error)
			}
			m, err := getBatchMsg(t, js, "B", 6)
			if err != nil || m.Header.Get("Nats-Batch-Commit") != "1" || string(m.Data) != "m2" {
				t.Fatalf("last of an eob batch: %+v %v", m, err)
			}
			if n := msgCount(t, js, "B"); n != 6 {
				t.Fatalf("%d messages", n)
			}
			// A pull consumer sees the batch.
			cons, err := js.CreateConsumer(c, "B", jetstream.ConsumerConfig{Durable: "d"})
			if err != nil {
				t.Fatal(err)
			}
			got, err := cons.Fetch(6, jetstream.FetchMaxWait(2*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for range got.Messages() {
				n++
			}
			if n != 6 {
				t.Fatalf("fetched %d", n)
			}
		})
	}
}

// TestAtomicBatchErrors: nats-server's error for each way a batch goes wrong;
// an abandoned batch stores nothing.
func TestAtomicBatchErrors(t *testing.T) {
	s := startJS(t, loop.Options{})
	nc, js := connectJS(t, s)
	c := ctx(t)
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "OFF", Subjects: []string{"off"}}); err != nil {
		t.Fatal(err)
	}
	wantBatchErr(t, batchMsg(t, nc, "off", "x", 1, "1"), 10174, "atomic publish is disabled")
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "B", Subjects: []string{"b.>"}, AllowAtomicPublish: true, AllowRollup: true}); err != nil {
		t.Fatal(err)
	}
	long := fmt.Sprintf("%065d", 0)
	wantBatchErr(t, batchMsg(t, nc, "b.x", long, 1, ""), 10179, "atomic publish batch ID is invalid")
	m := nats.NewMsg("b.x")
	m.Header.Set("Nats-Batch-Id", "noseq")
	r, err := nc.RequestMsg(m, 5*time.Second)
	if err != nil || !json.Valid(r.Data) {
		t.Fatal(err)
	}
	var a batchAck
	json.Unmarshal(r.Data, &a)
	wantBatchErr(t, a, 10175, "atomic publish sequence is missing")
	wantBatchErr(t, batchMsg(t, nc, "b.x", "late", 2, ""), 10176, "atomic publish batch is incomplete")
	wantBatchErr(t, batchMsg(t, nc, "b.x", "huge", 1001, "1"), 10199, "atomic publish batch is too large: 1000")
	// A gap abandons the batch: its commit is then incomplete too.
	batchMsg(t, nc, "b.x", "gap", 1, "")
	wantBatchErr(t, batchMsg(t, nc, "b.x", "gap", 3, ""), 10176, "")
	wantBatchErr(t, batchMsg(t, nc, "b.x", "gap", 2, "1"), 10176, "")
	batchMsg(t, nc, "b.x", "bad", 1, "")
	wantBatchErr(t, batchMsg(t, nc, "b.x", "bad", 2, "yes"), 10200, "atomic publish batch commit is invalid")
	wantBatchErr(t, batchMsg(t, nc, "b.x", "eob1", 1, "eob"), 10176, "")
	// Headers checked at the commit.
	batchMsg(t, nc, "b.x", "lid", 1, "", "Nats-Expected-Last-Msg-Id", "z")
	wantBatchErr(t, batchMsg(t, nc, "b.x", "lid", 2, "1"), 10177, "atomic publish unsupported header used: Nats-Expected-Last-Msg-Id")
	batchMsg(t, nc, "b.x", "dup", 1, "", "Nats-Msg-Id", "same")
	wantBatchErr(t, batchMsg(t, nc, "b.x", "dup", 2, "1", "Nats-Msg-Id", "same"), 10201, "atomic publish batch contains duplicate message id")
	batchMsg(t, nc, "b.x", "els", 1, "", "Nats-Expected-Last-Sequence", "0")
	wantBatchErr(t, batchMsg(t, nc, "b.x", "els", 2, "1", "Nats-Expected-Last-Sequence", "1"), 10164, "wrong last sequence")
	batchMsg(t, nc, "b.x", "els2", 1, "", "Nats-Expected-Last-Sequence", "5")
	wantBatchErr(t, batchMsg(t, nc, "b.x", "els2", 2, "1"), 10071, "wrong last sequence: 0")
	batchMsg(t, nc, "b.x", "subj", 1, "")
	wantBatchErr(t, batchMsg(t, nc, "b.x", "subj", 2, "1", "Nats-Expected-Last-Subject-Sequence", "0"), 10164, "wrong last sequence")
	batchMsg(t, nc, "b.x", "rall", 1, "")
	wantBatchErr(t, batchMsg(t, nc, "b.y", "rall", 2, "1", "Nats-Rollup", "all"), 10111, "batch rollup all invalid")
	if n := msgCount(t, js, "B"); n != 0 {
		t.Fatalf("failed batches stored %d messages", n)
	}
	// A batch that passes its checks after those failures.
	batchMsg(t, nc, "b.x", "ok", 1, "", "Nats-Expected-Last-Sequence", "0", "Nats-Msg-Id", "a")
	if a := batchMsg(t, nc, "b.x", "ok", 2, "1", "Nats-Msg-Id", "b"); a.Error != nil || a.Seq != 2 || a.Count != 2 {
		t.Fatalf("%+v %+v", a, a.Error)
	}
	// Its ids now dedupe a later batch.
	batchMsg(t, nc, "b.x", "again", 1, "", "Nats-Msg-Id", "a")
	wantBatchErr(t, batchMsg(t, nc, "b.x", "again", 2, "1"), 10201, "")
}

// TestAtomicBatchInflightLimit: a stream stages at most 50 batches.
func TestAtomicBatchInflightLimit(t *testing.T) {
	s := startJS(t, loop.Options{})
	nc, js := connectJS(t, s)
	if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "B", Subjects: []string{"b"}, AllowAtomicPublish: true}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		if a := batchMsg(t, nc, "b", fmt.Sprint("id", i), 1, ""); !a.empty {
			t.Fatalf("batch %d: %+v", i, a)
		}
	}
	wantBatchErr(t, batchMsg(t, nc, "b", "one-too-many", 1, ""), 10210, "atomic publish too many inflight")
	// Committing one makes room.
	if a := batchMsg(t, nc, "b", "id7", 2, "1"); a.Error != nil || a.Count != 2 {
		t.Fatalf("%+v", a)
	}
	if a := batchMsg(t, nc, "b", "one-too-many", 1, ""); !a.empty {
		t.Fatalf("%+v", a)
	}
}

// TestAtomicBatchDisabledByUpdate: turning allow_atomic off drops staged
// batches and refuses new ones.
func TestAtomicBatchDisabledByUpdate(t *testing.T) {
	s := startJS(t, loop.Options{})
	nc, js := connectJS(t, s)
	c := ctx(t)
	cfg := jetstream.StreamConfig{Name: "B", Subjects: []string{"b"}, AllowAtomicPublish: true}
	if _, err := js.CreateStream(c, cfg); err != nil {
		t.Fatal(err)
	}
	batchMsg(t, nc, "b", "x", 1, "")
	cfg.AllowAtomicPublish = false
	if _, err := js.UpdateStream(c, cfg); err != nil {
		t.Fatal(err)
	}
	wantBatchErr(t, batchMsg(t, nc, "b", "x", 2, "1"), 10174, "")
	cfg.AllowAtomicPublish = true
	if _, err := js.UpdateStream(c, cfg); err != nil {
		t.Fatal(err)
	}
	wantBatchErr(t, batchMsg(t, nc, "b", "x", 2, "1"), 10176, "")
}

// TestNatsBenchStreamConfig: the stream `nats bench js pub --create`
// (natscli v0.5.0) asks for, as its JSON: created, with atomic and fast
// batch publish on.
func TestNatsBenchStreamConfig(t *testing.T) {
	s := startJS(t, loop.Options{})
	nc, _ := connectJS(t, s)
	req := `{"name":"benchstream","subjects":["benchsubject"],"retention":"limits","max_consumers":-1,` +
		`"max_msgs_per_subject":-1,"max_msgs":-1,"max_bytes":1073741824,"max_age":0,"max_msg_size":-1,` +
		`"storage":"file","discard":"new","num_replicas":1,"duplicate_window":120000000000,"sealed":false,` +
		`"deny_delete":false,"deny_purge":false,"allow_rollup_hdrs":false,"allow_direct":true,"mirror_direct":false,` +
		`"allow_atomic":true,"allow_batched":true,"consumer_limits":{}}`
	r, err := nc.Request("$JS.API.STREAM.CREATE.benchstream", []byte(req), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var resp struct {
		Config struct {
			AllowAtomic  bool `json:"allow_atomic"`
			AllowBatched bool `json:"allow_batched"`
		} `json:"config"`
		Error any `json:"error"`
	}
	if json.Unmarshal(r.Data, &resp); resp.Error != nil || !resp.Config.AllowAtomic || !resp.Config.AllowBatched {
		t.Fatalf("%s", r.Data)
	}
}

// TestAtomicBatchTimeout: a batch that sees no message for the timeout is
// abandoned; its next message is answered as an incomplete batch.
func TestAtomicBatchTimeout(t *testing.T) {
	t.Cleanup(jsapi.SetBatchTimeout(100 * time.Millisecond)) // restored after the server stops
	s := startJS(t, loop.Options{})
	nc, js := connectJS(t, s)
	if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "B", Subjects: []string{"b"}, AllowAtomicPublish: true}); err != nil {
		t.Fatal(err)
	}
	batchMsg(t, nc, "b", "slow", 1, "")
	time.Sleep(300 * time.Millisecond) // past the timeout: what is tested is the passing of time
	wantBatchErr(t, batchMsg(t, nc, "b", "slow", 2, "1"), 10176, "atomic publish batch is incomplete")
	if n := msgCount(t, js, "B"); n != 0 {
		t.Fatalf("%d stored", n)
	}
}

// TestAtomicBatchTTL: a Nats-TTL inside an atomic batch is refused, raised
// and expired exactly as on a single publish.
func TestAtomicBatchTTL(t *testing.T) {
	s := startJS(t, loop.Options{})
	nc, js := connectJS(t, s)
	c := ctx(t)
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "N", Subjects: []string{"n"}, AllowAtomicPublish: true}); err != nil {
		t.Fatal(err)
	}
	batchMsg(t, nc, "n", "off", 1, "")
	wantBatchErr(t, batchMsg(t, nc, "n", "off", 2, "1", "Nats-TTL", "1s"), 10166, "")
	st, err := js.CreateStream(c, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, AllowAtomicPublish: true, AllowMsgTTL: true})
	if err != nil {
		t.Fatal(err)
	}
	batchMsg(t, nc, "t.a", "bad", 1, "", "Nats-TTL", "500ms")
	wantBatchErr(t, batchMsg(t, nc, "t.a", "bad", 2, "1"), 10165, "")
	if n := msgCount(t, js, "N") + msgCount(t, js, "T"); n != 0 {
		t.Fatalf("%d stored from refused batches", n)
	}
	batchMsg(t, nc, "t.short", "ok", 1, "", "Nats-TTL", "1s")
	if a := batchMsg(t, nc, "t.long", "ok", 2, "1"); a.Error != nil || a.Seq != 2 {
		t.Fatalf("%+v %+v", a, a.Error)
	}
	waitFor(t, 5*time.Second, "the batch's 1s message expires", func() bool {
		_, err := st.GetMsg(c, 1)
		return errors.Is(err, jetstream.ErrMsgNotFound)
	})
	if _, err := st.GetMsg(c, 2); err != nil {
		t.Fatalf("the message without a TTL went: %v", err)
	}
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "M", Subjects: []string{"m"}, AllowAtomicPublish: true,
		SubjectDeleteMarkerTTL: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if a := batchMsg(t, nc, "m", "raise", 1, "1", "Nats-TTL", "1"); a.Error != nil {
		t.Fatalf("%+v", a.Error)
	}
	if m, err := getBatchMsg(t, js, "M", 1); err != nil || m.Header.Get("Nats-TTL") != "5" {
		t.Fatalf("stored %+v %v: want the TTL raised to the marker TTL", m, err)
	}
}
