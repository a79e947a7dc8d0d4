package mqtt_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go"
)

// accountOpts: users a and a2 in account A, b and b2 in B, g in $G.
func accountOpts() loop.Options {
	return loop.Options{
		Users: []*loop.User{{Username: "g", Password: "pg"}},
		Accounts: []*loop.Account{
			{Name: "A", Users: []*loop.User{{Username: "a", Password: "pa"}, {Username: "a2", Password: "pa2"}}},
			{Name: "B", Users: []*loop.User{{Username: "b", Password: "pb"}, {Username: "b2", Password: "pb2"}}},
		},
	}
}

// natsAs connects a nats.go client as user u (password "p"+u).
func natsAs(t *testing.T, s *loop.Server, u string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.UserInfo(u, "p"+u), nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func natsSub(t *testing.T, nc *nats.Conn, subject string) *nats.Subscription {
	t.Helper()
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return sub
}

// TestMQTTAccountIsolation: an MQTT client logged in as a user of account
// A publishes and subscribes in A's subject space: a nats.go client of A
// sees what it publishes and reaches it, one of B (or $G) neither, both
// ways; MQTT clients of A and B on the same topic do not meet.
func TestMQTTAccountIsolation(t *testing.T) {
	eachTransport(t, func(t *testing.T, o loop.Options) {
		ao := accountOpts()
		o.Users, o.Accounts = ao.Users, ao.Accounts
		s := startMQTT(t, o)
		ma := connectMQTT(t, s, "devA", as("a", true, nil))
		mb := connectMQTT(t, s, "devB", as("b", true, nil))
		chA := subscribe(t, ma, "t/#", 1)
		chB := subscribe(t, mb, "t/#", 1)
		na, nb, ng := natsAs(t, s, "a2"), natsAs(t, s, "b2"), natsAs(t, s, "g")
		subA, subB, subG := natsSub(t, na, "t.>"), natsSub(t, nb, "t.>"), natsSub(t, ng, "t.>")

		// MQTT in A -> NATS of A only (B's NATS client gets B's message first).
		wait(t, ma.Publish("t/x", 1, false, "fromA"))
		wait(t, mb.Publish("t/x", 1, false, "fromB"))
		if m, err := subA.NextMsg(5 * time.Second); err != nil || string(m.Data) != "fromA" {
			t.Fatalf("NATS client of A: %v %v", m, err)
		}
		if m, err := subB.NextMsg(5 * time.Second); err != nil || string(m.Data) != "fromB" {
			t.Fatalf("NATS client of B got %v (%v), want B's own message", m, err)
		}
		expect(t, chA, "t/x", "fromA")
		expect(t, chB, "t/x", "fromB")

		// NATS -> MQTT: B's and $G's publishes never reach A's MQTT client.
		for _, nc := range []*nats.Conn{nb, ng} {
			if err := nc.Publish("t.y", []byte("intruder")); err != nil {
				t.Fatal(err)
			}
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		if err := na.Publish("t.y", []byte("natsA")); err != nil {
			t.Fatal(err)
		}
		expect(t, chA, "t/y", "natsA")
		expect(t, chB, "t/y", "intruder")
		expectNone(t, chB)
		if m, err := subG.NextMsg(5 * time.Second); err != nil || string(m.Data) != "intruder" {
			t.Fatalf("$G client got %v (%v), want only $G's own message", m, err)
		}
		if m, err := subG.NextMsg(100 * time.Millisecond); err == nil {
			t.Fatalf("$G client got another account's message %q", m.Data)
		}
	})
}

// TestMQTTAccountSessionsAndRetained: the same client id in A and B is two
// sessions (neither sees the other's subscriptions or takes it over), and
// a retained message in A is not sent to B's subscribers.
func TestMQTTAccountSessionsAndRetained(t *testing.T) {
	s := startMQTT(t, accountOpts())
	chA := make(chan paho.Message, 100)
	ma := connectMQTT(t, s, "same", as("a", false, chA))
	wait(t, ma.Subscribe("q/#", 1, nil))
	wait(t, ma.Publish("r/1", 1, true, "keptA"))
	ma.Disconnect(100)

	// B's client with the same id: no session present, no takeover of A's.
	chB := make(chan paho.Message, 100)
	mb := connectMQTT(t, s, "same", as("b", false, chB))
	if r := mb.OptionsReader(); r.ClientID() != "same" {
		t.Fatal("client id")
	}
	got := subscribe(t, mb, "r/#", 1)
	wait(t, mb.Publish("r/2", 1, true, "keptB"))
	expect(t, got, "r/2", "keptB") // its own, live: A's retained r/1 was not sent first
	expectNone(t, got)

	// A's offline session still queues A's QoS 1 messages, not B's.
	nb := natsAs(t, s, "b2")
	if err := nb.Publish("q.1", []byte("fromB")); err != nil {
		t.Fatal(err)
	}
	nb.Flush()
	na := natsAs(t, s, "a2")
	pub := func(subj, data string) {
		m := nats.NewMsg(subj)
		m.Header.Set("Nmqtt-Pub", "1")
		m.Data = []byte(data)
		if err := na.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	pub("q.1", "fromA")
	na.Flush()
	ma = connectMQTT(t, s, "same", as("a", false, chA))
	expect(t, chA, "q/1", "fromA")
	ra := subscribe(t, ma, "r/#", 0)
	expect(t, ra, "r/1", "keptA")
	expectNone(t, ra)
}

// TestMQTTAccountMaxConnections: MQTT connections count toward the
// account's max_connections alongside NATS ones; past it CONNACK says not
// authorized (3.1.1: 5; MQTT 5: 0x87), and a slot freed admits again.
func TestMQTTAccountMaxConnections(t *testing.T) {
	eachTransport(t, func(t *testing.T, o loop.Options) {
		ao := accountOpts()
		o.Users, o.Accounts = ao.Users, ao.Accounts
		lim := loop.NoAccountLimits
		lim.MaxConnections = 2
		o.Accounts[0].Limits = &lim
		s := startMQTT(t, o)
		first := connectMQTT(t, s, "one", as("a", true, nil))
		nc := natsAs(t, s, "a2") // the second of A's two
		err := tryConnect(t, s, "two", as("a", true, nil))
		if err == nil || err.Error() != packets.ErrorRefusedNotAuthorised.Error() {
			t.Fatalf("third connection of A over MQTT 3.1.1: %v, want not authorised", err)
		}
		conn, err := net.Dial("tcp", s.MQTTAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		c5 := paho5.NewClient(paho5.ClientConfig{Conn: conn})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ca, err := c5.Connect(ctx, &paho5.Connect{ClientID: "five", CleanStart: true, KeepAlive: 30,
			UsernameFlag: true, Username: "a", PasswordFlag: true, Password: []byte("pa")})
		if err == nil || ca == nil || ca.ReasonCode != 0x87 {
			t.Fatalf("third connection of A over MQTT 5: %+v (%v), want reason 0x87", ca, err)
		}
		// Another account is not affected; a slot freed admits again.
		connectMQTT(t, s, "b1", as("b", true, nil))
		connectMQTT(t, s, "b2", as("b", true, nil))
		connectMQTT(t, s, "b3", as("b", true, nil))
		nc.Close()
		first.Disconnect(0)
		deadline := time.Now().Add(5 * time.Second)
		for tryConnect(t, s, "again", as("a", true, nil)) != nil {
			if time.Now().After(deadline) {
				t.Fatal("a freed slot of A does not admit an MQTT client")
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// TestMQTTAccountRestart: with JetStream on, each account's sessions and
// retained messages survive a restart, still apart: $G's stay where they
// were (<store>/mqtt/sessions...), another account's go under
// <store>/mqtt/accounts/<name>/. After the restart A's offline session
// queues A's messages (not B's), and each account gets only its own
// retained message.
func TestMQTTAccountRestart(t *testing.T) {
	eachTransport(t, func(t *testing.T, o loop.Options) {
		ao := accountOpts()
		o.Users, o.Accounts = ao.Users, ao.Accounts
		o.JetStream, o.StoreDir = true, t.TempDir()
		s := startMQTT(t, o)
		for _, u := range []string{"a", "b", "g"} {
			c := connectMQTT(t, s, "dev", as(u, false, nil))
			subscribe(t, c, "q/#", 1)
			wait(t, c.Publish("r/x", 1, true, "kept-"+u))
			c.Disconnect(100)
		}
		s.Shutdown()
		for _, d := range []string{"mqtt/sessions", "mqtt/accounts/A/sessions", "mqtt/accounts/B/retained"} {
			if _, err := os.Stat(filepath.Join(o.StoreDir, d)); err != nil {
				t.Fatalf("store layout: %v", err)
			}
		}

		s = startMQTT(t, o)
		for _, u := range []string{"b2", "a2"} { // A's publish last: the signal for A
			nc := natsAs(t, s, u)
			m := nats.NewMsg("q.1")
			m.Header.Set("Nmqtt-Pub", "1")
			m.Data = []byte("from-" + u)
			if err := nc.PublishMsg(m); err != nil {
				t.Fatal(err)
			}
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		for _, u := range []string{"a", "b", "g"} {
			ch := make(chan paho.Message, 100)
			c := connectMQTT(t, s, "dev", as(u, false, ch))
			if !c.IsConnected() {
				t.Fatal("not connected")
			}
			switch u {
			case "a":
				expect(t, ch, "q/1", "from-a2")
			case "b":
				expect(t, ch, "q/1", "from-b2")
			}
			r := subscribe(t, c, "r/#", 0)
			expect(t, r, "r/x", "kept-"+u)
			expectNone(t, ch)
			expectNone(t, r)
		}
	})
}

// TestMQTTAccountHostileClientIDs: no client id lets a client of B reach
// a session of A, with or without a store: ids that look like paths or
// name A are B's own (new) sessions, and A's session keeps its queue; the
// store holds directories for the accounts only.
func TestMQTTAccountHostileClientIDs(t *testing.T) {
	o := accountOpts()
	o.JetStream, o.StoreDir = true, t.TempDir()
	s := startMQTT(t, o)
	chA := make(chan paho.Message, 10)
	a := connectMQTT(t, s, "dev", as("a", false, chA))
	subscribe(t, a, "q/#", 1)
	a.Disconnect(100)
	for _, id := range []string{"dev", "../dev", "../../mqtt/dev", "A/dev", "accounts/A/dev", "A", "..", "$G"} {
		opts := paho.NewClientOptions().AddBroker(mqttURL(s)).SetClientID(id).SetUsername("b").SetPassword("pb").
			SetCleanSession(false).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
		c := paho.NewClient(opts)
		ct := c.Connect()
		if !ct.WaitTimeout(5*time.Second) || ct.Error() != nil {
			t.Fatalf("id %q: %v", id, ct.Error())
		}
		if ct.(*paho.ConnectToken).SessionPresent() {
			t.Fatalf("B's client %q found a session present", id)
		}
		wait(t, c.Subscribe("q/#", 1, nil)) // B's own filter, in B's space
		c.Disconnect(0)
	}
	na := natsAs(t, s, "a2")
	m := nats.NewMsg("q.1")
	m.Header.Set("Nmqtt-Pub", "1")
	m.Data = []byte("for A")
	if err := na.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	na.Flush()
	connectMQTT(t, s, "dev", as("a", false, chA))
	expect(t, chA, "q/1", "for A")
	s.Shutdown()
	entries, err := os.ReadDir(filepath.Join(o.StoreDir, "mqtt", "accounts"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 2 || names[0] != "A" || names[1] != "B" {
		t.Fatalf("account directories %q, want A and B", names)
	}
}

// TestMQTTAccountMaxConnectionsReload: a reload lowering an account's
// max_connections closes its newest connections past it, MQTT ones too.
func TestMQTTAccountMaxConnectionsReload(t *testing.T) {
	o := accountOpts()
	lim := loop.NoAccountLimits
	lim.MaxConnections = 3
	o.Accounts[0].Limits = &lim
	s := startMQTT(t, o)
	lost := make(chan string, 2)
	onLost := func(id string) func(*paho.ClientOptions) {
		return func(po *paho.ClientOptions) {
			as("a", true, nil)(po)
			po.SetConnectionLostHandler(func(paho.Client, error) { lost <- id })
		}
	}
	connectMQTT(t, s, "older", onLost("older"))
	nc := natsAs(t, s, "a2")
	connectMQTT(t, s, "newest", onLost("newest"))
	o2 := accountOpts() // the same users and accounts, new structs (the server keeps the first)
	o2.MQTTPort, o2.Host, o2.Port, o2.StoreDir = -1, "127.0.0.1", -1, s.Options().StoreDir
	lim2 := loop.NoAccountLimits
	lim2.MaxConnections = 2
	o2.Accounts[0].Limits = &lim2
	if err := s.Reload(o2); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-lost:
		if id != "newest" {
			t.Fatalf("%s closed, want the newest", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no MQTT connection closed past the lowered max_connections")
	}
	if !nc.IsConnected() {
		t.Fatal("NATS client closed")
	}
}

// TestMQTTAccountNoAuthUser: an MQTT client without credentials is the
// no_auth_user, in that user's account, as with nats-server.
func TestMQTTAccountNoAuthUser(t *testing.T) {
	o := accountOpts()
	o.NoAuthUser = "b"
	s := startMQTT(t, o)
	m := connectMQTT(t, s, "anon")
	sb, sa := natsSub(t, natsAs(t, s, "b2"), "t.>"), natsSub(t, natsAs(t, s, "a2"), "t.>")
	wait(t, m.Publish("t/x", 1, false, "anon"))
	if msg, err := sb.NextMsg(5 * time.Second); err != nil || string(msg.Data) != "anon" {
		t.Fatalf("B: %v %v", msg, err)
	}
	if msg, err := sa.NextMsg(50 * time.Millisecond); err == nil {
		t.Fatalf("A got %q", msg.Data)
	}
}
