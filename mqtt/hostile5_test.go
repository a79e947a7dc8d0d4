package mqtt_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	"github.com/evnats/evnats/loop"
	mcodec "github.com/evnats/evnats/mqtt/codec"
	"github.com/nats-io/nats.go"
)

// TestMQTT5ResponseTopicNeedsPublishPermission: a response topic is where
// the server publishes the replies to a request (with the requester's
// correlation data), so it is checked like a publish of the requester: a
// client that may subscribe to "cmd/x" but not publish there cannot make a
// service's reply land on it. A response topic it may publish to works.
func TestMQTT5ResponseTopicNeedsPublishPermission(t *testing.T) {
	s := startMQTT(t, loop.Options{Users: []*loop.User{
		{Username: "dev", Password: "pw", Permissions: &loop.Permissions{
			Publish: &loop.SubjectPermission{Allow: []string{"svc.>"}},
		}},
		{Username: "admin", Password: "pw"},
	}})
	nc, err := nats.Connect(s.ClientURL(), nats.UserInfo("admin", "pw"), nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Subscribe("svc.echo", func(m *nats.Msg) { _ = m.Respond(append([]byte("echo: "), m.Data...)) }); err != nil {
		t.Fatal(err)
	}
	victim, err := nc.SubscribeSync("cmd.x")
	if err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	dev := connect5(t, s.MQTTAddr().String(), &paho5.Connect{CleanStart: true, ClientID: "dev",
		Username: "dev", UsernameFlag: true, Password: []byte("pw"), PasswordFlag: true})
	dev.sub(t, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "svc/r", QoS: 1}}})
	dev.pub(t, &paho5.Publish{Topic: "svc/echo", QoS: 1, Payload: []byte("reboot"),
		Properties: &paho5.PublishProperties{ResponseTopic: "cmd/x", CorrelationData: []byte("c1")}})
	dev.pub(t, &paho5.Publish{Topic: "svc/echo", QoS: 1, Payload: []byte("ok"),
		Properties: &paho5.PublishProperties{ResponseTopic: "svc/r", CorrelationData: []byte("c2")}})
	if m := dev.next(t); m.Topic != "svc/r" || string(m.Payload) != "echo: ok" || string(m.Properties.CorrelationData) != "c2" {
		t.Fatalf("reply %q %q", m.Topic, m.Payload)
	}
	// The service answered in order: any reply to the first request is
	// on cmd.x before this marker.
	if err := nc.Publish("cmd.x", []byte("marker")); err != nil {
		t.Fatal(err)
	}
	m, err := victim.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != "marker" {
		t.Fatalf("cmd.x got %q (header %v) from a request whose requester may not publish there", m.Data, m.Header)
	}
}

// TestMQTT5AliasOutBounded: the topic aliases the server gives the topics
// it sends stand for at most 64 KiB of topics on one connection, as the
// client's do: a subscriber that allows 1024 aliases cannot make the
// server keep 1024 topics of 64 KiB (64 MiB) for it. Topics past the bound
// are sent in full.
func TestMQTT5AliasOutBounded(t *testing.T) {
	s := startMQTT(t, loop.Options{})
	sub := dialRaw(t, s)
	sub.connect5("sub", props5(mcodec.PropTopicAliasMaximum, 0x04, 0x00))
	sub.send(packet(mcodec.SUBSCRIBE<<4|2, append(append([]byte{0, 1}, props5()...), append(str(nil, "#"), 0)...)))
	if typ, _, _ := sub.read(); typ != mcodec.SUBACK {
		t.Fatalf("SUBACK type %d", typ)
	}
	pub := dialRaw(t, s)
	pub.connect5("pub", props5())
	const n, size = 24, 4000
	for i := range n {
		pub.send(packet(mcodec.PUBLISH<<4, append(str(nil, fmt.Sprintf("%0*d", size, i)), props5()...)))
	}
	aliased := 0
	for i := range n {
		typ, _, b := sub.read()
		if typ != mcodec.PUBLISH {
			t.Fatalf("type %d", typ)
		}
		tl := int(b[0])<<8 | int(b[1])
		b = b[2+tl:]
		props := b[1 : 1+int(b[0])] // short property lists only
		if tl != size {
			t.Fatalf("message %d: topic of %d bytes", i, tl)
		}
		if len(props) >= 3 && props[0] == mcodec.PropTopicAlias {
			aliased += tl
		}
	}
	if aliased == 0 || aliased > 64<<10 {
		t.Fatalf("aliases stand for %d bytes of topics", aliased)
	}
}

// TestMQTTSharedSubscriptionDenyFilters: a shared subscription "$share/g/#"
// wider than a subscribe deny entry is granted, as a plain "#" is, but
// never delivers a denied topic: the queue group member filters at
// delivery like any subscription.
func TestMQTTSharedSubscriptionDenyFilters(t *testing.T) {
	s := startMQTT(t, loop.Options{Users: []*loop.User{
		{Username: "dev", Password: "pw", Permissions: &loop.Permissions{
			Subscribe: &loop.SubjectPermission{Deny: []string{"secret.>"}},
		}},
		{Username: "admin", Password: "pw"},
	}})
	addr := s.MQTTAddr().String()
	login := func(id string) *paho5.Connect {
		return &paho5.Connect{CleanStart: true, ClientID: id, Username: "dev", UsernameFlag: true, Password: []byte("pw"), PasswordFlag: true}
	}
	dev := connect5(t, addr, login("dev"))
	if sa := dev.sub(t, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "$share/g/#", QoS: 1}}}); sa.Reasons[0] != 1 {
		t.Fatalf("SUBACK %v", sa.Reasons)
	}
	nc, err := nats.Connect(s.ClientURL(), nats.UserInfo("admin", "pw"), nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for _, subj := range []string{"secret.x", "public.x", "done.x"} {
		if err := nc.Publish(subj, []byte(subj)); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"public/x", "done/x"} {
		if m := dev.next(t); m.Topic != want {
			t.Fatalf("got %q, want %q", m.Topic, want)
		}
	}
}

// TestMQTT5OversizedHeaderProperties: a NATS message whose Nmqtt-Corr
// header decodes to more than 65,535 bytes, or whose Nmqtt-Reply is
// longer than a topic may be, cannot become an MQTT 5 property (a 2-byte
// length): written anyway, its length wrapped and the rest of its bytes
// were read as properties the NATS publisher chose, or the packet was
// malformed and the subscriber dropped the connection. The message
// arrives without them.
func TestMQTT5OversizedHeaderProperties(t *testing.T) {
	s := startMQTT(t, loop.Options{MaxPayload: 1 << 20})
	sub := connect5(t, s.MQTTAddr().String(), nil)
	sub.sub(t, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "h/#", QoS: 0}}})
	nc := connectNATS(t, s)
	big := make([]byte, 70_000)
	for i := range big {
		big[i] = mcodec.PropUserProperty // read as properties once the length wraps
	}
	for _, h := range []struct{ k, v string }{
		{"Nmqtt-Corr", base64.StdEncoding.EncodeToString(big)},
		{"Nmqtt-Reply", strings.Repeat("r", 70_000)},
		{"Nmqtt-Corr", base64.StdEncoding.EncodeToString([]byte("ok"))},
	} {
		m := nats.NewMsg("h.x")
		m.Header.Set(h.k, h.v)
		m.Data = []byte(h.k)
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
		got := sub.next(t)
		if string(got.Payload) != h.k || got.Properties == nil {
			t.Fatalf("got %q %+v", got.Payload, got.Properties)
		}
		if len(got.Properties.CorrelationData) > 65535 || len(got.Properties.ResponseTopic) > 65535 || len(got.Properties.User) != 0 {
			t.Fatalf("properties: corr %d bytes, response topic %d bytes, %d user properties",
				len(got.Properties.CorrelationData), len(got.Properties.ResponseTopic), len(got.Properties.User))
		}
	}
}

// TestMQTT5ForgedSessionHeaders: Nmqtt-Sub and Nmqtt-Reply are the headers
// an MQTT 5 session keeps with a queued message (its subscription
// identifier and response topic); a NATS publisher that sets them must not
// choose a subscriber's subscription identifier (4294967295 does not even
// fit the 4-byte variable integer: the client dropped the connection) or
// response topic, on a live delivery or a queued one.
func TestMQTT5ForgedSessionHeaders(t *testing.T) {
	s := startMQTT(t, loop.Options{})
	addr := s.MQTTAddr().String()
	live := connect5(t, addr, nil)
	live.sub(t, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "h/#", QoS: 1}}})
	cp := &paho5.Connect{ClientID: "away", CleanStart: true, Properties: &paho5.ConnectProperties{SessionExpiryInterval: u32(60)}}
	away := connect5(t, addr, cp)
	away.sub(t, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "h/#", QoS: 1}, {Topic: "zz", QoS: 0}}})
	n := s.NumSubscriptions() // "zz", QoS 0, is routed only while the client is online
	_ = away.Disconnect(&paho5.Disconnect{})
	for deadline := time.Now().Add(5 * time.Second); s.NumSubscriptions() != n-1; {
		if time.Now().After(deadline) {
			t.Fatal("session still online")
		}
		time.Sleep(5 * time.Millisecond) // the server notices the close on its own loop
	}
	nc := connectNATS(t, s)
	for _, v := range []string{"4294967295", "7"} {
		m := nats.NewMsg("h.x")
		m.Header.Set("Nmqtt-Pub", "1")
		m.Header.Set("Nmqtt-Sub", v)
		m.Header.Set("nmqtt-reply", "evil.topic")
		m.Data = []byte(v)
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	nc.Flush()
	check := func(c *client5, who string) {
		t.Helper()
		for _, v := range []string{"4294967295", "7"} {
			got := c.next(t)
			if string(got.Payload) != v || got.Properties == nil {
				t.Fatalf("%s: got %q %+v", who, got.Payload, got.Properties)
			}
			if got.Properties.SubscriptionIdentifier != nil || got.Properties.ResponseTopic != "" {
				t.Fatalf("%s: subscription identifier %v, response topic %q from the publisher's headers",
					who, *got.Properties.SubscriptionIdentifier, got.Properties.ResponseTopic)
			}
		}
	}
	check(live, "live")
	cp.CleanStart = false
	check(connect5(t, addr, cp), "queued")
}

// TestMQTT5MaxPacketSizeCountsAlias: a PUBLISH that fits the client's
// maximum packet size without a topic alias must not be sent with one
// that takes it 3 bytes over (the client then has to disconnect).
func TestMQTT5MaxPacketSizeCountsAlias(t *testing.T) {
	s := startMQTT(t, loop.Options{})
	const max = 18 // a QoS 0 PUBLISH of "f/t" with 10 payload bytes, no properties
	sub := dialRaw(t, s)
	sub.connect5("small", props5(mcodec.PropMaximumPacketSize, 0, 0, 0, max, mcodec.PropTopicAliasMaximum, 0, 4))
	sub.send(packet(mcodec.SUBSCRIBE<<4|2, append(append([]byte{0, 1}, props5()...), append(str(nil, "f/#"), 0)...)))
	if typ, _, _ := sub.read(); typ != mcodec.SUBACK {
		t.Fatalf("SUBACK type %d", typ)
	}
	pub := dialRaw(t, s)
	pub.connect5("pub", props5())
	for _, p := range []string{"0123456789", "x"} {
		pub.send(packet(mcodec.PUBLISH<<4, append(append(str(nil, "f/t"), props5()...), p...)))
	}
	typ, _, b := sub.read()
	if size := 2 + len(b); typ != mcodec.PUBLISH || size > max {
		t.Fatalf("type %d: a packet of %d bytes, above the client's maximum %d", typ, size, max)
	}
}

// TestMQTT5RequestBytesCountTopics: the 16 MiB the waiting requests may
// hold counts their response topics (up to 64 KiB each), not only their
// correlation data: 100,000 requests with 64 KiB topics and 1 byte of
// correlation data would hold 6.4 GB for two minutes. Past the bound a
// request gets its response topic's subject as reply subject, or, when a
// client holds more entries than it, one made by forgetting that client's
// oldest: replying to every request that got an entry finds at most
// 16 MiB of them still held.
func TestMQTT5RequestBytesCountTopics(t *testing.T) {
	s := startMQTT(t, loop.Options{})
	nc := connectNATS(t, s)
	reqs, err := nc.SubscribeSync("svc.x")
	if err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	topic := "r/" + strings.Repeat("t", 64000)
	replies := connect5(t, s.MQTTAddr().String(), nil)
	replies.sub(t, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "r/#", QoS: 0}}})
	// 19.2 MB of response topics from 20 clients, each within its own
	// share (1 MiB, TestMQTT5RequestTableShare).
	const clients, each = 20, 15
	const n = clients * each
	for k := range clients {
		c := connect5(t, s.MQTTAddr().String(), nil)
		for i := range each {
			c.pub(t, &paho5.Publish{Topic: "svc/x", QoS: 1, Payload: []byte(fmt.Sprint(k*each + i)),
				Properties: &paho5.PublishProperties{ResponseTopic: topic, CorrelationData: []byte("c")}})
		}
	}
	inbox := 0
	for range n {
		m, err := reqs.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(m.Reply, "$MQTT.rr.") {
			inbox++
			if err := nc.Publish(m.Reply, []byte("re")); err != nil {
				t.Fatal(err)
			}
		}
	}
	nc.Flush()
	held := 0
	for done := false; !done; {
		select {
		case m := <-replies.msgs:
			if m.Properties == nil || string(m.Properties.CorrelationData) != "c" {
				t.Fatalf("reply without its correlation data: %+v", m.Properties)
			}
			held++
		case <-time.After(500 * time.Millisecond):
			done = true
		}
	}
	if held == 0 || held*len(topic) > 16<<20 {
		t.Fatalf("%d of %d requests with an entry still held, %d bytes of response topics", held, inbox, held*len(topic))
	}
}

// TestMQTTSharedFilterPrunedByQueuePerms: a resumed session's filters are
// checked against the user's permissions again, a shared one as the queue
// subscription it is: with "jobs.> workers" (that queue group only) the
// session's "$share/workers/jobs/+" survives the reconnect; checked as a
// plain subscription it was dropped, and a deny naming a group let that
// group's shared filter through.
func TestMQTTSharedFilterPrunedByQueuePerms(t *testing.T) {
	s := startMQTT(t, loop.Options{Users: []*loop.User{{Username: "w", Password: "pw", Permissions: &loop.Permissions{
		Subscribe: &loop.SubjectPermission{Allow: []string{"jobs.> workers"}},
	}}, {Username: "admin", Password: "pw"}}})
	addr := s.MQTTAddr().String()
	cp := &paho5.Connect{ClientID: "worker", CleanStart: true, Username: "w", UsernameFlag: true, Password: []byte("pw"), PasswordFlag: true,
		Properties: &paho5.ConnectProperties{SessionExpiryInterval: u32(60)}}
	c := connect5(t, addr, cp)
	if sa := c.sub(t, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "$share/workers/jobs/+", QoS: 1}}}); sa.Reasons[0] != 1 {
		t.Fatalf("SUBACK %v", sa.Reasons)
	}
	_ = c.Disconnect(&paho5.Disconnect{})
	cp.CleanStart = false
	c = connect5(t, addr, cp)
	if !c.connack.SessionPresent {
		t.Fatal("no session present")
	}
	nc, err := nats.Connect(s.ClientURL(), nats.UserInfo("admin", "pw"), nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.Publish("jobs.1", []byte("job")); err != nil {
		t.Fatal(err)
	}
	if m := c.next(t); m.Topic != "jobs/1" {
		t.Fatalf("got %q", m.Topic)
	}
}

// TestMQTT5NoLocalNotForgeable: no local is decided by the server from
// who published, never from a header: a NATS client that puts
// "Nmqtt-Src: <id>" on its messages (whatever the id, the MQTT
// subscriber's connection id among them) cannot make a no-local MQTT 5
// subscriber drop them, and the header does not reach it as a user
// property. The subscriber's own publishes are still left out, at QoS 0
// and 1, on both transports.
func TestMQTT5NoLocalNotForgeable(t *testing.T) {
	eachTransport(t, func(t *testing.T, o loop.Options) {
		s := startMQTT(t, o)
		c := connect5(t, s.MQTTAddr().String(), nil)
		c.sub(t, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "nlf/#", QoS: 1, NoLocal: true}}})
		c.pub(t, &paho5.Publish{Topic: "nlf/own", QoS: 0, Payload: []byte("own0")})
		c.pub(t, &paho5.Publish{Topic: "nlf/own", QoS: 1, Payload: []byte("own1")})
		nc, err := nats.Connect(s.ClientURL(), nats.NoReconnect())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		const ids = 64 // connection ids are small and sequential: the subscriber's is among them
		for id := 0; id <= ids; id++ {
			m := nats.NewMsg("nlf.forged")
			m.Header.Set("Nmqtt-Src", fmt.Sprint(id))
			m.Data = []byte(fmt.Sprint(id))
			if err := nc.PublishMsg(m); err != nil {
				t.Fatal(err)
			}
		}
		for id := 0; id <= ids; id++ {
			m := c.next(t)
			if m.Topic != "nlf/forged" || string(m.Payload) != fmt.Sprint(id) {
				t.Fatalf("message %d: %q %q (own publishes must be left out, forged ones kept)", id, m.Topic, m.Payload)
			}
			if m.Properties != nil {
				for _, u := range m.Properties.User {
					if strings.EqualFold(u.Key, "Nmqtt-Src") {
						t.Fatalf("Nmqtt-Src reached the subscriber as a user property")
					}
				}
			}
		}
		c.none(t)
	})
}

// TestMQTT5RequestTableShare: the table of MQTT 5 requests waiting for
// replies (response topic and correlation data, kept two minutes) is
// shared by every client, so one client id may hold at most 10,000 of its
// entries (and 1 MiB): a client that sends 100,001 requests nobody answers
// gets PUBACK 0x97 (Quota exceeded) for those past its share, and another
// client's request still gets its reply with its correlation data.
func TestMQTT5RequestTableShare(t *testing.T) {
	s := startEchoService(t)
	addr := s.MQTTAddr().String()
	hog := connect5(t, addr, &paho5.Connect{ClientID: "hog", CleanStart: true})
	props := &paho5.PublishProperties{ResponseTopic: "hog/r", CorrelationData: []byte("h")}
	for range 100_001 {
		if _, err := hog.Client.Publish(context.Background(), &paho5.Publish{Topic: "void/x", Properties: props}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := hog.Client.Publish(ctx, &paho5.Publish{Topic: "void/x", QoS: 1, Properties: props})
	if r == nil || r.ReasonCode != mcodec.ReasonQuotaExceeded {
		t.Fatalf("request past the client's share: %+v %v, want reason 0x97", r, err)
	}
	fair := connect5(t, addr, nil)
	fair.sub(t, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "fair/r", QoS: 1}}})
	fair.pub(t, &paho5.Publish{Topic: "svc/echo", QoS: 1, Payload: []byte("hi"),
		Properties: &paho5.PublishProperties{ResponseTopic: "fair/r", CorrelationData: []byte("c-fair")}})
	if m := fair.next(t); string(m.Payload) != "hi" || m.Properties == nil || string(m.Properties.CorrelationData) != "c-fair" {
		t.Fatalf("fair client's reply: %q %+v", m.Payload, m.Properties)
	}
}

// TestMQTT5RequestTableFullOfHogs: ten client ids, each within its share,
// fill the request table (100,000 entries nobody answers); a request from
// another client still gets its reply with its correlation data, its entry
// made by forgetting the oldest one of the client holding the most.
func TestMQTT5RequestTableFullOfHogs(t *testing.T) {
	s := startEchoService(t)
	addr := s.MQTTAddr().String()
	for h := range 10 {
		id := fmt.Sprintf("hog%d", h)
		hog := connect5(t, addr, &paho5.Connect{ClientID: id, CleanStart: true})
		props := &paho5.PublishProperties{ResponseTopic: id + "/r", CorrelationData: []byte("h")}
		for range 10_000 {
			if _, err := hog.Client.Publish(context.Background(), &paho5.Publish{Topic: "void/x", Properties: props}); err != nil {
				t.Fatal(err)
			}
		}
		// Acknowledged after the QoS 0 ones before it: all are in the table.
		if r := hog.pub(t, &paho5.Publish{Topic: "void/x", QoS: 1}); r.ReasonCode >= 0x80 {
			t.Fatalf("%s: reason %#x", id, r.ReasonCode)
		}
	}
	fair := connect5(t, addr, nil)
	fair.sub(t, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "fair/r", QoS: 1}}})
	fair.pub(t, &paho5.Publish{Topic: "svc/echo", QoS: 1, Payload: []byte("hi"),
		Properties: &paho5.PublishProperties{ResponseTopic: "fair/r", CorrelationData: []byte("c-fair")}})
	if m := fair.next(t); string(m.Payload) != "hi" || m.Properties == nil || string(m.Properties.CorrelationData) != "c-fair" {
		t.Fatalf("fair client's reply in a full table: %q %+v", m.Payload, m.Properties)
	}
}

// TestMQTT5RetainedMessageExpiry: a retained message with a message expiry
// interval is retained only that long, across a restart too: before it
// runs out a new subscriber gets it with the time it has left, after it
// none does. One without an interval stays.
func TestMQTT5RetainedMessageExpiry(t *testing.T) {
	o := loop.Options{JetStream: true, StoreDir: t.TempDir()}
	s := startMQTT(t, o)
	p := connect5(t, s.MQTTAddr().String(), nil)
	published := time.Now()
	p.pub(t, &paho5.Publish{Topic: "rx/short", QoS: 1, Retain: true, Payload: []byte("short"),
		Properties: &paho5.PublishProperties{MessageExpiry: u32(2)}})
	p.pub(t, &paho5.Publish{Topic: "rx/long", QoS: 1, Retain: true, Payload: []byte("long"),
		Properties: &paho5.PublishProperties{MessageExpiry: u32(3600)}})
	p.pub(t, &paho5.Publish{Topic: "rx/none", QoS: 1, Retain: true, Payload: []byte("none")})
	s.Shutdown()
	s = startMQTT(t, o)

	got := func() map[string]*paho5.Publish {
		c := connect5(t, s.MQTTAddr().String(), nil)
		c.sub(t, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "rx/#", QoS: 0}}})
		out := map[string]*paho5.Publish{}
		for {
			select {
			case m := <-c.msgs:
				out[m.Topic] = m
			case <-time.After(300 * time.Millisecond):
				return out
			}
		}
	}
	before := got()
	if time.Since(published) < 2*time.Second {
		m := before["rx/short"]
		if m == nil || m.Properties == nil || m.Properties.MessageExpiry == nil || *m.Properties.MessageExpiry > 2 {
			t.Fatalf("rx/short before its expiry: %+v", m)
		}
	}
	time.Sleep(time.Until(published.Add(2100 * time.Millisecond))) // the interval running out is what is tested
	after := got()
	if m := after["rx/short"]; m != nil {
		t.Fatalf("rx/short retained past its message expiry interval: %q", m.Payload)
	}
	if m := after["rx/long"]; m == nil || m.Properties == nil || m.Properties.MessageExpiry == nil ||
		*m.Properties.MessageExpiry > 3600 || *m.Properties.MessageExpiry < 3590 {
		t.Fatalf("rx/long: %+v", m)
	}
	if after["rx/none"] == nil {
		t.Fatal("rx/none lost")
	}
	// Gone from the store too: a restart does not bring it back.
	s.Shutdown()
	s = startMQTT(t, o)
	if m := got()["rx/short"]; m != nil {
		t.Fatalf("rx/short back after a restart: %q", m.Payload)
	}
}

// startEchoService starts a server with MQTT and a NATS service on
// svc.echo that replies with what it gets.
func startEchoService(t *testing.T) *loop.Server {
	t.Helper()
	s := startMQTT(t, loop.Options{})
	nc := connectNATS(t, s)
	if _, err := nc.Subscribe("svc.echo", func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return s
}
