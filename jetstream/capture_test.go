package jetstream_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	"github.com/nats-io/nats.go/jetstream"
)

// Streams may not capture everything or the API subjects unless they send
// no acks (a stream on '>' used to answer every request in the server with
// a PubAck), and a push consumer may not deliver into its own stream (one
// on loop.> delivering to loop.out grew by 18 MB/s, forever), neither when
// created nor after a stream update: as nats-server.
func TestRefusedCaptures(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		s := startJS(t, o)
		_, js := connectJS(t, s)
		c := ctx(t)
		refused := func(what string, err error, code uint16, desc string) {
			t.Helper()
			var apiErr *jetstream.APIError
			if !errors.As(err, &apiErr) || uint16(apiErr.ErrorCode) != code || (desc != "" && apiErr.Description != desc) {
				t.Fatalf("%s: got %v, want %d %q", what, err, code, desc)
			}
		}
		for _, tc := range []struct {
			subjects []string
			desc     string
		}{
			{[]string{">"}, "capturing all subjects requires no-ack to be true"},
			{[]string{">", "a"}, "capturing all subjects requires no-ack to be true"},
			{[]string{"$JS.>"}, "subjects that overlap with jetstream api require no-ack to be true"},
			{[]string{"$JS.API.>"}, "subjects that overlap with jetstream api require no-ack to be true"},
			{[]string{"*.API.STREAM.INFO.*"}, "subjects that overlap with jetstream api require no-ack to be true"},
			{[]string{"$JS.ACK.>"}, "subjects that overlap with jetstream api require no-ack to be true"},
			{[]string{"$JSC.>"}, "subjects that overlap with jetstream api require no-ack to be true"},
			{[]string{"$NRG.x"}, "subjects that overlap with jetstream api require no-ack to be true"},
			{[]string{"$SYS.>"}, "subjects that overlap with system api require no-ack to be true"},
			{[]string{"a.>", "a.b"}, `subject "a.>" overlaps with "a.b"`},
		} {
			_, err := js.CreateStream(c, jetstream.StreamConfig{Name: "X", Subjects: tc.subjects})
			refused(fmt.Sprint("stream on ", tc.subjects), err, 10052, tc.desc)
		}
		for _, ok := range []string{"$JS.EVENT.x.>", "$SYS.ACCOUNT.>"} {
			if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "OK", Subjects: []string{ok}}); err != nil {
				t.Fatalf("stream on %s: %v", ok, err)
			}
			js.DeleteStream(c, "OK")
		}
		// With no acks, capturing all is allowed, as in nats-server.
		if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "ALL", Subjects: []string{">"}, NoAck: true}); err != nil {
			t.Fatalf("no-ack stream on >: %v", err)
		}
		if err := js.DeleteStream(c, "ALL"); err != nil {
			t.Fatal(err)
		}

		st, err := js.CreateStream(c, jetstream.StreamConfig{Name: "L", Subjects: []string{"loop.>"}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = st.CreateOrUpdatePushConsumer(c, jetstream.ConsumerConfig{Durable: "P", DeliverSubject: "loop.out", AckPolicy: jetstream.AckExplicitPolicy})
		refused("push consumer into its own stream", err, 10081, "consumer deliver subject forms a cycle")
		if _, err := st.CreateOrUpdatePushConsumer(c, jetstream.ConsumerConfig{Durable: "P", DeliverSubject: "out.x", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
			t.Fatal(err)
		}
		_, err = js.UpdateStream(c, jetstream.StreamConfig{Name: "L", Subjects: []string{"loop.>", "out.*"}})
		refused("update capturing a consumer's deliver subject", err, 10081, "consumer deliver subject forms a cycle")
		info, err := st.Info(c)
		if err != nil {
			t.Fatal(err)
		}
		if len(info.Config.Subjects) != 1 || info.Config.Subjects[0] != "loop.>" {
			t.Fatalf("refused update changed the subjects: %v", info.Config.Subjects)
		}
		if _, err := js.UpdateStream(c, jetstream.StreamConfig{Name: "L", Subjects: []string{"loop.>", "other.*"}}); err != nil {
			t.Fatalf("harmless update: %v", err)
		}
	})
}
