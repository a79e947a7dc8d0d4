package jetstream_test

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	server "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// advisoryScenario subscribes to every JetStream advisory, creates,
// updates and deletes a stream and consumers, NAKs a message past its
// max_deliver and terminates another, asks for a stream that is not there,
// and returns each advisory decoded into nats-server's own advisory
// structs, without ids and times (checked apart).
func advisoryScenario(t *testing.T, url string) []string {
	nc, js := dial(t, url)
	sub, err := nc.SubscribeSync("$JS.EVENT.ADVISORY.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	c := ctx(t)
	var out []string
	// await reads advisories until one on subject arrives: the signal that
	// an ack was applied (acks have no reply to wait for).
	await := func(subject string) {
		t.Helper()
		for {
			msg, err := sub.NextMsg(5 * time.Second)
			if err != nil {
				t.Fatalf("waiting for %s after %v: %v", subject, out, err)
			}
			out = append(out, advisoryLine(t, msg))
			if msg.Subject == subject {
				return
			}
		}
	}
	cfg := jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}}
	if _, err := js.CreateStream(c, cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Description = "updated"
	if _, err := js.UpdateStream(c, cfg); err != nil {
		t.Fatal(err)
	}
	cons, err := js.CreateConsumer(c, "S", jetstream.ConsumerConfig{Durable: "C", AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"s.1", "s.2"} {
		if _, err := js.Publish(c, s, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	next := func() jetstream.Msg {
		t.Helper()
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	for range 2 { // the second NAK is past max_deliver
		if err := next().Nak(); err != nil {
			t.Fatal(err)
		}
		await("$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED.S.C")
	}
	if err := next().TermWithReason("bad payload"); err != nil {
		t.Fatal(err)
	}
	await("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.S.C")
	// A pause that ends by itself (long enough that a loaded machine still
	// handles the request before it ends), then one lifted by a resume.
	if _, err := js.PauseConsumer(c, "S", "C", time.Now().Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	await("$JS.EVENT.ADVISORY.CONSUMER.PAUSE.S.C")
	await("$JS.EVENT.ADVISORY.CONSUMER.PAUSE.S.C")
	if _, err := js.PauseConsumer(c, "S", "C", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	await("$JS.EVENT.ADVISORY.CONSUMER.PAUSE.S.C")
	if _, err := js.ResumeConsumer(c, "S", "C"); err != nil {
		t.Fatal(err)
	}
	await("$JS.EVENT.ADVISORY.CONSUMER.PAUSE.S.C")
	// A pin given to a pull of group g, then taken back by UNPIN.
	if _, err := js.CreateConsumer(c, "S", jetstream.ConsumerConfig{Durable: "P", AckPolicy: jetstream.AckExplicitPolicy,
		PriorityPolicy: jetstream.PriorityPolicyPinned, PriorityGroups: []string{"g"}}); err != nil {
		t.Fatal(err)
	}
	if msg, err := nc.Request("$JS.API.CONSUMER.MSG.NEXT.S.P", []byte(`{"batch":1,"group":"g","expires":2000000000}`), 5*time.Second); err != nil || msg.Header.Get("Nats-Pin-Id") == "" {
		t.Fatalf("pinned pull: %v %v", msg, err)
	}
	await("$JS.EVENT.ADVISORY.CONSUMER.PINNED.S.P")
	st, err := js.Stream(c, "S")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.UnpinConsumer(c, "P", "g"); err != nil {
		t.Fatal(err)
	}
	await("$JS.EVENT.ADVISORY.CONSUMER.UNPINNED.S.P")
	if err := js.DeleteConsumer(c, "S", "P"); err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteConsumer(c, "S", "C"); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateConsumer(c, "S", jetstream.ConsumerConfig{Name: "E"}); err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(c, "S"); err != nil {
		t.Fatal(err)
	}
	// nats-server stops a deleted stream's consumers, and sends their
	// advisories, on its own goroutines: wait for E's before going on.
	await("$JS.EVENT.ADVISORY.CONSUMER.DELETED.S.E")
	if _, err := js.Stream(c, "NOPE"); err == nil {
		t.Fatal("no error for a missing stream")
	}

	last := false
	for {
		wait := 5 * time.Second
		if last {
			wait = 300 * time.Millisecond // anything still on its way after the last request's audit
		}
		msg, err := sub.NextMsg(wait)
		if err != nil {
			if !last {
				t.Fatalf("advisories so far %v: %v", out, err)
			}
			break
		}
		line := advisoryLine(t, msg)
		out = append(out, line)
		if strings.Contains(line, "$JS.API.STREAM.INFO.NOPE") {
			last = true
		}
	}
	sort.Strings(out) // advisories and audits leave nats-server by different queues, in no set order
	return out
}

// advisoryLine decodes one advisory into nats-server's struct for its
// type, checks its head, and describes it.
func advisoryLine(t *testing.T, msg *nats.Msg) string {
	t.Helper()
	var head server.TypedEvent
	if err := json.Unmarshal(msg.Data, &head); err != nil {
		t.Fatalf("%s: %v: %s", msg.Subject, err, msg.Data)
	}
	if len(head.ID) != 22 || time.Since(head.Time) > time.Minute || head.Time.Location() != time.UTC {
		t.Errorf("%s: head %+v", msg.Subject, head)
	}
	decode := func(v any) {
		dec := json.NewDecoder(strings.NewReader(string(msg.Data)))
		dec.DisallowUnknownFields() // nothing nats-server's struct lacks
		if err := dec.Decode(v); err != nil {
			t.Fatalf("%s: %v: %s", msg.Subject, err, msg.Data)
		}
	}
	switch head.Type {
	case server.JSStreamActionAdvisoryType:
		var a server.JSStreamActionAdvisory
		decode(&a)
		return fmt.Sprintf("%s stream %s %s", msg.Subject, a.Stream, a.Action)
	case server.JSConsumerActionAdvisoryType:
		var a server.JSConsumerActionAdvisory
		decode(&a)
		return fmt.Sprintf("%s consumer %s %s %s", msg.Subject, a.Stream, a.Consumer, a.Action)
	case server.JSConsumerDeliveryExceededAdvisoryType:
		var a server.JSConsumerDeliveryExceededAdvisory
		decode(&a)
		return fmt.Sprintf("%s max_deliver %s %s seq %d deliveries %d", msg.Subject, a.Stream, a.Consumer, a.StreamSeq, a.Deliveries)
	case server.JSConsumerDeliveryNakAdvisoryType:
		var a server.JSConsumerDeliveryNakAdvisory
		decode(&a)
		return fmt.Sprintf("%s nak %s %s cseq %d sseq %d deliveries %d", msg.Subject, a.Stream, a.Consumer, a.ConsumerSeq, a.StreamSeq, a.Deliveries)
	case server.JSConsumerDeliveryTerminatedAdvisoryType:
		var a server.JSConsumerDeliveryTerminatedAdvisory
		decode(&a)
		return fmt.Sprintf("%s terminated %s %s cseq %d sseq %d deliveries %d reason %q", msg.Subject, a.Stream, a.Consumer,
			a.ConsumerSeq, a.StreamSeq, a.Deliveries, a.Reason)
	case server.JSConsumerPauseAdvisoryType:
		var a server.JSConsumerPauseAdvisory
		decode(&a)
		return fmt.Sprintf("%s pause %s %s paused %v until set %v", msg.Subject, a.Stream, a.Consumer, a.Paused, !a.PauseUntil.IsZero())
	case server.JSConsumerGroupPinnedAdvisoryType:
		var a server.JSConsumerGroupPinnedAdvisory
		decode(&a)
		return fmt.Sprintf("%s pinned %s %s %s group %s id %d chars", msg.Subject, a.Account, a.Stream, a.Consumer, a.Group, len(a.PinnedClientId))
	case server.JSConsumerGroupUnpinnedAdvisoryType:
		var a server.JSConsumerGroupUnpinnedAdvisory
		decode(&a)
		return fmt.Sprintf("%s unpinned %s %s %s group %s reason %s", msg.Subject, a.Account, a.Stream, a.Consumer, a.Group, a.Reason)
	case server.JSAPIAuditType:
		var a server.JSAPIAudit
		decode(&a)
		if a.Server == "" {
			t.Errorf("%s: audit without a server name", a.Subject)
		}
		var resp struct {
			Type  string `json:"type"`
			Error *struct {
				ErrCode int `json:"err_code"`
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(a.Response), &resp); err != nil {
			t.Fatalf("audit response %q: %v", a.Response, err)
		}
		code := 0
		if resp.Error != nil {
			code = resp.Error.ErrCode
		}
		return fmt.Sprintf("%s audit %s request %v -> %s %d", msg.Subject, a.Subject, a.Request != "", resp.Type, code)
	}
	t.Errorf("%s: unexpected advisory type %q", msg.Subject, head.Type)
	return msg.Subject + " " + head.Type
}

// TestAdvisoriesDifferential compares the advisories of the same steps,
// decoded into nats-server's structs, with nats-server's.
func TestAdvisoriesDifferential(t *testing.T) {
	differential(t, advisoryScenario)
}
