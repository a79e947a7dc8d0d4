package mqtt_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go"
)

// client5 is a paho.golang (MQTT 5) client and what it receives.
type client5 struct {
	*paho5.Client
	msgs    chan *paho5.Publish
	connack *paho5.Connack
}

func u32(v uint32) *uint32 { return &v }
func u16(v uint16) *uint16 { return &v }

// connect5 connects a paho.golang client over TCP; cp may set the CONNECT.
func connect5(t *testing.T, addr string, cp *paho5.Connect) *client5 {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return connect5Conn(t, conn, cp)
}

// connect5Conn is connect5 over a connection already made (TLS).
func connect5Conn(t *testing.T, conn net.Conn, cp *paho5.Connect) *client5 {
	t.Helper()
	c := &client5{msgs: make(chan *paho5.Publish, 1000)}
	c.Client = paho5.NewClient(paho5.ClientConfig{
		Conn: conn,
		OnPublishReceived: []func(paho5.PublishReceived) (bool, error){func(pr paho5.PublishReceived) (bool, error) {
			c.msgs <- pr.Packet
			return true, nil
		}},
	})
	if cp == nil {
		cp = &paho5.Connect{CleanStart: true}
	}
	if cp.KeepAlive == 0 {
		cp.KeepAlive = 30
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ca, err := c.Connect(ctx, cp)
	if err != nil {
		t.Fatalf("connect %q: %v (%+v)", cp.ClientID, err, ca)
	}
	c.connack = ca
	t.Cleanup(func() { _ = c.Disconnect(&paho5.Disconnect{}); conn.Close() })
	return c
}

func (c *client5) sub(t *testing.T, s *paho5.Subscribe) *paho5.Suback {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sa, err := c.Subscribe(ctx, s)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	return sa
}

func (c *client5) pub(t *testing.T, p *paho5.Publish) *paho5.PublishResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := c.Publish(ctx, p)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	return r
}

func (c *client5) next(t *testing.T) *paho5.Publish {
	t.Helper()
	select {
	case p := <-c.msgs:
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("no message")
		return nil
	}
}

func (c *client5) none(t *testing.T) {
	t.Helper()
	select {
	case p := <-c.msgs:
		t.Fatalf("unexpected message on %q: %q", p.Topic, p.Payload)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestMQTT5PropertiesAcrossProtocols: paho.golang over TCP on every
// transport: CONNACK assigns a client id and names the limits; user
// properties, content type, payload format, message expiry and
// subscription identifiers reach an MQTT 5 subscriber; they reach nats.go
// as headers, and a nats.go message's headers reach MQTT 5 as user
// properties; an MQTT 3.1.1 subscriber gets the same payload.
func TestMQTT5PropertiesAcrossProtocols(t *testing.T) {
	eachTransport(t, func(t *testing.T, o loop.Options) {
		s := startMQTT(t, o)
		addr := s.MQTTAddr().String()
		sub := connect5(t, addr, nil)
		if sub.connack.Properties == nil || sub.connack.Properties.AssignedClientID == "" {
			t.Fatalf("no assigned client id: %+v", sub.connack.Properties)
		}
		if p := sub.connack.Properties; p.TopicAliasMaximum == nil || *p.TopicAliasMaximum == 0 || p.MaximumPacketSize == nil {
			t.Fatalf("CONNACK limits: %+v", p)
		}
		sid := 7
		sub.sub(t, &paho5.Subscribe{Properties: &paho5.SubscribeProperties{SubscriptionIdentifier: &sid},
			Subscriptions: []paho5.SubscribeOptions{{Topic: "p5/#", QoS: 1}}})
		nc := connectNATS(t, s)
		ns, err := nc.SubscribeSync("p5.>")
		if err != nil {
			t.Fatal(err)
		}
		nc.Flush()
		old := connectMQTT(t, s, "v311")
		oldCh := subscribe(t, old, "p5/#", 1)

		pub := connect5(t, addr, nil)
		one := byte(1)
		pub.pub(t, &paho5.Publish{Topic: "p5/a", QoS: 1, Payload: []byte("héllo"), Properties: &paho5.PublishProperties{
			ContentType: "text/plain", PayloadFormat: &one, MessageExpiry: u32(60),
			User: paho5.UserProperties{{Key: "k1", Value: "v1"}, {Key: "k1", Value: "v2"}, {Key: "with space", Value: "dropped"}}}})
		m := sub.next(t)
		if m.Topic != "p5/a" || string(m.Payload) != "héllo" || m.QoS != 1 {
			t.Fatalf("got %+v", m)
		}
		p := m.Properties
		if p.ContentType != "text/plain" || p.PayloadFormat == nil || *p.PayloadFormat != 1 ||
			p.MessageExpiry == nil || *p.MessageExpiry == 0 || *p.MessageExpiry > 60 ||
			p.SubscriptionIdentifier == nil || *p.SubscriptionIdentifier != 7 {
			t.Fatalf("properties %+v", p)
		}
		if got := fmt.Sprint(p.User); got != "[{k1 v1} {k1 v2}]" {
			t.Fatalf("user properties %s", got)
		}
		nm, err := ns.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if nm.Subject != "p5.a" || nm.Header.Get("Content-Type") != "text/plain" || fmt.Sprint(nm.Header.Values("k1")) != "[v1 v2]" ||
			nm.Header.Get("Nmqtt-Pub") != "1" || nm.Header.Get("Nmqtt-Expiry") != "60" || nm.Header.Get("Nmqtt-Format") != "1" {
			t.Fatalf("NATS got %s %q", nm.Subject, nm.Header)
		}
		expect(t, oldCh, "p5/a", "héllo")

		// nats.go -> MQTT 5: headers become user properties.
		hm := nats.NewMsg("p5.b")
		hm.Header.Set("Trace-Id", "abc")
		hm.Header.Set("Content-Type", "application/json")
		hm.Data = []byte("{}")
		if err := nc.PublishMsg(hm); err != nil {
			t.Fatal(err)
		}
		m = sub.next(t)
		if m.Topic != "p5/b" || m.QoS != 0 || m.Properties.ContentType != "application/json" ||
			fmt.Sprint(m.Properties.User) != "[{Trace-Id abc}]" {
			t.Fatalf("from NATS: %+v %+v", m, m.Properties)
		}
		expect(t, oldCh, "p5/b", "{}")
	})
}

// TestMQTT5RequestReply: an MQTT 5 request (response topic and correlation
// data) reaches a nats.go service, whose msg.Respond comes back to the
// response topic with the correlation data; a nats.go request reaches an
// MQTT 5 responder, whose publish to the response topic answers it.
func TestMQTT5RequestReply(t *testing.T) {
	eachTransport(t, func(t *testing.T, o loop.Options) {
		s := startMQTT(t, o)
		addr := s.MQTTAddr().String()
		nc := connectNATS(t, s)
		if _, err := nc.Subscribe("svc.echo", func(m *nats.Msg) {
			_ = m.Respond(append([]byte("echo: "), m.Data...))
		}); err != nil {
			t.Fatal(err)
		}
		nc.Flush()
		req := connect5(t, addr, nil)
		req.sub(t, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "resp/me", QoS: 1}}})
		for i := range 3 {
			corr := fmt.Sprintf("corr-%d", i)
			req.pub(t, &paho5.Publish{Topic: "svc/echo", QoS: 1, Payload: []byte(corr),
				Properties: &paho5.PublishProperties{ResponseTopic: "resp/me", CorrelationData: []byte(corr)}})
			m := req.next(t)
			if m.Topic != "resp/me" || string(m.Payload) != "echo: "+corr || string(m.Properties.CorrelationData) != corr {
				t.Fatalf("reply %q %q corr %q", m.Topic, m.Payload, m.Properties.CorrelationData)
			}
		}

		// nats.go requester, MQTT 5 responder.
		rsp := connect5(t, addr, nil)
		rsp.sub(t, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "svc/mqtt", QoS: 0}}})
		done := make(chan struct{})
		go func() {
			defer close(done)
			select {
			case m := <-rsp.msgs:
				if m.Properties == nil || m.Properties.ResponseTopic == "" {
					t.Errorf("request without response topic: %+v", m.Properties)
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_, _ = rsp.Publish(ctx, &paho5.Publish{Topic: m.Properties.ResponseTopic, Payload: append([]byte("re: "), m.Payload...)})
			case <-time.After(5 * time.Second):
				t.Error("responder got no request")
			}
		}()
		reply, err := nc.Request("svc.mqtt", []byte("ping"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if string(reply.Data) != "re: ping" {
			t.Fatalf("reply %q", reply.Data)
		}
		<-done
	})
}

// TestMQTTSharedSubscriptions: "$share/<group>/<filter>" members, MQTT 5
// and 3.1.1, share a NATS queue group with a nats.go queue subscriber:
// each message reaches exactly one member, and every member gets some.
func TestMQTTSharedSubscriptions(t *testing.T) {
	eachTransport(t, func(t *testing.T, o loop.Options) {
		s := startMQTT(t, o)
		addr := s.MQTTAddr().String()
		a := connect5(t, addr, nil)
		b := connect5(t, addr, nil)
		for _, c := range []*client5{a, b} {
			sa := c.sub(t, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "$share/workers/jobs/+", QoS: 1}}})
			if sa.Reasons[0] != 1 {
				t.Fatalf("SUBACK %v", sa.Reasons)
			}
		}
		old := connectMQTT(t, s, "old-worker")
		oldCh := subscribe(t, old, "$share/workers/jobs/+", 1)
		nc := connectNATS(t, s)
		var mu sync.Mutex
		seen := map[string]string{}
		natsGot := 0
		record := func(who, payload string) {
			mu.Lock()
			defer mu.Unlock()
			if prev, dup := seen[payload]; dup {
				t.Errorf("%s delivered to %s and %s", payload, prev, who)
			}
			seen[payload] = who
		}
		if _, err := nc.QueueSubscribe("jobs.*", "workers", func(m *nats.Msg) {
			record("nats", string(m.Data))
			mu.Lock()
			natsGot++
			mu.Unlock()
		}); err != nil {
			t.Fatal(err)
		}
		// A plain subscriber still gets everything.
		all := connect5(t, addr, nil)
		all.sub(t, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "jobs/#", QoS: 0}}})
		nc.Flush()
		pub := connect5(t, addr, nil)
		const n = 120
		for i := range n {
			pub.pub(t, &paho5.Publish{Topic: "jobs/x", QoS: 1, Payload: []byte(fmt.Sprint(i))})
		}
		counts := map[string]int{}
		deadline := time.After(10 * time.Second)
		for got := 0; got < n; {
			mu.Lock()
			got = len(seen)
			mu.Unlock()
			select {
			case m := <-a.msgs:
				record("a", string(m.Payload))
				counts["a"]++
			case m := <-b.msgs:
				record("b", string(m.Payload))
				counts["b"]++
			case m := <-oldCh:
				record("old", string(m.Payload()))
				counts["old"]++
			case <-time.After(10 * time.Millisecond):
			case <-deadline:
				t.Fatalf("%d of %d delivered: %v nats %d", got, n, counts, natsGot)
			}
		}
		mu.Lock()
		counts["nats"] = natsGot
		mu.Unlock()
		for _, who := range []string{"a", "b", "old", "nats"} {
			if counts[who] == 0 {
				t.Errorf("member %s got nothing: %v", who, counts)
			}
		}
		for range n {
			all.next(t)
		}
	})
}

// TestMQTT5SubscriptionOptions: no local, retain as published, retain
// handling 0/1/2.
func TestMQTT5SubscriptionOptions(t *testing.T) {
	s := startMQTT(t, loop.Options{})
	addr := s.MQTTAddr().String()
	c := connect5(t, addr, nil)
	c.sub(t, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "nl/#", QoS: 1, NoLocal: true}}})
	other := connect5(t, addr, nil)
	other.sub(t, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "nl/#", QoS: 1}}})
	c.pub(t, &paho5.Publish{Topic: "nl/x", QoS: 1, Payload: []byte("mine")})
	if m := other.next(t); string(m.Payload) != "mine" {
		t.Fatalf("other got %q", m.Payload)
	}
	other.pub(t, &paho5.Publish{Topic: "nl/y", QoS: 1, Payload: []byte("theirs")})
	if m := c.next(t); string(m.Payload) != "theirs" {
		t.Fatalf("no-local subscriber got %q, want only the other's message", m.Payload)
	}
	other.next(t) // its own, without no local

	// Retain as published: the live message keeps RETAIN for one
	// subscriber and not for the other.
	rap := connect5(t, addr, nil)
	rap.sub(t, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "ret/+", QoS: 0, RetainAsPublished: true, RetainHandling: 2}}})
	plain := connect5(t, addr, nil)
	plain.sub(t, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "ret/+", QoS: 0, RetainHandling: 2}}})
	c.pub(t, &paho5.Publish{Topic: "ret/a", QoS: 1, Retain: true, Payload: []byte("kept")})
	if m := rap.next(t); !m.Retain {
		t.Fatal("retain as published: RETAIN not kept")
	}
	if m := plain.next(t); m.Retain {
		t.Fatal("RETAIN set on a live message without retain as published")
	}

	// Retain handling: 0 always sends the retained message, 1 only for a
	// new subscription, 2 never.
	for _, tc := range []struct {
		rh         byte
		first, aga bool
	}{{0, true, true}, {1, true, false}, {2, false, false}} {
		r := connect5(t, addr, nil)
		for i, want := range []bool{tc.first, tc.aga} {
			r.sub(t, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "ret/a", QoS: 0, RetainHandling: tc.rh}}})
			if want {
				if m := r.next(t); string(m.Payload) != "kept" || !m.Retain {
					t.Fatalf("rh %d subscribe %d: %+v", tc.rh, i, m)
				}
			} else {
				r.none(t)
			}
		}
	}
}

// TestMQTT5SessionExpiry: a session with an expiry interval outlives its
// connection (QoS 1 messages queued, with their properties) until the
// interval passes; one with interval 0 ends with the connection; a
// persisted session keeps its interval and subscription identifiers
// across a restart.
func TestMQTT5SessionExpiry(t *testing.T) {
	dir := t.TempDir()
	o := loop.Options{JetStream: true, StoreDir: dir}
	s := startMQTT(t, o)
	addr := s.MQTTAddr().String()
	sid := 42
	c := connect5(t, addr, &paho5.Connect{ClientID: "exp", CleanStart: true,
		Properties: &paho5.ConnectProperties{SessionExpiryInterval: u32(1)}})
	c.sub(t, &paho5.Subscribe{Properties: &paho5.SubscribeProperties{SubscriptionIdentifier: &sid},
		Subscriptions: []paho5.SubscribeOptions{{Topic: "exp/#", QoS: 1}}})
	c.Disconnect(&paho5.Disconnect{})
	pub := connect5(t, addr, nil)
	pub.pub(t, &paho5.Publish{Topic: "exp/q", QoS: 1, Payload: []byte("queued"),
		Properties: &paho5.PublishProperties{User: paho5.UserProperties{{Key: "u", Value: "1"}}, ResponseTopic: "r/t"}})
	c = connect5(t, addr, &paho5.Connect{ClientID: "exp", Properties: &paho5.ConnectProperties{SessionExpiryInterval: u32(1)}})
	if !c.connack.SessionPresent {
		t.Fatal("session gone within its expiry interval")
	}
	m := c.next(t)
	if string(m.Payload) != "queued" || fmt.Sprint(m.Properties.User) != "[{u 1}]" || m.Properties.ResponseTopic != "r/t" ||
		m.Properties.SubscriptionIdentifier == nil || *m.Properties.SubscriptionIdentifier != 42 {
		t.Fatalf("queued message %q %+v", m.Payload, m.Properties)
	}
	c.Disconnect(&paho5.Disconnect{})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c = connect5(t, addr, &paho5.Connect{ClientID: "exp"})
		if !c.connack.SessionPresent {
			break // expired
		}
		if time.Now().After(deadline) {
			t.Fatal("session did not expire")
		}
		c.Disconnect(&paho5.Disconnect{})
		time.Sleep(200 * time.Millisecond) // housekeeping expires sessions once a second
	}
	c.Disconnect(&paho5.Disconnect{})
	// The last CONNECT had no expiry interval: its session ended with it.
	c = connect5(t, addr, &paho5.Connect{ClientID: "exp"})
	if c.connack.SessionPresent {
		t.Fatal("session with expiry interval 0 outlived its connection")
	}
	c.Disconnect(&paho5.Disconnect{})

	// Across a restart: a long interval keeps the session.
	c = connect5(t, addr, &paho5.Connect{ClientID: "long", CleanStart: true,
		Properties: &paho5.ConnectProperties{SessionExpiryInterval: u32(3600)}})
	c.sub(t, &paho5.Subscribe{Properties: &paho5.SubscribeProperties{SubscriptionIdentifier: &sid},
		Subscriptions: []paho5.SubscribeOptions{{Topic: "long/#", QoS: 1}}})
	c.Disconnect(&paho5.Disconnect{})
	pub.pub(t, &paho5.Publish{Topic: "long/q", QoS: 1, Payload: []byte("kept")})
	s.Shutdown()
	o.MQTTPort = s.MQTTAddr().(*net.TCPAddr).Port
	s = startMQTT(t, o)
	c = connect5(t, s.MQTTAddr().String(), &paho5.Connect{ClientID: "long", Properties: &paho5.ConnectProperties{SessionExpiryInterval: u32(3600)}})
	if !c.connack.SessionPresent {
		t.Fatal("session lost across restart")
	}
	if m := c.next(t); string(m.Payload) != "kept" {
		t.Fatalf("after restart %q", m.Payload)
	}
	pub = connect5(t, s.MQTTAddr().String(), nil)
	pub.pub(t, &paho5.Publish{Topic: "long/r", QoS: 1, Payload: []byte("live")})
	if m := c.next(t); string(m.Payload) != "live" || m.Properties.SubscriptionIdentifier == nil || *m.Properties.SubscriptionIdentifier != 42 {
		t.Fatalf("after restart live %q %+v", m.Payload, m.Properties)
	}
}

// TestMQTT5WillDelay: a will waits out its delay and is cancelled by the
// client coming back in time; DISCONNECT with reason 0x04 sends it.
func TestMQTT5WillDelay(t *testing.T) {
	s := startMQTT(t, loop.Options{})
	addr := s.MQTTAddr().String()
	w := connect5(t, addr, nil)
	w.sub(t, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "will/#", QoS: 0}}})

	dial := func(id string, delay uint32) (*client5, net.Conn) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c := &client5{msgs: make(chan *paho5.Publish, 10)}
		c.Client = paho5.NewClient(paho5.ClientConfig{Conn: conn})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := c.Connect(ctx, &paho5.Connect{ClientID: id, KeepAlive: 30, CleanStart: true,
			Properties:     &paho5.ConnectProperties{SessionExpiryInterval: u32(60)},
			WillMessage:    &paho5.WillMessage{Topic: "will/" + id, Payload: []byte("gone")},
			WillProperties: &paho5.WillProperties{WillDelayInterval: u32(delay)}}); err != nil {
			t.Fatal(err)
		}
		return c, conn
	}
	// Dropped, back within the delay: no will.
	_, conn := dial("back", 3)
	conn.Close()
	time.Sleep(300 * time.Millisecond)
	c, conn2 := dial("back", 3)
	_ = c
	defer conn2.Close()
	// Dropped for good: the will comes after its delay.
	_, conn3 := dial("late", 1)
	start := time.Now()
	conn3.Close()
	m := w.next(t)
	if m.Topic != "will/late" || time.Since(start) < 900*time.Millisecond {
		t.Fatalf("will %q after %v", m.Topic, time.Since(start))
	}
	w.none(t)
	// DISCONNECT 0x04: disconnect with will message.
	c4, _ := dial("asked", 0)
	c4.Disconnect(&paho5.Disconnect{ReasonCode: 0x04})
	if m := w.next(t); m.Topic != "will/asked" {
		t.Fatalf("will %q", m.Topic)
	}
}

// TestMQTTSharedRedelivery: QoS 1 messages a shared subscription member
// (MQTT 3.1.1, clean session) received and never acknowledged go to
// another member of the group when it disconnects.
func TestMQTTSharedRedelivery(t *testing.T) {
	eachTransport(t, func(t *testing.T, o loop.Options) {
		s := startMQTT(t, o)
		addr := s.MQTTAddr().String()
		lazy := dialRaw(t, s)
		lazy.connect("lazy", true, 0)
		lazy.subscribe(1, "$share/g/red/+", 1)
		b := connect5(t, addr, nil)
		b.sub(t, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "$share/g/red/+", QoS: 1}}})
		pub := connect5(t, addr, nil)
		const n = 20
		for i := range n {
			pub.pub(t, &paho5.Publish{Topic: "red/x", QoS: 1, Payload: []byte(fmt.Sprint(i))})
		}
		got := map[string]bool{}
		for len(got) < n {
			select {
			case m := <-b.msgs:
				got[string(m.Payload)] = true
			case <-time.After(300 * time.Millisecond):
				if lazy != nil {
					lazy.conn.Close() // gone with its messages unacknowledged
					lazy = nil
					continue
				}
				t.Fatalf("%d of %d reached the remaining member", len(got), n)
			}
		}
	})
}

// TestMQTT5OfflineSessionExpires: a session whose client left with an
// expiry interval of 1 s ends by itself once it has passed (housekeeping,
// once a second; nothing reconnects to look), the second time too (it
// is watched again after its client came back and left); a 3.1.1
// persistent session next to it stays.
func TestMQTT5OfflineSessionExpires(t *testing.T) {
	s := startMQTT(t, loop.Options{})
	addr := s.MQTTAddr().String()
	keep := dialRaw(t, s)
	keep.connect("kept311", false, 0)
	keep.subscribe(1, "k/#", 1)
	keep.send([]byte{0xe0, 0}) // DISCONNECT
	keep.expectClosed()
	for range 2 {
		c := connect5(t, addr, &paho5.Connect{ClientID: "exp1", Properties: &paho5.ConnectProperties{SessionExpiryInterval: u32(1)}})
		c.sub(t, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "e/#", QoS: 1}}})
		c.Disconnect(&paho5.Disconnect{})
		waitMQTT(t, s, func(st mqttStat) bool { return st.Connected == 0 && st.Sessions == 2 })
		waitMQTT(t, s, func(st mqttStat) bool { return st.Sessions == 1 }) // within 10 s
	}
}
