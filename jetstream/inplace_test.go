package jetstream_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go"
	njs "github.com/nats-io/nats.go/jetstream"
)

// TestAuditAdvisoryClient checks the API audit advisory names the client
// that sent the request, as nats-server's ClientInfo.
func TestAuditAdvisoryClient(t *testing.T) {
	s := startJS(t, loop.Options{Loops: 2})
	nc, err := nats.Connect(s.ClientURL(), nats.Name("auditor"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	adv, err := nc.SubscribeSync("$JS.EVENT.ADVISORY.API")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Request("$JS.API.INFO", nil, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	m, err := adv.NextMsg(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var a struct {
		Type   string `json:"type"`
		Client *struct {
			Start   *time.Time `json:"start"`
			Host    string     `json:"host"`
			ID      uint64     `json:"id"`
			Account string     `json:"acc"`
			Name    string     `json:"name"`
			Lang    string     `json:"lang"`
			Version string     `json:"ver"`
			Kind    string     `json:"kind"`
			Type    string     `json:"client_type"`
		} `json:"client"`
	}
	if err := json.Unmarshal(m.Data, &a); err != nil {
		t.Fatal(err)
	}
	c := a.Client
	if a.Type != "io.nats.jetstream.advisory.v1.api_audit" || c == nil {
		t.Fatalf("advisory %s", m.Data)
	}
	if c.Name != "auditor" || c.Lang != "go" || c.Version == "" || c.Account != "$G" || c.Host != "127.0.0.1" ||
		c.ID == 0 || c.Start == nil || c.Kind != "Client" || c.Type != "nats" {
		t.Fatalf("client %s", m.Data)
	}
}

// TestInPlaceKeepsOrder publishes pipelined to a memory stream while
// another connection keeps the Manager busy with API requests, so
// publishes go now in place, now through the queue: each must still be
// stored in the order it was sent.
func TestInPlaceKeepsOrder(t *testing.T) {
	for _, io := range []string{loop.IOGnet, loop.IOGoroutine} {
		t.Run(io, func(t *testing.T) {
			s := startJS(t, loop.Options{IO: io, Loops: 2})
			_, js := connectJS(t, s)
			busy, _ := connectJS(t, s)
			c := ctx(t)
			if _, err := js.CreateStream(c, njs.StreamConfig{Name: "O", Subjects: []string{"o"}, Storage: njs.MemoryStorage}); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				for {
					select {
					case <-stop:
						return
					default:
					}
					_, _ = busy.Request("$JS.API.STREAM.INFO.O", nil, time.Second)
				}
			}()
			const n = 3000
			acks := make([]njs.PubAckFuture, n)
			for i := range acks {
				f, err := js.PublishAsync("o", []byte(fmt.Sprint(i)))
				if err != nil {
					t.Fatal(err)
				}
				acks[i] = f
			}
			for i, f := range acks {
				select {
				case a := <-f.Ok():
					if a.Sequence != uint64(i+1) {
						t.Fatalf("publish %d stored as %d", i, a.Sequence)
					}
				case err := <-f.Err():
					t.Fatal(err)
				case <-c.Done():
					t.Fatal("no ack")
				}
			}
			close(stop)
			<-done
		})
	}
}
