package mqtt_test

import (
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/evnats/evnats/loop"
)

// as connects as user u (password "p"+u) with the given clean flag,
// sending every message to ch, subscribed or resumed.
func as(u string, clean bool, ch chan paho.Message) func(*paho.ClientOptions) {
	return func(o *paho.ClientOptions) {
		o.SetUsername(u).SetPassword("p" + u).SetCleanSession(clean)
		if ch != nil {
			o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { ch <- m })
		}
	}
}

// tryConnect connects and returns CONNACK's refusal, if any.
func tryConnect(t *testing.T, s *loop.Server, id string, opt func(*paho.ClientOptions)) error {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(mqttURL(s)).SetClientID(id).SetProtocolVersion(4).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	opt(o)
	c := paho.NewClient(o)
	tok := c.Connect()
	tok.WaitTimeout(5 * time.Second)
	if tok.Error() == nil {
		c.Disconnect(0)
	}
	return tok.Error()
}

func users(perms map[string]*loop.Permissions) []*loop.User {
	return []*loop.User{{Username: "a", Password: "pa", Permissions: perms["a"]},
		{Username: "b", Password: "pb", Permissions: perms["b"]}}
}

// A persistent session belongs to the user that created it: another user
// connecting with its client id is refused with CONNACK 5 and the session,
// its subscriptions and its queue stay as they were.
func TestMQTTSessionOwner(t *testing.T) {
	eachTransport(t, func(t *testing.T, o loop.Options) {
		o.Users = users(nil)
		s := startMQTT(t, o)
		b := connectMQTT(t, s, "shared", as("b", false, nil))
		subscribe(t, b, "secret/#", 1)
		b.Disconnect(0)
		pub := connectMQTT(t, s, "pub", as("b", true, nil))
		wait(t, pub.Publish("secret/1", 1, false, "for b"))

		got := make(chan paho.Message, 10)
		for _, clean := range []bool{false, true} {
			if err := tryConnect(t, s, "shared", as("a", clean, got)); err == nil || err.Error() != packets.ErrorRefusedNotAuthorised.Error() {
				t.Fatalf("user a taking b's session (clean %v): %v", clean, err)
			}
		}
		wait(t, pub.Publish("secret/2", 1, false, "live"))

		ch := make(chan paho.Message, 10)
		connectMQTT(t, s, "shared", as("b", false, ch))
		expect(t, ch, "secret/1", "for b")
		expect(t, ch, "secret/2", "live")
		expectNone(t, got)
	})
}

// A session restored after a restart keeps only what its owner's current
// permissions allow: denied filters and messages queued on denied subjects
// are dropped.
func TestMQTTSessionPermsRechecked(t *testing.T) {
	dir := t.TempDir()
	o := loop.Options{JetStream: true, StoreDir: dir, Users: users(nil)}
	s := startMQTT(t, o)
	b := connectMQTT(t, s, "dev", as("b", false, nil))
	subscribe(t, b, "secret/#", 1)
	subscribe(t, b, "pub/#", 1)
	b.Disconnect(0)
	pub := connectMQTT(t, s, "pub", as("a", true, nil))
	wait(t, pub.Publish("secret/1", 1, false, "queued secret"))
	wait(t, pub.Publish("pub/1", 1, false, "queued public"))
	pub.Disconnect(0)
	s.Shutdown()

	o.Users = users(map[string]*loop.Permissions{"b": {Subscribe: &loop.SubjectPermission{Deny: []string{"secret.>"}}}})
	s = startMQTT(t, o)
	ch := make(chan paho.Message, 10)
	connectMQTT(t, s, "dev", as("b", false, ch))
	pub = connectMQTT(t, s, "pub", as("a", true, nil))
	wait(t, pub.Publish("secret/2", 1, false, "live secret"))
	wait(t, pub.Publish("pub/2", 1, false, "live public"))
	expect(t, ch, "pub/1", "queued public")
	expect(t, ch, "pub/2", "live public")
	expectNone(t, ch)

	// What was dropped stays dropped when the permissions come back.
	s.Shutdown()
	o.Users = users(nil)
	s = startMQTT(t, o)
	ch = make(chan paho.Message, 10)
	connectMQTT(t, s, "dev", as("b", false, ch))
	pub = connectMQTT(t, s, "pub", as("a", true, nil))
	wait(t, pub.Publish("pub/3", 1, false, "marker"))
	for { // pub/1 and pub/2 may come again if their PUBACK raced the shutdown
		select {
		case m := <-ch:
			if strings.HasPrefix(m.Topic(), "secret/") {
				t.Fatalf("dropped message back: %s %q", m.Topic(), m.Payload())
			}
			if m.Topic() == "pub/3" {
				return
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no marker")
		}
	}
}

// Sessions with no owner recorded (created with authentication off, or by
// an older version) go to the first user that resumes them.
func TestMQTTSessionClaimedByFirstUser(t *testing.T) {
	dir := t.TempDir()
	o := loop.Options{JetStream: true, StoreDir: dir}
	s := startMQTT(t, o)
	r := dialRaw(t, s)
	r.connect("old", false, 0)
	r.subscribe(1, "o/#", 1)
	r.conn.Close()
	s.Shutdown()

	o.Users = users(nil)
	s = startMQTT(t, o)
	ch := make(chan paho.Message, 10)
	a := connectMQTT(t, s, "old", as("a", false, ch))
	wait(t, a.Publish("o/1", 1, false, "kept filter"))
	expect(t, ch, "o/1", "kept filter")
	a.Disconnect(0)
	if err := tryConnect(t, s, "old", as("b", false, nil)); err == nil || err.Error() != packets.ErrorRefusedNotAuthorised.Error() {
		t.Fatalf("user b taking a session a claimed: %v", err)
	}
}
