package mqtt_test

import (
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/evnats/evnats/loop"
)

// TestMQTTSubscribeDenyFiltersWildcards: MQTT filters wider than a
// subscribe deny entry ("#", "+/x" with deny "secret.>") are granted, as in
// nats-server, but never deliver a denied topic; nor does the queue a
// persistent session keeps while its client is away. The last message
// published is the signal that nothing denied is still on its way.
func TestMQTTSubscribeDenyFiltersWildcards(t *testing.T) {
	users := []*loop.User{
		{Username: "dev", Password: "pw", Permissions: &loop.Permissions{
			Subscribe: &loop.SubjectPermission{Deny: []string{"secret.>"}},
		}},
		{Username: "admin", Password: "pw"},
	}
	looptest := func(t *testing.T, o loop.Options) {
		o.Users = users
		s := startMQTT(t, o)
		as := func(u string, clean bool) func(*paho.ClientOptions) {
			return func(o *paho.ClientOptions) { o.SetUsername(u).SetPassword("pw").SetCleanSession(clean) }
		}
		filters := []string{"#", "+/x"}
		live := map[string]chan paho.Message{}
		for _, f := range filters {
			live[f] = subscribe(t, connectMQTT(t, s, "live"+f, as("dev", true)), f, 1)
		}
		// Persistent sessions that go offline; a QoS 0 filter, which only
		// an online session routes, shows when the server has let go.
		for _, f := range filters {
			c := connectMQTT(t, s, "away"+f, as("dev", false))
			subscribe(t, c, f, 1)
			subscribe(t, c, "zz", 0)
			n := s.NumSubscriptions()
			c.Disconnect(0)
			for deadline := time.Now().Add(5 * time.Second); s.NumSubscriptions() != n-1; {
				if time.Now().After(deadline) {
					t.Fatalf("session %q still online", "away"+f)
				}
				time.Sleep(5 * time.Millisecond) // the server notices the close on its own loop
			}
		}

		admin := connectMQTT(t, s, "admin", as("admin", true))
		for _, topic := range []string{"secret/x", "public/x", "done/x"} {
			wait(t, admin.Publish(topic, 1, false, topic))
		}
		for f, ch := range live {
			t.Logf("live %s", f)
			expect(t, ch, "public/x", "public/x")
			expect(t, ch, "done/x", "done/x")
		}
		for _, f := range filters {
			t.Logf("back %s", f)
			ch := make(chan paho.Message, 16)
			connectMQTT(t, s, "away"+f, as("dev", false), func(o *paho.ClientOptions) {
				o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { ch <- m })
			})
			expect(t, ch, "public/x", "public/x")
			expect(t, ch, "done/x", "done/x")
		}
	}
	eachTransport(t, looptest)
}
