package jetstream_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	jsapi "github.com/evnats/evnats/jetstream"
	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Hostile input against the newer JetStream features (pause, batches,
// sources), each found by a review: a request that crashed a handler,
// left state behind that broke later requests, or grew without bound.

// noPanics fails the test if the server logged a recovered panic.
func noPanics(t *testing.T, log *looptest.LogBuffer) {
	t.Helper()
	if s := log.String(); strings.Contains(s, "internal error") {
		t.Fatalf("the server recovered a panic:\n%s", s)
	}
}

// TestPauseUntilOutOfJSONRange: a pause_until whose UTC year leaves
// 0..9999 (a year-0 time with a positive offset) cannot be written back as
// JSON; it must be refused, not stored where every later info panics.
func TestPauseUntilOutOfJSONRange(t *testing.T) {
	var log looptest.LogBuffer
	s := startJS(t, loop.Options{LogWriter: &log})
	nc, js := connectJS(t, s)
	st, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "PR", Subjects: []string{"pr.>"}, Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	for _, durable := range []string{"", "D"} {
		c, err := st.CreateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: durable, InactiveThreshold: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		name := c.CachedInfo().Name
		for _, until := range []string{"0000-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"} {
			r := apiCall(t, nc, "$JS.API.CONSUMER.PAUSE.PR."+name, `{"pause_until":"`+until+`"}`)
			if r.Error == nil || r.Error.Code != 400 {
				t.Fatalf("pause_until %s: got %+v, want a 400", until, r.Error)
			}
		}
		if _, err := c.Info(ctx(t)); err != nil {
			t.Fatalf("consumer %q info after a refused pause: %v", name, err)
		}
	}
	for _, cfg := range []string{
		`{"stream_name":"PR","config":{"name":"BAD1","pause_until":"0000-01-01T00:00:00+01:00"}}`,
		`{"stream_name":"PR","config":{"name":"BAD2","opt_start_time":"0000-01-01T00:00:00+01:00","deliver_policy":"by_start_time"}}`,
	} {
		var req struct {
			Config struct{ Name string } `json:"config"`
		}
		json.Unmarshal([]byte(cfg), &req)
		r := apiCall(t, nc, "$JS.API.CONSUMER.CREATE.PR."+req.Config.Name, cfg)
		if r.Error == nil {
			if _, err := st.Consumer(ctx(t), req.Config.Name); err != nil {
				t.Fatalf("%s accepted but info fails: %v", cfg, err)
			}
		}
	}
	for i, src := range []string{
		`{"name":"S1","sources":[{"name":"PR","opt_start_time":"0000-01-01T00:00:00+01:00"}]}`,
		`{"name":"S2","mirror":{"name":"PR","opt_start_time":"9999-12-31T23:59:59-01:00"}}`,
	} {
		r := apiCall(t, nc, fmt.Sprintf("$JS.API.STREAM.CREATE.S%d", i+1), src)
		if r.Error == nil {
			if _, err := js.Stream(ctx(t), fmt.Sprintf("S%d", i+1)); err != nil {
				t.Fatalf("%s accepted but info fails: %v", src, err)
			}
		}
	}
	noPanics(t, &log)
}

// TestSourceCycleThroughFilters: A sources C (subject b.x) and B filtered
// to b.x; B sources A filtered to b.x. Neither stream's own subjects take
// b.x, but each holds b.x messages copied from the other, so one publish
// to C would circle between A and B for ever. The cycle must be refused,
// or at least copy a bounded number of messages.
func TestSourceCycleThroughFilters(t *testing.T) {
	var log looptest.LogBuffer
	s := startJS(t, loop.Options{LogWriter: &log})
	nc, js := connectJS(t, s)
	mk := func(body string) apiReply {
		var c struct{ Name string }
		json.Unmarshal([]byte(body), &c)
		return apiCall(t, nc, "$JS.API.STREAM.CREATE."+c.Name, body)
	}
	for _, body := range []string{
		`{"name":"C","subjects":["b.x"],"storage":"memory"}`,
		`{"name":"A","subjects":["a.>"],"storage":"memory","sources":[{"name":"C"},{"name":"B","filter_subject":"b.x"}]}`,
	} {
		if r := mk(body); r.Error != nil {
			t.Fatalf("%s: %+v", body, r.Error)
		}
	}
	r := mk(`{"name":"B","subjects":["c.>"],"storage":"memory","sources":[{"name":"A","filter_subject":"b.x"}]}`)
	if r.Error != nil {
		return // refused as a cycle: nothing can circle
	}
	if _, err := js.Publish(ctx(t), "b.x", []byte("once")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		a, err := js.Stream(ctx(t), "A")
		if err != nil {
			t.Fatal(err)
		}
		if n := a.CachedInfo().State.Msgs; n > 10 {
			t.Fatalf("one publish became %d messages in A: the sources circle", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	noPanics(t, &log)
}

// TestAtomicBatchStagedBytesBounded: staged atomic batches are held in
// memory, so their bytes are bounded, not only their count: a client that
// opens batches of large messages and never commits is refused (429) once
// the bound is reached, and the refused batch's bytes are released.
func TestAtomicBatchStagedBytesBounded(t *testing.T) {
	defer jsapi.SetMaxStagedBytes(1 << 20)()
	s := startJS(t, loop.Options{})
	nc, js := connectJS(t, s)
	if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "SB", Subjects: []string{"sb"},
		Storage: jetstream.MemoryStorage, AllowAtomicPublish: true}); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 100<<10)
	send := func(id string, seq int) batchAck {
		m := nats.NewMsg("sb")
		m.Data = big
		m.Header.Set("Nats-Batch-Id", id)
		m.Header.Set("Nats-Batch-Sequence", fmt.Sprint(seq))
		r, err := nc.RequestMsg(m, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var a batchAck
		if a.empty = len(r.Data) == 0; !a.empty {
			json.Unmarshal(r.Data, &a)
		}
		return a
	}
	refused := false
	for i := 0; i < 40 && !refused; i++ { // 4 MiB offered against a 1 MiB bound
		a := send(fmt.Sprint("b", i%4), i/4+1)
		if !a.empty {
			if a.Error == nil || a.Error.ErrCode != 10210 {
				t.Fatalf("message %d: %+v", i, a)
			}
			refused = true
		}
	}
	if !refused {
		t.Fatal("4 MiB staged in uncommitted batches with a 1 MiB bound")
	}
	if a := batchMsg(t, nc, "sb", "small", 1, "1"); a.Error != nil || a.Count != 1 {
		t.Fatalf("a small batch after the refusal: %+v", a)
	}
}

// TestRareFilterSourceIsNotRescanned: a source whose filter matches
// nothing must not make every publish to its origin rescan the origin from
// where the filter last matched (twice: the next match, then the lag), on
// the Manager goroutine that serves all of JetStream.
func TestRareFilterSourceIsNotRescanned(t *testing.T) {
	s := startJS(t, loop.Options{})
	nc, js := connectJS(t, s)
	if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "BIG", Subjects: []string{"big.>"}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	const fill = 100_000
	for i := 0; i < fill; i++ { // core publishes, flushed once: the fast way to fill
		if err := nc.Publish("big.fill", nil); err != nil {
			t.Fatal(err)
		}
	}
	until(t, "the fill", func() bool { return streamInfo(t, js, "BIG").State.Msgs == fill })
	timed := func() time.Duration {
		start := time.Now()
		publishN(t, js, func(int) string { return "big.fill" }, 1, 200)
		return time.Since(start)
	}
	base := timed()
	if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "RARE", Storage: jetstream.MemoryStorage,
		Sources: []*jetstream.StreamSource{{Name: "BIG", FilterSubject: "big.rare"}}}); err != nil {
		t.Fatal(err)
	}
	if with := timed(); with > 4*base+time.Second {
		t.Fatalf("200 publishes took %v with a rare-filter source, %v without", with, base)
	}
}

// TestSequencesDoNotWrapAtTheTop: a stream whose first_seq is the largest
// sequence takes that one message; the next publish, batch or copy must be
// refused or skipped, never stored at sequence 0 or 1 again.
func TestSequencesDoNotWrapAtTheTop(t *testing.T) {
	var log looptest.LogBuffer
	for _, storage := range []string{"memory", "file"} {
		t.Run(storage, func(t *testing.T) {
			s := startJS(t, loop.Options{LogWriter: &log})
			nc, js := connectJS(t, s)
			r := apiCall(t, nc, "$JS.API.STREAM.CREATE.TOP", `{"name":"TOP","subjects":["top"],"storage":"`+storage+`","first_seq":18446744073709551614,"allow_atomic":true}`)
			if r.Error != nil {
				t.Logf("refused: %+v", r.Error)
				return
			}
			var seqs []uint64
			for i := 0; i < 3; i++ {
				a, err := js.Publish(ctx(t), "top", []byte("x"))
				if err == nil {
					seqs = append(seqs, a.Sequence)
				}
			}
			a := batchMsg(t, nc, "top", "b", 1, "1")
			if a.Error == nil {
				seqs = append(seqs, a.Seq)
			}
			for i, s := range seqs {
				if s < 18446744073709551614 || (i > 0 && s <= seqs[i-1]) {
					t.Fatalf("sequences wrapped: %v", seqs)
				}
			}
			t.Logf("stored at %v", seqs)
			info := streamInfo(t, js, "TOP")
			if info.State.LastSeq < info.State.FirstSeq && info.State.Msgs > 0 {
				t.Fatalf("state wrapped: %+v", info.State)
			}
		})
	}
	noPanics(t, &log)
}

// TestLinksAtTheLastSequence: an origin holding the largest sequence is
// copied once by a mirror and a source; the link's next position must not
// wrap to 0 and start the copy over.
func TestLinksAtTheLastSequence(t *testing.T) {
	var log looptest.LogBuffer
	s := startJS(t, loop.Options{LogWriter: &log})
	nc, js := connectJS(t, s)
	r := apiCall(t, nc, "$JS.API.STREAM.CREATE.MAX", `{"name":"MAX","subjects":["max"],"storage":"memory","first_seq":18446744073709551614}`)
	if r.Error != nil {
		t.Skipf("refused: %+v", r.Error)
	}
	if a, err := js.Publish(ctx(t), "max", []byte("x")); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("stored at %d", a.Sequence)
	}
	for _, body := range []string{
		`{"name":"M","storage":"memory","mirror":{"name":"MAX"}}`,
		`{"name":"S","storage":"memory","sources":[{"name":"MAX"}]}`,
	} {
		var c struct{ Name string }
		json.Unmarshal([]byte(body), &c)
		if r := apiCall(t, nc, "$JS.API.STREAM.CREATE."+c.Name, body); r.Error != nil {
			t.Fatalf("%s: %+v", body, r.Error)
		}
	}
	until(t, "the copies", func() bool { return streamInfo(t, js, "S").State.Msgs >= 1 })
	time.Sleep(300 * time.Millisecond) // ticks that would copy again
	for _, name := range []string{"M", "S"} {
		if info := streamInfo(t, js, name); info.State.Msgs != 1 {
			t.Fatalf("%s holds %d copies of one message: %+v", name, info.State.Msgs, info.State)
		}
	}
	noPanics(t, &log)
}

// TestFastBatchCountDoesNotWrap: in gap "ok" mode a client may jump to
// any batch sequence; the PubAck's count is that sequence and must not
// come out negative.
func TestFastBatchCountDoesNotWrap(t *testing.T) {
	s := startJS(t, loop.Options{})
	nc, js := connectJS(t, s)
	if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "FW", Subjects: []string{"fw"},
		Storage: jetstream.MemoryStorage, AllowBatchPublish: true}); err != nil {
		t.Fatal(err)
	}
	fp := newFastPub(t, nc, 10, "ok")
	fp.add("fw", []byte("1"))
	const top = 18446744073709551614
	fp.send("fw", top, 2, []byte("last"))
	var raw json.RawMessage
	for raw == nil {
		select {
		case m := <-fp.replies:
			if !strings.Contains(string(m.Data), `"type"`) {
				raw = m.Data
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no PubAck")
		}
	}
	var ack struct {
		Count uint64 `json:"count"`
	}
	if err := json.Unmarshal(raw, &ack); err != nil || ack.Count != top {
		t.Fatalf("PubAck %s: count %d, %v; want %d", raw, ack.Count, err, uint64(top))
	}
}

// TestManyLinkTransformsRefused: a source with 30,000 subject transforms
// (one 1 MB request) is refused at once, not checked pair by pair on the
// Manager goroutine for close to a minute while all of JetStream waits.
func TestManyLinkTransformsRefused(t *testing.T) {
	s := startJS(t, loop.Options{})
	nc, _ := connectJS(t, s)
	var b strings.Builder
	for i := range 30000 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"src":"a.%d","dest":"b.%d"}`, i, i)
	}
	for _, link := range []string{"sources", "mirror"} {
		body := `{"name":"T","storage":"memory","sources":[{"name":"O","subject_transforms":[` + b.String() + `]}]}`
		want := 10146
		if link == "mirror" {
			body = `{"name":"T","storage":"memory","mirror":{"name":"O","subject_transforms":[` + b.String() + `]}}`
			want = 10154
		}
		start := time.Now()
		msg, err := nc.Request("$JS.API.STREAM.CREATE.T", []byte(body), 20*time.Second)
		if err != nil {
			t.Fatalf("%s: %v after %v", link, err, time.Since(start))
		}
		var r apiReply
		json.Unmarshal(msg.Data, &r)
		wantAPIError(t, r, want, link+" with 30,000 transforms")
	}
}
