package jetstream_test

import (
	"encoding/json"
	"testing"
	"time"

	server "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/evnats/evnats/loop"
)

// TestDomainInAdvisoriesAndAcks: with jetstream { domain: edge } the
// domain is in every advisory (stream and consumer actions, the API
// audit, a NAK) and in pub acks, a duplicate's and an atomic batch's
// included, on evnats as on nats-server.
func TestDomainInAdvisoriesAndAcks(t *testing.T) {
	ref := &server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, JetStream: true,
		StoreDir: t.TempDir(), JetStreamDomain: "edge"}
	ns, err := server.NewServer(ref)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(ns.Shutdown)
	ev := startJS(t, loop.Options{StoreDir: t.TempDir(), JetStreamDomain: "edge"})
	for name, url := range map[string]string{"nats-server": ns.ClientURL(), "evnats": ev.ClientURL()} {
		t.Run(name, func(t *testing.T) { domainScenario(t, url) })
	}
}

func domainScenario(t *testing.T, url string) {
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	adv, _ := nc.SubscribeSync("$JS.EVENT.ADVISORY.>")
	nc.Flush()
	req := func(subj, body string) []byte {
		t.Helper()
		m, err := nc.Request(subj, []byte(body), 5*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", subj, err)
		}
		return m.Data
	}
	domainOf := func(what string, b []byte) {
		t.Helper()
		var v struct {
			Domain string `json:"domain"`
		}
		if err := json.Unmarshal(b, &v); err != nil || v.Domain != "edge" {
			t.Errorf("%s: no domain: %s", what, b)
		}
	}
	req("$JS.API.STREAM.CREATE.D", `{"name":"D","subjects":["d.>"],"storage":"memory","allow_atomic":true}`)
	pub := func(id string) []byte {
		m := nats.NewMsg("d.1")
		m.Header.Set("Nats-Msg-Id", id)
		r, err := nc.RequestMsg(m, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return r.Data
	}
	domainOf("pub ack", pub("a"))
	domainOf("duplicate ack", pub("a"))
	b := nats.NewMsg("d.2")
	b.Header.Set("Nats-Batch-Id", "b1")
	b.Header.Set("Nats-Batch-Sequence", "1")
	b.Header.Set("Nats-Batch-Commit", "1")
	r, err := nc.RequestMsg(b, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	domainOf("batch ack", r.Data)
	req("$JS.API.CONSUMER.CREATE.D.C", `{"stream_name":"D","config":{"durable_name":"C","ack_policy":"explicit"}}`)
	m, err := nc.Request("$JS.API.CONSUMER.MSG.NEXT.D.C", []byte(`{"batch":1,"expires":2000000000}`), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	m.Nak()
	nc.Flush()
	seen := map[string]bool{}
	for len(seen) < 4 {
		a, err := adv.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("advisories seen %v: %v", seen, err)
		}
		var h struct {
			Type string `json:"type"`
		}
		json.Unmarshal(a.Data, &h)
		domainOf(h.Type, a.Data)
		switch h.Type {
		case "io.nats.jetstream.advisory.v1.stream_action", "io.nats.jetstream.advisory.v1.consumer_action",
			"io.nats.jetstream.advisory.v1.api_audit", "io.nats.jetstream.advisory.v1.nak":
			seen[h.Type] = true
		}
	}
}
