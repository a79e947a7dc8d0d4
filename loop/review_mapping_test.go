package loop_test

import (
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go"
)

// Two accounts whose service imports do not overlap (no cycle by
// subject, so the configuration is accepted), but whose mappings turn
// each import's target into the other's source: A imports x from B, B
// maps x to y, B imports y from A, A maps y to x.
const importMappingCycleConf = `
accounts {
  A {
    users = [ {user: a, password: a} ]
    exports = [ {service: "y"} ]
    imports = [ {service: {account: B, subject: "x"}} ]
    mappings { "y": "x" }
  }
  B {
    users = [ {user: b, password: b} ]
    exports = [ {service: "x"} ]
    imports = [ {service: {account: A, subject: "y"}} ]
    mappings { "x": "y" }
  }
}
`

// TestReviewImportMappingCycle: one publish on x in A goes round the two
// accounts for ever (each hop a nested call: the server dies of a stack
// overflow, which no recover catches). The server must stay up.
func TestReviewImportMappingCycle(t *testing.T) {
	t.Run("nats-server", func(t *testing.T) {
		ns := startNatsServer(t, importMappingCycleConf)
		publishSurvives(t, ns.ClientURL())
	})
	t.Run("evnats", func(t *testing.T) {
		publishSurvives(t, startFromFile(t, loop.Options{}, importMappingCycleConf).s.ClientURL())
	})
}

func publishSurvives(t *testing.T, url string) {
	nc, err := nats.Connect(url, nats.UserInfo("a", "a"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.Publish("x", []byte("boom")); err != nil {
		t.Fatal(err)
	}
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		t.Fatalf("server after one publish: %v", err)
	}
	other, err := nats.Connect(url, nats.UserInfo("b", "b"))
	if err != nil {
		t.Fatalf("server after one publish: %v", err)
	}
	other.Close()
}

// A mapping that sends 1% of foo to bar and keeps the rest on foo.
const partialMappingConf = `
mappings { "foo": [ {destination: "bar", weight: 1%} ] }
`

// TestReviewMappingSourceNoResponders: the internal subscription that
// shows a mapping's source to leaves is a subscriber too: a request on a
// subject the mapping leaves alone (the 99% share) gets no 503 no
// responders but waits for its timeout, where nats-server answers 503.
func TestReviewMappingSourceNoResponders(t *testing.T) {
	request := func(t *testing.T, url string) error {
		nc, err := nats.Connect(url)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		var last error
		for range 5 { // 1% goes to bar, which has no responder either
			_, last = nc.Request("foo", nil, time.Second)
			if last != nats.ErrNoResponders {
				return last
			}
		}
		return last
	}
	if err := request(t, startNatsServer(t, partialMappingConf).ClientURL()); err != nats.ErrNoResponders {
		t.Fatalf("nats-server: %v", err)
	}
	if err := request(t, startFromFile(t, loop.Options{}, partialMappingConf).s.ClientURL()); err != nats.ErrNoResponders {
		t.Fatalf("evnats: %v, nats-server: no responders", err)
	}
}
