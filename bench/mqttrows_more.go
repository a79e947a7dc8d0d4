package main

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	paho "github.com/eclipse/paho.mqtt.golang"
)

// MQTT rows beyond one publisher to one subscriber: fan-out to 100
// subscribers, a shared subscription spread over 4 workers, and MQTT 5
// clients (paho.golang). Every row's publisher stays at most mqttLag
// messages ahead of what was delivered, on every server alike.

const mqttLag = 20_000

// waitDelivered waits until got reaches want. It fails when delivery stops
// moving for stall (a server that does not route the row at all fails in
// seconds, not minutes).
func waitDelivered(got *atomic.Int64, want int64, stall time.Duration) error {
	last, lastMove := got.Load(), time.Now()
	for {
		n := got.Load()
		if n >= want {
			return nil
		}
		if n != last {
			last, lastMove = n, time.Now()
		} else if time.Since(lastMove) > stall {
			return fmt.Errorf("delivered %d of %d, none in the last %v", n, want, stall)
		}
		time.Sleep(time.Millisecond)
	}
}

// throttleTo blocks while published-delivered/per exceeds mqttLag, or
// fails like waitDelivered when delivery stops.
func throttleTo(got *atomic.Int64, published int64, per int64) error {
	target := (published - mqttLag) * per
	if target <= 0 || got.Load() >= target {
		return nil
	}
	return waitDelivered(got, target, 15*time.Second)
}

// runMQTTFanout: one QoS 0 publisher, r.Subs QoS 0 subscribers on the same
// topic (paho, MQTT 3.1.1); each message reaches every subscriber.
func runMQTTFanout(r row, tg target, w *window, n int) (sample, error) {
	return runMQTTMany(r, tg, w, n, "bench/fanout", "bench/fanout", 0, int64(r.Subs))
}

// runMQTTShared: one QoS 1 publisher, r.Subs workers in the shared
// subscription $share/bench/bench/shared (paho, MQTT 3.1.1); each message
// reaches exactly one worker.
func runMQTTShared(r row, tg target, w *window, n int) (sample, error) {
	return runMQTTMany(r, tg, w, n, "bench/shared", "$share/bench/bench/shared", 1, 1)
}

// runMQTTMany publishes n messages on topic at qos to r.Subs subscribers of
// filter, each message delivered copies times in all.
func runMQTTMany(r row, tg target, w *window, n int, topic, filter string, qos byte, copies int64) (sample, error) {
	var got atomic.Int64
	for i := 0; i < r.Subs; i++ {
		c, err := dialMQTT(tg.MQTT, fmt.Sprintf("bench-sub-%d", i), true)
		if err != nil {
			return sample{}, err
		}
		defer c.Disconnect(0)
		tok := c.Subscribe(filter, qos, func(paho.Client, paho.Message) { got.Add(1) })
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			return sample{}, fmt.Errorf("subscribe %d: %v", i, tok.Error())
		}
	}
	pub, err := dialMQTT(tg.MQTT, "bench-pub", true)
	if err != nil {
		return sample{}, err
	}
	defer pub.Disconnect(0)
	payload := make([]byte, r.Payload)
	w.Start()
	for i := 0; i < n; i++ {
		pub.Publish(topic, qos, false, payload)
		if i%256 == 255 {
			if err := throttleTo(&got, int64(i), copies); err != nil {
				return sample{}, err
			}
		}
	}
	want := int64(n) * copies
	if err := waitDelivered(&got, want, 15*time.Second); err != nil {
		return sample{}, err
	}
	w.Stop()
	if d := got.Load(); d != want {
		return sample{}, fmt.Errorf("delivered %d copies of %d messages, want %d", d, n, want)
	}
	return sample{Msgs: int64(n), Bytes: int64(n * r.Payload)}, nil
}

// dialMQTT5 connects a paho.golang MQTT 5 client with a clean start.
func dialMQTT5(addr, id string, onMsg func()) (*paho5.Client, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	cfg := paho5.ClientConfig{ClientID: id, Conn: conn}
	if onMsg != nil {
		cfg.OnPublishReceived = []func(paho5.PublishReceived) (bool, error){
			func(paho5.PublishReceived) (bool, error) { onMsg(); return true, nil },
		}
	}
	c := paho5.NewClient(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ack, err := c.Connect(ctx, &paho5.Connect{ClientID: id, CleanStart: true, KeepAlive: 60})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("mqtt5 connect %s: %w", id, err)
	}
	if ack.ReasonCode != 0 {
		conn.Close()
		return nil, fmt.Errorf("mqtt5 connect %s: reason code %#x %s", id, ack.ReasonCode, ack.Properties.ReasonString)
	}
	return c, nil
}

// runMQTT5: one MQTT 5 publisher to one MQTT 5 subscriber at r.QoS.
func runMQTT5(r row, tg target, w *window, n int, qos byte) (sample, error) {
	var got atomic.Int64
	sub, err := dialMQTT5(tg.MQTT, "bench5-sub", func() { got.Add(1) })
	if err != nil {
		return sample{}, err
	}
	defer sub.Disconnect(&paho5.Disconnect{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := sub.Subscribe(ctx, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "bench/mqtt5", QoS: qos}}}); err != nil {
		return sample{}, fmt.Errorf("mqtt5 subscribe: %w", err)
	}
	pub, err := dialMQTT5(tg.MQTT, "bench5-pub", nil)
	if err != nil {
		return sample{}, err
	}
	defer pub.Disconnect(&paho5.Disconnect{})
	msg := &paho5.Publish{Topic: "bench/mqtt5", QoS: qos, Payload: make([]byte, r.Payload)}
	async := paho5.PublishOptions{Method: paho5.PublishMethod_AsyncSend}
	w.Start()
	for i := 0; i < n; i++ {
		if _, err := pub.PublishWithOptions(ctx, msg, async); err != nil {
			return sample{}, fmt.Errorf("mqtt5 publish: %w", err)
		}
		if i%256 == 255 {
			if err := throttleTo(&got, int64(i), 1); err != nil {
				return sample{}, err
			}
		}
	}
	if err := waitDelivered(&got, int64(n), 15*time.Second); err != nil {
		return sample{}, err
	}
	w.Stop()
	return sample{Msgs: int64(n), Bytes: int64(n * r.Payload)}, nil
}
