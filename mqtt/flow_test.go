package mqtt_test

import (
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/evnats/evnats/loop"
)

// TestFlowControlMQTTSubscriber: an MQTT subscriber that keeps reading gets
// every message of a NATS stream that outruns it; the NATS publisher is
// slowed instead of the subscriber being cut as a slow consumer.
func TestFlowControlMQTTSubscriber(t *testing.T) {
	eachTransport(t, func(t *testing.T, o loop.Options) {
		s := startMQTT(t, o)
		const n = 20000
		sub := connectMQTT(t, s, "flow-sub")
		var got atomic.Int64
		done := make(chan struct{})
		wait(t, sub.Subscribe("flow", 0, func(paho.Client, paho.Message) {
			if got.Add(1) == n {
				close(done)
			}
		}))
		nc := connectNATS(t, s)
		payload := make([]byte, 16<<10)
		for i := 0; i < n; i++ {
			if err := nc.Publish("flow", payload); err != nil {
				t.Fatal(err)
			}
		}
		if err := nc.FlushTimeout(60 * time.Second); err != nil {
			t.Fatal(err)
		}
		deadline := time.After(60 * time.Second)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				if sc := s.SlowConsumers(); sc != 0 {
					t.Fatalf("%d slow consumers, want 0", sc)
				}
				return
			case <-tick.C:
				if s.SlowConsumers() != 0 {
					t.Fatalf("MQTT subscriber received %d of %d; it was cut as a slow consumer", got.Load(), n)
				}
			case <-deadline:
				t.Fatalf("MQTT subscriber received %d of %d", got.Load(), n)
			}
		}
	})
}
