package jetstream_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// fastStep is one raw fast batch message: batch sequence, op, and
// headers as "Key: value" strings.
type fastStep struct {
	seq uint64
	op  int
	hdr []string
}

// fastScript publishes steps as one batch with id on subject and returns
// every reply on the batch's inbox, decoded, in order of arrival, until
// none came for 200 ms after a PubAck (1 s before one): nothing tells a
// client that no more are coming.
func fastScript(t *testing.T, nc *nats.Conn, subject, id, gap string, flow int, steps []fastStep) []map[string]any {
	t.Helper()
	inbox := "_INBOX." + id
	sub, err := nc.SubscribeSync(inbox + ".>")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	var out []map[string]any
	for _, s := range steps {
		m := nats.NewMsg(subject)
		m.Reply = fmt.Sprintf("%s.%s.%d.%s.%d.%d.$FI", inbox, id, flow, gap, s.seq, s.op)
		m.Data = []byte(fmt.Sprint(s.seq))
		for _, h := range s.hdr {
			k, v, _ := strings.Cut(h, ": ")
			m.Header.Set(k, v)
		}
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	quiet := time.Second // until a PubAck (no "type") ends the batch: a file stream's wait for the disk
	for {
		r, err := sub.NextMsg(quiet)
		if err != nil {
			break
		}
		var v map[string]any
		if err := json.Unmarshal(r.Data, &v); err != nil {
			t.Fatalf("%q: %v", r.Data, err)
		}
		if e, ok := v["error"].(map[string]any); ok {
			delete(e, "description") // wording may differ; codes may not
		}
		out = append(out, v)
		if v["type"] == nil {
			quiet = 200 * time.Millisecond // what follows the PubAck follows at once
		}
	}
	return out
}

// fastSubjects are the streams fastScenarios runs each batch on.
var fastSubjects = []string{"fm", "ff", "fn"}

func fastScenarios(t *testing.T, url string) map[string][]map[string]any {
	t.Helper()
	nc, js := dial(t, url)
	c := ctx(t)
	for _, cfg := range []jetstream.StreamConfig{
		{Name: "FM", Subjects: []string{"fm"}, Storage: jetstream.MemoryStorage, AllowBatchPublish: true},
		{Name: "FF", Subjects: []string{"ff"}, Storage: jetstream.FileStorage, AllowBatchPublish: true},
		{Name: "FN", Subjects: []string{"fn"}, Storage: jetstream.MemoryStorage, AllowBatchPublish: true, NoAck: true},
		{Name: "FL", Subjects: []string{"fl"}, Storage: jetstream.MemoryStorage, AllowBatchPublish: true, MaxMsgs: 2, Discard: jetstream.DiscardNew},
	} {
		if _, err := js.CreateStream(c, cfg); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string][]map[string]any{}
	plain := []fastStep{{1, 0, nil}, {2, 1, nil}, {3, 1, nil}, {4, 1, nil}, {5, 1, nil}, {6, 3, nil}}
	for _, subj := range fastSubjects {
		got[subj+"-plain"] = fastScript(t, nc, subj, "p"+subj, "fail", 2, plain)
		got[subj+"-gapok"] = fastScript(t, nc, subj, "g"+subj, "ok", 2, []fastStep{{1, 0, nil}, {3, 1, nil}, {4, 4, nil}, {6, 4, nil}, {7, 2, nil}})
		got[subj+"-gapfail"] = fastScript(t, nc, subj, "f"+subj, "fail", 2, []fastStep{{1, 0, nil}, {2, 1, nil}, {4, 1, nil}, {5, 1, nil}})
		got[subj+"-dup"] = fastScript(t, nc, subj, "d"+subj, "fail", 2, []fastStep{{1, 0, []string{"Nats-Msg-Id: x"}}, {2, 1, []string{"Nats-Msg-Id: x"}}, {3, 1, nil}, {4, 2, []string{"Nats-Msg-Id: x"}}})
		got[subj+"-badcommit"] = fastScript(t, nc, subj, "b"+subj, "ok", 2, []fastStep{{1, 0, nil}, {2, 1, nil}, {3, 2, []string{"Nats-Expected-Last-Sequence: 999"}}})
		got[subj+"-firstfail"] = fastScript(t, nc, subj, "e"+subj, "fail", 2, []fastStep{{1, 0, []string{"Nats-Expected-Last-Sequence: 999"}}})
		got[subj+"-firstfailok"] = fastScript(t, nc, subj, "o"+subj, "ok", 2, []fastStep{{1, 0, []string{"Nats-Expected-Last-Sequence: 999"}}, {2, 2, nil}})
		got[subj+"-pinggap"] = fastScript(t, nc, subj, "i"+subj, "fail", 2, []fastStep{{1, 0, nil}, {2, 1, nil}, {5, 4, nil}})
		got[subj+"-commit1"] = fastScript(t, nc, subj, "c"+subj, "fail", 2, []fastStep{{1, 2, nil}})
		got[subj+"-backward"] = fastScript(t, nc, subj, "w"+subj, "ok", 2, []fastStep{{1, 0, nil}, {2, 1, nil}, {2, 1, nil}, {3, 1, nil}})
	}
	got["fl-full"] = fastScript(t, nc, "fl", "full", "ok", 2, []fastStep{{1, 0, nil}, {2, 1, nil}, {3, 1, nil}, {4, 1, nil}, {5, 3, nil}})
	return got
}

// TestFastBatchDifferential runs the same raw fast batches against
// nats-server and evnats and compares every reply on the batch inbox:
// flow acks, gap and error reports and the final PubAck, in order, on
// memory, file and no_ack streams, with gaps, pings, duplicates, a refused
// commit, a repeated sequence and a full stream. The batches' messages
// are sent without waiting, as a fast publisher does.
func TestFastBatchDifferential(t *testing.T) {
	want := fastScenarios(t, startReferenceJS(t))
	s := startJS(t, loop.Options{})
	got := fastScenarios(t, s.ClientURL())
	for k, w := range want {
		if g := got[k]; !reflect.DeepEqual(g, w) {
			t.Errorf("%s:\n got  %v\n want %v", k, g, w)
		}
	}
}
