package mqtt_test

import (
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/evnats/evnats/loop"
)

// A persistent session restored after a restart (JetStream on, so sessions
// persist) acts with its owner's current permissions, on every transport:
// while offline its queue takes nothing the owner may not receive, and once
// resumed neither does the live subscription. With a deny list the "#"
// filter stays and is filtered; with an allow list that no longer covers
// it, "#" is dropped.
func TestMQTTRestoredSessionOwnerPerms(t *testing.T) {
	deny := &loop.Permissions{Subscribe: &loop.SubjectPermission{Deny: []string{"secret.>"}}}
	allow := &loop.Permissions{Subscribe: &loop.SubjectPermission{Allow: []string{"ok", "ok.>"}}} // "ok/#" is "ok" and "ok.>"
	for _, tc := range []struct {
		name        string
		before, now *loop.Permissions // a's, when the session subscribed and after the restart
	}{{"deny", deny, deny}, {"allow", nil, allow}} {
		t.Run(tc.name, func(t *testing.T) {
			eachTransport(t, func(t *testing.T, o loop.Options) {
				o.JetStream, o.StoreDir = true, t.TempDir()
				o.Users = users(map[string]*loop.Permissions{"a": tc.before})
				s := startMQTT(t, o)
				a := connectMQTT(t, s, "dev", as("a", false, nil))
				subscribe(t, a, "#", 1)
				subscribe(t, a, "ok/#", 1) // still allowed with either list: the signal
				a.Disconnect(0)
				s.Shutdown()

				o.Users = users(map[string]*loop.Permissions{"a": tc.now})
				s = startMQTT(t, o)
				b := connectMQTT(t, s, "pub", as("b", true, nil))
				wait(t, b.Publish("secret/x", 1, false, "queued secret"))
				wait(t, b.Publish("ok/x", 1, false, "queued ok"))
				ch := make(chan paho.Message, 10)
				connectMQTT(t, s, "dev", as("a", false, ch))
				wait(t, b.Publish("secret/y", 1, false, "live secret"))
				wait(t, b.Publish("ok/y", 1, false, "live ok"))
				// "#" and "ok/#" overlap: ok messages may come once per filter.
				for seen := map[string]bool{}; !seen["ok/y"]; {
					var m paho.Message
					select {
					case m = <-ch:
					case <-time.After(5 * time.Second):
						t.Fatalf("a got %v, not ok/x then ok/y", seen)
					}
					if m.Topic() != "ok/x" && m.Topic() != "ok/y" {
						t.Fatalf("a received %s %q", m.Topic(), m.Payload())
					}
					if m.Topic() == "ok/y" && !seen["ok/x"] {
						t.Fatalf("live ok/y before queued ok/x")
					}
					seen[m.Topic()] = true
				}
			})
		})
	}
}
