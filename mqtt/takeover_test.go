package mqtt_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/evnats/evnats/loop"
)

// TestMQTTTakeoverRaceTCPAndWebSocket: connections with one client id
// race each other over TCP and WebSocket, persistent sessions, each
// subscribing as soon as it is in, some leaving with DISCONNECT, others
// dropped or taken over. When the dust settles no subscription is left
// behind: a clean connection with that id ends the session, gets each
// message once, and after it leaves the sublist and the session table are
// as before.
func TestMQTTTakeoverRaceTCPAndWebSocket(t *testing.T) {
	eachTransport(t, func(t *testing.T, o loop.Options) {
		s := startMQTTWS(t, o)
		base := s.NumSubscriptions()
		const rounds, racers = 4, 8
		for range rounds {
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				clients []paho.Client
			)
			for i := range racers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					url := mqttURL(s)
					if i%2 == 1 {
						url = "ws://" + s.WebsocketAddr().String() + "/mqtt"
					}
					c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("race").SetCleanSession(false).
						SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(5 * time.Second))
					if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
						return // taken over before its CONNACK
					}
					mu.Lock()
					clients = append(clients, c)
					mu.Unlock()
					c.Subscribe(fmt.Sprintf("race/%d", i), 1, nil).WaitTimeout(2 * time.Second)
					if i%3 == 0 {
						c.Disconnect(0)
					}
				}()
			}
			wg.Wait()
			for _, c := range clients {
				c.Disconnect(0)
			}
		}
		waitMQTT(t, s, func(st mqttStat) bool { return st.Connected == 0 })

		final := connectMQTT(t, s, "race") // clean session: ends the kept one
		ch := subscribe(t, final, "race/+", 1)
		pub := connectMQTT(t, s, "race-pub")
		for i := range racers {
			wait(t, pub.Publish(fmt.Sprintf("race/%d", i), 1, false, "m"))
		}
		for i := range racers {
			expect(t, ch, fmt.Sprintf("race/%d", i), "m")
		}
		select {
		case m := <-ch:
			t.Fatalf("duplicate %s", m.Topic())
		case <-time.After(200 * time.Millisecond):
		}
		final.Disconnect(0)
		pub.Disconnect(0)
		waitMQTT(t, s, func(st mqttStat) bool { return st.Connected == 0 && st.Sessions == 0 })
		if n := s.NumSubscriptions(); n != base {
			t.Fatalf("%d subscriptions left in the sublist, %d before", n, base)
		}
	})
}

type mqttStat struct{ Connected, Sessions int }

// waitMQTT polls the server's MQTT figures until ok accepts them.
func waitMQTT(t *testing.T, s *loop.Server, ok func(mqttStat) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _ := s.MQTT()
		got := mqttStat{Connected: st.Connected, Sessions: st.Sessions}
		if ok(got) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("MQTT state never settled: %+v", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMQTT5TakeoverPublishesWill: MQTT 5 says the will of a client whose
// session is taken over is published as for any connection that ends
// without DISCONNECT (3.1.4): at once with will delay 0; with a delay, the
// new connection came in time and there is none. MQTT 3.1.1 keeps
// nats-server's rule (a taken-over client's will is dropped).
func TestMQTT5TakeoverPublishesWill(t *testing.T) {
	s := startMQTT(t, loop.Options{})
	addr := s.MQTTAddr().String()
	w := connect5(t, addr, nil)
	w.sub(t, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "tw/#", QoS: 0}}})
	for _, c := range []struct {
		id    string
		delay uint32
		will  bool
	}{{"tw-now", 0, true}, {"tw-later", 30, false}} {
		connect5(t, addr, &paho5.Connect{ClientID: c.id, CleanStart: true,
			Properties:     &paho5.ConnectProperties{SessionExpiryInterval: u32(60)},
			WillMessage:    &paho5.WillMessage{Topic: "tw/" + c.id, Payload: []byte("gone")},
			WillProperties: &paho5.WillProperties{WillDelayInterval: u32(c.delay)}})
		connect5(t, addr, &paho5.Connect{ClientID: c.id, Properties: &paho5.ConnectProperties{SessionExpiryInterval: u32(60)}})
		if c.will {
			if m := w.next(t); m.Topic != "tw/"+c.id {
				t.Fatalf("will %q", m.Topic)
			}
		}
		w.none(t)
	}
	old := connectMQTT(t, s, "tw-311", func(o *paho.ClientOptions) { o.SetWill("tw/311", "gone", 0, false) })
	_ = old
	connectMQTT(t, s, "tw-311")
	w.none(t)
}
