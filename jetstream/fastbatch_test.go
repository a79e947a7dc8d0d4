package jetstream_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evnats/evnats/jetstream/store"
	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// fastPub sends what natscli v0.5.0's `nats bench js pub fast` sends
// through orbit.go's jetstreamext fast publisher: the batch in the reply
// subject <inbox>.<flow>.<gap>.<seq>.<op>.$FI (the inbox's last token is
// the batch id), acks on <inbox>.>, and it stalls once flow times
// maxOutstanding messages are unacknowledged.
type fastPub struct {
	t              *testing.T
	nc             *nats.Conn
	inbox          string
	flow           uint16
	gap            string
	maxOutstanding uint64
	seq, ackSeq    uint64
	replies        chan *nats.Msg
}

// fastFlow is one reply on the ack inbox, whichever kind it is.
type fastFlow struct {
	Type    string `json:"type"`
	Seq     uint64 `json:"seq"`
	Msgs    uint16 `json:"msgs"`
	LastSeq uint64 `json:"last_seq"`
	batchAck
}

func newFastPub(t *testing.T, nc *nats.Conn, flow uint16, gap string) *fastPub {
	t.Helper()
	fp := &fastPub{t: t, nc: nc, inbox: nc.NewInbox(), flow: flow, gap: gap, maxOutstanding: 1, replies: make(chan *nats.Msg, 1024)}
	sub, err := nc.ChanSubscribe(fp.inbox+".>", fp.replies)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return fp
}

func (fp *fastPub) reply(seq uint64, op int) string {
	return fmt.Sprintf("%s.%d.%s.%d.%d.$FI", fp.inbox, fp.flow, fp.gap, seq, op)
}

// send publishes one message with an explicit batch sequence and op.
func (fp *fastPub) send(subject string, seq uint64, op int, data []byte, hdr ...string) {
	fp.t.Helper()
	m := nats.NewMsg(subject)
	m.Reply, m.Data = fp.reply(seq, op), data
	for i := 0; i+1 < len(hdr); i += 2 {
		m.Header.Set(hdr[i], hdr[i+1])
	}
	if err := fp.nc.PublishMsg(m); err != nil {
		fp.t.Fatal(err)
	}
}

// next waits for the next reply on the ack inbox.
func (fp *fastPub) next() fastFlow {
	fp.t.Helper()
	select {
	case m := <-fp.replies:
		var f fastFlow
		if err := json.Unmarshal(m.Data, &f); err != nil {
			fp.t.Fatalf("%q: %v", m.Data, err)
		}
		if f.Type == "" {
			if err := json.Unmarshal(m.Data, &f.batchAck); err != nil {
				fp.t.Fatalf("%q: %v", m.Data, err)
			}
		}
		return f
	case <-time.After(5 * time.Second):
		fp.t.Fatalf("no reply on the ack inbox (sent %d, acked %d)", fp.seq, fp.ackSeq)
	}
	return fastFlow{}
}

// take applies a flow ack as the client does: the window moves and may
// change its size.
func (fp *fastPub) take(f fastFlow) {
	fp.t.Helper()
	if f.Type != "ack" {
		fp.t.Fatalf("want a flow ack, got %+v", f)
	}
	fp.ackSeq, fp.flow = f.Seq, f.Msgs
}

// add sends the next message as AddMsg does: the first waits for its
// flow ack; later ones wait while the window is full.
func (fp *fastPub) add(subject string, data []byte) {
	fp.t.Helper()
	fp.seq++
	op := 1
	if fp.seq == 1 {
		op = 0
	}
	fp.send(subject, fp.seq, op, data)
	if fp.seq == 1 {
		fp.take(fp.next())
		return
	}
	for fp.ackSeq+uint64(fp.flow)*fp.maxOutstanding <= fp.seq {
		fp.take(fp.next())
	}
}

// close ends the batch with the end-of-batch marker, as Close does, and
// returns the PubAck, taking flow acks that come before it.
func (fp *fastPub) close(subject string) batchAck {
	fp.t.Helper()
	fp.seq++
	fp.send(subject, fp.seq, 3, nil)
	return fp.final()
}

func (fp *fastPub) final() batchAck {
	fp.t.Helper()
	for {
		f := fp.next()
		if f.Type == "" {
			return f.batchAck
		}
		if f.Type == "ack" {
			fp.take(f)
		}
	}
}

// TestFastBatchPublish: the bench publisher's flow, with the flow and
// window natscli uses, stores every message, gets flow acks often enough
// never to stall for good, and ends with one PubAck counting the batch.
func TestFastBatchPublish(t *testing.T) {
	for _, su := range setups {
		t.Run(su.name, func(t *testing.T) {
			s := startJS(t, loop.Options{IO: su.io, Loops: 2})
			nc, js := connectJS(t, s)
			c := ctx(t)
			if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "F", Subjects: []string{"f.>"}, Storage: su.storage, AllowBatchPublish: true}); err != nil {
				t.Fatal(err)
			}
			const n = 2000
			fp := newFastPub(t, nc, 500, "fail") // natscli: --batch 500, --max-outstanding-acks 1
			for i := 1; i <= n; i++ {
				fp.add("f.x", []byte(strconv.Itoa(i)))
			}
			a := fp.close("f.x")
			if a.Error != nil || a.Stream != "F" || a.Seq != n || a.Count != n || !strings.HasSuffix(fp.inbox, "."+a.Batch) {
				t.Fatalf("final ack %+v %+v", a, a.Error)
			}
			if got := msgCount(t, js, "F"); got != n {
				t.Fatalf("%d stored, want %d", got, n)
			}
			m, err := getBatchMsg(t, js, "F", n)
			if err != nil || string(m.Data) != strconv.Itoa(n) || len(m.Header) != 0 {
				t.Fatalf("last message %+v %v", m, err)
			}

			// A commit message is stored and answered with the PubAck.
			fp = newFastPub(t, nc, 10, "fail")
			fp.add("f.y", []byte("a"))
			fp.seq++
			fp.send("f.y", fp.seq, 2, []byte("b"))
			if a := fp.final(); a.Error != nil || a.Seq != n+2 || a.Count != 2 {
				t.Fatalf("commit ack %+v %+v", a, a.Error)
			}
		})
	}
}

// TestFastBatchFlow: the first reply grants the client's flow up to 500;
// flow acks name the batch sequence stored; a ping is answered with where
// the batch is; a second batch on the stream starts at a flow of one.
func TestFastBatchFlow(t *testing.T) {
	s := startJS(t, loop.Options{})
	nc, js := connectJS(t, s)
	if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "F", Subjects: []string{"f"}, AllowBatchPublish: true}); err != nil {
		t.Fatal(err)
	}
	fp := newFastPub(t, nc, 2, "fail")
	fp.send("f", 1, 0, nil)
	if f := fp.next(); f.Type != "ack" || f.Seq != 0 || f.Msgs != 2 {
		t.Fatalf("first reply %+v", f)
	}
	fp.send("f", 2, 1, nil)
	if f := fp.next(); f.Type != "ack" || f.Seq != 2 || f.Msgs != 2 {
		t.Fatalf("flow ack %+v", f)
	}
	fp.send("f", 3, 1, nil)
	fp.send("f", 3, 4, nil) // ping
	if f := fp.next(); f.Type != "ack" || f.Seq != 2 {
		t.Fatalf("ping reply %+v", f)
	}
	other := newFastPub(t, nc, 1000, "fail")
	other.send("f", 1, 0, nil)
	if f := other.next(); f.Type != "ack" || f.Seq != 0 || f.Msgs != 1 {
		t.Fatalf("second batch's first reply %+v", f)
	}
	wide := newFastPub(t, nc, 60000, "fail")
	wide.flow = 60000
	if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "W", Subjects: []string{"w"}, AllowBatchPublish: true}); err != nil {
		t.Fatal(err)
	}
	wide.send("w", 1, 0, nil)
	if f := wide.next(); f.Msgs != 500 {
		t.Fatalf("a lone batch is granted %d, want 500", f.Msgs)
	}
}

// TestFastBatchGaps: in fail mode a lost message ends the batch with a
// gap report and a PubAck for what was stored; in ok mode the batch goes
// on past the gap.
func TestFastBatchGaps(t *testing.T) {
	s := startJS(t, loop.Options{})
	nc, js := connectJS(t, s)
	if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "F", Subjects: []string{"f"}, AllowBatchPublish: true}); err != nil {
		t.Fatal(err)
	}
	fp := newFastPub(t, nc, 100, "fail")
	fp.add("f", []byte("1"))
	fp.add("f", []byte("2"))
	fp.send("f", 4, 1, []byte("4"))
	if f := fp.next(); f.Type != "gap" || f.LastSeq != 3 || f.Seq != 4 {
		t.Fatalf("gap report %+v", f)
	}
	if a := fp.final(); a.Error != nil || a.Seq != 2 || a.Count != 2 {
		t.Fatalf("ack after the gap %+v %+v", a, a.Error)
	}
	fp.send("f", 5, 1, []byte("5"))
	if a := fp.final(); a.Error == nil || a.Error.ErrCode != 10208 {
		t.Fatalf("a message after the batch ended: %+v", a)
	}

	ok := newFastPub(t, nc, 100, "ok")
	ok.add("f", []byte("1"))
	ok.send("f", 3, 1, []byte("3"))
	if f := ok.next(); f.Type != "gap" || f.LastSeq != 2 || f.Seq != 3 {
		t.Fatalf("gap report %+v", f)
	}
	ok.send("f", 4, 3, nil)
	if a := ok.final(); a.Error != nil || a.Seq != 4 || a.Count != 3 {
		t.Fatalf("ack past the gap %+v %+v", a, a.Error)
	}
	if n := msgCount(t, js, "F"); n != 4 {
		t.Fatalf("%d stored, want 4", n)
	}
}

// TestFastBatchErrors: nats-server's refusals and their codes, and a
// message that fails inside a batch.
func TestFastBatchErrors(t *testing.T) {
	s := startJS(t, loop.Options{})
	nc, js := connectJS(t, s)
	c := ctx(t)
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "OFF", Subjects: []string{"off"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "F", Subjects: []string{"f"}, AllowBatchPublish: true, AllowMsgTTL: true}); err != nil {
		t.Fatal(err)
	}
	check := func(subject, reply string, code int) {
		t.Helper()
		sub, err := nc.SubscribeSync(reply)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		m := nats.NewMsg(subject)
		m.Reply = reply
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
		got, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var a batchAck
		if json.Unmarshal(got.Data, &a); a.Error == nil || a.Error.ErrCode != code {
			t.Fatalf("%s: want %d, got %s", reply, code, got.Data)
		}
	}
	check("off", "_INBOX.a.b.10.fail.1.0.$FI", 10205)
	check("f", "a.10.fail.1.0.$FI", 10206) // no token before the batch id
	check("f", "_INBOX.a.b.10.maybe.1.0.$FI", 10206)
	check("f", "_INBOX.a.b.10.fail.2.0.$FI", 10206) // start must be 1
	check("f", "_INBOX.a.b.10.fail.1.3.$FI", 10206) // end of an empty batch
	check("f", "_INBOX.a."+strings.Repeat("x", 65)+".10.fail.1.0.$FI", 10207)
	check("f", "_INBOX.a.unknown.10.fail.2.1.$FI", 10208)
	check("f", "_INBOX.a.unknown.10.fail.1.4.$FI", 10208) // a ping starts nothing
	if n := msgCount(t, js, "F"); n != 0 {
		t.Fatalf("%d stored by refused messages", n)
	}

	// The first message failing is answered as a single publish.
	fp := newFastPub(t, nc, 10, "fail")
	fp.send("f", 1, 0, nil, "Nats-TTL", "bogus")
	if f := fp.next(); f.Type != "ack" {
		t.Fatalf("first reply %+v", f)
	}
	if a := fp.final(); a.Error == nil || a.Error.ErrCode != 10165 {
		t.Fatalf("%+v", a)
	}
	// A later one is reported by sequence and ends a fail-mode batch.
	fp = newFastPub(t, nc, 10, "fail")
	fp.add("f", []byte("1"))
	fp.send("f", 2, 1, nil, "Nats-Expected-Last-Sequence", "99")
	if f := fp.next(); f.Type != "err" || f.Seq != 2 || f.Error == nil || f.Error.ErrCode != 10071 {
		t.Fatalf("error report %+v", f)
	}
	if a := fp.final(); a.Error != nil || a.Seq != 1 || a.Count != 1 {
		t.Fatalf("ack after the error %+v %+v", a, a.Error)
	}
	// In ok mode the batch goes on without it.
	fp = newFastPub(t, nc, 10, "ok")
	fp.add("f", []byte("1"))
	fp.send("f", 2, 1, nil, "Nats-Expected-Last-Sequence", "99")
	if f := fp.next(); f.Type != "err" || f.Seq != 2 {
		t.Fatalf("error report %+v", f)
	}
	fp.send("f", 3, 2, []byte("3"))
	if a := fp.final(); a.Error != nil || a.Seq != 3 || a.Count != 3 {
		t.Fatalf("commit ack %+v %+v", a, a.Error)
	}
	// Turning allow_batched off drops the batches in progress.
	fp = newFastPub(t, nc, 10, "fail")
	fp.add("f", []byte("1"))
	if _, err := js.UpdateStream(c, jetstream.StreamConfig{Name: "F", Subjects: []string{"f"}, AllowMsgTTL: true}); err != nil {
		t.Fatal(err)
	}
	fp.send("f", 2, 1, nil)
	if a := fp.final(); a.Error == nil || a.Error.ErrCode != 10205 {
		t.Fatalf("%+v", a)
	}
}

// TestFastBatchMirrorRefused: a mirror takes no publishes, so neither
// kind of batch, as nats-server says.
func TestFastBatchMirrorRefused(t *testing.T) {
	s := startJS(t, loop.Options{})
	_, js := connectJS(t, s)
	c := ctx(t)
	for _, tc := range []struct {
		cfg  jetstream.StreamConfig
		code jetstream.ErrorCode
	}{
		{jetstream.StreamConfig{Name: "M1", Mirror: &jetstream.StreamSource{Name: "O"}, AllowAtomicPublish: true}, 10198},
		{jetstream.StreamConfig{Name: "M2", Mirror: &jetstream.StreamSource{Name: "O"}, AllowBatchPublish: true}, 10209},
	} {
		_, err := js.CreateStream(c, tc.cfg)
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode != tc.code {
			t.Fatalf("%s: want %d, got %v", tc.cfg.Name, tc.code, err)
		}
	}
}

// gatedDisk is an OS file system whose writes wait while its gate is shut.
type gatedDisk struct {
	store.OSFS
	mu   sync.Mutex
	gate chan struct{} // nil: open
}

type gatedFile struct {
	store.File
	d *gatedDisk
}

func (d *gatedDisk) OpenFile(name string, flag int, perm os.FileMode) (store.File, error) {
	f, err := d.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &gatedFile{File: f, d: d}, nil
}

func (f *gatedFile) Write(p []byte) (int, error) {
	f.d.mu.Lock()
	g := f.d.gate
	f.d.mu.Unlock()
	if g != nil {
		<-g
	}
	return f.File.Write(p)
}

// TestFastBatchAckWaitsForStore: a flow ack confirms stored messages, so
// it waits for the store's write, as a single publish's ack does.
func TestFastBatchAckWaitsForStore(t *testing.T) {
	disk := &gatedDisk{}
	s := startJS(t, loop.Options{StoreDir: t.TempDir(), JetStreamFS: disk})
	nc, js := connectJS(t, s)
	if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "F", Subjects: []string{"f"}, AllowBatchPublish: true}); err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	disk.mu.Lock()
	disk.gate = gate
	disk.mu.Unlock()
	var open sync.Once
	release := func() {
		open.Do(func() {
			disk.mu.Lock()
			disk.gate = nil
			disk.mu.Unlock()
			close(gate)
		})
	}
	t.Cleanup(release)                 // before the server stops (cleanups run last first), even on failure
	fp := newFastPub(t, nc, 1, "fail") // an ack for every message
	fp.send("f", 1, 0, []byte("1"))
	if f := fp.next(); f.Type != "ack" || f.Seq != 0 {
		t.Fatalf("first reply %+v", f)
	}
	select {
	case m := <-fp.replies:
		t.Fatalf("acked before the write: %s", m.Data)
	case <-time.After(300 * time.Millisecond): // what is tested is that nothing comes
	}
	release()
	if f := fp.next(); f.Type != "ack" || f.Seq != 1 {
		t.Fatalf("flow ack after the write %+v", f)
	}
}
